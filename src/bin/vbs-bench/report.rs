//! Rewrites one benchmark's section of `BENCHMARKS.md`: the table between
//! `<!-- NAME:begin -->` and `<!-- NAME:end -->`, headed by the machine, the
//! date, the commit and the command that produced it.

use std::path::Path;
use std::process::Command;

/// Replaces the section `name` of the file at `path` with `table`.
pub fn write_section(path: &Path, name: &str, command: &str, table: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (begin, end) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    let (Some(b), Some(e)) = (text.find(&begin), text.find(&end)) else {
        return Err(format!(
            "{} has no `{begin}` … `{end}` section to rewrite",
            path.display()
        ));
    };
    let section = format!("{begin}\n{}\n\n{table}{end}", provenance(command));
    let updated = format!("{}{section}{}", &text[..b], &text[e + end.len()..]);
    std::fs::write(path, updated).map_err(|e| format!("{}: {e}", path.display()))
}

/// Machine, date, commit and command, as one Markdown line.
fn provenance(command: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let commit =
        output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    format!(
        "Machine: {cpu}, {cores} cores · date: {date} · commit: `{commit}` · command: `{command}`"
    )
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_section_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("B.md");
        let before = "# B\n<!-- a:begin -->\nold a\n<!-- a:end -->\ntext\n<!-- b:begin -->\nold b\n<!-- b:end -->\n";
        std::fs::write(&path, before).unwrap();
        write_section(&path, "b", "vbs-bench b", "| new |\n").unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.starts_with(
            "# B\n<!-- a:begin -->\nold a\n<!-- a:end -->\ntext\n<!-- b:begin -->\nMachine: "
        ));
        assert!(after.ends_with("command: `vbs-bench b`\n\n| new |\n<!-- b:end -->\n"));
        assert!(write_section(&path, "c", "x", "y")
            .unwrap_err()
            .contains("no `<!-- c:begin -->`"));
    }
}
