-- Registry files that had data rows but none of them loaded (every row set
-- aside): the ones to deal with first. Empty extracts (no data rows) are not
-- errors and are not listed.
SELECT f.path, f.rows_read, f.rows_set_aside
FROM ingested_files f
WHERE f.kind = 'registry' AND f.rows_loaded = 0 AND f.rows_read > 0
ORDER BY f.path;
