-- Long-term memory for `memory.remember` / `memory.recall`: one value per key,
-- with the built-in embedding of key and value (little-endian f32s).
CREATE TABLE IF NOT EXISTS memory (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    embedding   BLOB NOT NULL,
    updated_at  INTEGER NOT NULL
);
