//! The commands: each one reads its inputs, runs the pipeline stages, hands the value it
//! computed to `render`, and maps the outcome to an exit code. A command is wiring: what
//! changes is decided in `plan`, how it looks in `render`.

mod apply;
mod browser;
mod emulator;
mod export;
mod fmt;
mod force_unlock;
mod graph;
mod import;
mod info;
mod init;
mod logging;
mod migrate;
mod plan;
mod progress;
mod session;
mod show;
mod state;
mod stream;
mod validate;
mod verify;
mod workdir;
mod workspace;

use std::io::Write;

use crate::cli::{Cli, Command};

/// Exit codes.
pub const OK: u8 = 0;
pub const ERROR: u8 = 1;
/// `--detailed-exitcode` and the plan has changes.
pub const CHANGES: u8 = 2;
/// `--deny-loosening` and the plan loosens the tenant's security.
pub const LOOSENS: u8 = 3;

/// Runs one command line and returns its exit code.
pub fn run(cli: Cli) -> u8 {
    logging::init();
    if cli.no_color {
        crate::render::disable_colour();
    }
    if let Some(dir) = &cli.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            return fail(&format!("cannot switch to `{}`: {e}", dir.display()), None);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}"), None),
    };
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Plan(args) => runtime.block_on(plan::run(&args)),
        Command::Apply(args) => runtime.block_on(apply::run(&args, apply::Mode::Apply)),
        Command::Destroy(args) => runtime.block_on(apply::run(&args, apply::Mode::Destroy)),
        Command::Rollback(args) => runtime.block_on(apply::run(&args, apply::Mode::Rollback)),
        Command::Show(args) => show::run(&args),
        Command::Emulator(args) => runtime.block_on(emulator::run(args)),
        Command::ForceUnlock(args) => runtime.block_on(force_unlock::run(&args)),
        Command::Init(args) => runtime.block_on(init::run(&args)),
        Command::State(command) => runtime.block_on(state::run(command)),
        Command::Workspace(command) => runtime.block_on(workspace::run(command)),
        Command::Import(args) => runtime.block_on(import::run(&args)),
        Command::Export(args) => runtime.block_on(export::run(&args)),
        Command::Migrate(command) => runtime.block_on(migrate::run(command)),
        Command::Output(args) => runtime.block_on(state::output(&args)),
        Command::Fmt(args) => fmt::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Verify(args) => runtime.block_on(verify::run(&args)),
        Command::Browser(crate::cli::BrowserCommand::Sync(args)) => runtime.block_on(browser::sync(&args)),
        Command::Version(args) => info::version(&args),
        Command::Completions(args) => info::completions(&args),
        Command::Man(args) => info::man(&args),
    }
}

pub(crate) fn out(text: &str) {
    if stream::on() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

pub(crate) fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// Prints diagnostics on standard error, or as events while the stream is on.
pub(crate) fn diagnose(files: &[crate::config::SourceFile], diags: &crate::diag::Diagnostics) {
    if stream::on() {
        stream::diagnostics(files, diags);
    } else {
        err(&crate::render::diagnostics(files, diags));
    }
}

/// Prints an error with an optional hint and returns the error exit code.
pub(crate) fn fail(message: &str, hint: Option<&str>) -> u8 {
    if stream::on() {
        stream::emit(&crate::render::stream::failure(message, hint));
        return ERROR;
    }
    err(&format!("error: {message}\n"));
    if let Some(h) = hint {
        err(&format!("hint: {h}\n"));
    }
    ERROR
}
