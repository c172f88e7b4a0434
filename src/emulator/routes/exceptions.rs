//! Policy exceptions and their reviews (`govapi.md` §4.15–4.16), and the policy change
//! artifacts that approved exceptions produce (§4.17).
//!
//! The workflow: an exception request is created once (`pending`); a review moves it to
//! `approved`, `denied`, `approved_with_modification` or back to `under_review`; an approving
//! review generates the exception's policy change artifact (so does `generate`); applying the
//! artifact through the `govapi` channel creates a policy bundle version. Request ids are
//! path-escaped by clients and decoded by the router. Both lists keep creation order.
//! Artifacts can also be created directly with the emulator-only route
//! `POST /{tenant}/_emulator/policy-change-artifacts` (see the `seed` module).

use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::bundles::{store_version, BundleInput};
use super::derived::Paging;
use super::{thoth, Answer, AppState, StatusAnswer, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams, QueryParams};
use crate::emulator::store::model::{PolicyChangeArtifact, PolicyException, TenantData};

const STATUSES: &[&str] = &["pending", "under_review", "approved", "denied", "approved_with_modification"];

/// The review decisions and the exception status each one leads to.
const REVIEW_DECISIONS: &[(&str, &str)] = &[
    ("approve", "approved"),
    ("deny", "denied"),
    ("request_changes", "under_review"),
    ("approve_with_modification", "approved_with_modification"),
];

const APPLY_CHANNELS: &[&str] = &["govapi", "terraform", "pulumi", "thothctl"];
pub(super) const POLICY_FORMATS: &[&str] = &["cedar", "rego", "yaml"];

/// The environment an artifact targets when the review names none (UNSURE: not documented).
pub(super) const DEFAULT_TARGET_ENVIRONMENT: &str = "prod";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/policy-exceptions"), get(list_exceptions).post(create_exception))
        .route(&thoth("/policy-exceptions/{request_id}"), get(read_exception))
        .route(&thoth("/policy-exceptions/{request_id}/review"), patch(review))
        .route(&thoth("/policy-change-artifacts"), get(list_artifacts))
        .route(&thoth("/policy-change-artifacts/{request_id}"), get(read_artifact))
        .route(&thoth("/policy-change-artifacts/{request_id}/generate"), post(generate))
        .route(&thoth("/policy-change-artifacts/{request_id}/apply"), post(apply))
}

#[derive(Deserialize)]
struct RequestPath {
    request_id: String,
}

/// `POST T/policy-exceptions`: records an exception request once (201, `pending`).
///
/// `request_id` is generated when absent. Sending the same inputs again for an existing
/// `request_id` answers 200 with the stored row, so a client can safely repeat a create whose
/// answer it lost; different inputs are a 409 `policy_exception_exists` (the record is
/// immutable). UNSURE: the contract does not say what a repeated create answers.
async fn create_exception(tenant: Tenant, body: Body) -> StatusAnswer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let request_id = match fields.opt_non_empty_str("request_id")? {
        Some(id) => id,
        None => clock::new_id("req_")?,
    };
    let now = clock::now();
    let row = PolicyException {
        request_id,
        violation_id: fields.req_str("violation_id")?,
        requested_by: fields.req_str("requested_by")?,
        business_justification: fields.req_str("business_justification")?,
        frequency_estimate: fields.req_str("frequency_estimate")?,
        data_sensitivity: fields.req_str("data_sensitivity")?,
        hold_token: fields.opt_non_empty_str("hold_token")?,
        agent_id: fields.opt_non_empty_str("agent_id")?,
        tool_name: fields.opt_non_empty_str("tool_name")?,
        alternatives_considered: fields.opt_non_empty_str("alternatives_considered")?,
        status: "pending".to_owned(),
        reviewed_by: None,
        review_decision: None,
        review_notes: None,
        owner: None,
        target_environment: None,
        override_expires_at: None,
        policy_change: None,
        created_at: now.clone(),
        updated_at: now,
    };
    tenant
        .mutate(move |t| {
            if let Some(existing) = t.policy_exceptions.iter().find(|e| e.request_id == row.request_id) {
                return if same_request(existing, &row) {
                    Ok((StatusCode::OK, Json(render_exception(existing))))
                } else {
                    Err(ApiError::conflict(
                        "policy_exception_exists",
                        format!("policy exception {:?} already exists with other inputs", row.request_id),
                    ))
                };
            }
            let rendered = render_exception(&row);
            t.policy_exceptions.push(row);
            Ok((StatusCode::CREATED, Json(rendered)))
        })
        .await
}

