//! Reading YAML without letting it exhaust memory. An alias bomb ("billion
//! laughs") is a few lines whose aliases name anchors that name anchors,
//! and both YAML readers of the policy file copy what an alias names
//! (serde_yaml replays it, the positioned tree clones it): one such file
//! took `check` to 24 GB. So a text is measured before either reads it,
//! from yaml-rust2's event stream, which builds nothing: the file size is
//! capped, and the nodes the document would have once every alias is
//! replaced by its anchor's node are counted, anchor by anchor.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use yaml_rust2::parser::{Event, Parser};

use super::bounds::{MAX_POLICY_FILE_BYTES, MAX_YAML_NODES};
use super::locate::Pos;

/// Why a YAML file is refused before it is parsed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("cannot read the file: {0}")]
    Read(#[from] std::io::Error),
    #[error(
        "the file is larger than {} MiB; no policy file needs that much (is it the right one?)",
        MAX_POLICY_FILE_BYTES >> 20
    )]
    TooBig,
    /// Expanding the document would make more than [`MAX_YAML_NODES`]
    /// nodes; `at` is the node that crosses the bound.
    #[error(
        "{} more than {MAX_YAML_NODES} YAML nodes once every alias is replaced by what its \
         anchor names; the file is refused before it is expanded (an alias bomb?)",
        if *.by_alias { "this alias makes the document" } else { "the document has" }
    )]
    TooManyNodes { at: Pos, by_alias: bool },
}

impl Refused {
    /// Where the problem is, when it is at one place.
    pub(crate) fn pos(&self) -> Option<Pos> {
        match self {
            Refused::TooManyNodes { at, .. } => Some(*at),
            Refused::Read(_) | Refused::TooBig => None,
        }
    }
}

/// The text of the file at `path`, reading at most one byte more than
/// [`MAX_POLICY_FILE_BYTES`] (so a huge file is never read whole).
pub(crate) fn read(path: &Path) -> Result<String, Refused> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_POLICY_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    check_size(&text)?;
    Ok(text)
}

/// Refuses a text longer than [`MAX_POLICY_FILE_BYTES`].
pub(crate) fn check_size(text: &str) -> Result<(), Refused> {
    match u64::try_from(text.len()) {
        Ok(len) if len <= MAX_POLICY_FILE_BYTES => Ok(()),
        _ => Err(Refused::TooBig),
    }
}

/// A YAML text other than the policy file (`clouds.yaml`, `secure.yaml`)
/// as a serde_yaml value, within the same bounds.
pub(crate) fn value(text: &str) -> Result<serde_yaml::Value, String> {
    check_size(text)
        .and_then(|()| expanded_nodes(text))
        .map_err(|e| match e.pos() {
            Some(p) => format!("line {} column {}: {e}", p.line, p.column),
            None => e.to_string(),
        })?;
    serde_yaml::from_str(text).map_err(|e| format!("not valid YAML: {e}"))
}

/// A collection whose end event has not come yet.
struct Open {
    anchor: usize,
    /// Nodes so far, itself included, aliases expanded.
    size: u64,
}

/// The count so far: open collections and the expanded size of every
/// anchored node that is complete.
#[derive(Default)]
struct Count {
    open: Vec<Open>,
    anchor_sizes: HashMap<usize, u64>,
}

impl Count {
    /// A node of `size` nodes is complete: its anchor (0 for none) names
    /// that many, and its parent grows by as many.
    fn complete(&mut self, anchor: usize, size: u64) {
        if anchor != 0 {
            self.anchor_sizes.insert(anchor, size);
        }
        if let Some(parent) = self.open.last_mut() {
            parent.size = parent.size.saturating_add(size);
        }
    }
}

