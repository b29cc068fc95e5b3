-- Which embedding produced each long-term memory vector, and its length:
-- vectors of different models (or dimensions) are never compared, so recall
-- searches only the entries of the embedding it ranks with. Rows written
-- before this migration were embedded by the built-in hashing embedding.
ALTER TABLE memory ADD COLUMN embedding_model TEXT NOT NULL DEFAULT 'local-trigram-256';
ALTER TABLE memory ADD COLUMN dims INTEGER NOT NULL DEFAULT 256;
