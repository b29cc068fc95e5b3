-- A lease on each (root) run: the process that continues a run holds it,
-- renews it while it runs (heartbeat) and deletes it when it stops. Another
-- process refuses to continue a run whose lease is held and not expired; a
-- lease left by a killed process expires at `expires_ms` (or at once when
-- its holder was on this host and its pid no longer exists).
CREATE TABLE IF NOT EXISTS run_leases (
    run_id      TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    acquired_ms INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);
