-- Numerators and denominators of the seven targets (and room coverage,
-- proxy-parent cadence) per village. Everything is a count, so every level
-- above is a plain sum (rollup_targets.sql).
--
-- Needs the relation room_cover(code, covered) registered by the caller
-- (villages within the room radius, coverage.py).
-- Parameters: $age_min, $age_max (compulsory-education ages, inclusive),
-- $window_months (parent-school attendance window),
-- $report_date, $month_ago, $quarter_start, $holiday_start, $holiday_end,
-- $last_year_start, $last_year_end (proxy-parent cadence, from the report date).
WITH row_flags AS (
    SELECT r.child_key,
           r.school IS NOT NULL AND r.status IN ('在校', '学前') AS in_school_row,
           r.status = '在校' AS attending,
           -- REGISTRY_FORMAT "file is complete": name, sex, birth date, village,
           -- both parents' work places, a guardian with a phone, a contact card,
           -- and school and class for children enrolled.
           (r.name IS NOT NULL AND r.sex IS NOT NULL AND r.birth IS NOT NULL AND r.village_code IS NOT NULL
            AND r.father_work IS NOT NULL AND r.mother_work IS NOT NULL
            AND r.guardian_name IS NOT NULL AND r.guardian_phone IS NOT NULL
            AND coalesce(r.contact_card, false)
            AND (NOT (r.status IN ('在校', '学前') AND r.school IS NOT NULL) OR r.class IS NOT NULL)) AS complete_row
    FROM registry_rows r
),
kid AS (
    SELECT c.child_key, c.village_code, c.paired, c.with_guardian, c.as_of,
           year(c.as_of) - year(c.birth)
             - CASE WHEN strftime(c.as_of, '%m%d') < strftime(c.birth, '%m%d') THEN 1 ELSE 0 END AS age,
           bool_or(f.in_school_row) AS enrolled,
           bool_or(f.attending) AS attending,
           bool_or(f.complete_row) AS complete
    FROM children c JOIN row_flags f USING (child_key)
    GROUP BY ALL
),
trained AS (
    SELECT DISTINCT a.child_key
    FROM attendance a JOIN children c USING (child_key)
    WHERE a.attended <= c.as_of AND a.attended > c.as_of - to_months($window_months)
),
cadence AS (
    SELECT child_key,
           max(contacted) FILTER (WHERE contacted <= $report_date) AS last_contact,
           count(*) FILTER (WHERE mode = '活动' AND contacted BETWEEN $quarter_start AND $report_date) AS activities,
           count(*) FILTER (WHERE mode = '心理辅导' AND contacted BETWEEN $holiday_start AND $holiday_end) AS counselling,
           count(*) FILTER (WHERE mode = '总结' AND contacted BETWEEN $last_year_start AND $last_year_end) AS summaries
    FROM contacts
    GROUP BY child_key
),
kids AS (
    SELECT k.village_code,
           count(*) AS children,
           count(*) FILTER (WHERE k.enrolled AND k.complete) AS t1a_num,
           count(*) FILTER (WHERE k.enrolled) AS t1a_den,
           count(*) FILTER (WHERE NOT k.enrolled AND k.complete) AS t1b_num,
           count(*) FILTER (WHERE NOT k.enrolled) AS t1b_den,
           count(*) FILTER (WHERE t.child_key IS NOT NULL) AS t2_num,
           count(*) FILTER (WHERE k.paired) AS t4_num,
           count(*) FILTER (WHERE k.with_guardian) AS t5_num,
           count(*) FILTER (WHERE k.age BETWEEN $age_min AND $age_max AND k.attending) AS t6_num,
           count(*) FILTER (WHERE k.age BETWEEN $age_min AND $age_max) AS t6_den,
           count(*) FILTER (WHERE k.paired AND (cd.last_contact IS NULL OR cd.last_contact < $month_ago)) AS contacts_overdue,
           count(*) FILTER (WHERE k.paired AND coalesce(cd.activities, 0) = 0) AS no_activity_this_quarter,
           count(*) FILTER (WHERE k.paired AND coalesce(cd.counselling, 0) = 0) AS no_counselling_last_holiday,
           count(*) FILTER (WHERE k.paired AND coalesce(cd.summaries, 0) = 0) AS no_summary_last_year
    FROM kid k
    LEFT JOIN trained t USING (child_key)
    LEFT JOIN cadence cd USING (child_key)
    GROUP BY k.village_code
),
-- Target 3: every school and committee that has left-behind children.
terminal_units AS (
    SELECT unit_name, unit_kind, left(village_code, 6) AS county6,
           any_value(village_code) AS village_code,
           sum(coalesce(terminals, 0)) AS terminals,
           bool_or(coalesce(mailbox, false)) AS mailbox
    FROM terminals
    GROUP BY ALL
),
committee_units AS (
    SELECT k.village_code,
           coalesce(bool_or(t.terminals >= 1 AND t.mailbox), false) AS equipped
    FROM kids k
    LEFT JOIN terminal_units t ON t.village_code = k.village_code AND t.unit_kind IN ('村委会', '居委会')
    GROUP BY k.village_code
),
school_units AS (
    SELECT r.school, left(r.village_code, 6) AS county6, mode(r.village_code) AS pupils_village
    FROM registry_rows r
    WHERE r.school IS NOT NULL AND r.status IN ('在校', '学前')
    GROUP BY ALL
),
school_places AS (
    -- A school sits where the terminals list puts it, else in its pupils' most common village.
    SELECT coalesce(t.village_code, s.pupils_village) AS village_code,
           coalesce(t.terminals >= 1 AND t.mailbox, false) AS equipped
    FROM school_units s
    LEFT JOIN terminal_units t ON t.unit_kind = '学校' AND t.unit_name = s.school AND t.county6 = s.county6
),
t3 AS (
    SELECT village_code, count(*) FILTER (WHERE equipped) AS t3_num, count(*) AS t3_den
    FROM (SELECT * FROM committee_units UNION ALL SELECT * FROM school_places)
    GROUP BY village_code
),
mailboxes AS (
    -- Mailbox coverage: every school and committee in the terminals list.
    SELECT village_code, count(*) FILTER (WHERE mailbox) AS mailbox_num, count(*) AS mailbox_den
    FROM terminal_units
    GROUP BY village_code
),
t7 AS (
    SELECT c.village_code,
           count(*) FILTER (WHERE l.eligible AND l.aided) AS t7_num,
           count(*) FILTER (WHERE l.eligible) AS t7_den
    FROM legal_cases l JOIN children c USING (child_key)
    GROUP BY c.village_code
),
rooms_here AS (
    SELECT village_code, count(*) FILTER (WHERE status = '在用') AS rooms_active
    FROM rooms GROUP BY village_code
)
SELECT u.code,
       coalesce(k.children, 0) AS children,
       coalesce(k.t1a_num, 0) AS t1a_num, coalesce(k.t1a_den, 0) AS t1a_den,
       coalesce(k.t1b_num, 0) AS t1b_num, coalesce(k.t1b_den, 0) AS t1b_den,
       coalesce(k.t2_num, 0) AS t2_num, coalesce(k.children, 0) AS t2_den,
       coalesce(t3.t3_num, 0) AS t3_num, coalesce(t3.t3_den, 0) AS t3_den,
       coalesce(k.t4_num, 0) AS t4_num, coalesce(k.children, 0) AS t4_den,
       coalesce(k.t5_num, 0) AS t5_num, coalesce(k.children, 0) AS t5_den,
       coalesce(k.t6_num, 0) AS t6_num, coalesce(k.t6_den, 0) AS t6_den,
       coalesce(t7.t7_num, 0) AS t7_num, coalesce(t7.t7_den, 0) AS t7_den,
       coalesce(r.rooms_active, 0) AS rooms_active,
       coalesce(mb.mailbox_num, 0) AS mailbox_num, coalesce(mb.mailbox_den, 0) AS mailbox_den,
       CASE WHEN coalesce(rc.covered, false) THEN coalesce(k.children, 0) ELSE 0 END AS room_children_num,
       coalesce(k.children, 0) AS room_children_den,
       coalesce(k.contacts_overdue, 0) AS contacts_overdue,
       coalesce(k.no_activity_this_quarter, 0) AS no_activity_this_quarter,
       coalesce(k.no_counselling_last_holiday, 0) AS no_counselling_last_holiday,
       coalesce(k.no_summary_last_year, 0) AS no_summary_last_year
FROM units u
LEFT JOIN kids k ON k.village_code = u.code
LEFT JOIN t3 ON t3.village_code = u.code
LEFT JOIN t7 ON t7.village_code = u.code
LEFT JOIN rooms_here r ON r.village_code = u.code
LEFT JOIN mailboxes mb ON mb.village_code = u.code
LEFT JOIN room_cover rc ON rc.code = u.code
WHERE u.level = 'village'
ORDER BY u.code;
