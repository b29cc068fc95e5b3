-- How far each run's journal has been published on the Redis Streams bus:
-- entries with a larger id are published when Redis is reachable again.
CREATE TABLE IF NOT EXISTS bus_cursor (
    run_id       TEXT PRIMARY KEY,
    published_id INTEGER NOT NULL
);
