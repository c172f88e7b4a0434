//! The state: what thoth created or adopted, under which remote identity, with the
//! last-applied non-secret attributes and a salted digest of each secret attribute.
//!
//! This module owns the versioned state format, where it is kept (`backend`: a local file,
//! PostgreSQL or S3), its compare-and-swap, backed-up writes (`Store`), the journal and the
//! lock. It never talks to the control plane, and no secret value ever reaches it: only
//! digests do.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod backend;
pub mod digest;
pub mod journal;
pub mod lock;
mod store;

pub use store::{Lock, Store};

use crate::model::Address;
use crate::vecmap::VecMap;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone)]
pub struct State {
    pub lineage: String,
    pub serial: u64,
    /// Random salt of the secret digests, fixed for the life of the lineage.
    pub salt: String,
    pub tenant_id: Option<String>,
    pub resources: BTreeMap<Address, ResourceState>,
    /// Non-sensitive outputs of the last apply.
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// The applies of each rollout's stages, by rollout and stage, oldest first.
    pub rollouts: BTreeMap<String, BTreeMap<String, Vec<StageApply>>>,
}

/// One `apply --stage`: when it ran, whether it completed, and what the objects it changed
/// were before it (`None` for one it created), which `thoth rollback` returns them to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StageApply {
    pub applied_at: String,
    pub complete: bool,
    pub prior: BTreeMap<String, Option<ResourceState>>,
}

/// How many applies of a stage the state keeps.
pub const STAGE_HISTORY: usize = 10;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourceState {
    /// The remote identity: the id the control plane knows the object by.
    pub id: String,
    /// Last-applied or last-read non-secret attributes, in their attribute form.
    pub attributes: VecMap<String, serde_json::Value>,
    /// Salted digests of secret attributes.
    #[serde(default)]
    pub secret_digests: BTreeMap<String, String>,
    /// `lifecycle { prevent_destroy = true }` as last applied, so that removing the block from
    /// the configuration does not silently drop the protection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prevent_destroy: bool,
    /// Addresses it depended on when last applied: deletes run in the reverse order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
}

#[derive(Debug)]
pub enum StateError {
    Backend(backend::BackendError),
    /// The stored state is not a state this thoth reads; the first field says where it is.
    Format(String, String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Backend(e) => write!(f, "{e}"),
            StateError::Format(p, m) => write!(f, "the state in {p} is not readable: {m}"),
        }
    }
}

impl std::error::Error for StateError {}

impl State {
    pub fn new() -> State {
        State {
            lineage: random_uuid(),
            serial: 0,
            salt: hex(&random_bytes::<16>()),
            tenant_id: None,
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            rollouts: BTreeMap::new(),
        }
    }

    /// The digest recorded for the secret `value` of `attribute` of the object of type
    /// `type_name` with remote id `id` (see `digest`).
    pub fn digest(&self, type_name: &str, id: &str, attribute: &str, value: &str) -> String {
        digest::make(&self.salt, &[type_name, id, attribute], value)
    }

    /// Whether `recorded` is the digest of `value` for that object's attribute; `None` when
    /// this run cannot tell (made under another digest key).
    pub fn digest_matches(
        &self,
        type_name: &str,
        id: &str,
        attribute: &str,
        value: &str,
        recorded: &str,
    ) -> Option<bool> {
        digest::matches(&self.salt, &[type_name, id, attribute], value, recorded)
    }

