-- Data quality per township (or county, $prefix_len 6): registry files
-- received, rows read / loaded / set aside. A file belongs to the township
-- (county) where most of its loaded children live; a file with nothing
-- loaded belongs to no unit and is listed apart (quality_unplaced_files.sql).
WITH file_place AS (
    SELECT file_id, mode(left(village_code, $prefix_len)) AS place
    FROM registry_rows
    GROUP BY file_id
)
SELECT rpad(p.place, 12, '0') AS code, u.name,
       count(*) AS files,
       sum(f.rows_read) AS rows_read,
       sum(f.rows_loaded) AS rows_loaded,
       sum(f.rows_set_aside) AS rows_set_aside
FROM ingested_files f
JOIN file_place p USING (file_id)
LEFT JOIN units u ON u.code = rpad(p.place, 12, '0')
WHERE f.kind = 'registry' AND p.place LIKE $within || '%'
GROUP BY ALL
ORDER BY code;
