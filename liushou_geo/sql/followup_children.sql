-- Children of one township ($prefix, 9 digits) needing follow-up: not paired,
-- paired but no proxy-parent contact since $month_ago, or without a guardian.
-- Details from the committee's extract when there is one, else the school's.
WITH best AS (
    SELECT r.*,
           row_number() OVER (PARTITION BY r.child_key
                              ORDER BY (r.source_kind = 'village') DESC, r.as_of DESC, r.row_no) AS pick
    FROM registry_rows r
    WHERE r.village_code LIKE $prefix || '%'
),
last_contact AS (
    SELECT child_key, max(contacted) AS last_contact FROM contacts GROUP BY child_key
)
SELECT c.child_key,
       b.name, b.sex, c.birth, c.as_of, c.id_masked,
       v.name AS village,
       b.guardian_name, b.guardian_relation, b.guardian_phone, b.father_phone, b.mother_phone,
       b.helper, lc.last_contact,
       NOT c.paired AS unpaired,
       c.paired AND (lc.last_contact IS NULL OR lc.last_contact < $month_ago) AS contact_overdue,
       NOT c.with_guardian AS no_guardian
FROM children c
JOIN best b ON b.child_key = c.child_key AND b.pick = 1
JOIN units v ON v.code = c.village_code
LEFT JOIN last_contact lc ON lc.child_key = c.child_key
WHERE c.village_code LIKE $prefix || '%'
  AND (NOT c.paired OR NOT c.with_guardian OR lc.last_contact IS NULL OR lc.last_contact < $month_ago)
ORDER BY v.code, b.name;
