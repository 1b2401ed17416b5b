//! Field paths such as `policies[1].schedule` or `clouds.prod.auth.user`:
//! how an error names the place it is about, and how the loader finds that
//! place's line and column in the YAML.

use std::fmt;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A mapping key (`.schedule`).
    Key(String),
    /// A sequence index (`[1]`).
    Index(usize),
}

/// A path from the document root to a node. Kept structured (not a dotted
/// string) so that a cloud named `eu.prod` cannot be mistaken for two keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The document root (displays as the empty string).
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path extended by a mapping key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_string()));
        Self(segments)
    }

    /// This path extended by a sequence index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// The path one step up, or `None` at the root.
    pub(crate) fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    /// The steps from the root.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.0
    }
}

/// Keys made of letters, digits, `_` and `-` print bare; anything else is
/// quoted so the printed path stays unambiguous.
fn is_bare(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_a_user_would_write_it() {
        let p = FieldPath::root().key("policies").index(1).key("schedule");
        assert_eq!(p.to_string(), "policies[1].schedule");
        assert_eq!(FieldPath::root().to_string(), "");
        let c = FieldPath::root().key("clouds").key("eu.prod").key("auth");
        assert_eq!(c.to_string(), "clouds.\"eu.prod\".auth");
        assert_eq!(p.parent(), Some(FieldPath::root().key("policies").index(1)));
        assert_eq!(FieldPath::root().parent(), None);
    }
}
