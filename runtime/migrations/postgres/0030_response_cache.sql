-- The response cache, as in the SQLite store's 0080: one row per key, the
-- accepted result as JSON text, and when it expires.
CREATE TABLE IF NOT EXISTS response_cache (
    key        TEXT PRIMARY KEY,
    entry      TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS response_cache_expires ON response_cache (expires_ms);
