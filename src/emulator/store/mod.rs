//! The emulator's durable store: every tenant's data in memory, mirrored row by row to a
//! SQLite database at `<data_dir>/emulator.sqlite3`.
//!
//! This module owns the data model (`model`, made of the tracked collections of `rows`),
//! loading it at start-up and writing what each mutation touched. A mutation runs on the live
//! data; the rows it touched are then written in one transaction, and only once that
//! transaction is committed does the mutation count as done. When the mutation or the write
//! fails, the touched rows are put back, so memory never holds anything the disk does not.
//! The database runs in WAL mode with full synchronisation, so a commit is on disk when it
//! returns, and is held exclusively: a second emulator on the same directory is refused rather
//! than left serving stale data.
//!
//! Emulators before this store kept one JSON file per tenant under `<data_dir>/tenants/`.
//! Those files are imported once, in one transaction that also records each file, and the
//! directory is then renamed `tenants.imported`.
//!
//! This module never parses requests or renders responses, and it must never share code with
//! the GovAPI client in `crate::remote`.

pub(crate) mod model;
pub(crate) mod rows;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension as _};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use self::model::TenantData;
use self::rows::Change;
use super::clock;
use super::error::ApiError;

/// The version of the tenant file format of earlier emulators, which is imported.
const FORMAT_VERSION: u32 = 1;

/// The version of the database schema; bumped on incompatible changes.
const SCHEMA_VERSION: &str = "1";

/// The database file, in the data directory.
const DATABASE: &str = "emulator.sqlite3";

/// Encoded tenant ids longer than this are replaced by a digest in file names.
const MAX_PLAIN_FILE_STEM: usize = 100;

/// All tenants' data and the database, behind one lock.
pub(crate) struct Store {
    inner: Mutex<Inner>,
}

struct Inner {
    tenants: BTreeMap<String, TenantData>,
    db: Connection,
}

/// The on-disk shape of one tenant file of earlier emulators.
#[derive(Deserialize)]
struct TenantFile {
    format_version: u32,
    tenant: String,
    data: TenantData,
}

impl Store {
    /// Creates the data directory if needed, opens (or creates) the database, imports the JSON
    /// tenant files of an earlier emulator, and loads every tenant.
    ///
    /// Anything unreadable or malformed is an error: starting on top of data the emulator does
    /// not understand would silently lose it at the next write.
    pub(crate) fn open(data_dir: &Path) -> io::Result<Store> {
        fs::create_dir_all(data_dir)
            .map_err(|e| with_context(&e, &format!("cannot create the data directory {}", data_dir.display())))?;
        let path = data_dir.join(DATABASE);
        let db = open_database(&path)
            .map_err(|e| io::Error::other(format!("cannot open the emulator database {}: {e}", path.display())))?;
        import_tenant_files(&db, data_dir)?;
        let tenants = load(&db).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("the emulator database {} {e}", path.display()))
        })?;
        Ok(Store { inner: Mutex::new(Inner { tenants, db }) })
    }

    /// Runs `f` on a tenant's data; a tenant never written reads as empty.
    pub(crate) async fn read<R>(&self, tenant: &str, f: impl FnOnce(&TenantData) -> R) -> R {
        let guard = self.inner.lock().await;
        match guard.tenants.get(tenant) {
            Some(current) => f(current),
            None => f(&TenantData::default()),
        }
    }

    /// Runs `f` on a tenant's data and, when it succeeds, writes the rows it touched.
    ///
    /// When `f` or the write fails, the touched rows are put back and nothing is kept. The
    /// write is synchronous, while the lock is held and without any `.await` between running
    /// `f` and committing: a request cancelled by a disconnecting client therefore can never
    /// leave memory and disk disagreeing. The cost is a short blocking write on a runtime
    /// thread, which an emulator can afford.
    pub(crate) async fn mutate<R>(
        &self,
        tenant: &str,
        f: impl FnOnce(&mut TenantData) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut guard = self.inner.lock().await;
        let Inner { tenants, db } = &mut *guard;
        let data = tenants.entry(tenant.to_owned()).or_default();
        let outcome = f(data).and_then(|out| {
            let rows =
                rows_of(data, false).map_err(|e| ApiError::internal(format!("cannot encode the tenant data: {e}")))?;
            write(db, tenant, &rows)
                .map_err(|e| ApiError::internal(format!("cannot write the emulator database: {e}")))?;
            Ok(out)
        });
        for (_, area) in data.areas_mut() {
            if outcome.is_ok() {
                area.commit();
            } else {
                area.rollback();
            }
        }
        outcome
    }
}

