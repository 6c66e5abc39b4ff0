-- Rooms with one of the given statuses, as points.
SELECT name, village_code, lon, lat, status
FROM rooms
WHERE list_contains($statuses, status) AND lon IS NOT NULL
ORDER BY village_code, name;
