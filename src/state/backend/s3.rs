//! The `s3` backend: the state is the object `key` (`<workspace_key_prefix>/<workspace>/<key>`
//! for other workspaces), written with `If-Match` on the ETag read (or `If-None-Match: *` for
//! the first write); the journal is objects under `<key>.journal/`, one per append, named so
//! that they list in the order written; the lock is the object `<key>.tflock`, created with
//! `If-None-Match: *` and naming its holder; the backup is `<key>.backup`.
//!
//! Credentials come from the settings, then the standard AWS environment variables (web
//! identity and container credentials included), then the shared credentials and config files
//! for the profile. Plain `http://` endpoints are only accepted towards this machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    ClientOptions, Error as StoreError, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    UpdateVersion,
};

use super::{is_loopback, Attempt, Backend, BackendError, Result, Target, DEFAULT_WORKSPACE};
use crate::config::S3Settings;
use crate::state::lock::LockInfo;

pub(super) struct S3 {
    store: AmazonS3,
    bucket: String,
    key: String,
    state: Path,
    /// The ETag last read or written, for the compare-and-swap; `None` when there was no
    /// state object.
    etag: Mutex<Option<String>>,
    /// Journal objects are named `<time>-<run>-<sequence>`.
    run: String,
    sequence: AtomicU64,
    workspace_key_prefix: String,
    base_key: String,
    /// `use_lockfile = false`: no lock is taken.
    use_lockfile: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Values of one section of an AWS INI file (`[name]`, or `[profile name]` in the config
/// file).
fn ini_section(path: &std::path::Path, section: &str) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let mut current = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_owned());
            continue;
        }
        if current.as_deref() == Some(section) {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
    out
}

fn home_file(rel: &str) -> Option<std::path::PathBuf> {
    env("HOME").map(|h| std::path::Path::new(&h).join(rel))
}

fn classify(what: &str, e: &StoreError) -> BackendError {
    let message = format!("S3: cannot {what}: {e}");
    match e {
        StoreError::Precondition { .. } | StoreError::AlreadyExists { .. } => BackendError::conflict(message),
        StoreError::PermissionDenied { .. }
        | StoreError::Unauthenticated { .. }
        | StoreError::NotSupported { .. }
        | StoreError::NotImplemented { .. }
        | StoreError::InvalidPath { .. }
        | StoreError::UnknownConfigurationKey { .. } => BackendError::other(message),
        _ => BackendError::unavailable(message),
    }
}

fn sibling(path: &Path, suffix: &str) -> Path {
    Path::from(format!("{path}{suffix}"))
}

