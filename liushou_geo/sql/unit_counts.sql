-- How many townships and villages lie inside a code prefix.
SELECT count(*) FILTER (WHERE level = 'township') AS townships,
       count(*) FILTER (WHERE level = 'village') AS villages
FROM units
WHERE code LIKE $within || '%';
