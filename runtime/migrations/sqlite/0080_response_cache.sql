-- The response cache (`cache:` on steps, docs/language.md "Response cache"):
-- one row per key (a SHA-256 of the call and its scope), the accepted
-- result as JSON text, and when it expires. Expired rows are never served
-- and are deleted when a newer entry is written.
CREATE TABLE IF NOT EXISTS response_cache (
    key        TEXT PRIMARY KEY,
    entry      TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS response_cache_expires ON response_cache (expires_ms);
