//! API keys scoped to the organization, a fleet, an endpoint or an agent (`govapi.md` §4.8):
//! create, list, revoke, the authorize check and usage metrics.
//!
//! The plaintext key exists only in the create response: the store keeps its SHA-256 and a
//! short prefix, so no later response, log or data file can reveal it. Revoked and expired
//! keys stay listed with `active: false` (UNSURE in `govapi.md` §4.8; clients handle both).
//! Keys are listed in creation order. Plaintext keys look like runtime keys,
//! `thoth_live_<48 hex digits>`.

use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{thoth, Answer, AppState, StatusAnswer, Tenant};
use crate::emulator::auth::constant_time_eq;
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams};
use crate::emulator::store::model::{ApiKey, TenantData};

const SCOPE_LEVELS: &[&str] = &["organization", "fleet", "endpoint", "agent"];
const PERMISSIONS: &[&str] = &["read", "write", "execute"];

/// The longest accepted `ttl_seconds`: ten years.
const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// How many characters of the plaintext the `prefix` shows.
const PREFIX_LEN: usize = 16;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/api-keys"), get(list).post(create))
        // A literal segment wins over `{key_id}`, and key ids always start with `key_`.
        .route(&thoth("/api-keys/metrics"), get(metrics))
        .route(&thoth("/api-keys/{key_id}"), delete(revoke))
        .route(&thoth("/api-keys/{key_id}/authorize"), post(authorize))
}

#[derive(Deserialize)]
struct KeyPath {
    key_id: String,
}

/// `POST T/api-keys`: creates a key and returns its plaintext, once (201).
///
/// `scope_target_id` is required except for organization keys, whose target is `""`. A fleet
/// key must name an existing fleet (400 "fleet does not exist", as a runbook reports); endpoint
/// and agent targets are not checked (UNSURE: the contract only reports the fleet check).
/// `permissions` must be a non-empty list of `read`, `write` and `execute`; duplicates are
/// dropped. `ttl_seconds` (1 s to 10 years) sets `expires_at`; without it the key never
/// expires. A missing `name` stays `null` rather than being made up.
async fn create(tenant: Tenant, body: Body) -> StatusAnswer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let scope_level =
        fields.opt_enum("scope_level", SCOPE_LEVELS)?.ok_or_else(|| ApiError::invalid("`scope_level` is required"))?;
    let scope_target_id = if scope_level == "organization" {
        fields.opt_str("scope_target_id")?.unwrap_or_default()
    } else {
        fields.req_str("scope_target_id")?
    };
    let requested = fields.opt_str_list("permissions")?.unwrap_or_default();
    if requested.is_empty() {
        return Err(ApiError::invalid("`permissions` must list at least one of read, write, execute"));
    }
    let mut permissions: Vec<String> = Vec::new();
    for permission in requested {
        if !PERMISSIONS.contains(&permission.as_str()) {
            return Err(ApiError::invalid(format!(
                "`permissions` may only contain {}, got {permission:?}",
                PERMISSIONS.join(", ")
            )));
        }
        if !permissions.contains(&permission) {
            permissions.push(permission);
        }
    }
    let ttl_seconds = fields.opt_u64("ttl_seconds")?;
    if ttl_seconds.is_some_and(|ttl| ttl == 0 || ttl > MAX_TTL_SECONDS) {
        return Err(ApiError::invalid(format!("`ttl_seconds` must be between 1 and {MAX_TTL_SECONDS}")));
    }
    let name = fields.opt_non_empty_str("name")?;
    let jit_reason = fields.opt_non_empty_str("jit_reason")?;
    let key_id = clock::new_id("key_")?;
    let plaintext = format!("thoth_live_{}", clock::random_hex(24)?);
    let row = ApiKey {
        key_id,
        name,
        prefix: plaintext.chars().take(PREFIX_LEN).collect(),
        key_sha256: clock::sha256_hex(plaintext.as_bytes()),
        scope_level,
        scope_target_id,
        permissions,
        jit_reason,
        ttl_seconds,
        created_at: clock::now(),
        expires_at: ttl_seconds.map(clock::seconds_from_now),
        revoked_at: None,
        last_used_at: None,
        use_count: 0,
    };
    let mut rendered = tenant
        .mutate(move |t| {
            if row.scope_level == "fleet" && !t.fleets.iter().any(|fleet| fleet.fleet_id == row.scope_target_id) {
                return Err(ApiError::invalid(format!("fleet does not exist: {:?}", row.scope_target_id)));
            }
            let rendered = render(&row, &clock::now());
            t.api_keys.push(row);
            Ok(rendered)
        })
        .await?;
    // The plaintext joins the response only here, after the store kept its digest alone.
    if let Value::Object(map) = &mut rendered {
        map.insert("api_key".to_owned(), Value::String(plaintext));
    }
    Ok((StatusCode::CREATED, Json(rendered)))
}

