//! Plain aligned text tables for terminal output.

use super::escape;

/// Renders rows under a header, columns padded to their widest cell.
/// Every row has one cell per header column. Cells are shown on one line,
/// their control characters escaped ([`escape::one_line`]).
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    debug_assert!(
        rows.iter().all(|r| r.len() == header.len()),
        "row width differs from header"
    );
    let rows: Vec<Vec<_>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape::one_line(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let padded: Vec<String> = cells.zip(&widths).map(|(c, w)| pad(c, *w)).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(&mut header.iter().copied());
    out.push('\n');
    for row in &rows {
        out.push_str(&line(&mut row.iter().map(|c| c.as_ref())));
        out.push('\n');
    }
    out
}

/// `cell` followed by spaces up to `width` characters. Not `format!("{:<w$}")`:
/// its width must fit in a `u16`, and a cell of 65,536 characters (a
/// cloud's `fail_reason`) would panic.
fn pad(cell: &str, width: usize) -> String {
    let fill = width.saturating_sub(cell.chars().count());
    let mut out = String::with_capacity(cell.len() + fill);
    out.push_str(cell);
    out.extend(std::iter::repeat_n(' ', fill));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_align_to_the_widest_cell() {
        let out = super::render(
            &["a", "bb"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "".into()]],
        );
        assert_eq!(out, "a    bb\nxxx  y\nz\n");
    }

    #[test]
    fn a_cell_of_any_length_is_shown_whole() {
        let huge = "x".repeat(70_000);
        let out = super::render(
            &["reason", "n"],
            &[
                vec![huge.clone(), "1".into()],
                vec!["short".into(), "2".into()],
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], format!("{huge}  1"));
        assert_eq!(lines[2], format!("short{}  2", " ".repeat(70_000 - 5)));
    }

    #[test]
    fn a_cell_stays_on_its_line() {
        let out = super::render(&["a", "b"], &[vec!["x\ny".into(), "\u{1b}[2J".into()]]);
        assert_eq!(out, "a     b\nx\\ny  \\u{1b}[2J\n");
    }
}
