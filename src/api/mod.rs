//! Typed client for VBS/Cinder backups and EVS/Cinder snapshots: auth,
//! error classification, retries with backoff, pagination, tolerant parsing.
//! Knows nothing of policies or SQLite; reports each HTTP attempt to a
//! [`CallObserver`].

mod auth;
pub mod catalog;
mod client;
mod deadline;
pub mod decode;
mod error;
mod fault;
mod limit;
mod observe;
use apig_sign as sign;
pub mod types;

pub use client::{
    ca_bundle, ClientSettings, CloudClient, NewBackup, NewCheckpoint, NewDiskFromBackup,
    NewSnapshot, NewVolume, DISK, MAX_CHECKPOINT_DELETIONS, MAX_RETRY_AFTER, SERVER,
};
pub use deadline::{Deadline, LAST_LOOK};
pub use error::{is_busy_cbr_code, ApiError, ErrorClass};
pub use fault::FaultBody;
pub use observe::{CallObserver, CallRecord, ProjectScoped, TraceObserver};
