//! stdout and stderr that never end the program. `println!` and
//! `eprintln!` panic when their stream is a closed pipe (`vbs-agent run
//! 2>&1 | head -3`); a panic there would leave jobs `running` and stop a
//! daemon whose backups were going well. Output that cannot be written is
//! dropped instead, and the work goes on.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout could not be written: later output is dropped.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Set when stdout failed for another reason than a closed pipe (a full
/// disk behind `>`): the output is incomplete, so the command fails.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout. A closed pipe is the reader's choice (`| head`) and
/// ends output quietly; any other failure is reported once on stderr.
pub(crate) fn stdout(args: std::fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(true, Ordering::Relaxed);
            stderr(format_args!("error: cannot write output: {e}\n"));
        }
    }
}

/// Writes to stderr, ignoring failure: there is nowhere left to report it.
pub(crate) fn stderr(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Whether stdout failed other than by a closed pipe.
pub(crate) fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}
