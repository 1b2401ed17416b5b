-- v_compliance counted only `succeeded` jobs as good, so a drill policy
-- (`<policy>.drill`, kind `restore`), whose good outcome is `verified`,
-- showed no success at all. Redefined with the same columns, in the same
-- order, counting `verified` as a success too: for a drill policy
-- `succeeded` and `last_success_*` are its verified restores, as in
-- `vbs-agent report`.
DROP VIEW v_compliance;

CREATE VIEW v_compliance AS
WITH last_ok AS (
    SELECT policy, target, job_id, slot, attempt_started_at, finished_at, backup_id,
           snapshot_id, size_gb,
           row_number() OVER (PARTITION BY policy, target
                              ORDER BY attempt_started_at DESC, job_id DESC) AS n
    FROM v_jobs WHERE status IN ('succeeded', 'verified')
),
newest AS (
    SELECT policy, target, slot, status,
           row_number() OVER (PARTITION BY policy, target ORDER BY slot DESC, job_id DESC) AS n
    FROM v_jobs
),
totals AS (
    SELECT policy, target, min(slot) AS first_slot, count(*) AS jobs,
           sum(status IN ('succeeded', 'verified')) AS succeeded,
           sum(status IN ('failed', 'timed_out')) AS failed,
           sum(status IN ('skipped_overlap', 'missed')) AS not_run
    FROM v_jobs GROUP BY policy, target
)
SELECT
    t.policy                 AS policy,
    t.target                 AS target,
    t.first_slot             AS first_slot,
    t.jobs                   AS jobs,
    t.succeeded              AS succeeded,
    t.failed                 AS failed,
    t.not_run                AS not_run,
    n.slot                   AS last_slot,
    n.status                 AS last_status,
    o.job_id                 AS last_success_job_id,
    o.slot                   AS last_success_slot,
    o.attempt_started_at     AS last_success_at,
    o.finished_at            AS last_success_finished_at,
    COALESCE(o.backup_id, o.snapshot_id) AS last_success_resource_id,
    o.size_gb                AS last_success_size_gb,
    round((julianday('now') - julianday(o.attempt_started_at)) * 24, 2)
                             AS last_success_age_hours
FROM totals t
JOIN newest n ON n.policy = t.policy AND n.target = t.target AND n.n = 1
LEFT JOIN last_ok o ON o.policy = t.policy AND o.target = t.target AND o.n = 1;
