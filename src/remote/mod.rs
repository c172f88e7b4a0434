//! The GovAPI client: transport (base URL, auth headers, provenance headers, retries, error
//! bodies) and one module per lifecycle kind.
//!
//! This module speaks HTTP and JSON only. It never prints and never decides what to change;
//! `plan` decides and `apply` calls the lifecycle functions here.

pub mod bundle;
pub mod data;
pub mod mapping;
pub mod operation;
pub mod settings;
pub mod snapshot;
pub mod upsert;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::value::RawValue;
use serde_json::Value as Json;

pub use snapshot::Snapshot;

/// How the client authenticates: exactly one mode.
#[derive(Clone)]
pub enum Auth {
    /// An org API key sent as `X-Api-Key`.
    ApiKey(String),
    /// An admin bearer token sent as `Authorization: Bearer`.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credential itself is never formatted.
        match self {
            Auth::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Resolved connection settings.
#[derive(Debug, Clone)]
pub struct Connection {
    pub tenant_id: String,
    pub base_url: String,
    pub auth: Auth,
    pub retry: Retry,
    pub timeout: Duration,
    pub insecure_skip_tls_verify: bool,
    /// A PEM bundle of certificate authorities trusted besides the public ones (`ca_file`
    /// in the provider block, or `SSL_CERT_FILE`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// The retry schedule of `govapi.md` §1.5: `base * 2^(n-1)` capped at `max`, `attempts` tries
/// in all, only for idempotent calls.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 4, base: Duration::from_millis(300), max: Duration::from_millis(5000) }
    }
}

impl Retry {
    fn delay(&self, retry: u32) -> Duration {
        let base = self.base.min(self.max);
        base.saturating_mul(1 << retry.saturating_sub(1).min(16)).min(self.max)
    }
}

/// The three path roots of the API.
#[derive(Debug, Clone, Copy)]
pub enum Root {
    Thoth,
    Governance,
    Billing,
}

/// Whether a call may be repeated without changing the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotent {
    /// Retried on 429, 5xx and transport errors (GETs, PUTs, keyed upserts).
    Yes,
    /// An action whose repetition is what the next apply would do anyway (a sync, a test
    /// delivery, a backfill): retried as an idempotent call, within this apply.
    Repeatable,
    /// Retried only when the control plane refused it before doing anything (429).
    No,
}

#[derive(Debug, Clone)]
pub enum ApiError {
    /// The control plane answered with a non-success status.
    Status { method: String, path: String, status: u16, code: Option<String>, message: String },
    /// No answer: connection refused, reset, timed out. Unless `sent` is false (the
    /// connection was never made), the request may or may not have been carried out.
    Transport { method: String, path: String, message: String, sent: bool },
    /// A success answer whose body is not what the contract says.
    Decode { method: String, path: String, message: String },
    /// A redirect, which is never followed: the request (and its credential) is not sent
    /// again anywhere.
    Redirect { method: String, path: String, status: u16, location: String },
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Status { status: 404, .. })
    }

    /// Whether the call may have been carried out although it failed: no answer after the
    /// request was sent, or a server error.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            ApiError::Transport { sent, .. } => *sent,
            ApiError::Status { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            ApiError::Decode { .. } | ApiError::Redirect { .. } => false,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Status { status: 429, .. }) || self.is_ambiguous()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Status { method, path, status, code, message } => {
                write!(f, "{method} {path} failed with HTTP {status}")?;
                if let Some(c) = code {
                    write!(f, " ({c})")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            ApiError::Transport { method, path, message, .. } => write!(f, "{method} {path} got no answer: {message}"),
            ApiError::Decode { method, path, message } => {
                write!(f, "{method} {path} answered with an unexpected body: {message}")
            }
            ApiError::Redirect { method, path, status, location } => write!(
                f,
                "{method} {path} answered HTTP {status}, a redirect to {location}: thoth follows no redirect and sent nothing there; set the API base URL to where the control plane really is"
            ),
        }
    }
}

impl std::error::Error for ApiError {}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    tenant: String,
    auth: Auth,
    retry: Retry,
    calls: Arc<AtomicUsize>,
    /// Shared by every clone: at most `MAX_IN_FLIGHT` requests are sent at once, so that a
    /// refresh of hundreds of lists neither opens hundreds of connections nor holds hundreds
    /// of response buffers.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Shared by every clone: when the control plane asks to slow down (`Retry-After`), no
    /// worker sends anything before this instant.
    pause_until: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
    /// Data sources already read in this run, by type and inputs: a data source is read once
    /// per run, however often the configuration is evaluated.
    pub(crate) data_reads: Arc<std::sync::Mutex<data::Reads>>,
}

