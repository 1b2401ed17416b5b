//! `vbs-agent`: parses the command line and hands over to [`vbs_agent::cli`].

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
