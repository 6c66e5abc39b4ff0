-- With which settings the stored per-village target counts were made (empty: none stored).
SELECT fingerprint FROM village_target_meta;
