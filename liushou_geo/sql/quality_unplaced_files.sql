-- Files whose rows were all set aside, or that could not be read at all are
-- not in ingested_files; these are the registry files with nothing loaded.
SELECT f.path, f.rows_read, f.rows_set_aside
FROM ingested_files f
WHERE f.kind = 'registry' AND f.rows_loaded = 0
ORDER BY f.path;