/// The most requests in flight at once, over every task of a run.
pub const MAX_IN_FLIGHT: usize = 64;

/// The longest `Retry-After` honoured; a larger value is capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Throttled answers waited out beyond the attempts of the retry schedule. The provider counts
/// a 429 as a failed attempt (`govapi.md` §1.5) and gives up after four in a row; a 429 is a
/// refusal before anything was done, so thoth waits it out, up to this many times per call,
/// rather than fail a change because the control plane asked it to slow down.
const THROTTLED_RETRIES: u32 = 8;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("tenant", &self.tenant).finish_non_exhaustive()
    }
}

/// The value sent as `X-Aten-Provisioned-Via`. The contract only shows `terraform`, `pulumi`
/// and `kubernetes_operator`; whether the server checks an allow-list is unknown, so thoth
/// names itself, as the contract recommends, rather than impersonating another tool.
const PROVISIONED_VIA: &str = "thoth";

impl Client {
    pub fn new(conn: &Connection) -> Result<Client, String> {
        check_base_url(&conn.base_url)?;
        let version = env!("CARGO_PKG_VERSION");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::ACCEPT, reqwest::header::HeaderValue::from_static("application/json"));
        headers.insert("X-Aten-Provisioned-Via", reqwest::header::HeaderValue::from_static(PROVISIONED_VIA));
        headers.insert("X-Aten-Provisioner", reqwest::header::HeaderValue::from_static("thoth"));
        headers.insert("X-Aten-Provisioner-Version", reqwest::header::HeaderValue::from_static(version));
        let mut builder = reqwest::Client::builder()
            .user_agent(format!("thoth/{version}"))
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            .timeout(conn.timeout)
            // A redirect would re-send the credential, and a body with secrets, to a host
            // nobody configured: it is answered as an error instead.
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(conn.insecure_skip_tls_verify);
        // Plain HTTP only ever goes to this machine, which no proxy stands in front of.
        if conn.base_url.trim().starts_with("http://") {
            builder = builder.no_proxy();
        }
        if let Some(path) = &conn.ca_file {
            for cert in read_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base: conn.base_url.trim().trim_end_matches('/').to_owned(),
            tenant: conn.tenant_id.clone(),
            auth: conn.auth.clone(),
            retry: conn.retry,
            calls: Arc::new(AtomicUsize::new(0)),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
            pause_until: Arc::new(std::sync::Mutex::new(None)),
            data_reads: Arc::default(),
        })
    }

    /// Forgets the data sources read so far, so that the next reads see the tenant anew.
    pub fn forget_data_reads(&self) {
        if let Ok(mut reads) = self.data_reads.lock() {
            reads.clear();
        }
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The delay before retry `n` (1-based) of the schedule.
    pub fn retry_delay(&self, n: u32) -> Duration {
        self.retry.delay(n)
    }

    /// How many tries a retried call gets in all.
    pub fn retry_attempts(&self) -> u32 {
        self.retry.attempts.max(1)
    }

    /// Waits while the control plane asked every client to slow down.
    async fn respect_pause(&self) {
        let until = self.pause_until.lock().ok().and_then(|g| *g);
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    fn pause_for(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait.min(MAX_RETRY_AFTER);
        if let Ok(mut guard) = self.pause_until.lock() {
            if guard.is_none_or(|current| current < until) {
                *guard = Some(until);
            }
        }
    }

    /// How many HTTP requests were sent, retries included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Sends one call and decodes its JSON object body (`None` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        root: Root,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
        idempotent: Idempotent,
    ) -> Result<Option<Json>, ApiError> {
        let (text, display_path) = self.send(&method, root, path, query, body, idempotent).await?;
        decode(&method, &display_path, &text)
    }

    /// Sends one call, with retries where it is safe; the body of a successful answer, and the
    /// path as shown in errors.
    async fn send(
        &self,
        method: &Method,
        root: Root,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Json>,
        idempotent: Idempotent,
    ) -> Result<(String, String), ApiError> {
        let root_segment = match root {
            Root::Thoth => "thoth",
            Root::Governance => "governance",
            Root::Billing => "billing",
        };
        let display_path = format!("/{}/{root_segment}/{path}", self.tenant);
        let url = format!("{}{display_path}", self.base);
        let mut query: Vec<(&str, &str)> = query.iter().filter(|(_, v)| !v.is_empty()).copied().collect();
        query.sort_unstable();
        let attempts = self.retry.attempts.max(1);
        let repeatable = idempotent != Idempotent::No;
        let (mut attempt, mut throttled) = (0, 0);
        loop {
            attempt += 1;
            self.respect_pause().await;
            let mut req = self.http.request(method.clone(), &url).query(&query);
            req = match &self.auth {
                Auth::ApiKey(k) => req.header("X-Api-Key", k),
                Auth::Bearer(t) => req.bearer_auth(t),
            };
            if let Some(b) = body {
                req = req.json(b);
            }
            // The permit is held until the answer is read, and released before a retry waits.
            let permit = self.in_flight.acquire().await.ok();
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut retry_after = None;
            let began = std::time::Instant::now();
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    // The method, path and status only: never a header, a query value or a body.
                    tracing::debug!(
                        "{method} {display_path}: {} in {} ms (attempt {attempt})",
                        status.as_u16(),
                        began.elapsed().as_millis()
                    );
                    // `Retry-After`, on throttling and unavailability: every worker of this
                    // client waits that long (capped).
                    retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(retry_after_of)
                        .filter(|_| matches!(status.as_u16(), 429 | 503));
                    if let Some(wait) = retry_after {
                        self.pause_for(wait);
                    }
                    if status.is_redirection() {
                        let location = resp
                            .headers()
                            .get(reqwest::header::LOCATION)
                            .and_then(|v| v.to_str().ok())
                            .map_or_else(|| "no `Location`".to_owned(), location_host);
                        return Err(ApiError::Redirect {
                            method: method.to_string(),
                            path: display_path,
                            status: status.as_u16(),
                            location,
                        });
                    }
                    match read_body(resp).await {
                        Ok(text) if status.is_success() => return Ok((text, display_path)),
                        Ok(text) => {
                            // A 429 is a refusal before anything was done: any call may be sent
                            // again. Server errors may hide work done, so only repeatable calls
                            // are.
                            let retryable = status.as_u16() == 429
                                || (repeatable && matches!(status.as_u16(), 500 | 502 | 503 | 504));
                            (error_from_body(method, &display_path, status.as_u16(), &text), retryable)
                        }
                        // An answer cut short is no answer: never an empty one.
                        Err(message) => (
                            ApiError::Transport {
                                method: method.to_string(),
                                path: display_path.clone(),
                                message,
                                sent: true,
                            },
                            repeatable,
                        ),
                    }
                }
                Err(e) => {
                    let retryable =
                        repeatable && (e.is_timeout() || (e.is_request() && !e.is_connect()) || is_reset(&e));
                    tracing::debug!("{method} {display_path}: {} (attempt {attempt})", transport_message(&e));
                    (
                        ApiError::Transport {
                            method: method.to_string(),
                            path: display_path.clone(),
                            message: transport_message(&e),
                            sent: !e.is_connect(),
                        },
                        retryable,
                    )
                }
            };
            drop(permit);
            match outcome {
                (ApiError::Status { status: 429, .. }, _) if throttled < THROTTLED_RETRIES => {
                    throttled += 1;
                    attempt -= 1;
                    tokio::time::sleep(retry_after.unwrap_or_else(|| self.retry.delay(throttled)).min(MAX_RETRY_AFTER))
                        .await;
                }
                (_, true) if attempt < attempts => {
                    tokio::time::sleep(
                        retry_after.unwrap_or_default().max(self.retry.delay(attempt)).min(MAX_RETRY_AFTER),
                    )
                    .await;
                }
                (err, _) => return Err(err),
            }
        }
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Option<Json>, ApiError> {
        self.call(Method::GET, Root::Thoth, path, query, None, Idempotent::Yes).await
    }

    /// The rows of a list answer (`{"<key>": [...]}`), each still JSON text. A list of
    /// thousands of rows is then never one parsed tree in memory: callers parse a row at a
    /// time.
    pub async fn get_list(&self, path: &str, key: &str) -> Result<Vec<Box<RawValue>>, ApiError> {
        let (text, display_path) = self.send(&Method::GET, Root::Thoth, path, &[], None, Idempotent::Yes).await?;
        list_items(&text, key).map_err(|message| ApiError::Decode {
            method: "GET".to_owned(),
            path: display_path,
            message,
        })
    }
}

