-- Set-aside rows per reason, for files whose children live inside $within
-- (or, when $within is '', every file).
WITH file_place AS (
    SELECT file_id, mode(village_code) AS place FROM registry_rows GROUP BY file_id
)
SELECT s.reason, count(*) AS rows
FROM set_aside s
LEFT JOIN file_place p USING (file_id)
WHERE $within = '' OR p.place LIKE $within || '%'
GROUP BY s.reason
ORDER BY rows DESC, s.reason;
