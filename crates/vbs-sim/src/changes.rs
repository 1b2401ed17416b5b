//! What a test changes in the cloud between two runs of the agent, as an
//! operator would: a volume's metadata or tags, a server's tags, volumes and
//! servers added, volumes and servers deleted outright (their backups,
//! snapshots and checkpoints stay, as when an operator deletes a disk whose
//! backups remain). As [`SimHandle`] methods and as `/sim/*` routes.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::Json;

use super::state::{State, Volume};
use super::{lock, SimHandle, SimServer, SimVolume};

impl State {
    fn volume_mut(&mut self, project: &str, volume_id: &str) -> Option<&mut Volume> {
        self.sweep();
        self.projects
            .get_mut(project)
            .and_then(|p| p.volumes.get_mut(volume_id))
    }

    /// Sets or removes a volume's metadata key or tag; whether the volume
    /// exists.
    pub fn set_volume_label(
        &mut self,
        project: &str,
        id: &str,
        label: Label,
        key: &str,
        value: Option<&str>,
    ) -> bool {
        self.volume_mut(project, id)
            .map(|v| match label {
                Label::Metadata => set(&mut v.metadata, key, value),
                Label::Tag => set(&mut v.tags, key, value),
            })
            .is_some()
    }

    /// Sets or removes a server's tag; whether it exists.
    pub fn set_server_tag(&mut self, server_id: &str, key: &str, value: Option<&str>) -> bool {
        self.csbs
            .servers
            .iter_mut()
            .find(|s| s.id == server_id)
            .map(|s| set(&mut s.tags, key, value))
            .is_some()
    }

    /// Removes a server; whether it existed.
    pub fn remove_server(&mut self, server_id: &str) -> bool {
        let before = self.csbs.servers.len();
        self.csbs.servers.retain(|s| s.id != server_id);
        self.csbs.servers.len() < before
    }

    /// Removes a volume at once, no deletion phase; whether it existed.
    pub fn remove_volume(&mut self, project: &str, volume_id: &str) -> bool {
        self.sweep();
        let removed = self
            .projects
            .get_mut(project)
            .and_then(|p| p.volumes.remove(volume_id))
            .is_some();
        if removed {
            self.note_deleted(&[volume_id.to_string()]);
        }
        removed
    }
}

/// Which of a volume's labels a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// Cinder metadata.
    Metadata,
    /// An EVS tag.
    Tag,
}

/// Sets `key` to `value` in `map`, or removes it for `None`.
fn set(map: &mut std::collections::BTreeMap<String, String>, key: &str, value: Option<&str>) {
    match value {
        Some(v) => map.insert(key.to_string(), v.to_string()),
        None => map.remove(key),
    };
}

impl SimHandle {
    /// Sets (`Some`) or removes (`None`) one metadata key of a volume, as
    /// the Cinder list and its `metadata` filter show it. Whether the
    /// volume exists.
    pub fn set_volume_metadata(
        &self,
        project: &str,
        volume_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> bool {
        lock(&self.state).set_volume_label(project, volume_id, Label::Metadata, key, value)
    }

    /// Sets (`Some`) or removes (`None`) one EVS tag of a volume, without
    /// the API's checks (so a test can also plant a tag the API would
    /// refuse). Whether the volume exists.
    pub fn set_volume_tag(
        &self,
        project: &str,
        volume_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> bool {
        lock(&self.state).set_volume_label(project, volume_id, Label::Tag, key, value)
    }

    /// Adds a volume as if it had been configured: `available` (or
    /// `in-use`) at once, with its metadata and tags. Replaces one of the
    /// same id; creates the project if it has no state yet.
    pub fn add_volume(&self, project: &str, volume: SimVolume) {
        let mut st = lock(&self.state);
        let created_at = st.now();
        let p = st.projects.entry(project.to_string()).or_default();
        let mut v = Volume::configured(&volume);
        v.created_at = created_at;
        p.volumes.insert(volume.id, v);
    }

    /// Deletes a volume outright: 404 and absent from every list and
    /// filter from now on, while its backups and snapshots stay. Whether
    /// it existed.
    pub fn remove_volume(&self, project: &str, volume_id: &str) -> bool {
        lock(&self.state).remove_volume(project, volume_id)
    }

    /// Sets (`Some`) or removes (`None`) one ECS tag of a server. Whether
    /// the server exists.
    pub fn set_server_tag(&self, server_id: &str, key: &str, value: Option<&str>) -> bool {
        lock(&self.state).set_server_tag(server_id, key, value)
    }

    /// Adds a server (replacing one of the same id): listed by ECS and
    /// Nova, and CSBS can protect it.
    pub fn add_server(&self, server: SimServer) {
        let mut st = lock(&self.state);
        let now = st.now();
        st.csbs.server_created.insert(server.id.clone(), now);
        st.csbs.servers.retain(|s| s.id != server.id);
        st.csbs.servers.push(server);
    }

    /// Deletes a server: gone from ECS and Nova (404), and CSBS answers a
    /// protect of it as for any unknown server; its checkpoints stay.
    /// Whether it existed.
    pub fn remove_server(&self, server_id: &str) -> bool {
        lock(&self.state).remove_server(server_id)
    }
}

fn done(found: bool) -> StatusCode {
    if found {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// `PUT /sim/projects/{project}/volumes/{volume}/{metadata|tags}/{key}`
/// with a JSON string (set) or `null` (remove): 204, or 404 for no such
/// volume or label.
pub async fn put_volume_label(
    AxState(state): AxState<super::Shared>,
    Path((project, volume, label, key)): Path<(String, String, String, String)>,
    Json(value): Json<Option<String>>,
) -> StatusCode {
    let label = match label.as_str() {
        "metadata" => Label::Metadata,
        "tags" => Label::Tag,
        _ => return StatusCode::NOT_FOUND,
    };
    done(lock(&state).set_volume_label(&project, &volume, label, &key, value.as_deref()))
}

/// `DELETE /sim/projects/{project}/volumes/{volume}`: 204 or 404.
pub async fn delete_volume(
    AxState(state): AxState<super::Shared>,
    Path((project, volume)): Path<(String, String)>,
) -> StatusCode {
    done(lock(&state).remove_volume(&project, &volume))
}

/// `PUT /sim/servers/{server}/tags/{key}` with a JSON string or `null`.
pub async fn put_server_tag(
    AxState(state): AxState<super::Shared>,
    Path((server, key)): Path<(String, String)>,
    Json(value): Json<Option<String>>,
) -> StatusCode {
    done(lock(&state).set_server_tag(&server, &key, value.as_deref()))
}

/// `DELETE /sim/servers/{server}`: 204 or 404.
pub async fn delete_server(
    AxState(state): AxState<super::Shared>,
    Path(server): Path<String>,
) -> StatusCode {
    done(lock(&state).remove_server(&server))
}
