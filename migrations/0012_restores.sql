-- Restores: jobs of kind `restore`, made by a restore drill or by
-- `vbs-agent restore`. The job's backup_id is the backup restored, its
-- target the backup's source volume and its resource_name the name of the
-- volume the agent creates; a drill that restored and verified its backup
-- ends `verified`. What only a restore has is here, one row per job.
CREATE TABLE restores (
    job_id              INTEGER PRIMARY KEY REFERENCES jobs (id),
    requested_by        TEXT NOT NULL,  -- schedule, or the user who ran `vbs-agent restore`
    into_volume         TEXT NOT NULL,  -- scratch | new | existing
    volume_id           TEXT,           -- the volume restored into, once known
    restore_api         TEXT NOT NULL,  -- cinder | vendor
    restore_job_id      TEXT,           -- the vendor's job (restore_api vendor)
    backup_created_at   TEXT,           -- the recovery point the restore proves
    backup_size_gb      INTEGER,
    restore_started_at  TEXT,           -- the restore accepted by the cloud
    restore_finished_at TEXT,           -- the volume available with the backup's data
    verify              TEXT,           -- passed | failed | timed_out | none (no verify command)
    verify_detail       TEXT,           -- the exit status and the end of the output
    volume_deleted_at   TEXT            -- when a scratch volume was gone again
);

-- One row per restore: what was restored into what, how long the restore
-- took (the measured RTO, in seconds), how old the backup was when it was
-- restored (the recovery point it proved), and whether a scratch volume
-- is still to be deleted (scratch_left = 1; the agent keeps trying).
CREATE VIEW v_restores AS
SELECT j.id AS job_id,
       j.policy,
       j.cloud,
       j.target AS source_volume,
       j.backup_id,
       r.volume_id,
       r.into_volume,
       j.status,
       j.fail_reason,
       r.requested_by,
       r.restore_api,
       j.started_at,
       j.finished_at,
       r.backup_created_at,
       r.backup_size_gb,
       round((julianday(r.restore_started_at) - julianday(r.backup_created_at)) * 86400.0)
           AS backup_age_s,
       round((julianday(r.restore_finished_at) - julianday(r.restore_started_at)) * 86400.0, 3)
           AS restore_s,
       r.verify,
       r.verify_detail,
       r.volume_deleted_at,
       (r.into_volume = 'scratch' AND r.volume_id IS NOT NULL
            AND r.volume_deleted_at IS NULL AND j.phase = 'done') AS scratch_left
  FROM jobs j
  JOIN restores r ON r.job_id = j.id;
