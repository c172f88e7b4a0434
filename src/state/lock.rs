//! The state lock: a file beside the state, created exclusively, naming who holds it. A lock
//! left by a process that no longer runs on this host is stale and taken over.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Who holds a lock.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockInfo {
    pub id: String,
    pub owner: String,
    pub host: String,
    pub pid: u32,
    pub operation: String,
    pub created_at: String,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lock {} held by {}@{} (pid {}) for `{}` since {}",
            self.id, self.owner, self.host, self.pid, self.operation, self.created_at
        )
    }
}

#[derive(Debug)]
pub enum LockError {
    Held(LockInfo),
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held(info) => write!(f, "the state is locked: {info}"),
            LockError::Io(p, e) => write!(f, "cannot lock the state with `{}`: {e}", p.display()),
        }
    }
}

/// A held lock, released when dropped.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
    pub info: LockInfo,
    /// A stale lock that was taken over, for the caller to mention.
    pub replaced: Option<LockInfo>,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Only remove the file if it is still ours.
        if read(&self.path).is_some_and(|info| info.id == self.info.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".lock");
    state.with_file_name(name)
}

fn read(path: &Path) -> Option<LockInfo> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Whether the process that holds `info` is gone: only decidable on the same host.
fn stale(info: &LockInfo) -> bool {
    info.host == hostname() && info.pid != std::process::id() && !Path::new(&format!("/proc/{}", info.pid)).exists()
}

/// Takes the lock of the state at `state`, waiting up to `timeout` for another holder.
pub fn acquire(state: &Path, operation: &str, timeout: Duration) -> Result<StateLock, LockError> {
    let path = lock_path(state);
    let info = LockInfo {
        id: super::hex(&super::random_bytes::<8>()),
        owner: std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned()),
        host: hostname(),
        pid: std::process::id(),
        operation: operation.to_owned(),
        created_at: super::now_rfc3339(),
    };
    let deadline = Instant::now() + timeout;
    let mut replaced = None;
    loop {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| LockError::Io(path.clone(), e))?;
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                let text = serde_json::to_string_pretty(&info).unwrap_or_default();
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| LockError::Io(path.clone(), e))?;
                return Ok(StateLock { path, info, replaced });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = read(&path);
                match holder {
                    Some(h) if stale(&h) => {
                        let _ = std::fs::remove_file(&path);
                        replaced = Some(h);
                        continue;
                    }
                    Some(h) if Instant::now() >= deadline => return Err(LockError::Held(h)),
                    None if Instant::now() >= deadline => {
                        return Err(LockError::Io(path.clone(), std::io::Error::other("the lock file is unreadable")))
                    }
                    _ => std::thread::sleep(
                        Duration::from_millis(200).min(deadline.saturating_duration_since(Instant::now())),
                    ),
                }
            }
            Err(e) => return Err(LockError::Io(path, e)),
        }
    }
}

/// Removes the lock of the state at `state` if its id is `id`; returns who held it.
pub fn force_unlock(state: &Path, id: &str) -> Result<LockInfo, String> {
    let path = lock_path(state);
    match read(&path) {
        None => Err(format!("the state `{}` is not locked", state.display())),
        Some(info) if info.id != id => Err(format!("the lock id is `{}`, not `{id}` ({info})", info.id)),
        Some(info) => {
            std::fs::remove_file(&path).map_err(|e| format!("cannot remove `{}`: {e}", path.display()))?;
            Ok(info)
        }
    }
}

/// Parses `30s`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration such as `30s` or `2m`"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("`{text}` is not a duration such as `30s` or `2m`")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn a_second_holder_is_refused_and_a_dead_holder_is_replaced() {
        let dir = std::env::temp_dir().join(format!("thoth-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = dir.join("thoth.state.json");
        let first = acquire(&state, "apply", Duration::ZERO).expect("first lock");
        match acquire(&state, "apply", Duration::from_millis(300)) {
            Err(LockError::Held(info)) => assert_eq!(info.id, first.info.id),
            other => panic!("expected a held lock, got {other:?}"),
        }
        drop(first);
        assert!(!lock_path(&state).exists(), "released on drop");

        // A lock of a process that no longer exists on this host is stale.
        let dead = LockInfo {
            id: "dead".to_owned(),
            owner: "ci".to_owned(),
            host: hostname(),
            pid: u32::MAX - 1,
            operation: "apply".to_owned(),
            created_at: "2026-01-01T00:00:00Z".to_owned(),
        };
        std::fs::write(lock_path(&state), serde_json::to_string(&dead).expect("json")).expect("write lock");
        let taken = acquire(&state, "apply", Duration::ZERO).expect("stale lock taken over");
        assert_eq!(taken.replaced.as_ref().map(|r| r.id.as_str()), Some("dead"));
        drop(taken);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
