-- The leader lease of an HA pair and the epoch each write was made under.
-- Only a PostgreSQL history uses them (migrations/postgres/0015 adds the
-- fence that refuses a stale epoch's writes); SQLite has one writer, held
-- by its lock file, and keeps them so that both backends have one schema.
CREATE TABLE leader_lease (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    acquired_at TEXT NOT NULL,
    renewed_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    config_hash TEXT
);

ALTER TABLE runs ADD COLUMN epoch INTEGER;
ALTER TABLE jobs ADD COLUMN epoch INTEGER;
ALTER TABLE events ADD COLUMN epoch INTEGER;
