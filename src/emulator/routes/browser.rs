//! Browser providers, policies and enrollments (`govapi.md` §4.3–4.5).
//!
//! All three are upserts. Providers are keyed by their `provider` slug; policies and
//! enrollments by an id the client may choose and the server generates when absent. None has
//! a delete: clients soft-delete with `enabled: false`, `active: false` or
//! `status: "disabled"`, and such rows stay listed. Lists keep a deterministic order: providers
//! by slug, policies and enrollments by creation.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{thoth, Answer, AppState, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, QueryParams};
use crate::emulator::store::model::{BrowserEnrollment, BrowserPolicy, BrowserProvider};

const PROVIDER_STATUSES: &[&str] = &["connected", "degraded", "disconnected"];
const POLICY_MODES: &[&str] = &["monitor", "enforce"];
const ENROLLMENT_STATUSES: &[&str] = &["active", "pending", "disabled"];

/// Who a row was created or updated by when the request does not say.
const DEFAULT_ACTOR: &str = "api";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/browser/providers"), get(list_providers).post(upsert_provider))
        .route(&thoth("/browser/policies"), get(list_policies).post(upsert_policy))
        .route(&thoth("/browser/enrollments"), get(list_enrollments).post(upsert_enrollment))
}

/// `GET T/browser/providers`: every row, sorted by `provider`.
async fn list_providers(tenant: Tenant) -> Json<Value> {
    let rows = tenant.read(|t| t.browser_providers.values().map(render_provider).collect::<Vec<_>>()).await;
    Json(json!({ "data": rows }))
}

/// `POST T/browser/providers`: creates or updates the row named by `provider`.
///
/// `enabled` defaults to `true`. `name`, `status`, `last_error` and `config` keep their stored
/// values when absent; a new row starts with `name: ""`, no status (the contract does not say
/// the server sets one, and the provider reports an invented one as an inconsistent result), no
/// error and an empty `config`. `config` holds credentials: it is never returned, and kept
/// only as digests.
async fn upsert_provider(tenant: Tenant, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let provider = fields.req_str("provider")?;
    let name = fields.opt_str("name")?;
    let enabled = fields.opt_bool("enabled")?.unwrap_or(true);
    let status = fields.opt_enum("status", PROVIDER_STATUSES)?;
    let last_error = fields.opt_str("last_error")?;
    let config = fields.opt_object("config")?;
    let guesses = tenant.guesses();
    let row = tenant
        .mutate(move |t| {
            let now = clock::now();
            let row = t.browser_providers.get_or_insert_with(&provider.clone(), || BrowserProvider {
                provider,
                name: String::new(),
                enabled: true,
                status: guesses.then(|| "connected".to_owned()),
                config: Map::new(),
                echoed: None,
                last_error: None,
                created_at: now.clone(),
                updated_at: now.clone(),
            });
            if let Some(name) = name {
                row.name = name;
            }
            row.enabled = enabled;
            if let Some(status) = status {
                row.status = Some(status);
            }
            if let Some(last_error) = last_error {
                row.last_error = Some(last_error);
            }
            if let Some(config) = config {
                row.echoed = guesses.then(|| config.clone());
                row.config = crate::emulator::store::config_at_rest(config);
            }
            row.updated_at = now;
            Ok(render_provider(row))
        })
        .await?;
    Ok(Json(row))
}

/// `GET T/browser/policies?provider=`: rows in creation order, filtered by provider.
async fn list_policies(tenant: Tenant, query: QueryParams) -> Json<Value> {
    let rows = tenant
        .read(|t| {
            t.browser_policies
                .iter()
                .filter(|row| query.allows("provider", &row.provider))
                .map(render_policy)
                .collect::<Vec<_>>()
        })
        .await;
    Json(json!({ "data": rows }))
}

