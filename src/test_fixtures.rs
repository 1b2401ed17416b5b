//! The published API bodies under `tests/fixtures/api/` (origins in its
//! README), read by unit tests. They live inside the project so that a clone
//! tests on its own.

/// The text of one fixture under `tests/fixtures/api/`.
pub(crate) fn api_sample(name: &str) -> String {
    let path = format!("{}/tests/fixtures/api/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
