//! `vbs-agent`: parses the command line and hands over to [`vbs_agent::cli`].

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    one_malloc_arena();
    let cli = vbs_agent::cli::Cli::parse();
    vbs_agent::cli::init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            // Not `eprintln!`, which panics when stderr is closed.
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the async runtime: {e}"
            );
            return ExitCode::from(1);
        }
    };
    runtime.block_on(vbs_agent::cli::run(cli))
}

/// Makes glibc's malloc keep one arena for all threads instead of one per
/// thread that ever allocated: the daemon's worker and blocking threads each
/// held freed memory of their own, and a fleet of 10,000 jobs peaked about
/// 7 MiB higher for it, at no gain in CPU (BENCHMARKS.md, "Fleet").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    // SAFETY: `mallopt` sets one of the allocator's tunables; it is called
    // before any other thread exists, and a refusal (return 0) changes nothing.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}
