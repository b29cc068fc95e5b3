-- Measured statistics of each model from real calls (issue 16), updated by
-- the driver after each LLM call: one row per model as it answered
-- (`answered_by|model_id|base_url`), running sums that give the mean
-- latency, the error rate, the verification pass rate and the cost per call.
CREATE TABLE IF NOT EXISTS model_stats (
    model_key        TEXT PRIMARY KEY,
    calls            INTEGER NOT NULL DEFAULT 0,
    errors           INTEGER NOT NULL DEFAULT 0,
    latency_ms_total INTEGER NOT NULL DEFAULT 0,
    cost_usd_total   REAL NOT NULL DEFAULT 0,
    verified         INTEGER NOT NULL DEFAULT 0,
    verified_ok      INTEGER NOT NULL DEFAULT 0,
    updated_ms       INTEGER NOT NULL
);