/// The nodes of the document once every alias is replaced by what its
/// anchor names; refused, at the node that crosses the bound, above
/// [`MAX_YAML_NODES`]. A syntax error ends the count early without a
/// refusal: the readers report it in their own words.
pub(crate) fn expanded_nodes(text: &str) -> Result<u64, Refused> {
    let limit = u64::try_from(MAX_YAML_NODES).unwrap_or(u64::MAX);
    let mut parser = Parser::new_from_str(text);
    let mut count = Count::default();
    let mut total: u64 = 0;
    while let Ok((event, mark)) = parser.next_token() {
        // The nodes this event adds to the expanded document.
        let (added, by_alias) = match event {
            Event::StreamEnd => break,
            Event::Scalar(_, _, anchor, _) => {
                count.complete(anchor, 1);
                (1, false)
            }
            Event::Alias(id) => {
                // An unknown anchor is the readers' error to report.
                let size = count.anchor_sizes.get(&id).copied().unwrap_or(1);
                count.complete(0, size);
                (size, true)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                count.open.push(Open { anchor, size: 1 });
                (1, false)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                // Its nodes were counted as they came.
                let Some(done) = count.open.pop() else { break };
                count.complete(done.anchor, done.size);
                continue;
            }
            _ => continue,
        };
        total = total.saturating_add(added);
        if total > limit {
            let at = Pos::from(mark);
            return Err(Refused::TooManyNodes { at, by_alias });
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic bomb: each level a list of ten aliases of the one above,
    /// 10^`levels` strings in all.
    fn laughs(levels: usize) -> String {
        let mut text = "l0: &l0 lol\n".to_string();
        for level in 1..=levels {
            let aliases = vec![format!("*l{}", level - 1); 10].join(", ");
            text.push_str(&format!("l{level}: &l{level} [{aliases}]\n"));
        }
        text
    }

    #[test]
    fn every_alias_counts_as_a_copy_of_its_anchor() {
        // Mapping, three keys, a list of two, and that list twice more.
        assert_eq!(expanded_nodes("a: &x [1, 2]\nb: *x\nc: *x\n").unwrap(), 13);
        // An anchor inside an anchor: b names 1 + 3 + 1 nodes.
        let nested = "a: &x [1, 2]\nb: &y [*x, 3]\nc: *y\n";
        assert_eq!(expanded_nodes(nested).unwrap(), 1 + 3 + 3 + 5 + 5);
        assert_eq!(expanded_nodes("").unwrap(), 0);
    }

    #[test]
    fn a_billion_laughs_is_refused_at_the_alias_that_crosses_the_bound() {
        assert!(expanded_nodes(&laughs(4)).is_ok());
        let err = expanded_nodes(&laughs(9)).unwrap_err();
        // 12,353 nodes up to level 5's list, then copies of level 4's 11,111
        // nodes each: the 8th crosses 100,000.
        let Refused::TooManyNodes { at, by_alias } = err else {
            panic!("{err:?}")
        };
        assert!(by_alias);
        assert_eq!((at.line, at.column), (6, 45));
    }

    #[test]
    fn a_large_file_without_aliases_is_refused_too() {
        let list = |n: usize| format!("[{}]", vec!["x"; n].join(", "));
        assert_eq!(
            expanded_nodes(&list(MAX_YAML_NODES - 1)).unwrap(),
            u64::try_from(MAX_YAML_NODES).unwrap()
        );
        let err = expanded_nodes(&list(MAX_YAML_NODES)).unwrap_err();
        assert!(
            matches!(
                err,
                Refused::TooManyNodes {
                    by_alias: false,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .starts_with("the document has more than 100000 YAML nodes"));
    }

    #[test]
    fn a_syntax_error_is_left_to_the_readers() {
        assert!(expanded_nodes("a: [1, 2\nb: *nowhere\n").is_ok());
    }

    #[test]
    fn a_clouds_yaml_bomb_is_refused_before_serde_yaml_expands_it() {
        let err = value(&laughs(9)).unwrap_err();
        assert!(
            err.starts_with("line 6 column 45: this alias makes the document"),
            "{err}"
        );
        assert!(value("clouds: {a: 1}\n").is_ok());
    }

    #[test]
    fn a_text_over_the_size_cap_is_refused() {
        let cap = usize::try_from(MAX_POLICY_FILE_BYTES).unwrap();
        assert!(check_size(&"#".repeat(cap)).is_ok());
        assert!(matches!(
            check_size(&"#".repeat(cap + 1)),
            Err(Refused::TooBig)
        ));
    }
}