/// `GET T/api-keys`: every key, revoked and expired ones included, under `api_keys`.
async fn list(tenant: Tenant) -> Json<Value> {
    let now = clock::now();
    let rows = tenant.read(|t| t.api_keys.iter().map(|row| render(row, &now)).collect::<Vec<_>>()).await;
    Json(json!({ "api_keys": rows }))
}

/// `DELETE T/api-keys/{key_id}`: revokes the key. Revoking a revoked key answers the same
/// (the call is retried by clients, so it must be idempotent).
async fn revoke(tenant: Tenant, PathParams(KeyPath { key_id }): PathParams<KeyPath>) -> Answer {
    let answer = tenant
        .mutate(move |t| {
            let row = t.api_keys.find_mut(|row| row.key_id == key_id).ok_or_else(|| key_not_found(&key_id))?;
            if row.revoked_at.is_none() {
                row.revoked_at = Some(clock::now());
            }
            Ok(json!({ "revoked": true, "key_id": row.key_id, "revoked_at": row.revoked_at }))
        })
        .await?;
    Ok(Json(answer))
}

/// `POST T/api-keys/{key_id}/authorize`: checks a presented plaintext key against a
/// permission and a resource.
///
/// `valid` means the plaintext matches, the key is not revoked and not expired; the two other
/// checks are `false` whenever the key is not valid. A key's scope covers its own target, and
/// also, through the endpoints' registrations, a fleet key covers the fleet's endpoints and
/// their agents, and an endpoint key covers the endpoint's agents. An organization key covers
/// everything. A valid check counts as a use of the key.
async fn authorize(tenant: Tenant, PathParams(KeyPath { key_id }): PathParams<KeyPath>, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let presented = fields.req_str("api_key")?;
    let permission = fields.req_str("permission")?.to_ascii_lowercase();
    let resource_type = fields.req_str("resource_type")?.to_ascii_lowercase();
    if !SCOPE_LEVELS.contains(&resource_type.as_str()) {
        return Err(ApiError::invalid(format!(
            "`resource_type` must be one of {}, got {resource_type:?}",
            SCOPE_LEVELS.join(", ")
        )));
    }
    let resource_id = fields.opt_str("resource_id")?.unwrap_or_default();
    if resource_type != "organization" && resource_id.trim().is_empty() {
        return Err(ApiError::invalid("`resource_id` is required unless `resource_type` is organization"));
    }
    let presented_digest = clock::sha256_hex(presented.trim().as_bytes());
    let answer = tenant
        .mutate(move |t| {
            let now = clock::now();
            let index = t.api_keys.iter().position(|row| row.key_id == key_id).ok_or_else(|| key_not_found(&key_id))?;
            let row = &t.api_keys[index];
            let matches = constant_time_eq(presented_digest.as_bytes(), row.key_sha256.as_bytes());
            let expired = is_expired(row, &now);
            let valid = matches && row.revoked_at.is_none() && !expired;
            let permission_allowed = valid && row.permissions.contains(&permission);
            let scope_allowed = valid && covers(t, row, &resource_type, &resource_id);
            let answer = json!({
                "key_id": row.key_id,
                "valid": valid,
                "permission_allowed": permission_allowed,
                "scope_allowed": scope_allowed,
                "expired": expired,
                "scope_level": row.scope_level,
                "scope_target_id": row.scope_target_id,
                "validated_at": now,
            });
            if valid {
                let row = t.api_keys.get_mut(index);
                row.use_count = row.use_count.saturating_add(1);
                row.last_used_at = Some(now);
            }
            Ok(answer)
        })
        .await?;
    Ok(Json(answer))
}

