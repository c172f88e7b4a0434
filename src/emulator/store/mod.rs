//! The emulator's durable store: every tenant's data in memory, mirrored to one JSON file per
//! tenant under `<data_dir>/tenants/`.
//!
//! This module owns the data model (`model`), loading it at start-up and writing it after
//! every mutation. A mutation runs on a copy of the tenant's data; the copy replaces the
//! in-memory data only after its file was written atomically (temporary file in the same
//! directory, fsync, rename, fsync of the directory), so memory never holds anything the disk
//! does not. This module never parses requests or renders responses, and it must never share
//! code with the GovAPI client in `crate::remote`.

pub(crate) mod model;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use self::model::TenantData;
use super::clock;
use super::error::ApiError;

/// The version of the tenant file format; bumped on incompatible changes.
const FORMAT_VERSION: u32 = 1;

/// Encoded tenant ids longer than this are replaced by a digest in file names.
const MAX_PLAIN_FILE_STEM: usize = 100;

/// All tenants' data behind one lock.
pub(crate) struct Store {
    /// `<data_dir>/tenants`.
    dir: PathBuf,
    tenants: Mutex<BTreeMap<String, Tenant>>,
}

/// One tenant's data and the encoding it has on disk, which a mutation compares its result
/// with instead of encoding the data before it again.
struct Tenant {
    data: TenantData,
    encoded: Vec<u8>,
}

/// A tenant file's bytes, written into a buffer of `capacity` bytes to start with.
fn encode(tenant: &str, data: &TenantData, capacity: usize) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(capacity);
    serde_json::to_writer_pretty(&mut bytes, &TenantFileRef { format_version: FORMAT_VERSION, tenant, data })?;
    Ok(bytes)
}

/// The on-disk shape of one tenant file.
#[derive(Deserialize)]
struct TenantFile {
    format_version: u32,
    tenant: String,
    data: TenantData,
}

/// The same shape, borrowed, for writing.
#[derive(Serialize)]
struct TenantFileRef<'a> {
    format_version: u32,
    tenant: &'a str,
    data: &'a TenantData,
}

impl Store {
    /// Creates `<data_dir>/tenants` if needed and loads every tenant file in it.
    ///
    /// Any unreadable or malformed file is an error: starting on top of data the emulator does
    /// not understand would silently lose it at the next write.
    pub(crate) fn open(data_dir: &Path) -> io::Result<Store> {
        let dir = data_dir.join("tenants");
        fs::create_dir_all(&dir)
            .map_err(|e| with_context(&e, &format!("cannot create the data directory {}", dir.display())))?;
        let entries = fs::read_dir(&dir)
            .map_err(|e| with_context(&e, &format!("cannot read the data directory {}", dir.display())))?;
        let mut tenants = BTreeMap::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| with_context(&e, &format!("cannot read the data directory {}", dir.display())))?;
            let path = entry.path();
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            // Leftover temporary files of an interrupted write start with a dot; the rename that
            // would have published them never happened, so they are not data.
            let is_json = Path::new(file_name).extension().is_some_and(|extension| extension == "json");
            if file_name.starts_with('.') || !is_json {
                continue;
            }
            let (tenant, data) = load_tenant_file(&path, file_name)?;
            let encoded = encode(&tenant, &data, 0).map_err(io::Error::other)?;
            tenants.insert(tenant, Tenant { data, encoded });
        }
        Ok(Store { dir, tenants: Mutex::new(tenants) })
    }

    /// Runs `f` on a tenant's data; a tenant never written reads as empty.
    pub(crate) async fn read<R>(&self, tenant: &str, f: impl FnOnce(&TenantData) -> R) -> R {
        let guard = self.tenants.lock().await;
        match guard.get(tenant) {
            Some(current) => f(&current.data),
            None => f(&TenantData::default()),
        }
    }

    /// Runs `f` on a copy of a tenant's data and, when it succeeds and changed something,
    /// persists the copy and makes it current.
    ///
    /// When `f` fails, nothing is kept. The file is written synchronously while the lock is
    /// held and without any `.await` between writing and committing: a request cancelled by a
    /// disconnecting client therefore can never leave memory and disk disagreeing. The cost is a
    /// short blocking write on a runtime thread, which an emulator can afford.
    pub(crate) async fn mutate<R>(
        &self,
        tenant: &str,
        f: impl FnOnce(&mut TenantData) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut guard = self.tenants.lock().await;
        let current = guard.get(tenant);
        let mut draft = current.map(|c| c.data.clone()).unwrap_or_default();
        let out = f(&mut draft)?;
        // Bytes are compared rather than values: JSON objects compare equal regardless of key
        // order, but the order is part of what the emulator must keep.
        let encoding_failed = |e: serde_json::Error| ApiError::internal(format!("cannot encode the tenant data: {e}"));
        let room = current.map_or(0, |c| c.encoded.len() + 4096);
        let bytes = encode(tenant, &draft, room).map_err(encoding_failed)?;
        let unchanged = match current {
            Some(current) => bytes == current.encoded,
            None => bytes == encode(tenant, &TenantData::default(), 0).map_err(encoding_failed)?,
        };
        if unchanged {
            return Ok(out);
        }
        write_atomic(&self.dir, &file_name_for(tenant), &bytes).map_err(|e| {
            ApiError::internal(format!("cannot write the emulator data directory {}: {e}", self.dir.display()))
        })?;
        guard.insert(tenant.to_owned(), Tenant { data: draft, encoded: bytes });
        Ok(out)
    }
}

