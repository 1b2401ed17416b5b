-- The project each cloud's calls went to, as Keystone scoped its tokens:
-- the configured ID, or the ID Keystone found for a project given by name
-- (project_name, OS_PROJECT_NAME). One row per (cloud, project ID), with the
-- first and last token scoped to it, so that a name that came to mean
-- another project shows as a second row.
CREATE TABLE cloud_projects (
    cloud          TEXT NOT NULL,
    project_id     TEXT NOT NULL,
    project_name   TEXT,               -- as configured; NULL when given by ID
    project_domain TEXT,               -- the name's domain (name or ID, as configured)
    first_seen     TEXT NOT NULL,
    last_seen      TEXT NOT NULL,
    PRIMARY KEY (cloud, project_id)
);
