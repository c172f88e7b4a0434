//! The `pg` backend: the state of each tenant and workspace is a row of `states` in the
//! configured schema, written with a compare-and-swap on its lineage and serial; the journal
//! is rows of `journal`, in insertion order; the lock is a session-level advisory lock held
//! on a connection of its own for the whole run, plus a row of `locks` naming the holder.
//!
//! When the holder's connection dies (a killed runner), PostgreSQL releases the advisory
//! lock at once; its row is then stale and the next holder replaces it.
//!
//! Unencrypted connections are only made to this machine (a loopback address or a Unix
//! socket); any other host gets TLS with verified certificates (the web PKI roots, plus the
//! PEM file `sslrootcert` or `PGSSLROOTCERT` names).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config};

use super::{is_loopback, Attempt, Backend, BackendError, Result, Target};
use crate::config::PgSettings;
use crate::state::lock::LockInfo;

pub(super) struct Pg {
    config: Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    schema: String,
    skip_schema_creation: bool,
    tenant: String,
    workspace: String,
    /// The advisory lock key of this state.
    lock_key: i64,
    /// The shared connection. A client is used through `&self` (queries are pipelined), so no
    /// lock is held while a query runs: apply appends to the journal while other units' calls
    /// are in flight.
    client: Mutex<Option<Arc<Client>>>,
    /// The connection that holds the advisory lock, while it is held.
    lock_client: Mutex<Option<Arc<Client>>>,
    /// The lineage and serial last read or written, for the compare-and-swap.
    version: Mutex<Option<(String, u64)>>,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unavailable(what: &str, e: &tokio_postgres::Error) -> BackendError {
    BackendError::unavailable(format!("PostgreSQL: cannot {what}: {}", describe(e)))
}

/// A database error's message with its SQL state; connection errors as they come.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

/// Connection-level and transient server errors may pass; anything the database refused
/// (permissions, a missing table) will not.
fn classify(what: &str, e: &tokio_postgres::Error) -> BackendError {
    let transient = match e.as_db_error() {
        None => true,
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") || code == "40001"
        }
    };
    if transient {
        unavailable(what, e)
    } else {
        BackendError::other(format!("PostgreSQL: cannot {what}: {}", describe(e)))
    }
}

/// Reads `sslmode` and `sslrootcert` the way libpq spells them: rustls always verifies the
/// server's certificate and name, so `verify-ca` and `verify-full` are `require` here.
fn libpq_options(conn_str: &str) -> (String, Option<String>) {
    if !conn_str.contains("sslrootcert") && !conn_str.contains("verify-") {
        return (conn_str.to_owned(), None);
    }
    let mut root = None;
    let url = conn_str.starts_with("postgres://") || conn_str.starts_with("postgresql://");
    let keep = |part: &str, root: &mut Option<String>| -> Option<String> {
        let (key, value) = part.split_once('=')?;
        match (key.trim(), value.trim().trim_matches('\'')) {
            ("sslrootcert", v) => {
                *root = Some(v.to_owned());
                None
            }
            ("sslmode", "verify-ca" | "verify-full") => Some(format!("{}=require", key.trim())),
            _ => Some(part.to_owned()),
        }
    };
    let text = if url {
        match conn_str.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<String> = query.split('&').filter_map(|p| keep(p, &mut root)).collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => conn_str.to_owned(),
        }
    } else {
        let parts: Vec<String> = conn_str
            .split_whitespace()
            .filter_map(|p| if p.contains('=') { keep(p, &mut root) } else { Some(p.to_owned()) })
            .collect();
        parts.join(" ")
    };
    (text, root)
}

