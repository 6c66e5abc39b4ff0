-- The store's tables. Codes are 12-digit statistical division codes (text).
-- No raw ID number is ever stored: child_key is a keyed hash (HMAC-SHA256),
-- id_masked the displayable form (430224********123X).

CREATE TABLE IF NOT EXISTS units (
    level       VARCHAR NOT NULL,   -- city | county | township | village
    code        VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL,
    parent_code VARCHAR,
    kind        VARCHAR,            -- villages: 村 (村委会) or 居 (居委会)
    lon         DOUBLE,             -- representative point, inside the polygon
    lat         DOUBLE,
    area_km2    DOUBLE,
    geom        GEOMETRY,           -- EPSG:4326
    geom_web    VARCHAR,            -- simplified, rounded polygon rings as JSON, for the browser
    name_source VARCHAR             -- layer | village_layer | code_table | registry | placeholder
);

-- Every boundary layer's features as read (any level); units are built from
-- all of them together, so a township layer sent later adds to the villages.
CREATE TABLE IF NOT EXISTS boundary_features (
    file_id       VARCHAR NOT NULL,
    path          VARCHAR NOT NULL,
    level         VARCHAR NOT NULL,
    code          VARCHAR NOT NULL,
    name          VARCHAR,
    township_name VARCHAR,
    county_name   VARCHAR,
    geom          GEOMETRY           -- EPSG:4326
);

-- Official names from a division code table (统计用区划代码), and names agreed
-- by the registry's own 乡镇/县 columns where no better source had one.
CREATE TABLE IF NOT EXISTS division_names (
    code    VARCHAR NOT NULL,
    name    VARCHAR NOT NULL,
    source  VARCHAR NOT NULL,        -- code_table | registry
    file_id VARCHAR
);

CREATE TABLE IF NOT EXISTS ingested_files (
    file_id        VARCHAR PRIMARY KEY,  -- sha256 of the file's bytes
    path           VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,
    rows_read      INTEGER NOT NULL,
    rows_loaded    INTEGER NOT NULL,
    rows_set_aside INTEGER NOT NULL,
    ingested_at    TIMESTAMP NOT NULL,
    rows_duplicate INTEGER DEFAULT 0    -- exact copies of a row above, counted once
);

CREATE TABLE IF NOT EXISTS set_aside (
    file_id     VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    sheet       VARCHAR,
    row_no      INTEGER,            -- 1-based row in the sheet (CSV: line, header = 1)
    column_name VARCHAR,
    reason      VARCHAR NOT NULL,   -- stable reason code
    message     VARCHAR NOT NULL    -- Chinese: what is wrong and how to fix it
);

CREATE TABLE IF NOT EXISTS registry_rows (
    file_id        VARCHAR NOT NULL,
    sheet          VARCHAR,
    row_no         INTEGER NOT NULL,
    source_kind    VARCHAR NOT NULL,  -- village | school
    reporting_unit VARCHAR NOT NULL,
    unit_scope     VARCHAR NOT NULL,  -- where the unit is: township (committee) or county (school) code prefix
    as_of          DATE NOT NULL,
    child_key      VARCHAR NOT NULL,
    id_masked      VARCHAR NOT NULL,
    name           VARCHAR,
    sex            VARCHAR,
    birth          DATE NOT NULL,
    village_code   VARCHAR NOT NULL,
    school         VARCHAR,
    grade          VARCHAR,
    class          VARCHAR,
    head_teacher   VARCHAR,
    status         VARCHAR,
    father_name    VARCHAR,
    father_work    VARCHAR,
    father_phone   VARCHAR,
    mother_name    VARCHAR,
    mother_work    VARCHAR,
    mother_phone   VARCHAR,
    guardian_name     VARCHAR,
    guardian_relation VARCHAR,
    guardian_phone    VARCHAR,
    guardian_address  VARCHAR,
    personality    VARCHAR,           -- sensitive free text: NULL unless the setting asks
    hobbies        VARCHAR,
    medical        VARCHAR,
    contact_card   BOOLEAN,
    family_numbers VARCHAR,
    helper         VARCHAR,
    helper_unit    VARCHAR,
    pair_date      DATE
);

CREATE TABLE IF NOT EXISTS rooms (
    file_id      VARCHAR NOT NULL,
    row_no       INTEGER NOT NULL,
    name         VARCHAR,
    village_code VARCHAR,
    host         VARCHAR,
    lon          DOUBLE,
    lat          DOUBLE,
    built        DATE,
    cost_yuan    DOUBLE,
    status       VARCHAR              -- 在用 | 在建 | 停用
);

CREATE TABLE IF NOT EXISTS terminals (
    file_id      VARCHAR NOT NULL,
    row_no       INTEGER NOT NULL,
    unit_name    VARCHAR,
    unit_kind    VARCHAR,             -- 学校 | 村委会 | 居委会
    village_code VARCHAR,
    terminals    INTEGER,
    mailbox      BOOLEAN
);

CREATE TABLE IF NOT EXISTS attendance (
    file_id       VARCHAR NOT NULL,
    row_no        INTEGER NOT NULL,
    child_key     VARCHAR NOT NULL,
    guardian_name VARCHAR,
    attended      DATE NOT NULL,
    topic         VARCHAR
);

CREATE TABLE IF NOT EXISTS contacts (
    file_id   VARCHAR NOT NULL,
    row_no    INTEGER NOT NULL,
    child_key VARCHAR NOT NULL,
    helper    VARCHAR,
    contacted DATE NOT NULL,
    mode      VARCHAR              -- 电话 | 走访 | 活动 | 心理辅导 | 总结
);

CREATE TABLE IF NOT EXISTS legal_cases (
    file_id   VARCHAR NOT NULL,
    row_no    INTEGER NOT NULL,
    case_no   VARCHAR,
    child_key VARCHAR,
    eligible  BOOLEAN,
    aided     BOOLEAN,
    filed     DATE
);

-- The per-village target counts (village_targets.sql) are kept as
-- village_target_counts, made at the end of every ingest; this says with
-- which settings, so a different radius or setting recomputes them.
CREATE TABLE IF NOT EXISTS village_target_meta (fingerprint VARCHAR);
