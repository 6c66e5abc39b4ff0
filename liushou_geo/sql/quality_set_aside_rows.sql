-- Every set-aside row (file, sheet, row, column, reason, message) for a clerk
-- to correct in the original file. No row content is stored: only where it is.
WITH file_place AS (
    SELECT file_id, mode(village_code) AS place FROM registry_rows GROUP BY file_id
)
SELECT s.path, s.sheet, s.row_no, s.column_name, s.reason, s.message
FROM set_aside s
LEFT JOIN file_place p USING (file_id)
WHERE $within = '' OR p.place LIKE $within || '%'
ORDER BY s.path, s.sheet, s.row_no;
