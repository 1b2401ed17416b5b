-- Job-level retries, overlap records and catch-up.

-- Which attempt the job row describes (1 = first), and when it started.
ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN attempt_started_at TEXT;
-- Set while a failed attempt is cleaned up: when the next attempt starts.
ALTER TABLE jobs ADD COLUMN retry_at TEXT;
-- For status 'skipped_overlap': the still-running job that blocked this one.
ALTER TABLE jobs ADD COLUMN blocked_by INTEGER REFERENCES jobs (id);

-- Earlier attempts of a job, kept when it is retried.
CREATE TABLE job_attempts (
    id            INTEGER PRIMARY KEY,
    job_id        INTEGER NOT NULL REFERENCES jobs (id),
    attempt       INTEGER NOT NULL,
    resource_name TEXT NOT NULL,
    snapshot_id   TEXT,
    backup_id     TEXT,
    status        TEXT NOT NULL,        -- failed | timed_out
    fail_reason   TEXT,
    started_at    TEXT NOT NULL,
    finished_at   TEXT NOT NULL,
    UNIQUE (job_id, attempt)
);

-- The schedule (expression and zone) the last slot was computed with: a
-- changed schedule starts afresh instead of catching up.
ALTER TABLE schedule_marks ADD COLUMN schedule TEXT NOT NULL DEFAULT '';

CREATE INDEX jobs_target_status ON jobs (target, status);
