-- Room planner: townships inside the prefix $within and whether one of their
-- villages hosts a room with one of $statuses (乡镇全覆盖).
SELECT t.code,
       t.name,
       EXISTS (
           SELECT 1 FROM rooms r
           WHERE list_contains($statuses, r.status) AND left(r.village_code, 9) = left(t.code, 9)
       ) AS has_room
FROM units t
WHERE t.level = 'township'
  AND t.code LIKE $within || '%'
ORDER BY t.code;
