-- Activity rooms inside a code prefix, with the names above them.
SELECT r.name, r.village_code, r.host, r.lon, r.lat, r.status, r.built, r.cost_yuan,
       concat_ws(' ', c.name, t.name, v.name) AS full_name
FROM rooms r
LEFT JOIN units v ON v.code = r.village_code
LEFT JOIN units t ON t.code = v.parent_code
LEFT JOIN units c ON c.code = t.parent_code
WHERE r.village_code LIKE $within || '%'
ORDER BY r.village_code, r.name;
