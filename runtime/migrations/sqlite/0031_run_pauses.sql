-- Runs paused by a user (`aosc pause`, `POST /v1/runs/{id}/pause`): kept in
-- the store so that a paused run stays paused, and resumable, across a
-- restart of `aosc serve`. A resume or a cancel removes the row.
CREATE TABLE IF NOT EXISTS run_pauses (
    run_id      TEXT PRIMARY KEY,
    by          TEXT NOT NULL,
    at_ms       INTEGER NOT NULL
);
