-- `aosc serve` on the shared store, as in the SQLite store's 0030 and 0031:
-- API tokens (only a SHA-256 of each token), the cron ticks already fired
-- (one row per workflow and tick, so a tick fires at most once across
-- restarts and across servers), control requests (cancel, pause) for runs
-- that another process is executing, and the runs paused by a user.
CREATE TABLE IF NOT EXISTS api_tokens (
    name        TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    trust       TEXT NOT NULL,
    groups      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

CREATE TABLE IF NOT EXISTS cron_ticks (
    trigger_key TEXT NOT NULL,
    tick_ms     BIGINT NOT NULL,
    fired_at_ms BIGINT NOT NULL,
    PRIMARY KEY (trigger_key, tick_ms)
);

CREATE TABLE IF NOT EXISTS run_control (
    run_id      TEXT PRIMARY KEY,
    action      TEXT NOT NULL,
    by          TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS run_pauses (
    run_id      TEXT PRIMARY KEY,
    by          TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);
