-- Facts about the history itself. `history_id` names this history; the same
-- ID in `history.id` beside the database lets the agent refuse a database
-- that is gone, empty or another one where this history lived.
CREATE TABLE history_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
