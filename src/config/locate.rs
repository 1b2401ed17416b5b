//! YAML positions. The policy file is read into a small tree of nodes that
//! remember their line and column, so that every error — from serde or from a
//! semantic check — can point at the exact place to fix. serde_yaml's own
//! values forget positions and reject duplicate keys outright, which would
//! hide every other error in the file; this tree keeps the first occurrence of
//! a duplicated key and records the rest as errors of their own.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::ScanError;

use super::path::{FieldPath, Segment};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl From<Marker> for Pos {
    /// yaml-rust2 counts lines from 1 but columns from 0.
    fn from(mark: Marker) -> Self {
        Pos {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }
}

/// A YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) pos: Pos,
    pub(crate) value: Value,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `plain` is false for quoted, block and `!!str`-tagged scalars, which
    /// are always strings; a plain scalar may also be null, a bool or a number.
    Scalar {
        text: String,
        plain: bool,
    },
    Sequence(Vec<Node>),
    /// Entries in file order, keys unique (see [`Document::duplicates`]).
    Mapping(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: Node,
    pub(crate) value: Node,
}

/// A key that appeared twice in one mapping. Only the first occurrence is
/// kept in the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Duplicate {
    /// Path of the repeated key.
    pub(crate) path: FieldPath,
    /// Where it is repeated.
    pub(crate) pos: Pos,
    /// Where it first appeared.
    pub(crate) first: Pos,
}

/// A parsed YAML document.
#[derive(Debug)]
pub(crate) struct Document {
    /// `None` for a file with no content (only comments, say).
    pub(crate) root: Option<Node>,
    pub(crate) duplicates: Vec<Duplicate>,
}

impl Node {
    /// The text of a scalar, whatever its style.
    pub(crate) fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for `~`, `null` and an empty plain scalar (YAML 1.2 core schema).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if is_null_text(text))
    }

    /// The mapping entry for `key`, if this is a mapping that has it.
    pub(crate) fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Mapping(entries) => entries.iter().find(|e| e.key.as_scalar() == Some(key)),
            _ => None,
        }
    }

    /// The node at `path` below this one, and the position of the key that
    /// leads to it (when the last step is a mapping key).
    pub(crate) fn lookup(&self, path: &FieldPath) -> Option<(&Node, Option<Pos>)> {
        let mut node = self;
        let mut key_pos = None;
        for segment in path.segments() {
            match segment {
                Segment::Key(key) => {
                    let entry = node.entry(key)?;
                    key_pos = Some(entry.key.pos);
                    node = &entry.value;
                }
                Segment::Index(i) => match &node.value {
                    Value::Sequence(items) => {
                        node = items.get(*i)?;
                        key_pos = None;
                    }
                    _ => return None,
                },
            }
        }
        Some((node, key_pos))
    }
}

/// The plain scalars YAML 1.2 reads as null.
pub(crate) fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// A node under construction.
enum Frame {
    Sequence {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Mapping {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<Node>,
    },
}

impl Document {
    /// Parses one YAML document. Syntax errors are expected to have been
    /// reported already (by serde_yaml); a `ScanError` here means the two
    /// parsers disagree and is reported the same way. Every alias becomes a
    /// copy of its anchor's node, so the text must have passed
    /// [`super::yaml_guard::expanded_nodes`] first.
    pub(crate) fn parse(text: &str) -> Result<Self, ScanError> {
        let mut parser = Parser::new_from_str(text);
        let mut stack: Vec<Frame> = Vec::new();
        let mut anchors: HashMap<usize, Node> = HashMap::new();
        let mut root = None;
        loop {
            let (event, mark) = parser.next_token()?;
            let pos = Pos::from(mark);
            let (node, anchor) = match event {
                Event::StreamEnd => break,
                Event::Scalar(text, style, anchor, tag) => {
                    let tagged_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                    let plain = style == TScalarStyle::Plain && !tagged_str;
                    let value = Value::Scalar { text, plain };
                    (Node { pos, value }, anchor)
                }
                Event::Alias(id) => match anchors.get(&id) {
                    // The copy starts where the alias is written; what is
                    // inside keeps the anchored text's positions.
                    Some(node) => (
                        Node {
                            pos,
                            ..node.clone()
                        },
                        0,
                    ),
                    None => return Err(ScanError::new(mark, "unknown anchor")),
                },
                Event::SequenceStart(anchor, _) => {
                    stack.push(Frame::Sequence {
                        pos,
                        anchor,
                        items: Vec::new(),
                    });
                    continue;
                }
                Event::MappingStart(anchor, _) => {
                    stack.push(Frame::Mapping {
                        pos,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    });
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                    Some(Frame::Sequence { pos, anchor, items }) => {
                        let value = Value::Sequence(items);
                        (Node { pos, value }, anchor)
                    }
                    Some(Frame::Mapping {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) => {
                        // A block mapping's start event is marked at the first
                        // `:`; users think of the mapping as starting at its
                        // first key.
                        let pos = entries.first().map_or(pos, |e| pos.min(e.key.pos));
                        let value = Value::Mapping(entries);
                        (Node { pos, value }, anchor)
                    }
                    None => return Err(ScanError::new(mark, "unbalanced collection end")),
                },
                Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {
                    continue
                }
            };
            if anchor != 0 {
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Sequence { items, .. }) => items.push(node),
                Some(Frame::Mapping { entries, key, .. }) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push(Entry {
                        key: k,
                        value: node,
                    }),
                },
            }
        }
        let mut duplicates = Vec::new();
        if let Some(node) = root.as_mut() {
            remove_duplicates(node, &FieldPath::root(), &mut duplicates);
        }
        let root = root.filter(|node| !node.is_null());
        Ok(Document { root, duplicates })
    }
}

