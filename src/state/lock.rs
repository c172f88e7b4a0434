//! The state lock's vocabulary: who holds it, and what taking it can run into. Each backend
//! keeps the lock its own way (`backend`); a lock left by a process that no longer runs on
//! this host is stale and taken over.

use std::path::Path;
use std::time::Duration;

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
    /// The CI run that holds the lock, when it runs in CI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_url: Option<String>,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lock {} held by {}@{} (pid {}) for `{}` since {}",
            self.id, self.owner, self.host, self.pid, self.operation, self.created_at
        )?;
        match &self.ci_url {
            Some(url) => write!(f, " in {url}"),
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
pub enum LockError {
    /// Someone holds it; `None` when the lock says nothing readable about its holder.
    Held(Option<LockInfo>),
    Backend(super::backend::BackendError),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held(Some(info)) => write!(f, "the state is locked: {info}"),
            LockError::Held(None) => f.write_str("the state is locked, and the lock does not say by whom"),
            LockError::Backend(e) => write!(f, "cannot lock the state: {e}"),
        }
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// The URL of the CI run this process belongs to, when a known CI system says.
fn ci_url() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let (Some(server), Some(repo), Some(run)) =
        (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY"), var("GITHUB_RUN_ID"))
    {
        return Some(format!("{}/{repo}/actions/runs/{run}", server.trim_end_matches('/')));
    }
    var("CI_JOB_URL")
}

impl LockInfo {
    /// A new holder record for `operation` by this process.
    pub fn new(operation: &str) -> LockInfo {
        LockInfo {
            id: super::hex(&super::random_bytes::<8>()),
            owner: std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned()),
            host: hostname(),
            pid: std::process::id(),
            operation: operation.to_owned(),
            created_at: super::now_rfc3339(),
            ci_url: ci_url(),
        }
    }

    /// What is known of a holder whose lock record cannot be read.
    pub fn unreadable(id: &str) -> LockInfo {
        LockInfo {
            id: id.to_owned(),
            owner: "unknown".to_owned(),
            host: "unknown".to_owned(),
            pid: 0,
            operation: "unknown".to_owned(),
            created_at: "unknown".to_owned(),
            ci_url: None,
        }
    }

    /// Whether the holder is a process that no longer runs: only decidable on the same host.
    pub fn is_stale(&self) -> bool {
        self.host == hostname()
            && self.pid != 0
            && self.pid != std::process::id()
            && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// Parses `30s`, `2m`, `1h`, `7d`, `1h30m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let wrong = || format!("`{text}` is not a duration such as `30s`, `2m` or `1h30m`");
    if text.is_empty() {
        return Err(wrong());
    }
    if text.chars().all(|c| c.is_ascii_digit()) {
        return text.parse().map(Duration::from_secs).map_err(|_| wrong());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(wrong)?;
        let n: u64 = rest[..digits].parse().map_err(|_| wrong())?;
        let after = &rest[digits..];
        let unit_len = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let step = match &after[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            _ => return Err(wrong()),
        };
        total += step;
        rest = &after[unit_len..];
    }
    Ok(total)
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
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }
}
