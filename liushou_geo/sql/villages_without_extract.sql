-- Villages and communities inside $within from which no committee extract
-- (a registry file sent by the committee itself) has been loaded.
SELECT v.code, concat_ws(' ', c.name, t.name, v.name) AS full_name
FROM units v
JOIN units t ON t.code = v.parent_code
JOIN units c ON c.code = t.parent_code
WHERE v.level = 'village' AND v.code LIKE $within || '%'
  AND NOT EXISTS (
      SELECT 1 FROM registry_rows r
      WHERE r.source_kind = 'village' AND r.village_code = v.code
  )
ORDER BY v.code;