/// Drops every repeated scalar key (keeping the first) and records it.
fn remove_duplicates(node: &mut Node, path: &FieldPath, out: &mut Vec<Duplicate>) {
    match &mut node.value {
        Value::Scalar { .. } => {}
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                remove_duplicates(item, &path.index(i), out);
            }
        }
        Value::Mapping(entries) => {
            let mut first_seen: HashMap<String, Pos> = HashMap::new();
            entries.retain(|entry| {
                let Some(key) = entry.key.as_scalar() else {
                    return true;
                };
                match first_seen.get(key) {
                    Some(first) => {
                        out.push(Duplicate {
                            path: path.key(key),
                            pos: entry.key.pos,
                            first: *first,
                        });
                        false
                    }
                    None => {
                        first_seen.insert(key.to_string(), entry.key.pos);
                        true
                    }
                }
            });
            for entry in entries.iter_mut() {
                let child = match entry.key.as_scalar() {
                    Some(key) => path.key(key),
                    None => path.clone(),
                };
                remove_duplicates(&mut entry.value, &child, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    fn at(doc: &Document, path: &FieldPath) -> (Pos, Option<Pos>) {
        let root = doc.root.as_ref().unwrap();
        let (node, key) = root.lookup(path).unwrap();
        (node.pos, key)
    }

    #[test]
    fn positions_are_one_based_for_keys_values_and_items() {
        let doc = Document::parse(
            "clouds:\n  prod:\n    project_id: abc\npolicies:\n  - name: a\n    volumes: [x, y]\n",
        )
        .unwrap();
        let p = FieldPath::root();
        let project = p.key("clouds").key("prod").key("project_id");
        assert_eq!(at(&doc, &project), (pos(3, 17), Some(pos(3, 5))));
        let policy = p.key("policies").index(0);
        assert_eq!(at(&doc, &policy), (pos(5, 5), None));
        assert_eq!(at(&doc, &policy.key("volumes").index(1)).0, pos(6, 18));
    }

    #[test]
    fn duplicate_keys_keep_the_first_and_are_recorded() {
        let doc = Document::parse("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n").unwrap();
        let root = doc.root.as_ref().unwrap();
        let (c, _) = root.lookup(&FieldPath::root().key("b").key("c")).unwrap();
        assert_eq!(c.as_scalar(), Some("2"));
        let found: Vec<(String, Pos, Pos)> = doc
            .duplicates
            .iter()
            .map(|d| (d.path.to_string(), d.pos, d.first))
            .collect();
        assert_eq!(
            found,
            vec![
                ("a".to_string(), pos(5, 1), pos(1, 1)),
                ("b.c".to_string(), pos(4, 3), pos(3, 3)),
            ]
        );
    }

    #[test]
    fn scalar_styles_and_aliases() {
        let doc = Document::parse("a: &x 'q'\nb: *x\nc: !!str 5\nd: 5\ne:\n").unwrap();
        let root = doc.root.as_ref().unwrap();
        let get = |k: &str| root.entry(k).unwrap().value.value.clone();
        let s = |t: &str, plain| Value::Scalar {
            text: t.to_string(),
            plain,
        };
        assert_eq!(get("a"), s("q", false));
        assert_eq!(get("b"), s("q", false));
        assert_eq!(root.entry("b").unwrap().value.pos, pos(2, 4));
        assert_eq!(get("c"), s("5", false));
        assert_eq!(get("d"), s("5", true));
        assert!(root.entry("e").unwrap().value.is_null());
    }

    #[test]
    fn empty_document_has_no_root() {
        assert!(Document::parse("# only a comment\n")
            .unwrap()
            .root
            .is_none());
        assert!(Document::parse("").unwrap().root.is_none());
    }
}
