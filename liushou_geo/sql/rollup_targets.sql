-- Sum the village counts of village_targets.sql (registered as the relation
-- village_targets) to one level ($level, code prefix length $prefix_len).
-- Townships with an active room are counted, not summed (乡镇全覆盖).
SELECT u.code, u.name, u.level, u.parent_code,
       CAST(sum(v.children) AS BIGINT) AS children,
       CAST(sum(v.t1a_num) AS BIGINT) AS t1a_num,
       CAST(sum(v.t1a_den) AS BIGINT) AS t1a_den,
       CAST(sum(v.t1b_num) AS BIGINT) AS t1b_num,
       CAST(sum(v.t1b_den) AS BIGINT) AS t1b_den,
       CAST(sum(v.t2_num) AS BIGINT) AS t2_num,
       CAST(sum(v.t2_den) AS BIGINT) AS t2_den,
       CAST(sum(v.t3_num) AS BIGINT) AS t3_num,
       CAST(sum(v.t3_den) AS BIGINT) AS t3_den,
       CAST(sum(v.t4_num) AS BIGINT) AS t4_num,
       CAST(sum(v.t4_den) AS BIGINT) AS t4_den,
       CAST(sum(v.t5_num) AS BIGINT) AS t5_num,
       CAST(sum(v.t5_den) AS BIGINT) AS t5_den,
       CAST(sum(v.t6_num) AS BIGINT) AS t6_num,
       CAST(sum(v.t6_den) AS BIGINT) AS t6_den,
       CAST(sum(v.t7_num) AS BIGINT) AS t7_num,
       CAST(sum(v.t7_den) AS BIGINT) AS t7_den,
       CAST(sum(v.rooms_active) AS BIGINT) AS rooms_active,
       CAST(sum(v.mailbox_num) AS BIGINT) AS mailbox_num,
       CAST(sum(v.mailbox_den) AS BIGINT) AS mailbox_den,
       CAST(sum(v.room_children_num) AS BIGINT) AS room_children_num,
       CAST(sum(v.room_children_den) AS BIGINT) AS room_children_den,
       CAST(sum(v.contacts_overdue) AS BIGINT) AS contacts_overdue,
       CAST(sum(v.no_activity_this_quarter) AS BIGINT) AS no_activity_this_quarter,
       CAST(sum(v.no_counselling_last_holiday) AS BIGINT) AS no_counselling_last_holiday,
       CAST(sum(v.no_summary_last_year) AS BIGINT) AS no_summary_last_year,
       count(DISTINCT left(v.code, 9)) FILTER (WHERE v.rooms_active > 0) AS room_townships_num,
       count(DISTINCT left(v.code, 9)) AS room_townships_den
FROM units u
JOIN village_targets v ON left(v.code, $prefix_len) = left(u.code, $prefix_len)
WHERE u.level = $level
GROUP BY u.code, u.name, u.level, u.parent_code
ORDER BY u.code;
