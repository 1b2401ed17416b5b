-- Indexes for the audit queries at fleet scale (a million jobs).
--
-- The newest good backup of each (policy, target), which `report`, the RPO
-- gauge and notifications ask for, without reading the target's other jobs.
CREATE INDEX jobs_recovery_points
    ON jobs (policy, target, status, COALESCE(attempt_started_at, started_at));

-- `history --status S --since T`: only the jobs of that status in the window.
DROP INDEX jobs_status;
CREATE INDEX jobs_status_slot ON jobs (status, slot);
