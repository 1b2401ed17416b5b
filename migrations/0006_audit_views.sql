-- Stable views for auditors (plain `sqlite3 -readonly history.db`). Their
-- names, columns and meanings are a documented interface (README, "Audit"):
-- columns may be added at the end, never renamed, removed or reordered.
-- Times are UTC RFC 3339 text, as in the tables, so they compare as text.
-- A "target" is whatever a job backs up (a volume id; a server id for
-- server policies).

-- Every job, one row per (policy, target, slot), with its run's trigger and
-- its duration.
CREATE VIEW v_jobs AS
SELECT
    j.id                 AS job_id,
    j.run_id             AS run_id,
    j.policy             AS policy,
    j.kind               AS kind,
    j.cloud              AS cloud,
    j.target             AS target,
    j.slot               AS slot,
    r.trigger            AS trigger,
    j.status             AS status,
    j.phase              AS phase,
    j.attempt            AS attempts,
    j.resource_name      AS resource_name,
    j.snapshot_id        AS snapshot_id,
    j.backup_id          AS backup_id,
    j.size_gb            AS size_gb,
    j.is_incremental     AS is_incremental,
    j.fail_reason        AS fail_reason,
    j.blocked_by         AS blocked_by,
    j.started_at         AS started_at,
    COALESCE(j.attempt_started_at, j.started_at) AS attempt_started_at,
    j.finished_at        AS finished_at,
    j.retry_at           AS retry_at,
    CAST(round((julianday(j.finished_at) - julianday(j.started_at)) * 86400) AS INTEGER)
                         AS duration_seconds,
    j.updated_at         AS updated_at
FROM jobs j
JOIN runs r ON r.id = j.run_id;

-- Every way a slot did not produce a backup, one row each: a job's final
-- failure (failed, timed_out), an earlier attempt that failed and was
-- retried (final = 0), and slots that never ran (skipped_overlap, missed).
-- `reason` is never NULL: the API's fail_reason, or what the agent knows.
CREATE VIEW v_failures AS
SELECT
    j.id            AS job_id,
    j.policy        AS policy,
    j.kind          AS kind,
    j.cloud         AS cloud,
    j.target        AS target,
    j.slot          AS slot,
    j.attempt       AS attempt,
    j.status        AS status,
    COALESCE(j.fail_reason,
        CASE j.status
            WHEN 'timed_out' THEN 'no terminal status within the completion timeout'
            WHEN 'skipped_overlap' THEN COALESCE('job ' || j.blocked_by, 'the previous job')
                                        || ' of this target was still running'
            WHEN 'missed' THEN 'slot missed while the agent was down'
            ELSE 'no reason recorded'
        END)        AS reason,
    j.backup_id     AS backup_id,
    COALESCE(j.attempt_started_at, j.started_at) AS started_at,
    j.finished_at   AS finished_at,
    1               AS final
FROM jobs j
WHERE j.status IN ('failed', 'timed_out', 'skipped_overlap', 'missed')
UNION ALL
SELECT
    j.id, j.policy, j.kind, j.cloud, j.target, j.slot,
    a.attempt,
    a.status,
    COALESCE(a.fail_reason,
        CASE a.status
            WHEN 'timed_out' THEN 'no terminal status within the completion timeout'
            ELSE 'no reason recorded'
        END),
    a.backup_id,
    a.started_at,
    a.finished_at,
    0
FROM job_attempts a
JOIN jobs j ON j.id = a.job_id;

-- Per (policy, target) in the history: the newest successful job and how
-- the newest slot ended. The RPO lives in the policy file, so whether the
-- age breaches it is what `vbs-agent report` adds; `last_success_age_hours` is
-- measured from the moment of the query.
CREATE VIEW v_compliance AS
WITH last_ok AS (
    SELECT policy, target, job_id, slot, attempt_started_at, finished_at, backup_id,
           snapshot_id, size_gb,
           row_number() OVER (PARTITION BY policy, target
                              ORDER BY attempt_started_at DESC, job_id DESC) AS n
    FROM v_jobs WHERE status = 'succeeded'
),
newest AS (
    SELECT policy, target, slot, status,
           row_number() OVER (PARTITION BY policy, target ORDER BY slot DESC, job_id DESC) AS n
    FROM v_jobs
),
totals AS (
    SELECT policy, target, min(slot) AS first_slot, count(*) AS jobs,
           sum(status = 'succeeded') AS succeeded,
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
