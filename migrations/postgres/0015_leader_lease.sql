-- The leader lease of an HA pair, and the fence that makes it safe.
--
-- One row holds the lease: its holder, its epoch (one more at every
-- takeover) and when it expires, all on the database's clock. Every
-- connection of an agent says which epoch it writes under
-- (`SET vbs.epoch`); every write to the history checks that epoch against
-- the lease, holding the lease row shared until the write commits, so a
-- takeover waits for writes in flight and a deposed leader's later writes
-- are refused (SQLSTATE VB001). Writers outside the election (an export)
-- say no epoch and may write only while no lease is live.
CREATE TABLE leader_lease (
    name        TEXT COLLATE "C" PRIMARY KEY,
    holder      TEXT COLLATE "C" NOT NULL,
    epoch       BIGINT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    config_hash TEXT COLLATE "C"
);

ALTER TABLE runs ADD COLUMN epoch BIGINT;
ALTER TABLE jobs ADD COLUMN epoch BIGINT;
ALTER TABLE events ADD COLUMN epoch BIGINT;

CREATE FUNCTION vbs_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mine  text := nullif(current_setting('vbs.epoch', true), '');
    lease record;
BEGIN
    SELECT epoch, holder, expires_at > now() AS live INTO lease
      FROM leader_lease WHERE name = 'leader' FOR SHARE;
    IF mine IS NULL THEN
        IF FOUND AND lease.live THEN
            RAISE EXCEPTION 'the history is led by % (epoch %); only the leader writes while its lease lasts',
                lease.holder, lease.epoch USING ERRCODE = 'VB001';
        END IF;
    ELSIF NOT FOUND OR lease.epoch <> mine::bigint THEN
        RAISE EXCEPTION 'a write of epoch % is stale: % leads at epoch %',
            mine, lease.holder, lease.epoch USING ERRCODE = 'VB001';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION vbs_stamp_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.epoch := nullif(current_setting('vbs.epoch', true), '')::bigint;
    RETURN NEW;
END
$$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['runs', 'jobs', 'events', 'job_attempts', 'schedule_marks',
        'retention_actions', 'backup_shares', 'cloud_projects', 'server_volume_backups',
        'restores', 'run_targets', 'coverage_snapshots', 'coverage_gaps']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION vbs_fence()', t || '_fence', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['runs', 'jobs', 'events']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON %I
                        FOR EACH ROW EXECUTE FUNCTION vbs_stamp_epoch()', t || '_epoch', t);
    END LOOP;
END
$$;
