//! Text from outside (the cloud's names, statuses and messages, the policy
//! file's values) shown to a person. Raw, its control characters would act
//! on the terminal: ANSI escapes recolour or clear the screen, a newline
//! forges a line of a table, U+202E reverses what follows. They are shown
//! escaped instead (`\u{1b}`, `\n`, `\u{202e}`); JSON gets its own valid
//! escapes and keeps the exact text.

use std::borrow::Cow;

/// `text` for one cell or one line: every control and bidi character escaped.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe)
}

/// `text` for a terminal: as [`one_line`], but its line breaks and tabs
/// kept (a completion script, a man page).
pub fn lines(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe_within_lines)
}

/// `value` as pretty JSON in which the characters a terminal acts on and
/// `serde_json` leaves raw (DEL, C1, bidi) are `\uXXXX` escapes: the same
/// JSON value, safe to print.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let text = serde_json::to_string_pretty(value)?;
    // Raw newlines are the layout's: serde_json escapes those in strings.
    if !text.chars().any(is_unsafe_within_lines) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_within_lines(c) {
            // Every such character is in the BMP: one \uXXXX each.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn escape_where(text: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`is_unsafe`] but for the line break and the tab.
fn is_unsafe_within_lines(c: char) -> bool {
    !matches!(c, '\n' | '\t') && is_unsafe(c)
}

/// C0 and C1 controls, DEL, and the characters that change the direction
/// or the lines of the text around them.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "\u{1b}[31mred\tand\nnew\u{202e}txt\u{9b}\u{7f}";

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(
            one_line(HOSTILE),
            r"\u{1b}[31mred\tand\nnew\u{202e}txt\u{9b}\u{7f}"
        );
        assert_eq!(
            lines(HOSTILE),
            "\\u{1b}[31mred\tand\nnew\\u{202e}txt\\u{9b}\\u{7f}"
        );
    }

    #[test]
    fn other_text_is_left_as_it_is() {
        let plain = "Größe 8 GB — 备份 \"ok\" \\ 'x'";
        assert!(matches!(one_line(plain), Cow::Borrowed(t) if t == plain));
    }

    #[test]
    fn json_is_the_same_value_without_raw_controls() {
        let value = serde_json::json!({ "reason": HOSTILE, "name": "Größe" });
        let text = json(&value).unwrap();
        assert!(!text.chars().any(is_unsafe_within_lines), "{text}");
        assert!(text.contains(r"\u202e") && text.contains("Größe"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
