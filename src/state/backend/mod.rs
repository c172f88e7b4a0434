//! Where the state, its journal and its lock live: a local file (`local`), a PostgreSQL
//! schema (`pg`) or an S3 bucket (`s3`), behind one small trait.
//!
//! A backend stores bytes and knows nothing of resources. It reads the state and remembers
//! the version it read; it writes only over that version (a compare-and-swap), so that a run
//! never overwrites a state another run wrote since; it appends journal entries and
//! acknowledges them only once they are durable; and it holds a lock that names its holder.
//! `Store` puts the state format, the backup and the retries on top.

pub mod local;
mod pg;
mod s3;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::lock::LockInfo;
use crate::config::BackendSettings;

pub use local::Local;

/// The workspace every configuration has.
pub const DEFAULT_WORKSPACE: &str = "default";

/// What went wrong in a backend.
#[derive(Debug, Clone)]
pub struct BackendError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The backend could not be reached or answered with a server error: trying again may
    /// succeed.
    Unavailable,
    /// The stored state is not the version this run read: another run wrote it.
    Conflict,
    /// Anything else: permissions, a missing bucket or schema, bad settings.
    Other,
}

impl BackendError {
    pub fn unavailable(message: impl Into<String>) -> BackendError {
        BackendError { kind: ErrorKind::Unavailable, message: message.into() }
    }

    pub fn conflict(message: impl Into<String>) -> BackendError {
        BackendError { kind: ErrorKind::Conflict, message: message.into() }
    }

    pub fn other(message: impl Into<String>) -> BackendError {
        BackendError { kind: ErrorKind::Other, message: message.into() }
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// The answer to a lock attempt.
#[derive(Debug)]
pub enum Attempt {
    /// The lock is ours; a record of an earlier holder that was gone is returned to mention.
    Acquired { replaced: Option<LockInfo> },
    /// Someone else holds it (`None` when the lock exists but says nothing readable).
    Held(Option<LockInfo>),
}

/// Where one workspace's state lives.
pub trait Backend: Send + Sync {
    /// A short description for messages: "the pg backend (schema `s`, tenant `t`)".
    fn describe(&self) -> String;

    /// Creates what the backend needs (the schema and tables, say) when it is missing and
    /// the settings allow it, and checks that it can be used.
    fn prepare(&self) -> BoxFuture<'_, Result<()>>;

    /// Reads the state, remembering the version read; `None` when there is none yet.
    fn read(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>>>;

    /// Writes the state over the version last read or written, or refuses with a conflict
    /// when the stored state has moved on. `lineage` and `serial` are those inside `bytes`.
    fn write<'a>(&'a self, bytes: &'a [u8], lineage: &'a str, serial: u64) -> BoxFuture<'a, Result<()>>;

    /// Keeps a copy of the state a run started from.
    fn write_backup<'a>(&'a self, bytes: &'a [u8]) -> BoxFuture<'a, Result<()>>;

    /// Appends journal lines; returns once they are durable.
    fn journal_append<'a>(&'a self, lines: &'a str) -> BoxFuture<'a, Result<()>>;

    /// The journal's lines, in the order they were appended; empty when there is none.
    fn journal_read(&self) -> BoxFuture<'_, Result<String>>;

    /// Replaces the whole journal with `lines` (removing it when empty).
    fn journal_replace<'a>(&'a self, lines: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Tries once to take the lock for `info`.
    fn try_lock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<Attempt>>;

    /// Removes a lock whose holder is gone (a dead process on this host), if it is still `id`.
    fn break_lock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Releases the lock this run holds.
    fn unlock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<()>>;

    /// Removes the lock if its id is `id`, whoever holds it; returns who held it.
    fn force_unlock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<LockInfo>>;

    /// The workspaces that have a state, `default` included when it has one.
    fn workspaces(&self) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Removes this workspace's state, journal and lock.
    fn delete(&self) -> BoxFuture<'_, Result<()>>;
}

/// Which state of a configuration: its tenant (the `pg` backend keeps one state per tenant
/// and workspace) and its workspace.
#[derive(Debug, Clone)]
pub struct Target {
    pub tenant: Option<String>,
    pub workspace: String,
    /// `--state PATH` of the local backend.
    pub local_path: Option<std::path::PathBuf>,
}

/// Opens the backend the settings describe for one workspace.
pub async fn open(settings: &BackendSettings, target: &Target) -> Result<Arc<dyn Backend>> {
    if target.local_path.is_some() && !matches!(settings, BackendSettings::Local(_)) {
        return Err(BackendError::other(format!(
            "`--state` names a local state file, but the configuration keeps its state in the `{}` backend",
            settings.name()
        )));
    }
    Ok(match settings {
        BackendSettings::Local(local) => Arc::new(Local::new(local, target)),
        BackendSettings::Pg(pg) => Arc::new(pg::Pg::connect(pg, target).await?),
        BackendSettings::S3(s3) => Arc::new(s3::S3::new(s3, target)?),
    })
}

/// Whether `name` can be a workspace: letters, digits, `-`, `_` and `.`, as in Terraform.
pub fn valid_workspace(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Runs a backend operation, trying again with backoff while the backend is unavailable:
/// about ten seconds in all before giving up.
pub async fn retrying<T, F>(what: &str, mut op: F) -> Result<T>
where
    F: AsyncFnMut() -> Result<T>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.kind == ErrorKind::Unavailable && attempt < RETRY_ATTEMPTS => {
                tracing::warn!("{what} failed ({e}); trying again ({attempt} of {})", RETRY_ATTEMPTS - 1);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
                attempt += 1;
            }
            other => return other,
        }
    }
}

const RETRY_ATTEMPTS: u32 = 6;

/// Whether a host name or address is this machine, where unencrypted connections are allowed.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
