-- Measured statistics of each model, as in the SQLite store's 0081.
CREATE TABLE IF NOT EXISTS model_stats (
    model_key        TEXT PRIMARY KEY,
    calls            BIGINT NOT NULL DEFAULT 0,
    errors           BIGINT NOT NULL DEFAULT 0,
    latency_ms_total BIGINT NOT NULL DEFAULT 0,
    cost_usd_total   DOUBLE PRECISION NOT NULL DEFAULT 0,
    verified         BIGINT NOT NULL DEFAULT 0,
    verified_ok      BIGINT NOT NULL DEFAULT 0,
    updated_ms       BIGINT NOT NULL
);
