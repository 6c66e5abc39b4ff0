-- The name of one unit, by code.
SELECT code, name FROM units WHERE code = $code;
