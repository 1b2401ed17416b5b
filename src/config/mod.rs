//! The policy file: YAML model, defaults, validation and secret references.
//! Knows nothing of HTTP or SQLite.
//!
//! Layout:
//! - `raw.rs`: the file format as serde structs, documented
//!   field by field;
//! - `yaml_guard.rs`: the size and alias-expansion bounds, checked first;
//! - `locate.rs`: the YAML tree with line and column of every node;
//! - `de.rs`: serde over that tree, one section at a time;
//! - `checks.rs`: value checks of single fields;
//! - `validate.rs`: the top level of the semantic checks, over
//!   `defaults.rs`, `cloud.rs` / `auth.rs` and `policy.rs` /
//!   `retention.rs`;
//! - `kind/`: what only one kind of policy has, a file per kind;
//! - `drill.rs`: a backup policy's `drill:`, which becomes a policy of
//!   kind `restore`;
//! - `bounds.rs`: the upper bound of every duration and size;
//! - `report.rs` / `error.rs`: collecting every problem with its position;
//! - `load.rs`: [`load`] and [`parse`], which tie these together;
//! - `model.rs`: the validated [`Config`] the rest of the agent uses.

mod auth;
mod bounds;
mod checks;
mod cloud;
mod de;
mod defaults;
#[cfg(test)]
mod doc_examples;
mod drill;
mod error;
mod history;
mod kind;
mod listen;
mod load;
mod locate;
mod model;
mod notify;
mod path;
mod policy;
mod raw;
mod report;
mod retention;
pub mod secret;
mod select;
mod source;
mod suggest;
mod validate;
mod yaml_guard;

pub use bounds::*;
pub use defaults::{DEFAULT_COMPLETION_TIMEOUT, DEFAULT_POLL, DEFAULT_RETRIES};
pub use drill::{
    Pick, RestoreInto, RestoreWork, Verify, DEFAULT_DRILL_TIMEOUT, DEFAULT_VERIFY_TIMEOUT,
    DRILL_SUFFIX, MANUAL_RESTORE_POLICY,
};
pub use error::{ConfigError, ConfigErrors};
/// A cloud section for tests, followed by `policies:`.
#[cfg(test)]
pub(crate) use load::tests::token_cloud as test_cloud;
pub use load::{load, parse};
pub use model::*;
pub use notify::{DEFAULT_NOTIFY_ON, DEFAULT_NOTIFY_TIMEOUT};
pub use validate::DEFAULT_STATE_DIR;