/// One row to write: its area, key and body (`None` to delete it).
type Row = (&'static str, String, Option<String>);

/// The rows a mutation touched in every area, or with `all` every row (for an import).
fn rows_of(data: &TenantData, all: bool) -> serde_json::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    for (area, tracked) in data.areas() {
        if all {
            tracked.all(&mut changes)?;
        } else {
            tracked.changes(&mut changes)?;
        }
        rows.extend(changes.drain(..).map(|(key, body)| (area, key, body)));
    }
    Ok(rows)
}

/// Writes one tenant's rows in one transaction.
fn write(db: &mut Connection, tenant: &str, rows: &[Row]) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let tx = db.transaction()?;
    write_rows(&tx, tenant, rows)?;
    tx.commit()
}

fn write_rows(tx: &rusqlite::Transaction<'_>, tenant: &str, rows: &[Row]) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO rows (tenant, area, key, body) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (tenant, area, key) DO UPDATE SET body = excluded.body",
    )?;
    let mut delete = tx.prepare_cached("DELETE FROM rows WHERE tenant = ?1 AND area = ?2 AND key = ?3")?;
    for (area, key, body) in rows {
        match body {
            Some(body) => upsert.execute(params![tenant, area, key, body])?,
            None => delete.execute(params![tenant, area, key])?,
        };
    }
    Ok(())
}

/// Opens the database with a file only the owner may read (it holds digests of secrets and
/// the tenants' settings), in WAL mode with full synchronisation, held exclusively.
fn open_database(path: &Path) -> Result<Connection, String> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    // SQLite gives its WAL and shared-memory files the permissions of the database file, so
    // creating that file first is what keeps them private too.
    options.open(path).map_err(|e| e.to_string())?;
    let sql = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) => "another emulator is using this data directory".to_owned(),
        _ => e.to_string(),
    };
    let mut db = Connection::open(path).map_err(sql)?;
    db.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
    db.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(sql)?;
    db.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
    db.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS rows (
             tenant TEXT NOT NULL, area TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,
             PRIMARY KEY (tenant, area, key)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS imported (file TEXT PRIMARY KEY, tenant TEXT NOT NULL) WITHOUT ROWID;",
    )
    .map_err(sql)?;
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('schema_version', ?1) ON CONFLICT (name) DO NOTHING",
        [SCHEMA_VERSION],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)?;
    let version: String =
        db.query_row("SELECT value FROM meta WHERE name = 'schema_version'", [], |r| r.get(0)).map_err(sql)?;
    if version != SCHEMA_VERSION {
        return Err(format!("it has schema version {version}, this emulator reads version {SCHEMA_VERSION}"));
    }
    Ok(db)
}

/// Loads every tenant from the database.
fn load(db: &Connection) -> Result<BTreeMap<String, TenantData>, String> {
    let mut tenants: BTreeMap<String, TenantData> = BTreeMap::new();
    let mut query = db
        .prepare("SELECT tenant, area, key, body FROM rows ORDER BY tenant, area, key")
        .map_err(|e| format!("cannot be read: {e}"))?;
    let mut rows = query.query([]).map_err(|e| format!("cannot be read: {e}"))?;
    while let Some(row) = rows.next().map_err(|e| format!("cannot be read: {e}"))? {
        let text = |i| row.get::<_, String>(i).map_err(|e| format!("holds a row that is not text: {e}"));
        let (tenant, area, key, body) = (text(0)?, text(1)?, text(2)?, text(3)?);
        let data = tenants.entry(tenant.clone()).or_default();
        let Some((_, tracked)) = data.areas_mut().into_iter().find(|(name, _)| *name == area) else {
            return Err(format!("holds rows of an area this emulator does not know: {area:?} (tenant {tenant:?})"));
        };
        tracked.load(&key, &body).map_err(|e| format!("holds a bad row {area}/{key} of tenant {tenant:?}: {e}"))?;
    }
    Ok(tenants)
}

