//! `cloud_projects`: which project each cloud's tokens were scoped to, so the
//! history says where every backup was made even when the policy file gave
//! the project by name.

use chrono::{DateTime, Utc};

use super::db::args;
use super::{format_ts, Store, StoreError};

/// One row of `cloud_projects`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudProject {
    pub cloud: String,
    pub project_id: String,
    pub project_name: Option<String>,
    pub project_domain: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
}

impl Store {
    /// Records a token scoped to `project_id` (configured by `name` and
    /// `domain`, or by ID when they are `None`): a new row for a new
    /// (cloud, project), else a later `last_seen`.
    pub fn record_cloud_project(
        &self,
        cloud: &str,
        project_id: &str,
        name: Option<&str>,
        domain: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let at = format_ts(at);
        self.db.execute(
            "INSERT INTO cloud_projects (cloud, project_id, project_name, project_domain, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (cloud, project_id) DO UPDATE SET
                 last_seen = excluded.last_seen,
                 project_name = excluded.project_name,
                 project_domain = excluded.project_domain",
            args![cloud, project_id, name, domain, at],
        )?;
        Ok(())
    }

    /// Every recorded (cloud, project), oldest first.
    pub fn cloud_projects(&self) -> Result<Vec<CloudProject>, StoreError> {
        self.db.rows(
            "SELECT cloud, project_id, project_name, project_domain, first_seen, last_seen
             FROM cloud_projects ORDER BY first_seen, cloud",
            args![],
            |r| {
                Ok(CloudProject {
                    cloud: r.get(0)?,
                    project_id: r.get(1)?,
                    project_name: r.get(2)?,
                    project_domain: r.get(3)?,
                    first_seen: r.get(4)?,
                    last_seen: r.get(5)?,
                })
            },
        )
    }
}
