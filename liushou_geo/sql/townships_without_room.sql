-- Townships (inside the prefix $within) with no activity room in use (乡镇全覆盖).
SELECT t.code, t.name
FROM units t
WHERE t.level = 'township'
  AND t.code LIKE $within || '%'
  AND NOT EXISTS (
      SELECT 1 FROM rooms r
      WHERE r.status = '在用' AND left(r.village_code, 9) = left(t.code, 9)
  )
ORDER BY t.code;