/// `GET T/api-keys/metrics`.
///
/// `key_usage_24h` adds up the authorize uses of the keys last used within a day (an
/// approximation: the emulator keeps a count per key, not a log); `active_sdk_keys` counts the
/// active fleet, endpoint and agent keys. Nothing in the emulator runs red-team tests or
/// measures latency, so those are 0.
async fn metrics(tenant: Tenant) -> Json<Value> {
    let now = clock::now();
    let day_ago = clock::seconds_ago(24 * 3600);
    let answer = tenant
        .read(|t| {
            let usage: u64 = t
                .api_keys
                .iter()
                .filter(|row| row.last_used_at.as_deref().is_some_and(|at| at >= day_ago.as_str()))
                .map(|row| row.use_count)
                .sum();
            let active_sdk_keys =
                t.api_keys.iter().filter(|row| row.scope_level != "organization" && is_active(row, &now)).count();
            json!({
                "key_usage_24h": usage,
                "red_team_tests": 0,
                "avg_latency_ms": 0.0,
                "active_sdk_keys": active_sdk_keys,
            })
        })
        .await;
    Json(answer)
}

fn key_not_found(key_id: &str) -> ApiError {
    ApiError::not_found(format!("API key {key_id:?} not found"))
}

fn is_expired(row: &ApiKey, now: &str) -> bool {
    row.expires_at.as_deref().is_some_and(|at| at <= now)
}

/// Whether a key can be used at `now`: neither revoked nor expired.
pub(super) fn is_active(row: &ApiKey, now: &str) -> bool {
    row.revoked_at.is_none() && !is_expired(row, now)
}

/// Whether a key's scope covers a resource (see [`authorize`]).
fn covers(t: &TenantData, key: &ApiKey, resource_type: &str, resource_id: &str) -> bool {
    let endpoint_has_agent = |endpoint_id: &str| {
        t.endpoints
            .get(endpoint_id)
            .and_then(|endpoint| endpoint.agent_ids.as_ref())
            .is_some_and(|agents| agents.iter().any(|agent| agent == resource_id))
    };
    match (key.scope_level.as_str(), resource_type) {
        ("organization", _) => true,
        (scope, kind) if scope == kind => key.scope_target_id == resource_id,
        ("fleet", "endpoint") => {
            t.endpoints.get(resource_id).is_some_and(|e| e.fleet_id.as_deref() == Some(&key.scope_target_id))
        }
        ("fleet", "agent") => t
            .endpoints
            .values()
            .filter(|e| e.fleet_id.as_deref() == Some(&key.scope_target_id))
            .any(|e| endpoint_has_agent(&e.endpoint_id)),
        ("endpoint", "agent") => endpoint_has_agent(&key.scope_target_id),
        _ => false,
    }
}

/// A key as the list (and, plus `api_key`, the create response) shows it.
fn render(row: &ApiKey, now: &str) -> Value {
    json!({
        "key_id": row.key_id,
        "name": row.name,
        "prefix": row.prefix,
        "scope_level": row.scope_level,
        "scope_target_id": row.scope_target_id,
        "permissions": row.permissions,
        "ttl_seconds": row.ttl_seconds,
        "jit_reason": row.jit_reason,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
        "active": is_active(row, now),
    })
}
