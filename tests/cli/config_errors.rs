//! The corpus of bad policy files in `tests/config-errors/`: every
//! `NAME.yaml` must fail to load, and every line of its `NAME.expected` must
//! match one of the reported errors.
//!
//! Expected lines take one of three forms:
//! - `LINE:COLUMN: FIELD: SUBSTRING` — an error at exactly that line and
//!   column, for exactly that field, whose message contains SUBSTRING;
//! - `LINE:COLUMN: SUBSTRING` — the same for an error that names no field
//!   (a YAML syntax error, a top level that is not a mapping);
//! - `SUBSTRING` — for errors without a position: a substring of the error
//!   as displayed.
//!
//! Blank lines and lines starting with `#` are ignored.

use std::fs;
use std::path::{Path, PathBuf};

use vbs_agent::config::{self, ConfigError};

/// Splits `LINE:COLUMN: REST`.
fn position(expected: &str) -> Option<(usize, usize, &str)> {
    let (line, rest) = expected.split_once(':')?;
    let (column, rest) = rest.split_once(": ")?;
    Some((line.parse().ok()?, column.parse().ok()?, rest))
}

fn matches(expected: &str, error: &ConfigError) -> bool {
    let Some((line, column, rest)) = position(expected) else {
        return error.to_string().contains(expected);
    };
    if error.line != Some(line) || error.column != Some(column) {
        return false;
    }
    if error.field.is_empty() {
        return error.message.contains(rest);
    }
    match rest.split_once(": ") {
        Some((field, substring)) => field == error.field && error.message.contains(substring),
        None => false,
    }
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Checks one corpus file; returns a description of what went wrong.
fn check(yaml: &Path) -> Option<String> {
    let name = yaml.file_name().unwrap().to_string_lossy().into_owned();
    let expected_path = yaml.with_extension("expected");
    let Ok(expected) = fs::read_to_string(&expected_path) else {
        return Some(format!("{name}: no {}", expected_path.display()));
    };
    let expected: Vec<&str> = expected
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if expected.is_empty() {
        return Some(format!("{name}: the .expected file has no lines"));
    }
    let errors = match config::load(yaml) {
        Ok(_) => {
            return Some(format!(
                "{name}: loaded without errors; expected:\n  {}",
                expected.join("\n  ")
            ))
        }
        Err(e) => e.errors,
    };
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|exp| !errors.iter().any(|err| matches(exp, err)))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut report = format!("{name}: expected lines not found among the errors\n");
    for line in missing {
        report.push_str(&format!("  - {line}\n"));
    }
    for error in &errors {
        report.push_str(&format!("  + {}\n", error.without_file()));
    }
    Some(report)
}

#[test]
fn every_bad_policy_file_fails_with_the_expected_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config-errors");
    let yamls = files_with_extension(&dir, "yaml");
    assert!(
        yamls.len() >= 24,
        "only {} files in the corpus",
        yamls.len()
    );
    let mut failures: Vec<String> = yamls.iter().filter_map(|y| check(y)).collect();
    for expected in files_with_extension(&dir, "expected") {
        if !expected.with_extension("yaml").exists() {
            failures.push(format!("{}: no matching .yaml", expected.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed (- expected, + actual):\n\n{}",
        failures.len(),
        yamls.len(),
        failures.join("\n")
    );
}

#[test]
fn several_errors_are_reported_together() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/config-errors/several-errors.yaml");
    let errors = config::load(&path).unwrap_err();
    assert_eq!(errors.errors.len(), 3, "{errors}");
    let shown = errors.to_string();
    assert!(
        shown.ends_with(&format!("\n3 errors in {}", path.display())),
        "{shown}"
    );
}

#[test]
fn expected_line_forms() {
    let error = ConfigError {
        file: PathBuf::from("p.yaml"),
        line: Some(12),
        column: Some(15),
        field: "policies[0].schedule".to_string(),
        message: "invalid cron expression `x`".to_string(),
    };
    assert!(matches("12:15: policies[0].schedule: invalid cron", &error));
    assert!(!matches(
        "12:15: policies[1].schedule: invalid cron",
        &error
    ));
    assert!(!matches("2:15: policies[0].schedule: invalid cron", &error));
    assert!(!matches("12:15: policies[0].schedule: bogus cron", &error));
    assert!(matches("p.yaml:12:15: policies[0]", &error));
    let syntax = ConfigError {
        field: String::new(),
        message: "invalid YAML: did not find expected ',' or ']'".to_string(),
        ..error
    };
    assert!(matches("12:15: invalid YAML: did not find", &syntax));
}
