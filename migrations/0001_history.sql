-- History of every policy firing, job and API call. Times are UTC RFC 3339
-- strings with millisecond precision ("2026-11-22T01:30:00.000Z"), so they
-- sort and compare as text.

-- One row per policy firing (policy, slot).
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    policy      TEXT NOT NULL,
    slot        TEXT NOT NULL,          -- the scheduled time this run stands for
    trigger     TEXT NOT NULL,          -- schedule | manual
    status      TEXT NOT NULL,          -- running | succeeded | failed
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (policy, slot)
);

-- One row per (run, target). A (policy, target, slot) is backed up at most once.
CREATE TABLE jobs (
    id             INTEGER PRIMARY KEY,
    run_id         INTEGER NOT NULL REFERENCES runs (id),
    policy         TEXT NOT NULL,
    kind           TEXT NOT NULL,       -- backup
    cloud          TEXT NOT NULL,
    target         TEXT NOT NULL,       -- volume id
    slot           TEXT NOT NULL,
    resource_name  TEXT NOT NULL,       -- deterministic snapshot/backup name
    status         TEXT NOT NULL,       -- running | succeeded | failed | timed_out
    phase          TEXT NOT NULL,       -- where a running job stands (see engine::Phase)
    snapshot_id    TEXT,
    backup_id      TEXT,
    size_gb        INTEGER,
    is_incremental INTEGER,
    fail_reason    TEXT,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    updated_at     TEXT NOT NULL,
    UNIQUE (policy, target, slot)
);
CREATE INDEX jobs_status ON jobs (status);
CREATE INDEX jobs_started ON jobs (started_at);

-- Append-only log: every API attempt and every state change.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    run_id      INTEGER REFERENCES runs (id),
    job_id      INTEGER REFERENCES jobs (id),
    kind        TEXT NOT NULL,          -- api_call | state | warning
    method      TEXT,
    path        TEXT,
    http_status INTEGER,
    latency_ms  INTEGER,
    class       TEXT,                   -- ok | retryable | permanent | busy | quota | auth | bad_answer
    message     TEXT
);
CREATE INDEX events_job ON events (job_id);

CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- The last slot fired per policy.
CREATE TABLE schedule_marks (
    policy     TEXT PRIMARY KEY,
    last_slot  TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
