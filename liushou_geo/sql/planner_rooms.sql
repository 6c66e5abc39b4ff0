-- Room planner: existing rooms with one of $statuses, anywhere (a room across
-- a county border still covers villages inside it), with their township.
SELECT r.name,
       r.village_code,
       left(r.village_code, 9) || '000' AS township_code,
       r.lon,
       r.lat,
       r.status
FROM rooms r
WHERE list_contains($statuses, r.status) AND r.lon IS NOT NULL AND r.lat IS NOT NULL
ORDER BY r.village_code, r.name;
