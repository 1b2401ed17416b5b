-- A run's jobs by their run: settling a run and listing its jobs read them
-- through this index instead of scanning every job ever recorded, which
-- cost each run four passes over the whole history.
CREATE INDEX jobs_run ON jobs (run_id);

-- Whether retention deleted a backup, by its ID: asked before each backup
-- job, to know whether the volume's last backup can be the parent of an
-- incremental one.
CREATE INDEX retention_actions_backup ON retention_actions (backup_id);
