-- Figures per unit at one level ($level, code prefix length $prefix_len).
-- Village figures first; terminals_needed = ceil(children / $per_terminal) and
-- terminal_shortfall = max(0, needed - installed) per village, summed upward.
-- Terminals and rooms count where their village code lies inside the unit.
WITH kids AS (
    SELECT village_code,
           count(*) AS children,
           count(*) FILTER (WHERE paired) AS paired,
           count(*) FILTER (WHERE with_guardian) AS with_guardian
    FROM children
    GROUP BY village_code
),
term AS (
    SELECT village_code, sum(terminals) AS installed
    FROM terminals
    GROUP BY village_code
),
room AS (
    SELECT village_code, count(*) FILTER (WHERE status = '在用') AS rooms_active
    FROM rooms
    GROUP BY village_code
),
village AS (
    SELECT u.code,
           coalesce(k.children, 0) AS children,
           coalesce(k.paired, 0) AS paired,
           coalesce(k.with_guardian, 0) AS with_guardian,
           CAST(ceil(coalesce(k.children, 0) / $per_terminal) AS INTEGER) AS needed,
           CAST(coalesce(t.installed, 0) AS INTEGER) AS installed,
           coalesce(r.rooms_active, 0) AS rooms_active
    FROM units u
    LEFT JOIN kids k ON k.village_code = u.code
    LEFT JOIN term t ON t.village_code = u.code
    LEFT JOIN room r ON r.village_code = u.code
    WHERE u.level = 'village'
)
SELECT u.code,
       u.name,
       u.level,
       u.parent_code,
       u.lon,
       u.lat,
       CAST(sum(v.children) AS INTEGER) AS children,
       CAST(sum(v.paired) AS INTEGER) AS paired,
       CAST(sum(v.with_guardian) AS INTEGER) AS with_guardian,
       CAST(sum(v.needed) AS INTEGER) AS terminals_needed,
       CAST(sum(v.installed) AS INTEGER) AS terminals_installed,
       CAST(sum(greatest(v.needed - v.installed, 0)) AS INTEGER) AS terminal_shortfall,
       CAST(sum(v.rooms_active) AS INTEGER) AS rooms_active,
       count(*) AS villages
FROM units u
JOIN village v ON left(v.code, $prefix_len) = left(u.code, $prefix_len)
WHERE u.level = $level
GROUP BY ALL
ORDER BY u.code;
