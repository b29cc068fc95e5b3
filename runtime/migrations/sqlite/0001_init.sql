-- Runs, their journal of transitions, the audit chain and idempotency records.
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    parent      TEXT,
    workflow    TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    trust       TEXT NOT NULL,
    inputs      TEXT NOT NULL,
    program     TEXT NOT NULL,
    output      TEXT,
    error       TEXT,
    cost_usd    REAL NOT NULL DEFAULT 0,
    audit_head  TEXT NOT NULL DEFAULT '',
    audit_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);

CREATE TABLE IF NOT EXISTS journal (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_run ON journal (run_id, id);

CREATE TABLE IF NOT EXISTS audit (
    run_id    TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    at_ms     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    step      TEXT,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_run ON audit (run_id, seq);

CREATE TABLE IF NOT EXISTS idempotency (
    key     TEXT PRIMARY KEY,
    run_id  TEXT NOT NULL,
    step    TEXT NOT NULL,
    output  TEXT NOT NULL
);
