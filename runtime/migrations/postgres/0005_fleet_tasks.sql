-- The fleet (`aosc run --detach`, `aosc worker`). A run queued for the
-- workers has a row in fleet_runs; its work is in tasks: one row per attempt
-- to run (step >= 0; item -1 for a step that is not a fan-out) and at most
-- one per run saying "decide about this run" (step -1, item -1). Workers
-- claim rows with `SELECT … FOR UPDATE SKIP LOCKED`; a claim moves
-- `visible_ms` to the end of the claimer's lease, so the row of a worker
-- that died is claimed again once its lease expires. A row is deleted in the
-- transaction that journals its result.
CREATE TABLE IF NOT EXISTS fleet_runs (
    run_id    TEXT PRIMARY KEY,
    queued_ms BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS tasks (
    run_id     TEXT NOT NULL,
    step       INTEGER NOT NULL,
    item       INTEGER NOT NULL,
    attempt    INTEGER NOT NULL DEFAULT 0,
    fallback   BOOLEAN NOT NULL DEFAULT FALSE,
    visible_ms BIGINT NOT NULL,
    claimed_by TEXT,
    PRIMARY KEY (run_id, step, item)
);
CREATE INDEX IF NOT EXISTS tasks_visible ON tasks (visible_ms);
