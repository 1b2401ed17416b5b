//! Bounds on the text the agent stores and logs. A message that comes from
//! outside (a cloud's `fail_reason`, an error answer, a notifier's output)
//! can be megabytes long; the history and the journal keep its beginning
//! and say how long it was, so one bad answer cannot bloat either.

use std::borrow::Cow;

/// Longest message, in bytes and marker included, kept in the history
/// (`fail_reason`, event messages) or put in a log line.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// `text` if it fits in [`MAX_MESSAGE_BYTES`]; otherwise its beginning, cut
/// on a character boundary, and `… [truncated, N bytes in all]`.
pub fn message(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_MESSAGE_BYTES {
        return Cow::Borrowed(text);
    }
    let marker = format!("… [truncated, {} bytes in all]", text.len());
    let end = text.floor_char_boundary(MAX_MESSAGE_BYTES - marker.len());
    Cow::Owned(format!("{}{marker}", &text[..end]))
}

/// [`message`] for an owned string, reusing it when it fits.
pub fn message_owned(text: String) -> String {
    match message(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(cut) => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_as_is() {
        let text = "backup failed: disk vanished";
        assert!(matches!(message(text), Cow::Borrowed(t) if t == text));
        assert_eq!(
            message(&"x".repeat(MAX_MESSAGE_BYTES)).len(),
            MAX_MESSAGE_BYTES
        );
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_with_its_length() {
        // Three-byte characters, so the cut falls inside one.
        let text = "€".repeat(10_000);
        let cut = message(&text);
        assert!(cut.len() <= MAX_MESSAGE_BYTES, "{}", cut.len());
        assert!(cut.ends_with("… [truncated, 30000 bytes in all]"), "{cut}");
        assert!(cut.starts_with("€€€"));
        assert_eq!(message_owned(text.clone()), cut);
    }
}
