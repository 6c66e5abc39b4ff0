-- Room planner: every village inside the prefix $within with its point, its
-- township (by code prefix) and its children (demand of the covering model).
WITH kids AS (
    SELECT village_code, count(*) AS children
    FROM children
    GROUP BY village_code
)
SELECT v.code,
       v.name,
       t.code AS township_code,
       t.name AS township_name,
       v.lon,
       v.lat,
       CAST(coalesce(k.children, 0) AS INTEGER) AS children
FROM units v
JOIN units t ON t.level = 'township' AND left(t.code, 9) = left(v.code, 9)
LEFT JOIN kids k ON k.village_code = v.code
WHERE v.level = 'village'
  AND v.code LIKE $within || '%'
  AND v.lon IS NOT NULL AND v.lat IS NOT NULL
ORDER BY v.code;
