-- The recall index follows the memory table by `updated_at` (entries written
-- since its watermark): an index keeps that a range read.
CREATE INDEX IF NOT EXISTS memory_updated ON memory (updated_at);
