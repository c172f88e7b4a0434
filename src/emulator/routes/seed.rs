//! Emulator-only routes under `/{tenant}/_emulator/`: they exist in no real GovAPI, and let
//! tests and users create what only the runtime creates on the real control plane, and switch
//! emulator behaviour.
//!
//! - `POST /{tenant}/_emulator/approvals`: creates an approval (201). Body, all optional:
//!   `approval_id` (generated `apr_...` when absent; 409 `approval_exists` when taken),
//!   `agent_id`, `tool_name`, `reason`, `requested_by`, `violation_id`, `status` (`pending`
//!   by default, or `approved`/`denied`, resolved by `emulator`), `created_at` (a UTC
//!   timestamp such as `2026-11-28T17:42:00Z`, to place it in the past).
//! - `POST /{tenant}/_emulator/policy-change-artifacts`: creates a policy change artifact
//!   without the exception workflow (201). Body: `request_id` (required; 409
//!   `policy_change_artifact_exists` when taken), `target_environment` (default `prod`),
//!   `policy_format` (`cedar`, `rego` or `yaml`; default from `policy_change`, else `cedar`),
//!   `policy_change` (object; its `raw_policy` string becomes the bundle text on apply),
//!   `owner`.
//! - `POST /{tenant}/_emulator/mcp-calls`: records observed MCP traffic (201). Body:
//!   `endpoint_id` and `host` (required), `calls` (default 1), `observed_at` (UTC timestamp,
//!   default now).
//! - `POST /{tenant}/_emulator/heartbeats`: what an endpoint's runtime reports (200).
//!   Body: `endpoint_id` (required; 404 when not registered), `seen_at` (UTC timestamp,
//!   default now: an old one makes the endpoint stale), `proxy_version`.
//! - `GET`/`PUT /{tenant}/_emulator/switches`: `{"evidence_backfill_primary_status": null |
//!   404 | 405}`; 404 or 405 makes `POST G/evidence/thoth/backfill` answer that status, so
//!   that clients take their fallback path.
//!
//! These routes need the same credentials as the API, but fault injection never applies to
//! them, so a test can always set up its data.

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::exceptions::{format_of, render_artifact, DEFAULT_TARGET_ENVIRONMENT, POLICY_FORMATS};
use super::{Answer, AppState, StatusAnswer, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields};
use crate::emulator::store::model::{Approval, McpCall, PolicyChangeArtifact};

/// The full route pattern of an emulator-only path.
fn emulator_only(path: &str) -> String {
    format!("/{{tenant}}/_emulator{path}")
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&emulator_only("/approvals"), post(seed_approval))
        .route(&emulator_only("/policy-change-artifacts"), post(seed_artifact))
        .route(&emulator_only("/mcp-calls"), post(seed_mcp_calls))
        .route(&emulator_only("/heartbeats"), post(heartbeat))
        .route(&emulator_only("/switches"), get(read_switches).put(write_switches))
}

/// An optional timestamp that must have the emulator's own shape, so that it sorts with the
/// emulator's timestamps.
fn canonical_timestamp(fields: &Fields<'_>, key: &str) -> Result<Option<String>, ApiError> {
    match fields.opt_str(key)? {
        Some(at) if !clock::is_canonical(&at) => {
            Err(ApiError::invalid(format!("`{key}` must be a UTC timestamp such as 2026-11-28T17:42:00Z, got {at:?}")))
        }
        other => Ok(other),
    }
}

/// `POST /{tenant}/_emulator/heartbeats`.
async fn heartbeat(tenant: Tenant, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let endpoint_id = fields.req_str("endpoint_id")?;
    let seen_at = canonical_timestamp(&fields, "seen_at")?.unwrap_or_else(clock::now);
    let proxy_version = fields.opt_non_empty_str("proxy_version")?;
    let rendered = tenant
        .mutate(move |t| {
            let Some(row) = t.endpoints.get_mut(&endpoint_id) else {
                return Err(ApiError::not_found(format!("endpoint {endpoint_id:?} is not registered")));
            };
            row.last_seen = seen_at;
            if let Some(v) = proxy_version {
                row.proxy_version = Some(v);
            }
            Ok(json!({ "endpoint_id": row.endpoint_id, "last_seen": row.last_seen, "proxy_version": row.proxy_version }))
        })
        .await?;
    Ok(Json(rendered))
}

