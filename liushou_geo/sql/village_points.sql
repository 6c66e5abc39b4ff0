-- Every village's representative point (inside its polygon).
SELECT code, lon, lat FROM units WHERE level = 'village' ORDER BY code;
