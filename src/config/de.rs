//! A serde `Deserializer` over the positioned YAML tree of [`super::locate`],
//! so the serde structs in [`super::raw`] can be filled one section at a time
//! (one bad policy must not hide another) from a tree that keeps positions.
//!
//! Scalars follow serde_yaml's habits: any scalar reads as a string when a
//! string is wanted (so an all-digit `project_id` stays text), while plain
//! scalars resolve to null, bools and numbers per the YAML 1.2 core schema
//! when the target asks for them.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Unexpected, Visitor,
};

use super::locate::{is_null_text, Entry, Node, Value};

/// Why a section could not be deserialized. The unknown and missing field
/// cases are kept apart so the loader can point at the key (or the mapping)
/// and phrase the message itself.
#[derive(Debug)]
pub(crate) enum DeError {
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    MissingField(&'static str),
    Message(String),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::UnknownField { field, .. } => write!(f, "unknown field `{field}`"),
            DeError::MissingField(field) => write!(f, "missing field `{field}`"),
            DeError::Message(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::Message(msg.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::UnknownField {
            field: field.to_string(),
            expected,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::MissingField(field)
    }
}

/// Deserializes the node it wraps.
pub(crate) struct NodeDeserializer<'a>(pub(crate) &'a Node);

/// A plain scalar resolved per the YAML 1.2 core schema.
enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

fn resolve(text: &str, plain: bool) -> Resolved<'_> {
    if !plain {
        return Resolved::Str(text);
    }
    if is_null_text(text) {
        return Resolved::Null;
    }
    match text {
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let int = if let Some(hex) = text.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok().map(Resolved::UInt)
    } else if let Some(oct) = text.strip_prefix("0o") {
        u64::from_str_radix(oct, 8).ok().map(Resolved::UInt)
    } else if let Ok(i) = text.parse::<i64>() {
        Some(Resolved::Int(i))
    } else {
        text.parse::<u64>().ok().map(Resolved::UInt)
    };
    if let Some(int) = int {
        return int;
    }
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && text.chars().any(|c| c.is_ascii_digit());
    match text.parse::<f64>() {
        Ok(f) if looks_numeric => Resolved::Float(f),
        _ => Resolved::Str(text),
    }
}

impl<'a> NodeDeserializer<'a> {
    fn unexpected(&self) -> Unexpected<'a> {
        match &self.0.value {
            Value::Scalar { text, plain } => match resolve(text, *plain) {
                Resolved::Null => Unexpected::Other("null"),
                Resolved::Bool(b) => Unexpected::Bool(b),
                Resolved::Int(i) => Unexpected::Signed(i),
                Resolved::UInt(u) => Unexpected::Unsigned(u),
                Resolved::Float(f) => Unexpected::Float(f),
                Resolved::Str(s) => Unexpected::Str(s),
            },
            Value::Sequence(_) => Unexpected::Seq,
            Value::Mapping(_) => Unexpected::Map,
        }
    }

    fn invalid_type(&self, exp: &dyn de::Expected) -> DeError {
        de::Error::invalid_type(self.unexpected(), exp)
    }
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Scalar { text, plain } => match resolve(text, *plain) {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::UInt(u) => visitor.visit_u64(u),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(s) => visitor.visit_borrowed_str(s),
            },
            Value::Sequence(items) => visitor.visit_seq(Items(items.iter())),
            Value::Mapping(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Scalar { text, .. } if !self.0.is_null() => visitor.visit_borrowed_str(text),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Scalar { text, .. } => visitor.visit_borrowed_str(text),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    /// YAML 1.1 habits (`yes`, `on`) are strings in YAML 1.2; say what to
    /// write instead of serde's "expected a boolean".
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Scalar { text, plain } => match resolve(text, *plain) {
                Resolved::Bool(b) => visitor.visit_bool(b),
                _ => Err(DeError::Message(format!(
                    "expected true or false, found {}",
                    self.unexpected()
                ))),
            },
            _ => Err(DeError::Message(format!(
                "expected true or false, found {}",
                self.unexpected()
            ))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.0.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Sequence(items) => visitor.visit_seq(Items(items.iter())),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Mapping(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Scalar { text, .. } => visitor.visit_enum(text.as_str().into_deserializer()),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64
        bytes byte_buf unit unit_struct
    }
}

/// The items of a sequence.
struct Items<'a>(std::slice::Iter<'a, Node>);

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.0.next() {
            Some(node) => seed.deserialize(NodeDeserializer(node)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of a mapping; `value` holds the value of the key just read.
struct Entries<'a> {
    entries: std::slice::Iter<'a, Entry>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some(entry) => {
                self.value = Some(&entry.value);
                seed.deserialize(NodeDeserializer(&entry.key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(node) => seed.deserialize(NodeDeserializer(node)),
            None => Err(de::Error::custom("value requested before key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::locate::Document;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        id: Option<String>,
        flag: Option<bool>,
        factor: Option<f64>,
        list: Option<Vec<String>>,
    }

    fn sample(yaml: &str) -> Result<Sample, DeError> {
        let doc = Document::parse(yaml).unwrap();
        Sample::deserialize(NodeDeserializer(doc.root.as_ref().unwrap()))
    }

    #[test]
    fn scalars_read_as_strings_bools_and_numbers() {
        let s =
            sample("id: 01234567890123456789012345678901\nflag: true\nfactor: 2\nlist: [a, 1]\n")
                .unwrap();
        assert_eq!(s.id.as_deref(), Some("01234567890123456789012345678901"));
        assert_eq!(s.flag, Some(true));
        assert_eq!(s.factor, Some(2.0));
        assert_eq!(s.list, Some(vec!["a".to_string(), "1".to_string()]));
        let empty = sample("id:\nflag: ~\n").unwrap();
        assert_eq!(empty.id, None);
        assert_eq!(empty.flag, None);
    }

    #[test]
    fn type_errors_and_unknown_fields_are_reported() {
        let err = sample("flag: yes\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected true or false, found string \"yes\""
        );
        let err = sample("factor: '1.5'\n").unwrap_err();
        assert!(err.to_string().contains("expected f64"), "{err}");
        let err = sample("list: a\n").unwrap_err();
        assert!(err.to_string().contains("expected a sequence"), "{err}");
        match sample("idd: x\n").unwrap_err() {
            DeError::UnknownField { field, expected } => {
                assert_eq!(field, "idd");
                assert_eq!(expected, &["id", "flag", "factor", "list"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