fn is_reset(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        source = s.source();
    }
    false
}

/// A transport error's chain of causes, without the URL (which is already in the message).
fn transport_message(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// The longest answer read: a bigger one is refused rather than held in memory.
pub const MAX_BODY: usize = 256 << 20;

/// Reads an answer's body in full, or says why it could not: the connection closed before
/// its `Content-Length`, the request's timeout passed while it trickled, it grew past
/// `MAX_BODY`, or it is not UTF-8.
async fn read_body(mut resp: reqwest::Response) -> Result<String, String> {
    let mut bytes = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_BODY {
                    return Err(format!("the answer is larger than {} MiB", MAX_BODY >> 20));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(format!("the answer was cut short: {}", transport_message(&e))),
        }
    }
    String::from_utf8(bytes).map_err(|_| "the answer is not UTF-8 text".to_owned())
}

/// A `Retry-After` value: whole seconds or an HTTP date. Negative, fractional and garbage
/// values are ignored (the retry schedule applies); a date in the past is no wait.
fn retry_after_of(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = crate::state::parse_http_date(text)?;
    Some(Duration::from_secs(at.saturating_sub(crate::state::now_unix())))
}

/// The scheme and host a redirect points to, without its path, query or user information.
fn location_host(location: &str) -> String {
    match reqwest::Url::parse(location) {
        Ok(url) => format!("`{}://{}`", url.scheme(), url.host_str().unwrap_or_default()),
        Err(_) => "a relative location on the same host".to_owned(),
    }
}