/// Whether two requests carry the same client inputs.
fn same_request(a: &PolicyException, b: &PolicyException) -> bool {
    (
        &a.violation_id,
        &a.requested_by,
        &a.business_justification,
        &a.frequency_estimate,
        &a.data_sensitivity,
        &a.hold_token,
        &a.agent_id,
        &a.tool_name,
        &a.alternatives_considered,
    ) == (
        &b.violation_id,
        &b.requested_by,
        &b.business_justification,
        &b.frequency_estimate,
        &b.data_sensitivity,
        &b.hold_token,
        &b.agent_id,
        &b.tool_name,
        &b.alternatives_considered,
    )
}

/// `GET T/policy-exceptions/{request_id}`.
async fn read_exception(tenant: Tenant, PathParams(RequestPath { request_id }): PathParams<RequestPath>) -> Answer {
    tenant
        .read(|t| t.policy_exceptions.iter().find(|e| e.request_id == request_id).map(render_exception))
        .await
        .map(Json)
        .ok_or_else(|| exception_not_found(&request_id))
}

/// `GET T/policy-exceptions?status=&requested_by=&reviewed_by=&limit=&offset=`:
/// `{data, total}`, where `total` counts the filtered rows before paging. Other parameters
/// (clients also send `tenant_id`) are ignored.
async fn list_exceptions(tenant: Tenant, query: QueryParams) -> Answer {
    let status = query.one_of("status", STATUSES)?;
    let paging = Paging::from_query(&query)?;
    let answer = tenant
        .read(|t| {
            paging.answer(
                t.policy_exceptions
                    .iter()
                    .filter(|e| status.as_deref().is_none_or(|s| e.status == s))
                    .filter(|e| query.allows("requested_by", &e.requested_by))
                    .filter(|e| query.allows("reviewed_by", e.reviewed_by.as_deref().unwrap_or_default()))
                    .map(render_exception)
                    .collect(),
            )
        })
        .await;
    Ok(Json(answer))
}

