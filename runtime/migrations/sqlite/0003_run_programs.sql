-- A run's program (the checked IR, megabytes for a large pipeline) lives in
-- a table of its own, written once when the run is created. In `runs` it
-- made SQLite rewrite the whole row, program included, on every commit that
-- updates the run's status, cost or audit head: quadratic in the run length.
CREATE TABLE IF NOT EXISTS run_programs (
    run_id  TEXT PRIMARY KEY,
    program TEXT NOT NULL
);
INSERT OR IGNORE INTO run_programs (run_id, program) SELECT run_id, program FROM runs WHERE program <> '';
UPDATE runs SET program = '' WHERE program <> '';