impl S3 {
    pub(super) fn new(settings: &S3Settings, target: &Target) -> Result<S3> {
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .map(|e| e.trim_end_matches('/').to_owned());
        let profile = settings.profile.clone().or_else(|| env("AWS_PROFILE")).unwrap_or_else(|| "default".to_owned());
        let credential_files: Vec<std::path::PathBuf> = if settings.shared_credentials_files.is_empty() {
            env("AWS_SHARED_CREDENTIALS_FILE")
                .map(Into::into)
                .or_else(|| home_file(".aws/credentials"))
                .into_iter()
                .collect()
        } else {
            settings.shared_credentials_files.iter().map(Into::into).collect()
        };
        let config_files: Vec<std::path::PathBuf> = if settings.shared_config_files.is_empty() {
            env("AWS_CONFIG_FILE").map(Into::into).or_else(|| home_file(".aws/config")).into_iter().collect()
        } else {
            settings.shared_config_files.iter().map(Into::into).collect()
        };
        let config_section = if profile == "default" { "default".to_owned() } else { format!("profile {profile}") };
        let from_files = |key: &str| -> Option<String> {
            let in_creds = credential_files
                .iter()
                .find_map(|f| ini_section(f, &profile).into_iter().find(|(k, _)| k == key).map(|(_, v)| v));
            in_creds.or_else(|| {
                config_files
                    .iter()
                    .find_map(|f| ini_section(f, &config_section).into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
            })
        };
        let region = settings
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| from_files("region"))
            .ok_or_else(|| {
                BackendError::other("the `s3` backend needs a region: set `region`, AWS_REGION or a profile's `region`")
            })?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&settings.bucket).with_region(&region);
        // Explicit settings first, then the environment (which `from_env` read), then the
        // profile in the shared files.
        let key_pair = match (&settings.access_key, &settings.secret_key) {
            (Some(k), Some(s)) => Some((k.clone(), s.clone(), settings.token.clone())),
            _ => None,
        };
        let environment = env("AWS_ACCESS_KEY_ID").is_some() && env("AWS_SECRET_ACCESS_KEY").is_some();
        for name in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            crate::redact::add(&env(name).unwrap_or_default());
        }
        let federated = env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
            || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
            || env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
        let files = match (from_files("aws_access_key_id"), from_files("aws_secret_access_key")) {
            (Some(k), Some(s)) => Some((k, s, from_files("aws_session_token"))),
            _ => None,
        };
        match (key_pair, environment, federated, files) {
            (Some((k, s, t)), ..) | (None, false, false, Some((k, s, t))) => {
                crate::redact::add(&s);
                crate::redact::add(t.as_deref().unwrap_or_default());
                builder = builder.with_access_key_id(k).with_secret_access_key(s);
                if let Some(t) = t {
                    builder = builder.with_token(t);
                }
            }
            (None, true, ..) | (None, false, true, _) => {}
            (None, false, false, None) => {
                return Err(BackendError::other(format!(
                    "no AWS credentials for the `s3` backend: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, use web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN), or give the profile `{profile}` keys in the shared credentials file"
                )))
            }
        }
        let mut allow_http = false;
        if let Some(endpoint) = &endpoint {
            let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
                BackendError::other(format!("the S3 endpoint `{endpoint}` is not a URL: write it as `https://host`"))
            })?;
            let authority = rest.split('/').next().unwrap_or_default();
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = match host.rsplit_once(':') {
                Some((h, port)) if !h.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => h,
                _ => host,
            };
            match scheme {
                "https" => {}
                "http" if is_loopback(host) => allow_http = true,
                "http" => {
                    return Err(BackendError::other(format!(
                        "the S3 endpoint `{endpoint}` is plain HTTP to another machine: thoth sends its state over HTTPS only (plain HTTP is accepted towards this machine)"
                    )))
                }
                other => return Err(BackendError::other(format!("the S3 endpoint scheme `{other}` is not supported"))),
            }
            let endpoint = if settings.use_path_style {
                endpoint.clone()
            } else {
                format!("{scheme}://{}.{rest}", settings.bucket)
            };
            builder = builder.with_endpoint(endpoint);
        }
        builder = builder
            .with_allow_http(allow_http)
            .with_virtual_hosted_style_request(!settings.use_path_style && endpoint.is_some())
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(15),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(30))
                    .with_allow_http(allow_http),
            );
        let store = builder.build().map_err(|e| BackendError::other(format!("the `s3` backend: {e}")))?;
        let key = if target.workspace == DEFAULT_WORKSPACE {
            settings.key.clone()
        } else {
            format!("{}/{}/{}", settings.workspace_key_prefix.trim_end_matches('/'), target.workspace, settings.key)
        };
        Ok(S3 {
            store,
            bucket: settings.bucket.clone(),
            state: Path::from(key.as_str()),
            key,
            etag: Mutex::new(None),
            run: crate::state::hex(&crate::state::random_bytes::<4>()),
            sequence: AtomicU64::new(0),
            workspace_key_prefix: settings.workspace_key_prefix.trim_end_matches('/').to_owned(),
            base_key: settings.key.clone(),
            use_lockfile: settings.use_lockfile,
        })
    }

    fn journal_prefix(&self) -> Path {
        sibling(&self.state, ".journal")
    }

    fn lock_object(&self) -> Path {
        sibling(&self.state, ".tflock")
    }

    async fn get(&self, what: &str, path: &Path) -> Result<Option<(Vec<u8>, Option<String>)>> {
        match self.store.get(path).await {
            Ok(result) => {
                let etag = result.meta.e_tag.clone();
                let bytes = result.bytes().await.map_err(|e| classify(what, &e))?;
                Ok(Some((bytes.to_vec(), etag)))
            }
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(classify(what, &e)),
        }
    }

    /// Creates an object that must not exist yet. A create sent again after a lost answer
    /// finds its own bytes there, which is success.
    async fn create(&self, what: &str, path: &Path, bytes: Vec<u8>) -> Result<Option<String>> {
        let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.store.put_opts(path, PutPayload::from(bytes.clone()), options).await {
            Ok(put) => Ok(put.e_tag),
            Err(e @ (StoreError::AlreadyExists { .. } | StoreError::Precondition { .. })) => {
                match self.get(what, path).await? {
                    Some((there, etag)) if there == bytes => Ok(etag),
                    _ => Err(classify(what, &e)),
                }
            }
            Err(e) => Err(classify(what, &e)),
        }
    }

    async fn list(&self, what: &str, prefix: &Path) -> Result<Vec<Path>> {
        let mut found: Vec<Path> = self
            .store
            .list(Some(prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| classify(what, &e))?;
        found.sort();
        Ok(found)
    }

    async fn remove(&self, what: &str, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(classify(what, &e)),
        }
    }

    async fn lock_holder(&self) -> Result<Option<Option<LockInfo>>> {
        Ok(self.get("read the lock", &self.lock_object()).await?.map(|(bytes, _)| serde_json::from_slice(&bytes).ok()))
    }
}

