//! The `thoth` command: parse arguments, run, exit with the command's code.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match thoth::cli::parse(std::env::args_os()) {
        Ok(cli) => ExitCode::from(thoth::commands::run(cli)),
        Err(e) => {
            let _ = e.print();
            // Help and version are answers; any other usage error is an error (exit 1), never
            // the 2 that `--detailed-exitcode` gives to "changes present".
            ExitCode::from(if e.exit_code() == 0 { 0 } else { thoth::commands::ERROR })
        }
    }
}
