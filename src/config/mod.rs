//! The policy file: YAML model, defaults, validation and secret references.
//! Knows nothing of HTTP or SQLite.

mod model;
pub mod secret;

pub use model::*;
