//! The `thoth` command: parse arguments, run, exit with the command's code.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = thoth::cli::Cli::parse();
    ExitCode::from(thoth::commands::run(cli))
}
