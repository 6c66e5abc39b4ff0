-- Units of one level inside a code prefix, with their browser geometry and
-- the path of names above them (for tooltips).
SELECT u.code, u.name, u.lon, u.lat, u.geom_web,
       concat_ws(' ', c.name, p.name, u.name) AS full_name
FROM units u
LEFT JOIN units p ON p.code = u.parent_code
LEFT JOIN units c ON c.code = p.parent_code
WHERE u.level = $level
  AND u.code LIKE $within || '%'
ORDER BY u.code;
