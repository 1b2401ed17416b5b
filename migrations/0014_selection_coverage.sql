-- Selection by labels. A policy may name its targets by metadata or tags,
-- so what it covered on a night is no longer in the policy file: each run
-- records its resolved target set, and how it was found. Two job statuses
-- arrive with it (no schema change, the column is free text):
--   left_scope   the target left the policy's selection (recorded once)
--   target_gone  the target no longer exists (recorded once; no job after)

-- How a run's target set was found:
--   listed     the policy names its targets by ID only
--   resolved   the selector was resolved against the cloud for this run
--   last_good  the cloud could not be asked; the set resolved at resolved_at
-- NULL for runs recorded before this migration.
ALTER TABLE runs ADD COLUMN resolution TEXT;
ALTER TABLE runs ADD COLUMN resolved_at TEXT;

-- The targets a run was for and why each was in scope: `listed`, or the
-- selector rule that matched (`metadata backup=nightly,tier=*`).
CREATE TABLE run_targets (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    target TEXT NOT NULL,
    name   TEXT,                        -- the volume's or server's name, when it has one
    reason TEXT NOT NULL,
    PRIMARY KEY (run_id, target)
) WITHOUT ROWID;

-- One row per coverage snapshot of a cloud: every volume and server in
-- the project, judged against every policy.
CREATE TABLE coverage_snapshots (
    id          INTEGER PRIMARY KEY,
    taken_at    TEXT NOT NULL,
    cloud       TEXT NOT NULL,
    volumes     INTEGER NOT NULL,
    servers     INTEGER,                -- NULL: the cloud has no compute endpoint to list them
    protected   INTEGER NOT NULL,
    unprotected INTEGER NOT NULL,
    opted_out   INTEGER NOT NULL,
    error       TEXT                    -- the listing failed: the counts are 0 and mean nothing
);
CREATE INDEX coverage_snapshots_taken ON coverage_snapshots (taken_at);

-- The targets of a snapshot that no policy covered: unprotected ones, and
-- those opted out with the reason. Protected targets are only counted;
-- what protected them is in run_targets.
CREATE TABLE coverage_gaps (
    snapshot_id INTEGER NOT NULL REFERENCES coverage_snapshots (id),
    target      TEXT NOT NULL,
    kind        TEXT NOT NULL,          -- volume | server
    name        TEXT,
    status      TEXT NOT NULL,          -- unprotected | opted_out
    reason      TEXT,                   -- why it is opted out
    PRIMARY KEY (snapshot_id, target)
) WITHOUT ROWID;

-- Every target found unprotected, with when: "which volumes existed and
-- were not covered on date D" is
--   SELECT DISTINCT cloud, target, name FROM v_unprotected WHERE taken_at LIKE 'D%'.
CREATE VIEW v_unprotected AS
SELECT s.taken_at, s.cloud, g.kind, g.target, g.name
  FROM coverage_gaps g
  JOIN coverage_snapshots s ON s.id = g.snapshot_id
 WHERE g.status = 'unprotected';

-- What each run covered, with why.
CREATE VIEW v_run_targets AS
SELECT r.policy, r.slot, r.id AS run_id, r.resolution, r.resolved_at, t.target, t.name, t.reason
  FROM run_targets t
  JOIN runs r ON r.id = t.run_id;
