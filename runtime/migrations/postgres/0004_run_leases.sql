-- A lease on each (root) run, as in the SQLite store's 0050: the process
-- that continues a run holds it and renews it; a killed holder's lease
-- expires at `expires_ms`.
CREATE TABLE IF NOT EXISTS run_leases (
    run_id      TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    host        TEXT NOT NULL,
    acquired_ms BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
