-- The PostgreSQL store: the same tables as the SQLite store (see
-- ../sqlite/0001-0003), with PostgreSQL types. JSON is kept as text, exactly
-- as serialized, so both stores return byte-identical values.
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    parent      TEXT,
    workflow    TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    trust       TEXT NOT NULL,
    inputs      TEXT NOT NULL,
    output      TEXT,
    error       TEXT,
    cost_usd    DOUBLE PRECISION NOT NULL DEFAULT 0,
    audit_head  TEXT NOT NULL DEFAULT '',
    audit_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);

-- Written once when the run is created (the runs row is updated on every
-- commit and stays small).
CREATE TABLE IF NOT EXISTS run_programs (
    run_id  TEXT PRIMARY KEY,
    program TEXT NOT NULL
);

-- Ids are assigned while the run's row is locked (`SELECT … FOR UPDATE` in
-- every commit), so one run's entries are numbered in commit order.
CREATE TABLE IF NOT EXISTS journal (
    id      BIGSERIAL PRIMARY KEY,
    run_id  TEXT NOT NULL,
    at_ms   BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_run ON journal (run_id, id);

-- `id` is the storage order that `audit verify` reads (a reordering of
-- `seq` values must show, as SQLite's rowid order shows it).
CREATE TABLE IF NOT EXISTS audit (
    id        BIGSERIAL PRIMARY KEY,
    run_id    TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    at_ms     BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    step      TEXT,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_run ON audit (run_id, id);

CREATE TABLE IF NOT EXISTS idempotency (
    key     TEXT PRIMARY KEY,
    run_id  TEXT NOT NULL,
    step    TEXT NOT NULL,
    output  TEXT NOT NULL
);

-- Long-term memory: one value per key with its embedding (little-endian f32s).
CREATE TABLE IF NOT EXISTS memory (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    embedding   BYTEA NOT NULL,
    updated_at  BIGINT NOT NULL
);
