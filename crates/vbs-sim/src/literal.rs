//! The part of Python's `ast.literal_eval` that Cinder's `metadata` filter
//! needs: a dict literal whose keys and values are strings, in single or
//! double quotes (so a JSON object of strings reads the same). Cinder
//! keeps any value that is not such a dict as a plain string, and its DB
//! layer then returns an empty list; [`string_dict`] answers `None` for
//! those, and the caller matches nothing.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::str::Chars;

/// `{'k': 'v', "k2": "v2"}` (a trailing comma allowed, as in Python) as a
/// map; `None` for anything else: other literals (`true`, `None`, a list),
/// values that are not strings, or text that is not a literal at all.
pub fn string_dict(text: &str) -> Option<BTreeMap<String, String>> {
    let mut chars = text.trim().chars().peekable();
    expect(&mut chars, '{')?;
    let mut out = BTreeMap::new();
    loop {
        skip_space(&mut chars);
        if chars.peek() == Some(&'}') {
            chars.next();
            break;
        }
        let key = string(&mut chars)?;
        skip_space(&mut chars);
        expect(&mut chars, ':')?;
        skip_space(&mut chars);
        let value = string(&mut chars)?;
        out.insert(key, value);
        skip_space(&mut chars);
        match chars.next()? {
            ',' => {}
            '}' => break,
            _ => return None,
        }
    }
    skip_space(&mut chars);
    chars.next().is_none().then_some(out)
}

fn skip_space(chars: &mut Peekable<Chars<'_>>) {
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
}

fn expect(chars: &mut Peekable<Chars<'_>>, want: char) -> Option<()> {
    (chars.next()? == want).then_some(())
}

/// A quoted string with Python's common escapes; an unknown escape keeps
/// its backslash, as Python does.
fn string(chars: &mut Peekable<Chars<'_>>) -> Option<String> {
    let quote = chars.next().filter(|q| *q == '\'' || *q == '"')?;
    let mut out = String::new();
    loop {
        match chars.next()? {
            c if c == quote => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c @ ('\\' | '\'' | '"') => out.push(c),
                c => {
                    out.push('\\');
                    out.push(c);
                }
            },
            '\n' => return None,
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::string_dict;

    #[test]
    fn reads_json_and_python_dicts_of_strings_only() {
        let want = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert_eq!(
            string_dict(r#"{"backup": "nightly", "tier": "db"}"#),
            want(&[("backup", "nightly"), ("tier", "db")])
        );
        assert_eq!(
            string_dict("{'backup':'nightly',}"),
            want(&[("backup", "nightly")])
        );
        assert_eq!(
            string_dict(r#"{'it\'s': "a\u00e9"}"#),
            want(&[("it's", "aé")])
        );
        assert_eq!(string_dict(" { } "), want(&[]));
        for not_a_string_dict in [
            "true",
            "null",
            "nightly",
            "['a']",
            r#"{"a": true}"#,
            r#"{"a": 1}"#,
            r#"{"a": "b"} x"#,
            r#"{"a" "b"}"#,
            "{'a': 'b'",
        ] {
            assert_eq!(string_dict(not_a_string_dict), None, "{not_a_string_dict}");
        }
    }
}
