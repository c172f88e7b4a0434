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

/// The environment variables thoth reads, by name or prefix: one of them that is not UTF-8
/// is an error, rather than being taken as unset. Anything else is ignored.
const READ_PREFIXES: &[&str] = &["THOTH_", "TF_VAR_", "AWS_"];
const READ_NAMES: &[&str] = &[
    "TF_WORKSPACE",
    "PG_CONN_STR",
    "GITHUB_RUN_ID",
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "CI_JOB_URL",
    "SSL_CERT_FILE",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "HOME",
    "XDG_CONFIG_HOME",
];

/// The first variable thoth reads whose value is not UTF-8.
fn unreadable_environment() -> Option<String> {
    std::env::vars_os().find_map(|(name, value)| {
        let name = name.into_string().ok()?;
        let read = READ_NAMES.contains(&name.as_str()) || READ_PREFIXES.iter().any(|p| name.starts_with(p));
        (read && value.to_str().is_none()).then_some(name)
    })
}

/// Runs one command line and returns its exit code.
pub fn run(cli: Cli) -> u8 {
    logging::init();
    if let Some(name) = unreadable_environment() {
        return fail(
            &format!("the environment variable `{name}` is not UTF-8 text, and thoth reads it"),
            Some("set it to UTF-8 text, or unset it"),
        );
    }
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