/// The certificate authorities of a PEM bundle.
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the CA file `{}`: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("the CA file `{}` is not a PEM bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("the CA file `{}` holds no certificate", path.display()));
    }
    Ok(certs)
}

fn decode(method: &Method, path: &str, text: &str) -> Result<Option<Json>, ApiError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Null) => Ok(None),
        Ok(v @ Json::Object(_)) => Ok(Some(v)),
        Ok(_) => Err(ApiError::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            message: "expected a JSON object".to_owned(),
        }),
        Err(e) => Err(ApiError::Decode { method: method.to_string(), path: path.to_owned(), message: e.to_string() }),
    }
}

/// Reads the contract's error body `{error, message | error_description}`; anything else
/// is kept as raw text, shortened.
fn error_from_body(method: &Method, path: &str, status: u16, text: &str) -> ApiError {
    let parsed: Option<serde_json::Map<String, Json>> = serde_json::from_str(text).ok();
    let (code, message) = match parsed {
        Some(map) => (
            map.get("error").and_then(Json::as_str).map(shown),
            shown(
                map.get("message").or_else(|| map.get("error_description")).and_then(Json::as_str).unwrap_or_default(),
            ),
        ),
        None => (None, shown(text)),
    };
    ApiError::Status { method: method.to_string(), path: path.to_owned(), status, code, message }
}

/// The longest part of an error body shown.
const SHOWN_ERROR: usize = 300;

/// Text from the server as an error may show it: every secret of this run replaced, control
/// characters (terminal escapes) written as escapes, and cut to `SHOWN_ERROR` characters.
fn shown(text: &str) -> String {
    let clean = crate::redact::clean(text);
    let mut out = String::new();
    for (n, c) in clean.chars().enumerate() {
        if n == SHOWN_ERROR {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// TLS is required except towards this machine. The rule is checked on the host as the
/// URL parser reads it, so that user information (`http://localhost:80@10.1.2.3`) cannot
/// pass for a loopback address; a URL with user information is refused outright, as a
/// credential belongs in the provider block.
fn check_base_url(base: &str) -> Result<(), String> {
    let base = base.trim();
    let url = reqwest::Url::parse(base).map_err(|e| format!("the API base URL is not a URL ({e})"))?;
    let host = url.host_str().unwrap_or_default().to_owned();
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "the API base URL to `{host}` carries a user name or password: give the credential in the provider block or the environment instead"
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = bare.eq_ignore_ascii_case("localhost")
                || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "refusing plain `http://` to `{host}`: use `https://` (plain HTTP is only allowed to this machine)"
                ))
            }
        }
        other => Err(format!("the API base URL must start with `https://`, not `{other}://`")),
    }
}

/// The items of a list answer's text, unparsed; as `list_rows`, an empty answer or a missing
/// or null list has none.
fn list_items(text: &str, key: &str) -> Result<Vec<Box<RawValue>>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let envelope: Option<std::collections::HashMap<String, &RawValue>> =
        serde_json::from_str(text).map_err(|_| "expected a JSON object".to_owned())?;
    match envelope.as_ref().and_then(|e| e.get(key)) {
        None => Ok(Vec::new()),
        Some(list) if list.get() == "null" => Ok(Vec::new()),
        Some(list) => serde_json::from_str(list.get()).map_err(|_| format!("`{key}` is not an array")),
    }
}

/// A list item as an object; an item that is not one makes the whole read fail, naming it,
/// since a row dropped would read as an object deleted outside thoth.
pub fn row_of(item: &RawValue, index: usize) -> Result<serde_json::Map<String, Json>, String> {
    serde_json::from_str(item.get()).map_err(|_| format!("row {} of the list is not an object", index + 1))
}

