-- What retention did, and why: one row per backup a prune decided to
-- delete (whether the delete succeeded, was blocked, or failed).
CREATE TABLE retention_actions (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    policy      TEXT NOT NULL,
    target      TEXT NOT NULL,
    backup_id   TEXT NOT NULL,
    backup_name TEXT,
    created_at  TEXT,
    action      TEXT NOT NULL,          -- deleted | blocked_by_dependants | delete_failed
    reason      TEXT NOT NULL
);
CREATE INDEX retention_actions_policy ON retention_actions (policy, at);
