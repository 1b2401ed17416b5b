//! stdout and stderr that never end the program and never pass control
//! characters to a person.
//!
//! - `println!` and `eprintln!` panic when their stream is a closed pipe
//!   (`vbs-agent run 2>&1 | head -3`); a panic there would leave jobs
//!   `running` and stop a daemon whose backups were going well. Output
//!   that cannot be written is dropped instead, and the work goes on.
//! - Messages on stderr, and all of stdout when it is a terminal, have
//!   their control and bidi characters escaped ([`escape::lines`]): they
//!   may quote the cloud or the policy file. stdout into a pipe or file is
//!   left as it is, so CSV carries the history's text exactly.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

use super::escape;

/// Set once stdout could not be written: later output is dropped.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Set when stdout failed for another reason than a closed pipe (a full
/// disk behind `>`): the output is incomplete, so the command fails.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Whether stdout is a person's terminal rather than a pipe or a file.
static STDOUT_IS_TERMINAL: LazyLock<bool> = LazyLock::new(|| std::io::stdout().is_terminal());

/// Writes to stdout. A closed pipe is the reader's choice (`| head`) and
/// ends output quietly; any other failure is reported once on stderr.
pub(crate) fn stdout(args: std::fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = if *STDOUT_IS_TERMINAL {
        out.write_all(escape::lines(&args.to_string()).as_bytes())
    } else {
        out.write_fmt(args)
    };
    if let Err(e) = written {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(true, Ordering::Relaxed);
            stderr(format_args!("error: cannot write output: {e}\n"));
        }
    }
}

/// Writes a message to stderr, ignoring failure: there is nowhere left to
/// report it.
pub(crate) fn stderr(args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    let _ = std::io::stderr()
        .lock()
        .write_all(escape::lines(&text).as_bytes());
}

/// Whether stdout failed other than by a closed pipe.
pub(crate) fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}