impl Client {
    /// The error of a list read whose row `index` (0-based) cannot be taken as it is.
    pub fn bad_row(&self, path: &str, index: usize, row: &serde_json::Map<String, Json>, why: &str) -> ApiError {
        let id = ["id", "slug", "key", "provider", "name"].iter().find_map(|k| row.get(*k).and_then(Json::as_str));
        let named = id.map(|id| format!(" (`{}`)", shown(id))).unwrap_or_default();
        ApiError::Decode {
            method: "GET".to_owned(),
            path: format!("/{}/thoth/{path}", self.tenant),
            message: format!("row {}{named} of the list {why}; nothing was taken from this answer", index + 1),
        }
    }

    /// The error of a list read whose answer is no list of objects.
    pub fn bad_list(&self, path: &str, message: String) -> ApiError {
        ApiError::Decode { method: "GET".to_owned(), path: format!("/{}/thoth/{path}", self.tenant), message }
    }
}

/// Extracts an array from a list response by its envelope key; a missing key is an empty list.
pub fn list_rows(body: Option<Json>, key: &str) -> Result<Vec<Json>, String> {
    match body {
        None => Ok(Vec::new()),
        Some(Json::Object(mut map)) => match map.remove(key) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(Json::Array(items)) => match items.iter().position(|i| !i.is_object()) {
                Some(n) => Err(format!("row {} of `{key}` is not an object", n + 1)),
                None => Ok(items),
            },
            Some(_) => Err(format!("`{key}` is not an array")),
        },
        Some(_) => Err("expected a JSON object".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_stay_text() {
        let items = list_items(r#"{"data": [{"id": "a"}, {"id": "b", "n": [1, 2]}], "total": 2}"#, "data").unwrap();
        let texts: Vec<&str> = items.iter().map(|i| i.get()).collect();
        assert_eq!(texts, [r#"{"id": "a"}"#, r#"{"id": "b", "n": [1, 2]}"#]);
        assert!(list_items("", "data").unwrap().is_empty());
        assert!(list_items(r#"{"other": []}"#, "data").unwrap().is_empty());
        assert!(list_items(r#"{"data": null}"#, "data").unwrap().is_empty());
        assert_eq!(list_items(r#"{"data": 3}"#, "data").unwrap_err(), "`data` is not an array");
        assert_eq!(list_items("[1]", "data").unwrap_err(), "expected a JSON object");
    }

    #[test]
    fn retry_schedule_matches_the_contract() {
        let r = Retry::default();
        let delays: Vec<u128> = (1..=4).map(|n| r.delay(n).as_millis()).collect();
        assert_eq!(delays, vec![300, 600, 1200, 2400]);
        let capped = Retry { attempts: 10, base: Duration::from_millis(300), max: Duration::from_millis(1000) };
        assert_eq!(capped.delay(5).as_millis(), 1000);
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:1/prefix").is_ok());
        assert!(check_base_url("http://[::1]:9/").is_ok());
        assert!(check_base_url("http://grid.acme.example.com").is_err());
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("https://grid.acme.atensecurity.com").is_ok());
        // The host is the one after the user information.
        for sneaky in [
            "http://localhost:80@10.1.2.3",
            "http://127.0.0.1@evil.example",
            "http://[::1]:1@10.0.0.1/",
            "https://user:pw@grid.acme.example",
        ] {
            let refusal = check_base_url(sneaky).unwrap_err();
            assert!(!refusal.contains("pw"), "{refusal}");
        }
        assert!(check_base_url("http://127.1.2.3:9").is_ok());
    }

    #[test]
    fn retry_after_values() {
        assert_eq!(retry_after_of("0"), Some(Duration::ZERO));
        assert_eq!(retry_after_of(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(retry_after_of("18446744073709551615"), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(retry_after_of("-5"), None);
        assert_eq!(retry_after_of("1.5"), None);
        assert_eq!(retry_after_of("soon"), None);
        assert_eq!(retry_after_of("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
    }

    #[test]
    fn error_bodies_are_cleaned_and_cut() {
        crate::redact::add("canary-secret-0042");
        let e = error_from_body(
            &Method::POST,
            "/t/x",
            400,
            &format!("{{\"error\":\"bad\",\"message\":\"echo canary-secret-0042 \\u001b[2J{}\"}}", "x".repeat(500)),
        );
        let text = e.to_string();
        assert!(!text.contains("canary-secret-0042") && text.contains("(sensitive value)"), "{text}");
        assert!(!text.contains('\u{1b}') && text.contains("\\u{1b}"), "{text}");
        assert!(text.len() < 420 && text.ends_with("..."), "{text}");
    }
}