/// `POST T/browser/policies`: creates or updates the policy named by `policy_id`.
///
/// `name`, `provider` and `policy` are required on every call (the clients' soft delete sends
/// them too). A `policy_id` that does not exist yet creates a row with that id. `active`
/// defaults to `true`. `enforcement_mode` and `metadata` keep their stored values when absent;
/// a new row starts in `monitor` mode, the choice that cannot block anyone by surprise.
/// `version` is stored when given; otherwise it starts at 1 and goes up by one whenever the
/// name, provider, policy, mode, active flag or metadata change.
async fn upsert_policy(tenant: Tenant, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let policy_id = fields.opt_non_empty_str("policy_id")?;
    let name = fields.req_str("name")?;
    let provider = fields.req_str("provider")?;
    let policy = fields
        .opt_object("policy")?
        .ok_or_else(|| ApiError::invalid("`policy` is required and must be a JSON object"))?;
    let enforcement_mode = fields.opt_enum("enforcement_mode", POLICY_MODES)?;
    let active = fields.opt_bool("active")?.unwrap_or(true);
    let version = fields.opt_u64("version")?;
    let metadata = fields.opt_object("metadata")?;
    let guesses = tenant.guesses();
    let created_by = fields.opt_non_empty_str("created_by")?;
    let updated_by = fields.opt_non_empty_str("updated_by")?;
    let policy_id = match policy_id {
        Some(id) => id,
        None => clock::new_id("pol_")?,
    };
    let row = tenant
        .mutate(move |t| {
            let now = clock::now();
            let existing = t.browser_policies.find_mut(|row| row.policy_id == policy_id);
            let Some(row) = existing else {
                let row = BrowserPolicy {
                    policy_id,
                    name,
                    provider,
                    enforcement_mode: enforcement_mode.unwrap_or_else(|| "monitor".to_owned()),
                    active,
                    version: version.unwrap_or(1),
                    policy,
                    metadata: metadata.clone().or_else(|| guesses.then(Map::new)),
                    created_by: created_by.clone().unwrap_or_else(|| DEFAULT_ACTOR.to_owned()),
                    updated_by: updated_by.or(created_by).unwrap_or_else(|| DEFAULT_ACTOR.to_owned()),
                    created_at: now.clone(),
                    updated_at: now,
                };
                let rendered = render_policy(&row);
                t.browser_policies.push(row);
                return Ok(rendered);
            };
            let before = policy_content(row);
            row.name = name;
            row.provider = provider;
            row.policy = policy;
            if let Some(mode) = enforcement_mode {
                row.enforcement_mode = mode;
            }
            row.active = active;
            if let Some(metadata) = metadata {
                row.metadata = Some(metadata);
            }
            let changed = policy_content(row) != before;
            row.version = match version {
                Some(version) => version,
                None if changed => row.version.saturating_add(1),
                None => row.version,
            };
            if let Some(created_by) = created_by {
                row.created_by = created_by;
            }
            row.updated_by = updated_by.unwrap_or_else(|| DEFAULT_ACTOR.to_owned());
            row.updated_at = now;
            Ok(render_policy(row))
        })
        .await?;
    Ok(Json(row))
}

/// The fields whose change makes a new policy version, as one comparable value.
fn policy_content(row: &BrowserPolicy) -> Value {
    json!([row.name, row.provider, row.policy, row.enforcement_mode, row.active, row.metadata])
}

/// `GET T/browser/enrollments?provider=&status=`: rows in creation order, filtered.
async fn list_enrollments(tenant: Tenant, query: QueryParams) -> Json<Value> {
    let rows = tenant
        .read(|t| {
            t.browser_enrollments
                .iter()
                .filter(|row| query.allows("provider", &row.provider))
                .filter(|row| query.allows("status", &row.status))
                .map(render_enrollment)
                .collect::<Vec<_>>()
        })
        .await;
    Json(json!({ "data": rows }))
}