/// Imports the JSON tenant files of an earlier emulator, once.
///
/// Every file is read and checked first, then all are written in one transaction that also
/// records them as imported, and the directory is renamed. A crash before the commit leaves
/// the files to import again; after it, the record keeps them from being imported twice even
/// if the rename did not happen. A file for a tenant that already has rows is an error rather
/// than a silent overwrite.
fn import_tenant_files(db: &Connection, data_dir: &Path) -> io::Result<()> {
    let dir = data_dir.join("tenants");
    if !dir.is_dir() {
        return Ok(());
    }
    let entries = fs::read_dir(&dir)
        .map_err(|e| with_context(&e, &format!("cannot read the data directory {}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| with_context(&e, &format!("cannot read the data directory {}", dir.display())))?;
        let Ok(file_name) = entry.file_name().into_string() else { continue };
        // Leftover temporary files of an interrupted write start with a dot; the rename that
        // would have published them never happened, so they are not data.
        let is_json = Path::new(&file_name).extension().is_some_and(|extension| extension == "json");
        if file_name.starts_with('.') || !is_json {
            continue;
        }
        files.push((entry.path(), file_name));
    }
    files.sort();
    let db_error = |e: rusqlite::Error| io::Error::other(format!("cannot import {}: {e}", dir.display()));
    let mut pending = Vec::new();
    for (path, file_name) in files {
        let done: Option<String> = db
            .query_row("SELECT tenant FROM imported WHERE file = ?1", [&file_name], |r| r.get(0))
            .optional()
            .map_err(db_error)?;
        if done.is_some() {
            continue;
        }
        let (tenant, mut data) = load_tenant_file(&path, &file_name)?;
        secrets_at_rest(&mut data);
        let existing: i64 =
            db.query_row("SELECT count(*) FROM rows WHERE tenant = ?1", [&tenant], |r| r.get(0)).map_err(db_error)?;
        if existing > 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} holds tenant {tenant:?}, which the emulator database already has", path.display()),
            ));
        }
        let rows = rows_of(&data, true).map_err(io::Error::other)?;
        pending.push((file_name, tenant, rows));
    }
    if !pending.is_empty() {
        let tx = db.unchecked_transaction().map_err(db_error)?;
        for (file_name, tenant, rows) in &pending {
            write_rows(&tx, tenant, rows).map_err(db_error)?;
            tx.execute("INSERT INTO imported (file, tenant) VALUES (?1, ?2)", params![file_name, tenant])
                .map_err(db_error)?;
        }
        tx.commit().map_err(db_error)?;
    }
    let moved = data_dir.join("tenants.imported");
    if !moved.exists() {
        fs::rename(&dir, &moved).map_err(|e| {
            with_context(&e, &format!("imported {}, but cannot rename it to {}", dir.display(), moved.display()))
        })?;
    }
    Ok(())
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

/// What the store keeps of a write-only secret: a digest, never the value.
pub(crate) fn at_rest(secret: &str) -> String {
    use sha2::Digest as _;
    format!("{AT_REST}{}", crate::state::hex(&sha2::Sha256::digest(format!("thoth emulator\0{secret}").as_bytes())))
}

const AT_REST: &str = "sha256:";

/// Whether a stored value is already what [`at_rest`] makes of a secret.
fn is_at_rest(value: &str) -> bool {
    value.strip_prefix(AT_REST).is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Earlier emulators kept the settings' secrets and the providers' write-only configuration
/// in plaintext; an import keeps only their digests, as the routes do today. Values already
/// kept as digests stay as they are.
fn secrets_at_rest(data: &mut TenantData) {
    for secret in data.settings.get_mut().secrets.values_mut() {
        if !is_at_rest(secret) {
            *secret = at_rest(secret);
        }
    }
    let keep = |config: &mut Map<String, Value>| {
        for value in config.values_mut() {
            if !value.as_str().is_some_and(is_at_rest) {
                *value = value_at_rest(std::mem::take(value));
            }
        }
    };
    for provider in data.mdm_providers.keys().cloned().collect::<Vec<_>>() {
        if let Some(row) = data.mdm_providers.get_mut(&provider) {
            keep(&mut row.config);
        }
    }
    for provider in data.browser_providers.keys().cloned().collect::<Vec<_>>() {
        if let Some(row) = data.browser_providers.get_mut(&provider) {
            keep(&mut row.config);
        }
    }
}

/// A write-only configuration object as the store keeps it: its keys, each value as a digest.
pub(crate) fn config_at_rest(config: Map<String, Value>) -> Map<String, Value> {
    config.into_iter().map(|(k, v)| (k, value_at_rest(v))).collect()
}

/// One write-only value as the store keeps it: a digest of the string, or of the JSON text of
/// any other value; `null` stays `null`.
fn value_at_rest(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(at_rest(&s)),
        Value::Null => Value::Null,
        other => Value::String(at_rest(&other.to_string())),
    }
}

/// The file name an earlier emulator gave a tenant's data, which an import checks: a
/// reversible, injective encoding of the tenant id.
///
/// ASCII letters, digits and `-` are kept; every other byte becomes `_` and two hex digits, so
/// no name can contain a path separator or `..`, and two tenants never share a file. Ids whose
/// encoding is too long for a file name use `long.<sha256>.json` instead; plain names never
/// contain a dot, so the two forms cannot collide. The tenant id is also stored inside the
/// file.
fn file_name_for(tenant: &str) -> String {
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