/// Reads and checks one tenant file, returning the tenant id it belongs to.
fn load_tenant_file(path: &Path, file_name: &str) -> io::Result<(String, TenantData)> {
    let bytes =
        fs::read(path).map_err(|e| with_context(&e, &format!("cannot read the data file {}", path.display())))?;
    let file: TenantFile = serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidData, format!("the data file {} is corrupt: {e}", path.display()))
    })?;
    if file.format_version != FORMAT_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the data file {} has format version {}, this emulator reads version {FORMAT_VERSION}",
                path.display(),
                file.format_version
            ),
        ));
    }
    if file_name_for(&file.tenant) != file_name {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the data file {} holds tenant {:?}, whose data belongs in {}",
                path.display(),
                file.tenant,
                file_name_for(&file.tenant)
            ),
        ));
    }
    Ok((file.tenant, file.data))
}

/// The file name of a tenant's data: a reversible, injective encoding of the tenant id.
///
/// ASCII letters, digits and `-` are kept; every other byte becomes `_` and two hex digits, so
/// no name can contain a path separator or `..`, and two tenants never share a file. Ids whose
/// encoding is too long for a file name use `long.<sha256>.json` instead; plain names never
/// contain a dot, so the two forms cannot collide. The tenant id is also stored inside the
/// file, which is what loading uses.
/// What the store keeps of a write-only secret: a digest, never the value.
pub(crate) fn at_rest(secret: &str) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", crate::state::hex(&sha2::Sha256::digest(format!("thoth emulator\0{secret}").as_bytes())))
}

/// A write-only configuration object as the store keeps it: its keys, each string value as a
/// digest.
pub(crate) fn config_at_rest(
    config: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    config
        .into_iter()
        .map(|(k, v)| {
            let kept = match v {
                serde_json::Value::String(s) => serde_json::Value::String(at_rest(&s)),
                serde_json::Value::Null => serde_json::Value::Null,
                other => serde_json::Value::String(at_rest(&other.to_string())),
            };
            (k, kept)
        })
        .collect()
}

pub(crate) fn file_name_for(tenant: &str) -> String {
    let mut stem = String::with_capacity(tenant.len());
    for byte in tenant.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            stem.push(char::from(byte));
        } else {
            stem.push('_');
            stem.push_str(&clock::hex(&[byte]));
        }
    }
    if stem.is_empty() || stem.len() > MAX_PLAIN_FILE_STEM {
        return format!("long.{}.json", clock::sha256_hex(tenant.as_bytes()));
    }
    format!("{stem}.json")
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or the new file.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = write_new_file(&tmp, bytes).and_then(|()| fs::rename(&tmp, dir.join(name)));
    if let Err(e) = result {
        // Best effort: the temporary file is ignored at load time anyway.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Writes and fsyncs a new file that only the owner may read, as it holds secrets.
fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened for fsync on this platform; the rename is as durable as it gets.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

fn with_context(error: &io::Error, context: &str) -> io::Error {
    io::Error::new(error.kind(), format!("{context}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::file_name_for;

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(file_name_for("acme"), "acme.json");
        assert_eq!(file_name_for("../etc"), "_2e_2e_2fetc.json");
        assert_ne!(file_name_for("a_b"), file_name_for("a/b"));
        assert!(file_name_for(&"x".repeat(500)).starts_with("long."));
    }
}
