-- The per-village target counts kept at the last ingest (same columns as village_targets.sql).
SELECT * FROM village_target_counts ORDER BY code;
