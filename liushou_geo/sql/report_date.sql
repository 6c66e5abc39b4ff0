-- The newest as-of date among the loaded extracts, and the oldest.
SELECT max(as_of) AS newest, min(as_of) AS oldest FROM registry_rows;
