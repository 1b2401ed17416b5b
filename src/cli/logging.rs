//! Log output on stderr. Under systemd (stderr is the journal, `JOURNAL_STREAM`
//! set) or any non-terminal, lines carry neither colours nor a timestamp of
//! their own: journald records the time and shows the level. `--log-format
//! json` writes one object per line, with the job's span fields (`policy`,
//! `target`, `job_id`), for log shippers.

use std::io::Write;

use tracing_subscriber::EnvFilter;

use super::LogFormat;

/// Installs the global subscriber; `RUST_LOG` overrides `default_level`.
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let style = Style::detect(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("JOURNAL_STREAM").is_some(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        .with_ansi(style.ansi);
    let result = match (format, style.timestamps) {
        (LogFormat::Json, _) => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        (LogFormat::Pretty, true) => builder.try_init(),
        (LogFormat::Pretty, false) => builder.without_time().try_init(),
    };
    if let Err(e) = result {
        errln!("warning: cannot set up logging: {e}");
    }
}

/// stderr for log lines, dropping what cannot be written: tracing-subscriber
/// reports a failed write with `eprintln!`, which panics when stderr is a
/// closed pipe, and the daemon must outlive whoever reads its log.
struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Whether log lines get colours and their own timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Style {
    ansi: bool,
    timestamps: bool,
}

impl Style {
    /// Colours and timestamps on an interactive terminal only; the journal
    /// stamps lines itself, and a terminal that is the journal's stream
    /// (`systemd-run --pty` aside) is treated as the journal.
    fn detect(stderr_is_terminal: bool, journal: bool) -> Self {
        let interactive = stderr_is_terminal && !journal;
        Self {
            ansi: interactive,
            timestamps: interactive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Style;

    #[test]
    fn the_journal_and_pipes_get_plain_lines_without_timestamps() {
        let plain = Style {
            ansi: false,
            timestamps: false,
        };
        assert_eq!(Style::detect(false, true), plain);
        assert_eq!(Style::detect(true, true), plain);
        assert_eq!(Style::detect(false, false), plain);
        assert_eq!(
            Style::detect(true, false),
            Style {
                ansi: true,
                timestamps: true
            }
        );
    }
}
