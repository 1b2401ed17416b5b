//! What the loader reports: every problem in the file at once, each with the
//! file, line, column and field it is about, so an operator can fix a policy
//! file in one pass instead of one error per restart.

use std::fmt;
use std::path::PathBuf;

/// One problem in a policy file.
///
/// Displays as `FILE:LINE:COLUMN: FIELD: MESSAGE`; the position is left out
/// when there is none (an unreadable file) and the field when the problem is
/// not about one field (a YAML syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The policy file, as given to [`crate::config::load`] or
    /// [`crate::config::parse`].
    pub file: PathBuf,
    /// 1-based line of the offending node (of the mapping that lacks a
    /// required field; of the key for an unknown field).
    pub line: Option<usize>,
    /// 1-based column, counted in characters.
    pub column: Option<usize>,
    /// Path of the field, e.g. `policies[1].schedule` or
    /// `clouds.prod.auth.password_file`; empty when not about one field.
    pub field: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl ConfigError {
    /// The error without the file name: `LINE:COLUMN: FIELD: MESSAGE`. This
    /// is what the bad-file corpus in `tests/config-errors` matches against.
    pub fn without_file(&self) -> String {
        let mut out = String::new();
        if let Some(line) = self.line {
            out.push_str(&line.to_string());
            if let Some(column) = self.column {
                out.push(':');
                out.push_str(&column.to_string());
            }
            out.push_str(": ");
        }
        if !self.field.is_empty() {
            out.push_str(&self.field);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        if self.line.is_some() {
            write!(f, "{file}:{}", self.without_file())
        } else {
            write!(f, "{file}: {}", self.without_file())
        }
    }
}

/// All the problems found in one policy file, in file order (problems
/// without a position last). Never empty when returned by the loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

/// The most errors shown of one file: a file of a million duplicate ids
/// would otherwise print a million lines. The rest are counted.
pub const MAX_SHOWN: usize = 50;

impl ConfigErrors {
    /// The first [`MAX_SHOWN`] errors, and how many more there are.
    pub fn shown(&self) -> (&[ConfigError], usize) {
        let n = self.errors.len().min(MAX_SHOWN);
        (&self.errors[..n], self.errors.len() - n)
    }
}

impl fmt::Display for ConfigErrors {
    /// One error per line (the first [`MAX_SHOWN`], then `and N more`),
    /// then a summary line such as `3 errors in /etc/vbs-agent/policy.yaml`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shown, more) = self.shown();
        for error in shown {
            writeln!(f, "{error}")?;
        }
        if more > 0 {
            writeln!(f, "and {more} more")?;
        }
        let n = self.errors.len();
        let noun = if n == 1 { "error" } else { "errors" };
        match self.errors.first() {
            Some(first) => write!(f, "{n} {noun} in {}", first.file.display()),
            None => write!(f, "{n} {noun}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: Option<usize>, field: &str) -> ConfigError {
        ConfigError {
            file: PathBuf::from("policy.yaml"),
            line,
            column: line.map(|_| 7),
            field: field.to_string(),
            message: "something is wrong".to_string(),
        }
    }

    #[test]
    fn display_names_file_position_and_field() {
        assert_eq!(
            error(Some(12), "policies[1].schedule").to_string(),
            "policy.yaml:12:7: policies[1].schedule: something is wrong"
        );
        assert_eq!(
            error(None, "").to_string(),
            "policy.yaml: something is wrong"
        );
        assert_eq!(error(Some(3), "").without_file(), "3:7: something is wrong");
    }

    #[test]
    fn display_of_all_errors_ends_with_a_count() {
        let one = ConfigErrors {
            errors: vec![error(Some(1), "a")],
        };
        assert_eq!(
            one.to_string(),
            "policy.yaml:1:7: a: something is wrong\n1 error in policy.yaml"
        );
        let two = ConfigErrors {
            errors: vec![error(Some(1), "a"), error(None, "b")],
        };
        assert!(two.to_string().ends_with("\n2 errors in policy.yaml"));
    }

    #[test]
    fn display_shows_the_first_errors_and_counts_the_rest() {
        let many = ConfigErrors {
            errors: vec![error(Some(1), "a"); MAX_SHOWN + 3],
        };
        let text = many.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), MAX_SHOWN + 2);
        assert_eq!(lines[MAX_SHOWN], "and 3 more");
        assert_eq!(lines[MAX_SHOWN + 1], "53 errors in policy.yaml");
    }
}