/// `POST T/browser/enrollments`: creates or updates the enrollment named by `enrollment_id`.
///
/// `provider`, `user_id` and `device_id` are required on every call. Without an
/// `enrollment_id` a new row is always created, even for a known provider, user and device
/// (UNSURE in `govapi.md` §4.5; this is its recommendation). `status` (default `active`),
/// `browser_profile`, `last_seen_at` (RFC 3339) and `metadata` keep their stored values when
/// absent.
async fn upsert_enrollment(tenant: Tenant, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let enrollment_id = fields.opt_non_empty_str("enrollment_id")?;
    let provider = fields.req_str("provider")?;
    let user_id = fields.req_str("user_id")?;
    let device_id = fields.req_str("device_id")?;
    let browser_profile = fields.opt_str("browser_profile")?;
    let status = fields.opt_enum("status", ENROLLMENT_STATUSES)?;
    let last_seen_at = fields.opt_str("last_seen_at")?;
    if let Some(at) = &last_seen_at {
        if !clock::is_rfc3339(at) {
            return Err(ApiError::invalid(format!("`last_seen_at` must be an RFC 3339 timestamp, got {at:?}")));
        }
    }
    let metadata = fields.opt_object("metadata")?;
    let guesses = tenant.guesses();
    let enrollment_id = match enrollment_id {
        Some(id) => id,
        None => clock::new_id("enr_")?,
    };
    let row = tenant
        .mutate(move |t| {
            let now = clock::now();
            let existing = t.browser_enrollments.find_mut(|row| row.enrollment_id == enrollment_id);
            let Some(row) = existing else {
                let row = BrowserEnrollment {
                    enrollment_id,
                    provider,
                    user_id,
                    device_id,
                    browser_profile,
                    status: status.unwrap_or_else(|| "active".to_owned()),
                    last_seen_at,
                    metadata: metadata.clone().or_else(|| guesses.then(Map::new)),
                    created_at: now.clone(),
                    updated_at: now,
                };
                let rendered = render_enrollment(&row);
                t.browser_enrollments.push(row);
                return Ok(rendered);
            };
            row.provider = provider;
            row.user_id = user_id;
            row.device_id = device_id;
            if browser_profile.is_some() {
                row.browser_profile = browser_profile;
            }
            if let Some(status) = status {
                row.status = status;
            }
            if last_seen_at.is_some() {
                row.last_seen_at = last_seen_at;
            }
            if let Some(metadata) = metadata {
                row.metadata = Some(metadata);
            }
            row.updated_at = now;
            Ok(render_enrollment(row))
        })
        .await?;
    Ok(Json(row))
}

/// A browser provider row as GovAPI returns it: without `config`, which is write-only (the
/// provider sends it and reports a returned one as an inconsistent result), and with a status
/// only when a client set one.
fn render_provider(row: &BrowserProvider) -> Value {
    let mut out = json!({
        "provider": row.provider,
        "name": row.name,
        "enabled": row.enabled,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    });
    if let (Some(status), Some(map)) = (&row.status, out.as_object_mut()) {
        map.insert("status".to_owned(), json!(status));
    }
    if let (Some(config), Some(map)) = (&row.echoed, out.as_object_mut()) {
        map.insert("config".to_owned(), Value::Object(config.clone()));
    }
    out
}

/// Adds `metadata` to a rendered row when a request gave it.
fn with_metadata(mut row: Value, metadata: Option<&Map<String, Value>>) -> Value {
    if let (Some(m), Some(map)) = (metadata, row.as_object_mut()) {
        map.insert("metadata".to_owned(), Value::Object(m.clone()));
    }
    row
}

/// A browser policy row as GovAPI returns it.
///
/// `compiled_policy` stands for the provider-native compilation the real server produces;
/// the emulator derives it deterministically from the stored fields.
fn render_policy(row: &BrowserPolicy) -> Value {
    let rendered = json!({
        "policy_id": row.policy_id,
        "name": row.name,
        "provider": row.provider,
        "enforcement_mode": row.enforcement_mode,
        "active": row.active,
        "version": row.version,
        "policy": row.policy,
        "compiled_policy": {
            "provider": row.provider,
            "enforcement_mode": row.enforcement_mode,
            "rules": row.policy,
        },
        "created_by": row.created_by,
        "updated_by": row.updated_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    });
    with_metadata(rendered, row.metadata.as_ref())
}

/// A browser enrollment row as GovAPI returns it.
fn render_enrollment(row: &BrowserEnrollment) -> Value {
    let rendered = json!({
        "enrollment_id": row.enrollment_id,
        "provider": row.provider,
        "user_id": row.user_id,
        "device_id": row.device_id,
        "browser_profile": row.browser_profile,
        "status": row.status,
        "last_seen_at": row.last_seen_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    });
    with_metadata(rendered, row.metadata.as_ref())
}
