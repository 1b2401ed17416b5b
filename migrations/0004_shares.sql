-- Backup shares the agent made (or failed to make) for policies with share_to.
CREATE TABLE backup_shares (
    id            INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
    job_id        INTEGER NOT NULL REFERENCES jobs (id),
    backup_id     TEXT NOT NULL,
    to_project_id TEXT NOT NULL,
    share_id      TEXT,
    status        TEXT NOT NULL,        -- shared | failed
    message       TEXT
);
CREATE INDEX backup_shares_job ON backup_shares (job_id);