impl Backend for S3 {
    fn describe(&self) -> String {
        format!("the `s3` backend (`s3://{}/{}`)", self.bucket, self.key)
    }

    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            // Listing the state's own prefix checks the bucket, the credentials and the
            // endpoint without reading anything large.
            self.list("reach the bucket", &self.journal_prefix()).await.map(drop)
        }
        .boxed()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>>> {
        async move {
            let found = self.get("read the state", &self.state).await?;
            let mut etag = self.etag.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match found {
                Some((bytes, tag)) => {
                    *etag = tag;
                    Ok(Some(bytes))
                }
                None => {
                    *etag = None;
                    Ok(None)
                }
            }
        }
        .boxed()
    }

    fn write<'a>(&'a self, bytes: &'a [u8], _lineage: &'a str, _serial: u64) -> BoxFuture<'a, Result<()>> {
        async move {
            let expected = self.etag.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            let conflict = || {
                BackendError::conflict(format!(
                    "the state in {} was changed by another run since this one read it",
                    self.describe()
                ))
            };
            let tag = match expected {
                None => self.create("write the state", &self.state, bytes.to_vec()).await.map_err(|e| {
                    if e.kind == super::ErrorKind::Conflict {
                        conflict()
                    } else {
                        e
                    }
                })?,
                Some(etag) => {
                    let mode = PutMode::Update(UpdateVersion { e_tag: Some(etag), version: None });
                    match self
                        .store
                        .put_opts(&self.state, PutPayload::from(bytes.to_vec()), PutOptions::from(mode))
                        .await
                    {
                        Ok(put) => put.e_tag,
                        Err(StoreError::Precondition { .. }) => match self.get("read the state", &self.state).await? {
                            // Sent again after a lost answer: the object holds what was sent.
                            Some((there, tag)) if there == bytes => tag,
                            _ => return Err(conflict()),
                        },
                        Err(e) => return Err(classify("write the state", &e)),
                    }
                }
            };
            *self.etag.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = tag;
            Ok(())
        }
        .boxed()
    }

    fn write_backup<'a>(&'a self, bytes: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        async move {
            self.store
                .put(&sibling(&self.state, ".backup"), PutPayload::from(bytes.to_vec()))
                .await
                .map(drop)
                .map_err(|e| classify("keep the backup", &e))
        }
        .boxed()
    }

    fn journal_append<'a>(&'a self, lines: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let n = self.sequence.fetch_add(1, Ordering::SeqCst);
            let name = format!("{}/{nanos:020}-{}-{n:08}", self.journal_prefix(), self.run);
            self.create("append to the journal", &Path::from(name), lines.as_bytes().to_vec()).await.map(drop)
        }
        .boxed()
    }

    fn journal_read(&self) -> BoxFuture<'_, Result<String>> {
        async move {
            let mut text = String::new();
            for path in self.list("list the journal", &self.journal_prefix()).await? {
                if let Some((bytes, _)) = self.get("read the journal", &path).await? {
                    text.push_str(&String::from_utf8_lossy(&bytes));
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                }
            }
            Ok(text)
        }
        .boxed()
    }

    fn journal_replace<'a>(&'a self, lines: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let old = self.list("list the journal", &self.journal_prefix()).await?;
            // What is kept is written before the rest goes, so that a kill in between leaves
            // entries twice (which replays the same), never none.
            if !lines.is_empty() {
                self.journal_append(lines).await?;
            }
            for path in old {
                self.remove("compact the journal", &path).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn try_lock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<Attempt>> {
        async move {
            if !self.use_lockfile {
                return Ok(Attempt::Acquired { replaced: None });
            }
            let text = serde_json::to_vec_pretty(info).map_err(|e| BackendError::other(e.to_string()))?;
            match self.create("take the lock", &self.lock_object(), text).await {
                Ok(_) => Ok(Attempt::Acquired { replaced: None }),
                Err(e) if e.kind == super::ErrorKind::Conflict => {
                    Ok(Attempt::Held(self.lock_holder().await?.flatten()))
                }
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn break_lock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            if self.lock_holder().await?.flatten().is_some_and(|h| h.id == id) {
                self.remove("remove the lock", &self.lock_object()).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn unlock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<()>> {
        if !self.use_lockfile {
            return async { Ok(()) }.boxed();
        }
        self.break_lock(&info.id)
    }

    fn force_unlock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<LockInfo>> {
        async move {
            match self.lock_holder().await? {
                None => Err(BackendError::other(format!("{} is not locked", self.describe()))),
                Some(Some(info)) if info.id != id => {
                    Err(BackendError::other(format!("the lock id is `{}`, not `{id}` ({info})", info.id)))
                }
                Some(info) => {
                    self.remove("remove the lock", &self.lock_object()).await?;
                    Ok(info.unwrap_or_else(|| LockInfo::unreadable(id)))
                }
            }
        }
        .boxed()
    }

    fn workspaces(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        async move {
            let prefix = Path::from(self.workspace_key_prefix.as_str());
            let suffix = format!("/{}", self.base_key);
            let mut out: Vec<String> = self
                .list("list the workspaces", &prefix)
                .await?
                .iter()
                .filter_map(|p| {
                    let rest = p.as_ref().strip_prefix(&format!("{prefix}/"))?.strip_suffix(&suffix)?;
                    (!rest.contains('/')).then(|| rest.to_owned())
                })
                .collect();
            out.dedup();
            Ok(out)
        }
        .boxed()
    }

    fn delete(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            for path in self.list("list the journal", &self.journal_prefix()).await? {
                self.remove("delete the journal", &path).await?;
            }
            for path in [self.lock_object(), sibling(&self.state, ".backup"), self.state.clone()] {
                self.remove("delete the workspace", &path).await?;
            }
            Ok(())
        }
        .boxed()
    }
}