    /// Reads a state from its file format; `source` names where it came from in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<State, StateError> {
        let format = |m: String| StateError::Format(source.to_owned(), m);
        let file: StateFile = serde_json::from_slice(bytes).map_err(|e| format(e.to_string()))?;
        if file.serial == u64::MAX {
            return Err(format(format!("the serial is {}, its maximum: no later state could be written", file.serial)));
        }
        if file.format_version != FORMAT_VERSION {
            return Err(format(format!(
                "format version {} is not supported (this thoth reads version {FORMAT_VERSION})",
                file.format_version
            )));
        }
        let mut resources = BTreeMap::new();
        for r in file.resources {
            let address =
                Address::parse(&r.address).ok_or_else(|| format(format!("invalid address `{}`", r.address)))?;
            if crate::schema::Schema::get().resource(&address.type_name).is_none() {
                return Err(format(format!("`{}` has a resource type this version of thoth does not know", r.address)));
            }
            let entry = ResourceState {
                id: r.id,
                attributes: r.attributes,
                secret_digests: r.secret_digests,
                prevent_destroy: r.prevent_destroy,
                dependencies: r.dependencies,
            };
            if resources.insert(address, entry).is_some() {
                return Err(format(format!("`{}` is recorded twice", r.address)));
            }
        }
        Ok(State {
            lineage: file.lineage,
            serial: file.serial,
            salt: file.digest_salt,
            tenant_id: file.tenant_id,
            resources,
            outputs: file.outputs,
            rollouts: file.rollouts,
        })
    }

    /// The state in its file format, with `serial` as its serial.
    pub fn to_bytes(&self, serial: u64) -> Vec<u8> {
        let file = StateFile {
            format_version: FORMAT_VERSION,
            serial,
            lineage: self.lineage.clone(),
            thoth_version: env!("CARGO_PKG_VERSION").to_owned(),
            tenant_id: self.tenant_id.clone(),
            digest_salt: self.salt.clone(),
            resources: self
                .resources
                .iter()
                .map(|(a, r)| ResourceFile {
                    address: a.to_string(),
                    id: r.id.clone(),
                    attributes: r.attributes.clone(),
                    secret_digests: r.secret_digests.clone(),
                    prevent_destroy: r.prevent_destroy,
                    dependencies: r.dependencies.clone(),
                })
                .collect(),
            outputs: self.outputs.clone(),
            rollouts: self.rollouts.clone(),
        };
        // Every part of the file is plain data that serializes.
        let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
        text.push('\n');
        text.into_bytes()
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".backup");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` so that a reader sees either the old or the new content, never a
/// part: temporary file (mode 0600), fsync, rename, fsync of the directory. The temporary
/// file has a random name and is created exclusively, so that nothing placed there before
/// (a symbolic link to another file, say) is written through.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (tmp, mut f) = create_temporary(path)?;
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            // Some filesystems refuse to sync a directory; the rename is then as durable as
            // the platform allows.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A new file beside `path`, created exclusively (never through an existing name or link)
/// with mode 0600 whatever the umask.
pub(crate) fn create_temporary(path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let base = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    loop {
        let mut name = base.clone();
        name.push(format!(".tmp-{}-{}", std::process::id(), hex(&random_bytes::<6>())));
        let tmp = path.with_file_name(name);
        match create_private(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// Creates a file that did not exist (a symbolic link in its place is refused), readable and
/// writable by its owner only.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Refuses a path that is a symbolic link: the journal and the lock are never opened
/// through one, which could point them at any file the user can write.
pub fn refuse_symlink(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(std::io::Error::other(format!(
            "`{}` is a symbolic link, which thoth does not follow for its journal and lock",
            path.display()
        ))),
        _ => Ok(()),
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    format_version: u32,
    serial: u64,
    lineage: String,
    thoth_version: String,
    #[serde(default)]
    tenant_id: Option<String>,
    digest_salt: String,
    resources: Vec<ResourceFile>,
    #[serde(default)]
    outputs: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    rollouts: BTreeMap<String, BTreeMap<String, Vec<StageApply>>>,
}

#[derive(Serialize, Deserialize)]
struct ResourceFile {
    address: String,
    id: String,
    attributes: VecMap<String, serde_json::Value>,
    #[serde(default)]
    secret_digests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    prevent_destroy: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dependencies: Vec<String>,
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if getrandom::fill(&mut buf).is_err() {
        // Without an entropy source, fall back to the clock and process id: still unique
        // enough for a lineage, and a salt only needs to differ between state files.
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
            ^ u128::from(std::process::id());
        let digest = Sha256::digest(seed.to_le_bytes());
        for (b, d) in buf.iter_mut().zip(digest.iter().cycle()) {
            *b = *d;
        }
    }
    buf
}

fn random_uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The current time as RFC 3339 UTC, to the second (`2026-11-28T17:42:00Z`).
pub fn now_rfc3339() -> String {
    rfc3339(now_unix())
}

/// Reads an RFC 3339 timestamp (`2026-11-28T17:42:00Z`, with optional fractions and a
/// `+HH:MM` offset) as seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let t = text.trim();
    let num = |range: std::ops::Range<usize>| t.get(range).and_then(|s| s.parse::<i64>().ok());
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if t.get(4..5) != Some("-") || !matches!(t.get(10..11), Some("T" | "t" | " ")) || !(1..=12).contains(&month) {
        return None;
    }
    let mut rest = t.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second - offset).ok()
}

/// Parses an HTTP date (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) into seconds since the
/// epoch.
pub fn parse_http_date(text: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (_, rest) = text.trim().split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    if day.len() != 2 || year.len() != 4 || time.len() != 8 {
        return None;
    }
    parse_rfc3339(&format!("{year}-{month:02}-{day}T{time}Z"))
}

/// Formats seconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    #[allow(clippy::cast_possible_wrap)]
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        for secs in [0, 951_782_400, 1_764_352_920, 4_102_444_799] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(secs)), Some(secs));
        }
        assert_eq!(super::parse_rfc3339("2026-11-28T18:42:00.123+01:00"), super::parse_rfc3339("2026-11-28T17:42:00Z"));
        assert_eq!(super::parse_rfc3339("yesterday"), None);
        assert_eq!(super::rfc3339(1_795_887_720), "2026-11-28T17:42:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