/// `POST /{tenant}/_emulator/approvals`.
async fn seed_approval(tenant: Tenant, body: Body) -> StatusAnswer {
    let body = match body.0 {
        Value::Null => serde_json::Map::new(),
        other => Body(other).into_object()?,
    };
    let fields = Fields(&body);
    let approval_id = match fields.opt_non_empty_str("approval_id")? {
        Some(id) => id,
        None => clock::new_id("apr_")?,
    };
    let status = fields.opt_enum("status", super::approvals::STATUSES)?.unwrap_or_else(|| "pending".to_owned());
    let created_at = canonical_timestamp(&fields, "created_at")?.unwrap_or_else(clock::now);
    let resolved = status != "pending";
    let row = Approval {
        approval_id,
        agent_id: fields.opt_non_empty_str("agent_id")?,
        tool_name: fields.opt_non_empty_str("tool_name")?,
        reason: fields.opt_non_empty_str("reason")?,
        requested_by: fields.opt_non_empty_str("requested_by")?,
        violation_id: fields.opt_non_empty_str("violation_id")?,
        decision: resolved.then(|| status.clone()),
        resolved_by: resolved.then(|| "emulator".to_owned()),
        resolved_at: resolved.then(|| created_at.clone()),
        status,
        updated_at: created_at.clone(),
        created_at,
    };
    let rendered = tenant
        .mutate(move |t| {
            if t.approvals.iter().any(|a| a.approval_id == row.approval_id) {
                return Err(ApiError::conflict(
                    "approval_exists",
                    format!("approval {:?} already exists", row.approval_id),
                ));
            }
            let rendered = super::approvals::render(&row);
            t.approvals.push(row);
            Ok(rendered)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(rendered)))
}

/// `POST /{tenant}/_emulator/policy-change-artifacts`.
async fn seed_artifact(tenant: Tenant, body: Body) -> StatusAnswer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let request_id = fields.req_str("request_id")?;
    let policy_change = fields.opt_object("policy_change")?.unwrap_or_default();
    let policy_format = fields.opt_enum("policy_format", POLICY_FORMATS)?.unwrap_or_else(|| format_of(&policy_change));
    let target_environment =
        fields.opt_non_empty_str("target_environment")?.unwrap_or_else(|| DEFAULT_TARGET_ENVIRONMENT.to_owned());
    let owner = fields.opt_non_empty_str("owner")?;
    let artifact_id = clock::new_id("art_")?;
    let rendered = tenant
        .mutate(move |t| {
            if t.policy_change_artifacts.iter().any(|a| a.request_id == request_id) {
                return Err(ApiError::conflict(
                    "policy_change_artifact_exists",
                    format!("a policy change artifact for {request_id:?} already exists"),
                ));
            }
            let now = clock::now();
            let row = PolicyChangeArtifact {
                artifact_id,
                request_id,
                target_environment,
                policy_format,
                policy_change,
                owner,
                status: "generated".to_owned(),
                apply_count: 0,
                applied_at: None,
                applied_by: None,
                apply_channel: None,
                govapi_resource: None,
                override_revoked: false,
                created_at: now.clone(),
                updated_at: now,
            };
            let rendered = render_artifact(&row);
            t.policy_change_artifacts.push(row);
            Ok(rendered)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(rendered)))
}

/// `POST /{tenant}/_emulator/mcp-calls`.
async fn seed_mcp_calls(tenant: Tenant, body: Body) -> StatusAnswer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let call = McpCall {
        endpoint_id: fields.req_str("endpoint_id")?,
        host: fields.req_str("host")?,
        calls: match fields.opt_u64("calls")? {
            Some(0) => return Err(ApiError::invalid("`calls` must be at least 1")),
            Some(calls) => calls,
            None => 1,
        },
        observed_at: canonical_timestamp(&fields, "observed_at")?.unwrap_or_else(clock::now),
    };
    let rendered = json!({
        "endpoint_id": call.endpoint_id,
        "host": call.host,
        "calls": call.calls,
        "observed_at": call.observed_at,
    });
    tenant
        .mutate(move |t| {
            t.mcp_calls.push(call);
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(rendered)))
}

/// `GET /{tenant}/_emulator/switches`.
async fn read_switches(tenant: Tenant) -> Json<Value> {
    let status = tenant.read(|t| t.emulator.evidence_backfill_primary_status).await;
    Json(json!({ "evidence_backfill_primary_status": status }))
}

/// `PUT /{tenant}/_emulator/switches`: sets the switches the body names; others are kept.
async fn write_switches(tenant: Tenant, body: Body) -> Answer {
    let body = body.into_object()?;
    let change = match body.get("evidence_backfill_primary_status") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Number(n)) if n.as_u64() == Some(404) => Some(Some(404)),
        Some(Value::Number(n)) if n.as_u64() == Some(405) => Some(Some(405)),
        Some(_) => return Err(ApiError::invalid("`evidence_backfill_primary_status` must be null, 404 or 405")),
    };
    let status = tenant
        .mutate(move |t| {
            if let Some(status) = change {
                t.emulator.get_mut().evidence_backfill_primary_status = status;
            }
            Ok(t.emulator.evidence_backfill_primary_status)
        })
        .await?;
    Ok(Json(json!({ "evidence_backfill_primary_status": status })))
}