/// `PATCH T/policy-exceptions/{request_id}/review`: records a review and returns the
/// exception.
///
/// A pending or under-review exception takes any review. A decided one (approved, denied,
/// approved with modification) answers the same row to a repeat of the review that decided it
/// and 409 `policy_exception_already_reviewed` to any other review (UNSURE: the contract does
/// not say whether a decision can be revised). An approving review
/// generates the policy change artifact, or refreshes it while it was never applied; its
/// target environment is the review's, `prod` by default.
async fn review(tenant: Tenant, PathParams(RequestPath { request_id }): PathParams<RequestPath>, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let decision = fields.req_str("review_decision")?;
    let status = REVIEW_DECISIONS.iter().find(|(d, _)| *d == decision).map(|(_, s)| *s).ok_or_else(|| {
        ApiError::invalid(format!(
            "`review_decision` must be one of {}, got {decision:?}",
            REVIEW_DECISIONS.iter().map(|(d, _)| *d).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let reviewed_by = fields.req_str("reviewed_by")?;
    let review_notes = fields.opt_non_empty_str("review_notes")?;
    let owner = fields.opt_non_empty_str("owner")?;
    let target_environment = fields.opt_non_empty_str("target_environment")?;
    let override_expires_at = fields.opt_timestamp("override_expires_at")?;
    let policy_change = fields.opt_object("policy_change")?;
    let artifact_id = clock::new_id("art_")?;
    let answer = tenant
        .mutate(move |t| {
            let index = t
                .policy_exceptions
                .iter()
                .position(|e| e.request_id == request_id)
                .ok_or_else(|| exception_not_found(&request_id))?;
            let row = t.policy_exceptions.get_mut(index);
            if !matches!(row.status.as_str(), "pending" | "under_review") {
                let repeat = row.review_decision.as_deref() == Some(decision.as_str())
                    && row.reviewed_by.as_deref() == Some(reviewed_by.as_str());
                if repeat {
                    return Ok(render_exception(row));
                }
                return Err(ApiError::conflict(
                    "policy_exception_already_reviewed",
                    format!("policy exception {request_id:?} is already {}", row.status),
                ));
            }
            status.clone_into(&mut row.status);
            row.review_decision = Some(decision);
            row.reviewed_by = Some(reviewed_by);
            row.review_notes = review_notes;
            if owner.is_some() {
                row.owner = owner;
            }
            if target_environment.is_some() {
                row.target_environment = target_environment;
            }
            if override_expires_at.is_some() {
                row.override_expires_at = override_expires_at;
            }
            if policy_change.is_some() {
                row.policy_change = policy_change;
            }
            row.updated_at = clock::now();
            let exception = row.clone();
            if is_approved(&exception) {
                generate_artifact(t, &exception, artifact_id);
            }
            Ok(render_exception(&exception))
        })
        .await?;
    Ok(Json(answer))
}

fn is_approved(exception: &PolicyException) -> bool {
    matches!(exception.status.as_str(), "approved" | "approved_with_modification")
}

/// Creates the exception's artifact, or refreshes it from the exception while it was never
/// applied. An applied artifact is left alone.
fn generate_artifact(t: &mut TenantData, exception: &PolicyException, artifact_id: String) {
    let now = clock::now();
    let policy_change = exception.policy_change.clone().unwrap_or_default();
    let target_environment =
        exception.target_environment.clone().unwrap_or_else(|| DEFAULT_TARGET_ENVIRONMENT.to_owned());
    let policy_format = format_of(&policy_change);
    match t.policy_change_artifacts.find_mut(|a| a.request_id == exception.request_id) {
        Some(artifact) if artifact.status == "applied" => {}
        Some(artifact) => {
            artifact.target_environment = target_environment;
            artifact.policy_format = policy_format;
            artifact.policy_change = policy_change;
            artifact.owner.clone_from(&exception.owner);
            artifact.updated_at = now;
        }
        None => t.policy_change_artifacts.push(PolicyChangeArtifact {
            artifact_id,
            request_id: exception.request_id.clone(),
            target_environment,
            policy_format,
            policy_change,
            owner: exception.owner.clone(),
            status: "generated".to_owned(),
            apply_count: 0,
            applied_at: None,
            applied_by: None,
            apply_channel: None,
            govapi_resource: None,
            override_revoked: false,
            created_at: now.clone(),
            updated_at: now,
        }),
    }
}

/// The policy format a policy change names under `policy_format` or `format`, else `cedar`.
pub(super) fn format_of(policy_change: &Map<String, Value>) -> String {
    ["policy_format", "format"]
        .iter()
        .filter_map(|key| policy_change.get(*key).and_then(Value::as_str))
        .map(str::to_ascii_lowercase)
        .find(|format| POLICY_FORMATS.contains(&format.as_str()))
        .unwrap_or_else(|| "cedar".to_owned())
}

/// `POST T/policy-change-artifacts/{request_id}/generate` with an optional `owner` and
/// `target_environment`: (re)generates the artifact of an approved exception. 404 for an
/// unknown exception, 409 `policy_exception_not_approved` for one that is not approved.
async fn generate(
    tenant: Tenant,
    PathParams(RequestPath { request_id }): PathParams<RequestPath>,
    body: Body,
) -> Answer {
    let body = match body.0 {
        Value::Null => Map::new(),
        other => Body(other).into_object()?,
    };
    let fields = Fields(&body);
    let owner = fields.opt_non_empty_str("owner")?;
    let target_environment = fields.opt_non_empty_str("target_environment")?;
    let artifact_id = clock::new_id("art_")?;
    let answer = tenant
        .mutate(move |t| {
            let exception = t
                .policy_exceptions
                .find_mut(|e| e.request_id == request_id)
                .ok_or_else(|| exception_not_found(&request_id))?;
            if !is_approved(exception) {
                return Err(ApiError::conflict(
                    "policy_exception_not_approved",
                    format!("policy exception {request_id:?} is {}, not approved", exception.status),
                ));
            }
            if owner.is_some() {
                exception.owner = owner;
            }
            if target_environment.is_some() {
                exception.target_environment = target_environment;
            }
            let exception = exception.clone();
            generate_artifact(t, &exception, artifact_id);
            t.policy_change_artifacts
                .iter()
                .find(|a| a.request_id == request_id)
                .map(render_artifact)
                .ok_or_else(|| artifact_not_found(&request_id))
        })
        .await?;
    Ok(Json(answer))
}

/// `GET T/policy-change-artifacts/{request_id}`.
async fn read_artifact(tenant: Tenant, PathParams(RequestPath { request_id }): PathParams<RequestPath>) -> Answer {
    tenant
        .read(|t| t.policy_change_artifacts.iter().find(|a| a.request_id == request_id).map(render_artifact))
        .await
        .map(Json)
        .ok_or_else(|| artifact_not_found(&request_id))
}

/// `GET T/policy-change-artifacts?target_environment=&limit=&offset=`: `{data, total}`.
async fn list_artifacts(tenant: Tenant, query: QueryParams) -> Answer {
    let paging = Paging::from_query(&query)?;
    let answer = tenant
        .read(|t| {
            paging.answer(
                t.policy_change_artifacts
                    .iter()
                    .filter(|a| query.allows("target_environment", &a.target_environment))
                    .map(render_artifact)
                    .collect(),
            )
        })
        .await;
    Ok(Json(answer))
}

/// `POST T/policy-change-artifacts/{request_id}/apply`: applies an artifact.
///
/// Through the `govapi` channel (the default) the artifact becomes a new version of a policy
/// bundle, validated like any bundle: named `bundle_name` (default `exception-<request_id>`),
/// framework `CEDAR` for `cedar` and `OPA` for `rego`, with the policy text of the policy
/// change's `raw_policy` when it has one and a generated rule that admits the exception
/// otherwise, assigned to `assignments` or else to the exception's agent. A `yaml` policy
/// cannot become a bundle through `govapi` (400, UNSURE). Other channels only record the
/// apply. `override_revoked` is true when the exception had a temporary override
/// (`override_expires_at`), which the permanent change supersedes. Every apply is recorded
/// with its own `applied_at`; `govapi_resource` summarises the bundle without its policy text.
async fn apply(tenant: Tenant, PathParams(RequestPath { request_id }): PathParams<RequestPath>, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let applied_by = fields.req_str("applied_by")?;
    let channel = fields.opt_enum("apply_channel", APPLY_CHANNELS)?.unwrap_or_else(|| "govapi".to_owned());
    let policy_format = fields.opt_enum("policy_format", POLICY_FORMATS)?;
    let bundle_name = fields.opt_non_empty_str("bundle_name")?;
    let bundle_description = fields.opt_non_empty_str("bundle_description")?;
    let assignments = fields.opt_str_list("assignments")?;
    let enforcement_mode = fields.opt_non_empty_str("enforcement_mode")?;
    let status = fields.opt_non_empty_str("status")?;
    let bundle_id = clock::new_id("bnd_")?;
    let answer = tenant
        .mutate(move |t| {
            let index = t
                .policy_change_artifacts
                .iter()
                .position(|a| a.request_id == request_id)
                .ok_or_else(|| artifact_not_found(&request_id))?;
            let artifact = t.policy_change_artifacts[index].clone();
            let exception = t.policy_exceptions.iter().find(|e| e.request_id == request_id).cloned();
            let format = policy_format.unwrap_or_else(|| artifact.policy_format.clone());
            let govapi_resource = if channel == "govapi" {
                let framework = match format.as_str() {
                    "cedar" => "CEDAR",
                    "rego" => "OPA",
                    _ => {
                        return Err(ApiError::invalid(
                            "a `yaml` policy change cannot be applied through the `govapi` channel",
                        ))
                    }
                };
                let raw_policy = artifact
                    .policy_change
                    .get("raw_policy")
                    .and_then(Value::as_str)
                    .filter(|text| !text.trim().is_empty())
                    .map_or_else(|| generated_policy(framework, &request_id), str::to_owned);
                let assignments = assignments.or_else(|| {
                    exception.as_ref().and_then(|e| e.agent_id.as_ref()).map(|agent| vec![format!("agent:{agent}")])
                });
                let mut bundle = Map::new();
                bundle.insert("name".into(), json!(bundle_name.unwrap_or_else(|| format!("exception-{request_id}"))));
                bundle.insert(
                    "description".into(),
                    json!(bundle_description.unwrap_or_else(|| format!("Policy change for exception {request_id}"))),
                );
                bundle.insert("framework".into(), json!(framework));
                bundle.insert("raw_policy".into(), json!(raw_policy));
                bundle.insert("assignments".into(), json!(assignments));
                bundle.insert("enforcement_mode".into(), json!(enforcement_mode));
                bundle.insert("status".into(), json!(status));
                let input = BundleInput::parse(&Fields(&bundle))?;
                let stored = store_version(t, input, bundle_id);
                Some(json!({
                    "resource_type": "policy_bundle",
                    "id": stored.id,
                    "name": stored.name,
                    "version": stored.version,
                    "framework": stored.framework,
                    "policy_hash": stored.policy_hash,
                    "status": stored.status,
                    "enforcement_mode": stored.enforcement_mode,
                }))
            } else {
                None
            };
            let now = clock::now();
            let artifact = t.policy_change_artifacts.get_mut(index);
            "applied".clone_into(&mut artifact.status);
            artifact.apply_count = artifact.apply_count.saturating_add(1);
            artifact.applied_at = Some(now.clone());
            artifact.applied_by = Some(applied_by.clone());
            artifact.apply_channel = Some(channel.clone());
            artifact.policy_format.clone_from(&format);
            artifact.govapi_resource.clone_from(&govapi_resource);
            artifact.override_revoked = exception.as_ref().is_some_and(|e| e.override_expires_at.is_some());
            artifact.updated_at.clone_from(&now);
            Ok(json!({
                "request_id": artifact.request_id,
                "artifact_id": artifact.artifact_id,
                "apply_channel": channel,
                "policy_format": format,
                "target_environment": artifact.target_environment,
                "applied_at": now,
                "applied_by": applied_by,
                "override_revoked": artifact.override_revoked,
                "govapi_resource": govapi_resource,
            }))
        })
        .await?;
    Ok(Json(answer))
}

/// The rule a policy change without policy text becomes: it admits the calls that the
/// exception covers, and nothing else.
fn generated_policy(framework: &str, request_id: &str) -> String {
    let id = serde_json::to_string(request_id).unwrap_or_default();
    if framework == "CEDAR" {
        format!("permit (principal, action, resource)\nwhen {{ context.exception_request_id == {id} }};\n")
    } else {
        format!("package thoth.exceptions\n\nallow if {{\n  input.exception_request_id == {id}\n}}\n")
    }
}

fn exception_not_found(request_id: &str) -> ApiError {
    ApiError::not_found(format!("policy exception {request_id:?} not found"))
}

fn artifact_not_found(request_id: &str) -> ApiError {
    ApiError::not_found(format!("policy change artifact for {request_id:?} not found"))
}

/// An exception as GovAPI returns it; `policy_change` is `{}` until a review sets one.
fn render_exception(row: &PolicyException) -> Value {
    json!({
        "request_id": row.request_id,
        "violation_id": row.violation_id,
        "requested_by": row.requested_by,
        "business_justification": row.business_justification,
        "frequency_estimate": row.frequency_estimate,
        "data_sensitivity": row.data_sensitivity,
        "hold_token": row.hold_token,
        "agent_id": row.agent_id,
        "tool_name": row.tool_name,
        "alternatives_considered": row.alternatives_considered,
        "status": row.status,
        "reviewed_by": row.reviewed_by,
        "review_decision": row.review_decision,
        "review_notes": row.review_notes,
        "owner": row.owner,
        "target_environment": row.target_environment,
        "override_expires_at": row.override_expires_at,
        "policy_change": row.policy_change.clone().unwrap_or_default(),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}

/// An artifact as GovAPI returns it.
pub(super) fn render_artifact(row: &PolicyChangeArtifact) -> Value {
    json!({
        "artifact_id": row.artifact_id,
        "request_id": row.request_id,
        "target_environment": row.target_environment,
        "policy_format": row.policy_format,
        "policy_change": row.policy_change,
        "owner": row.owner,
        "status": row.status,
        "apply_count": row.apply_count,
        "applied_at": row.applied_at,
        "applied_by": row.applied_by,
        "apply_channel": row.apply_channel,
        "govapi_resource": row.govapi_resource,
        "override_revoked": row.override_revoked,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}