fn tls_config(root_file: Option<&str>) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(file) = root_file {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(file)
            .map_err(|e| BackendError::other(format!("cannot read the CA file `{file}`: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| BackendError::other(format!("cannot read the CA file `{file}`: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| BackendError::other(format!("the CA file `{file}` holds a bad certificate: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| BackendError::other(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Pg {
    pub(super) async fn connect(settings: &PgSettings, target: &Target) -> Result<Pg> {
        let conn_str = settings.conn_str.clone().or_else(|| std::env::var("PG_CONN_STR").ok()).ok_or_else(|| {
            BackendError::other("the `pg` backend needs a connection string: set `conn_str` or PG_CONN_STR")
        })?;
        let Some(tenant) = target.tenant.clone() else {
            return Err(BackendError::other(
                "the `pg` backend keeps one state per tenant, and no tenant id is known: pass `--tenant-id`, set `tenant_id` in `provider \"thoth\"` or THOTH_TENANT_ID",
            ));
        };
        let (conn_str, root) = libpq_options(&conn_str);
        crate::redact::add(&conn_str);
        let root = root.or_else(|| std::env::var("PGSSLROOTCERT").ok().filter(|v| !v.is_empty()));
        // The connection string is a secret: errors name what is wrong with it, never it.
        let mut config: Config = conn_str
            .parse()
            .map_err(|e| BackendError::other(format!("the `pg` connection string is not valid: {e}")))?;
        if let Some(password) = config.get_password() {
            crate::redact::add(&String::from_utf8_lossy(password));
        }
        if config.get_application_name().is_none() {
            config.application_name("thoth");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.keepalives_idle(Duration::from_secs(30));
        let local = config.get_hosts().iter().all(|h| match h {
            Host::Tcp(name) => is_loopback(name),
            #[cfg(unix)]
            Host::Unix(_) => true,
        });
        let tls = if local && config.get_ssl_mode() != SslMode::Require {
            config.ssl_mode(SslMode::Disable);
            None
        } else if config.get_ssl_mode() == SslMode::Disable {
            return Err(BackendError::other(
                "the `pg` connection string asks for `sslmode=disable` towards a host that is not this machine: thoth sends its state over TLS only; use `sslmode=require`",
            ));
        } else {
            config.ssl_mode(SslMode::Require);
            Some(tls_config(root.as_deref())?)
        };
        let digest = Sha256::digest(format!("thoth\0{}\0{tenant}\0{}", settings.schema_name, target.workspace));
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        let pg = Pg {
            config,
            tls,
            schema: settings.schema_name.clone(),
            skip_schema_creation: settings.skip_schema_creation,
            tenant,
            workspace: target.workspace.clone(),
            lock_key: i64::from_be_bytes(key),
            client: Mutex::new(None),
            lock_client: Mutex::new(None),
            version: Mutex::new(None),
        };
        Ok(pg)
    }

    async fn open(&self) -> Result<Client> {
        let (client, task) = match &self.tls {
            None => {
                let (client, conn) =
                    self.config.connect(tokio_postgres::NoTls).await.map_err(|e| unavailable("connect", &e))?;
                (client, tokio::spawn(async move { drop(conn.await) }))
            }
            Some(tls) => {
                let (client, conn) = self.config.connect(tls.clone()).await.map_err(|e| unavailable("connect", &e))?;
                (client, tokio::spawn(async move { drop(conn.await) }))
            }
        };
        drop(task);
        Ok(client)
    }

    /// The shared connection, opened (again, after it died) as needed.
    async fn client(&self) -> Result<Arc<Client>> {
        if let Some(c) = guard(&self.client).clone().filter(|c| !c.is_closed()) {
            return Ok(c);
        }
        let fresh = Arc::new(self.open().await?);
        *guard(&self.client) = Some(fresh.clone());
        Ok(fresh)
    }

    /// Runs `op` on the shared connection.
    async fn with_client<T>(
        &self,
        what: &str,
        op: impl AsyncFnOnce(&Client) -> std::result::Result<T, tokio_postgres::Error>,
    ) -> Result<T> {
        let client = self.client().await?;
        op(&client).await.map_err(|e| classify(what, &e))
    }

    fn table(&self, name: &str) -> String {
        format!("\"{}\".\"{name}\"", self.schema)
    }
}

impl Backend for Pg {
    fn describe(&self) -> String {
        format!("the `pg` backend (schema `{}`, tenant `{}`, workspace `{}`)", self.schema, self.tenant, self.workspace)
    }

    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let (states, journal, locks) = (self.table("states"), self.table("journal"), self.table("locks"));
            if self.skip_schema_creation {
                let present: bool = self
                    .with_client("check the schema", async |c| {
                        let row = c
                            .query_one(
                                "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL",
                                &[&states, &journal, &locks],
                            )
                            .await?;
                        Ok(row.get(0))
                    })
                    .await?;
                return if present {
                    Ok(())
                } else {
                    Err(BackendError::other(format!(
                        "the schema `{}` has no thoth tables, and `skip_schema_creation` is set: run `thoth init` once without it, or create them",
                        self.schema
                    )))
                };
            }
            let ddl = format!(
                "BEGIN;
                 SELECT pg_advisory_xact_lock(7308325963226294637);
                 CREATE SCHEMA IF NOT EXISTS \"{schema}\";
                 CREATE TABLE IF NOT EXISTS {states} (
                     tenant text NOT NULL, workspace text NOT NULL, lineage text NOT NULL, serial bigint NOT NULL,
                     data text NOT NULL, backup text, updated_at timestamptz NOT NULL DEFAULT now(),
                     PRIMARY KEY (tenant, workspace));
                 CREATE TABLE IF NOT EXISTS {journal} (
                     tenant text NOT NULL, workspace text NOT NULL, seq bigserial NOT NULL, line text NOT NULL,
                     PRIMARY KEY (tenant, workspace, seq));
                 CREATE TABLE IF NOT EXISTS {locks} (
                     tenant text NOT NULL, workspace text NOT NULL, id text NOT NULL, info text NOT NULL,
                     PRIMARY KEY (tenant, workspace));
                 COMMIT;",
                schema = self.schema
            );
            self.with_client("create the schema", async |c| c.batch_execute(&ddl).await).await
        }
        .boxed()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>>> {
        async move {
            let sql = format!(
                "SELECT lineage, serial, data FROM {} WHERE tenant = $1 AND workspace = $2",
                self.table("states")
            );
            let row = self
                .with_client("read the state", async |c| c.query_opt(&sql, &[&self.tenant, &self.workspace]).await)
                .await?;
            let mut version = guard(&self.version);
            match row {
                None => {
                    *version = None;
                    Ok(None)
                }
                Some(row) => {
                    let serial: i64 = row.get(1);
                    *version = Some((row.get(0), u64::try_from(serial).unwrap_or(0)));
                    let data: String = row.get(2);
                    Ok(Some(data.into_bytes()))
                }
            }
        }
        .boxed()
    }

    fn write<'a>(&'a self, bytes: &'a [u8], lineage: &'a str, serial: u64) -> BoxFuture<'a, Result<()>> {
        async move {
            let data = std::str::from_utf8(bytes).map_err(|e| BackendError::other(format!("the state is not text: {e}")))?;
            let serial_i = i64::try_from(serial).map_err(|_| BackendError::other("the serial is too large"))?;
            let expected = guard(&self.version).clone();
            let table = self.table("states");
            let written = match &expected {
                None => {
                    let sql = format!(
                        "INSERT INTO {table} (tenant, workspace, lineage, serial, data) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
                    );
                    self.with_client("write the state", async |c| {
                        c.execute(&sql, &[&self.tenant, &self.workspace, &lineage, &serial_i, &data]).await
                    })
                    .await?
                }
                Some((old_lineage, old_serial)) => {
                    let old = i64::try_from(*old_serial).unwrap_or(i64::MAX);
                    let sql = format!(
                        "UPDATE {table} SET lineage = $3, serial = $4, data = $5, updated_at = now()
                         WHERE tenant = $1 AND workspace = $2 AND lineage = $6 AND serial = $7"
                    );
                    self.with_client("write the state", async |c| {
                        c.execute(&sql, &[&self.tenant, &self.workspace, &lineage, &serial_i, &data, old_lineage, &old])
                            .await
                    })
                    .await?
                }
            };
            if written == 0 {
                // A write whose answer was lost and that was sent again finds itself there.
                let sql = format!("SELECT lineage, serial, data FROM {table} WHERE tenant = $1 AND workspace = $2");
                let row = self
                    .with_client("read the state", async |c| c.query_opt(&sql, &[&self.tenant, &self.workspace]).await)
                    .await?;
                let mine = row.is_some_and(|r| {
                    r.get::<_, String>(0) == lineage && r.get::<_, i64>(1) == serial_i && r.get::<_, String>(2) == data
                });
                if !mine {
                    return Err(BackendError::conflict(format!(
                        "the state in {} was changed by another run since this one read it",
                        self.describe()
                    )));
                }
            }
            *guard(&self.version) = Some((lineage.to_owned(), serial));
            Ok(())
        }
        .boxed()
    }

    fn write_backup<'a>(&'a self, bytes: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        async move {
            let data = String::from_utf8_lossy(bytes).into_owned();
            let sql = format!("UPDATE {} SET backup = $3 WHERE tenant = $1 AND workspace = $2", self.table("states"));
            self.with_client("keep the backup", async |c| {
                c.execute(&sql, &[&self.tenant, &self.workspace, &data]).await
            })
            .await
            .map(drop)
        }
        .boxed()
    }

    fn journal_append<'a>(&'a self, lines: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let sql = format!("INSERT INTO {} (tenant, workspace, line) VALUES ($1, $2, $3)", self.table("journal"));
            self.with_client("append to the journal", async |c| {
                c.execute(&sql, &[&self.tenant, &self.workspace, &lines]).await
            })
            .await
            .map(drop)
        }
        .boxed()
    }

    fn journal_read(&self) -> BoxFuture<'_, Result<String>> {
        async move {
            let sql =
                format!("SELECT line FROM {} WHERE tenant = $1 AND workspace = $2 ORDER BY seq", self.table("journal"));
            let rows = self
                .with_client("read the journal", async |c| c.query(&sql, &[&self.tenant, &self.workspace]).await)
                .await?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
        }
        .boxed()
    }

    fn journal_replace<'a>(&'a self, lines: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            // One statement, so that the journal is replaced at once or not at all.
            let table = self.table("journal");
            let sql = format!(
                "WITH gone AS (DELETE FROM {table} WHERE tenant = $1 AND workspace = $2)
                 INSERT INTO {table} (tenant, workspace, line) SELECT $1, $2, $3 WHERE $3 <> ''"
            );
            self.with_client("rewrite the journal", async |c| {
                c.execute(&sql, &[&self.tenant, &self.workspace, &lines]).await
            })
            .await
            .map(drop)
        }
        .boxed()
    }

    fn try_lock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<Attempt>> {
        async move {
            let existing = guard(&self.lock_client).clone().filter(|c| !c.is_closed());
            let lock_client = match existing {
                Some(c) => c,
                None => Arc::new(self.open().await?),
            };
            let got: bool = lock_client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&self.lock_key])
                .await
                .map_err(|e| classify("take the lock", &e))?
                .get(0);
            let locks = self.table("locks");
            let select = format!("SELECT info FROM {locks} WHERE tenant = $1 AND workspace = $2");
            let recorded: Option<LockInfo> = lock_client
                .query_opt(&select, &[&self.tenant, &self.workspace])
                .await
                .map_err(|e| classify("read the lock", &e))?
                .and_then(|r| serde_json::from_str(&r.get::<_, String>(0)).ok());
            if !got {
                return Ok(Attempt::Held(recorded));
            }
            *guard(&self.lock_client) = Some(lock_client.clone());
            *guard(&self.lock_client) = Some(lock_client.clone());
            let text = serde_json::to_string(info).map_err(|e| BackendError::other(e.to_string()))?;
            let upsert = format!(
                "INSERT INTO {locks} (tenant, workspace, id, info) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant, workspace) DO UPDATE SET id = EXCLUDED.id, info = EXCLUDED.info"
            );
            lock_client
                .execute(&upsert, &[&self.tenant, &self.workspace, &info.id, &text])
                .await
                .map_err(|e| classify("record the lock", &e))?;
            // A row left by a holder whose connection died: the advisory lock was free.
            Ok(Attempt::Acquired { replaced: recorded.filter(|r| r.id != info.id) })
        }
        .boxed()
    }

    /// The advisory lock is authoritative: a holder whose connection is gone no longer holds
    /// it, so there is never a stale lock to break.
    fn break_lock<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<()>> {
        async { Ok(()) }.boxed()
    }

    fn unlock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<()>> {
        async move {
            let Some(lock_client) = guard(&self.lock_client).take() else { return Ok(()) };
            let delete =
                format!("DELETE FROM {} WHERE tenant = $1 AND workspace = $2 AND id = $3", self.table("locks"));
            let result = lock_client.execute(&delete, &[&self.tenant, &self.workspace, &info.id]).await;
            // Closing the connection releases the advisory lock whatever happened above.
            drop(lock_client);
            result.map(drop).map_err(|e| classify("remove the lock record", &e))
        }
        .boxed()
    }

    fn force_unlock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<LockInfo>> {
        async move {
            let locks = self.table("locks");
            let select = format!("SELECT id, info FROM {locks} WHERE tenant = $1 AND workspace = $2");
            let row = self
                .with_client("read the lock", async |c| c.query_opt(&select, &[&self.tenant, &self.workspace]).await)
                .await?;
            let Some(row) = row else {
                return Err(BackendError::other(format!("{} is not locked", self.describe())));
            };
            let held_id: String = row.get(0);
            let info: LockInfo =
                serde_json::from_str(&row.get::<_, String>(1)).unwrap_or_else(|_| LockInfo::unreadable(&held_id));
            if held_id != id {
                return Err(BackendError::other(format!("the lock id is `{held_id}`, not `{id}` ({info})")));
            }
            // A holder that is still connected keeps the advisory lock: its session is ended.
            let key = self.lock_key;
            let (high, low) = (key >> 32, key & 0xffff_ffff);
            let terminate = "SELECT pg_terminate_backend(pid) FROM pg_locks
                 WHERE locktype = 'advisory' AND granted AND objsubid = 1
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND classid::bigint = ($1::bigint & 4294967295) AND objid::bigint = $2 AND pid <> pg_backend_pid()";
            let delete = format!("DELETE FROM {locks} WHERE tenant = $1 AND workspace = $2 AND id = $3");
            self.with_client("remove the lock", async |c| {
                c.query(terminate, &[&high, &low]).await?;
                c.execute(&delete, &[&self.tenant, &self.workspace, &held_id]).await
            })
            .await?;
            Ok(info)
        }
        .boxed()
    }

    fn workspaces(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        async move {
            let sql = format!("SELECT workspace FROM {} WHERE tenant = $1 ORDER BY workspace", self.table("states"));
            let rows = self.with_client("list the workspaces", async |c| c.query(&sql, &[&self.tenant]).await).await?;
            Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
        }
        .boxed()
    }

    fn delete(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let sql = format!(
                "WITH a AS (DELETE FROM {} WHERE tenant = $1 AND workspace = $2),
                      b AS (DELETE FROM {} WHERE tenant = $1 AND workspace = $2)
                 DELETE FROM {} WHERE tenant = $1 AND workspace = $2",
                self.table("states"),
                self.table("journal"),
                self.table("locks")
            );
            self.with_client("delete the workspace", async |c| c.execute(&sql, &[&self.tenant, &self.workspace]).await)
                .await
                .map(drop)
        }
        .boxed()
    }
}
