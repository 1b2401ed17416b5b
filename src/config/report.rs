//! Collects problems as (field path, message) and gives each the line and
//! column of the place it is about, looked up in the positioned YAML tree.
//! Checks only say *what* is wrong and *which field*; this module knows
//! *where* that field is.

use std::path::Path;

use super::de::DeError;
use super::error::ConfigError;
use super::locate::{Node, Pos};
use super::path::{FieldPath, Segment};
use super::suggest;

/// The problems found so far in one file.
pub(crate) struct Report<'a> {
    file: &'a Path,
    root: Option<&'a Node>,
    errors: Vec<ConfigError>,
}

impl<'a> Report<'a> {
    /// A report for `file`, whose positions come from `root`.
    pub(crate) fn new(file: &'a Path, root: Option<&'a Node>) -> Self {
        Report {
            file,
            root,
            errors: Vec::new(),
        }
    }

    /// A problem at an explicit position (or none).
    pub(crate) fn at(&mut self, field: &FieldPath, pos: Option<Pos>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// A problem with the value at `path` (or, if the file has no such
    /// node, with the nearest enclosing one).
    pub(crate) fn value(&mut self, path: &FieldPath, message: impl Into<String>) {
        let pos = self.value_pos(path);
        self.at(path, pos, message);
    }

    /// A problem with the key that introduces `path` (unknown or misplaced
    /// fields): the key is what the user has to change.
    pub(crate) fn key(&mut self, path: &FieldPath, message: impl Into<String>) {
        let pos = self.key_pos(path).or_else(|| self.value_pos(path));
        self.at(path, pos, message);
    }

    /// A required field missing from the mapping at `parent`; reported at
    /// that mapping.
    pub(crate) fn missing(&mut self, parent: &FieldPath, field: &str, message: impl Into<String>) {
        let pos = self.value_pos(parent);
        self.at(&parent.key(field), pos, message);
    }

    /// An unknown key, with the fields allowed at that place.
    pub(crate) fn unknown_field(&mut self, path: &FieldPath, allowed: &[&str]) {
        let field = match path.segments().last() {
            Some(Segment::Key(key)) => key.as_str(),
            _ => "",
        };
        let message = unknown_field_message(field, allowed);
        self.key(path, message);
    }

    /// Converts a serde error from deserializing the section at `base`.
    pub(crate) fn serde(&mut self, base: &FieldPath, err: serde_path_to_error::Error<DeError>) {
        let mut path = base.clone();
        for segment in err.path().iter() {
            path = match segment {
                serde_path_to_error::Segment::Seq { index } => path.index(*index),
                serde_path_to_error::Segment::Map { key } => path.key(key),
                serde_path_to_error::Segment::Enum { variant } => path.key(variant),
                serde_path_to_error::Segment::Unknown => path,
            };
        }
        match err.into_inner() {
            DeError::UnknownField { field, expected } => {
                // serde_path_to_error records the key before the field
                // visitor rejects it, so the path usually ends with it.
                let last = path.segments().last();
                if last != Some(&Segment::Key(field.clone())) {
                    path = path.key(&field);
                }
                self.unknown_field(&path, expected)
            }
            DeError::MissingField(field) => {
                self.missing(&path, field, format!("missing required field `{field}`"))
            }
            DeError::Message(message) => self.value(&path, message),
        }
    }

    /// The line of the value at `path`, for messages such as "first defined
    /// at line 12".
    pub(crate) fn line_of(&self, path: &FieldPath) -> Option<usize> {
        self.value_pos(path).map(|p| p.line)
    }

    /// Whether nothing has been reported.
    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The problems in file order; those without a position come last.
    pub(crate) fn finish(self) -> Vec<ConfigError> {
        let mut errors = self.errors;
        errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
        errors
    }

    fn value_pos(&self, path: &FieldPath) -> Option<Pos> {
        let root = self.root?;
        let mut path = path.clone();
        loop {
            if let Some((node, key)) = root.lookup(&path) {
                // An empty value (`prod:` with nothing under it) is marked
                // where the next token starts, often the next line; its key
                // is the better place to point at.
                let empty = node.as_scalar() == Some("") && node.is_null();
                return Some(match key {
                    Some(key) if empty => key,
                    _ => node.pos,
                });
            }
            path = path.parent()?;
        }
    }

    fn key_pos(&self, path: &FieldPath) -> Option<Pos> {
        self.root?.lookup(path).and_then(|(_, key)| key)
    }
}

/// "unknown field `scheduel` (did you mean `schedule`?); allowed fields: …",
/// or, for a secret written inline, how to reference it instead.
pub(crate) fn unknown_field_message(field: &str, allowed: &[&str]) -> String {
    match field {
        "password" => {
            return "secrets are not allowed inline; put the value in a file and use \
                    password_file (or password_env)"
                .to_string()
        }
        "token" => {
            return "secrets are not allowed inline; put the value in a file and use \
                    token_file (or token_env)"
                .to_string()
        }
        _ => {}
    }
    let hint = match suggest::closest(field, allowed.iter().copied()) {
        Some(close) => format!(" (did you mean `{close}`?)"),
        None => String::new(),
    };
    format!(
        "unknown field `{field}`{hint}; allowed fields: {}",
        allowed.join(", ")
    )
}
