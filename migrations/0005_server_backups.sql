-- Server (CSBS) backups. A server job's backup_id is the checkpoint item
-- (the server backup); checkpoint_id is the backup record CSBS deletes.
ALTER TABLE jobs ADD COLUMN checkpoint_id TEXT;
-- The last extend_info.progress seen (0-100).
ALTER TABLE jobs ADD COLUMN progress REAL;
-- extend_info.fail_code of a failed server backup ("code: description").
ALTER TABLE jobs ADD COLUMN fail_code TEXT;

-- The per-volume backups of a server backup, as its checkpoint item lists
-- them when it reaches a terminal status.
CREATE TABLE server_volume_backups (
    id                 INTEGER PRIMARY KEY,
    at                 TEXT NOT NULL,
    job_id             INTEGER NOT NULL REFERENCES jobs (id),
    checkpoint_item_id TEXT NOT NULL,
    volume_backup_id   TEXT,
    source_volume_id   TEXT,
    source_volume_name TEXT,
    status             TEXT,
    size_mb            REAL,
    incremental        INTEGER,
    bootable           INTEGER
);
CREATE INDEX server_volume_backups_job ON server_volume_backups (job_id);
