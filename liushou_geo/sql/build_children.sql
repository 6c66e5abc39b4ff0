-- One row per child (distinct keyed ID), from all the registry rows naming it.
-- Village: the village committee's extract wins over a school's; among
-- several, the newest as-of date. paired / with_guardian: any source names one.
CREATE OR REPLACE TABLE children AS
SELECT
    child_key,
    arg_max(village_code, (source_kind = 'village')::INTEGER * 100000 + date_diff('day', DATE '2000-01-01', as_of)) AS village_code,
    arg_max(name, (source_kind = 'village')::INTEGER * 100000 + date_diff('day', DATE '2000-01-01', as_of)) AS name,
    arg_max(id_masked, as_of) AS id_masked,
    arg_max(sex, as_of) AS sex,
    min(birth) AS birth,
    max(as_of) AS as_of,
    bool_or(helper IS NOT NULL) AS paired,
    bool_or(guardian_name IS NOT NULL) AS with_guardian,
    bool_or(status = '在校') AS enrolled,
    bool_or(source_kind = 'village') AS in_village_file,
    bool_or(source_kind = 'school') AS in_school_file,
    count(*) AS sources
FROM registry_rows
GROUP BY child_key
ORDER BY village_code;
