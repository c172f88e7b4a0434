//! Policy bundles (`govapi.md` §4.13): an append-only collection of versions.
//!
//! Every POST creates a new version with a new `id`; `name` is the logical key and `version`
//! grows by one per name. DELETE removes one version. The emulator does not parse Rego or
//! Cedar and never fetches `source_uri`/`s3_uri` objects.

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{thoth, Answer, AppState, StatusAnswer, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams, QueryParams};
use crate::emulator::store::model::{PolicyBundle, TenantData};

const FRAMEWORKS: &[&str] = &["OPA", "CEDAR"];
const STATUSES: &[&str] = &["active", "staged", "paused", "disabled"];
const MODES: &[&str] = &["enforce", "observe"];

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/policy-bundles"), get(list).post(create))
        // A literal segment wins over `{id}` in axum's router, so `effective` is never an id.
        .route(&thoth("/policy-bundles/effective"), get(effective))
        .route(&thoth("/policy-bundles/{id}"), get(read).delete(remove))
}

#[derive(Deserialize)]
struct BundlePath {
    id: String,
}

/// `POST T/policy-bundles`: validates the bundle and stores it as the next version of `name`.
///
/// Choices where the contract is silent or UNSURE:
/// - `framework` must be exactly `OPA` or `CEDAR`; clients uppercase it, so a lowercase value
///   is a client bug worth seeing.
/// - Exactly one of `raw_policy`, `source_uri` (`file://` or `s3://`) and `s3_uri` (`s3://`)
///   must be non-empty.
/// - `status` `disabled` is accepted as an alias and stored as `paused` (the operator sends it
///   unmapped). When only one of `status` and `enforcement_mode` is given, the other follows
///   the coupling of §4.13 (`observe` ⇔ `staged`/`paused`); with neither, `active`/`enforce`.
/// - `policy_hash` is the hex SHA-256 of `framework + "\n" + content`, where content is the
///   raw policy text, or the URI itself for URI sources (which the emulator cannot fetch).
/// - `expected_hash` (`<hex>` or `sha256:<hex>`) is checked against the SHA-256 of
///   `raw_policy` alone, the content integrity check the clients describe; for URI sources it
///   is only stored.
/// - `version` is one more than the highest version ever given to this name, so numbers are
///   never reused even after the newest version is deleted.
/// - `resolved_version` is the `s3_version_id` when given, else `v<version>`.
async fn create(tenant: Tenant, body: Body) -> StatusAnswer {
    let body = body.into_object()?;
    let input = BundleInput::parse(&Fields(&body))?;
    let id = clock::new_id("bnd_")?;
    let row = tenant.mutate(move |t| Ok(render(store_version(t, input, id)))).await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// Stores a validated bundle as the next version of its name, with the given id, and returns
/// the stored row. Policy change artifacts applied through the `govapi` channel use this too.
pub(super) fn store_version(t: &mut TenantData, input: BundleInput, id: String) -> &PolicyBundle {
    let now = clock::now();
    let previous = t.policy_bundle_versions.get(&input.name).copied().unwrap_or(0);
    let version = previous.saturating_add(1);
    t.policy_bundle_versions.insert(input.name.clone(), version);
    let policy_hash = clock::sha256_hex(format!("{}\n{}", input.framework, input.content()).as_bytes());
    let resolved_version = input.s3_version_id.clone().unwrap_or_else(|| format!("v{version}"));
    t.policy_bundles.push(PolicyBundle {
        id,
        name: input.name,
        description: input.description,
        framework: input.framework,
        raw_policy: input.raw_policy,
        source_uri: input.source_uri,
        s3_uri: input.s3_uri,
        s3_version_id: input.s3_version_id,
        expected_hash: input.expected_hash,
        assignments: input.assignments,
        status: input.status,
        enforcement_mode: input.enforcement_mode,
        version,
        policy_hash,
        resolved_version,
        created_by: "api".to_owned(),
        created_at: now.clone(),
        updated_at: now,
    });
    let last = t.policy_bundles.len() - 1;
    &t.policy_bundles[last]
}

/// A validated create request.
pub(super) struct BundleInput {
    name: String,
    description: String,
    framework: String,
    raw_policy: Option<String>,
    source_uri: Option<String>,
    s3_uri: Option<String>,
    s3_version_id: Option<String>,
    expected_hash: Option<String>,
    assignments: Vec<String>,
    status: String,
    enforcement_mode: String,
}

impl BundleInput {
    pub(super) fn parse(fields: &Fields<'_>) -> Result<Self, ApiError> {
        let name = fields.req_str("name")?;
        let description = fields.opt_str("description")?.unwrap_or_default();
        let framework = fields.req_str("framework")?;
        if !FRAMEWORKS.contains(&framework.as_str()) {
            return Err(ApiError::invalid(format!(
                "`framework` must be one of {}, got {framework:?}",
                FRAMEWORKS.join(", ")
            )));
        }
        let non_blank = |key: &str| -> Result<Option<String>, ApiError> {
            Ok(fields.opt_str(key)?.filter(|s| !s.trim().is_empty()))
        };
        let raw_policy = non_blank("raw_policy")?;
        let source_uri = non_blank("source_uri")?;
        let s3_uri = non_blank("s3_uri")?;
        let sources = [&raw_policy, &source_uri, &s3_uri].iter().filter(|s| s.is_some()).count();
        if sources != 1 {
            return Err(ApiError::invalid("exactly one of `raw_policy`, `source_uri` or `s3_uri` must be set"));
        }
        if let Some(uri) = &source_uri {
            if !(uri.starts_with("file://") || uri.starts_with("s3://")) {
                return Err(ApiError::invalid("`source_uri` must start with `file://` or `s3://`"));
            }
        }
        if let Some(uri) = &s3_uri {
            if !uri.starts_with("s3://") {
                return Err(ApiError::invalid("`s3_uri` must start with `s3://`"));
            }
        }
        let s3_version_id = non_blank("s3_version_id")?;
        let expected_hash = non_blank("expected_hash")?;
        if let Some(expected) = &expected_hash {
            check_expected_hash(expected, raw_policy.as_deref())?;
        }
        let assignments = fields
            .opt_str_list("assignments")?
            .filter(|list| !list.is_empty())
            .unwrap_or_else(|| vec!["all".to_owned()]);
        let status =
            fields.opt_enum("status", STATUSES)?.map(|s| if s == "disabled" { "paused".to_owned() } else { s });
        let mode = fields.opt_enum("enforcement_mode", MODES)?;
        let (status, enforcement_mode) = match (status, mode) {
            (Some(status), Some(mode)) => (status, mode),
            (Some(status), None) => {
                let mode = if status == "active" { "enforce" } else { "observe" };
                (status, mode.to_owned())
            }
            (None, Some(mode)) => {
                let status = if mode == "observe" { "staged" } else { "active" };
                (status.to_owned(), mode)
            }
            (None, None) => ("active".to_owned(), "enforce".to_owned()),
        };
        Ok(BundleInput {
            name,
            description,
            framework,
            raw_policy,
            source_uri,
            s3_uri,
            s3_version_id,
            expected_hash,
            assignments,
            status,
            enforcement_mode,
        })
    }

    /// What `policy_hash` covers besides the framework.
    fn content(&self) -> &str {
        self.raw_policy.as_deref().or(self.source_uri.as_deref()).or(self.s3_uri.as_deref()).unwrap_or_default()
    }
}

/// Checks the shape of `expected_hash` and, for inline policies, that it matches the text.
fn check_expected_hash(expected: &str, raw_policy: Option<&str>) -> Result<(), ApiError> {
    let hex = expected.strip_prefix("sha256:").unwrap_or(expected);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid("`expected_hash` must be 64 hex digits, optionally prefixed with `sha256:`"));
    }
    if let Some(raw) = raw_policy {
        if !hex.eq_ignore_ascii_case(&clock::sha256_hex(raw.as_bytes())) {
            return Err(ApiError::invalid("`expected_hash` does not match the SHA-256 of `raw_policy`"));
        }
    }
    Ok(())
}

/// `GET T/policy-bundles/{id}`.
async fn read(tenant: Tenant, PathParams(BundlePath { id }): PathParams<BundlePath>) -> Answer {
    tenant
        .read(|t| t.policy_bundles.iter().find(|row| row.id == id).map(render))
        .await
        .map(Json)
        .ok_or_else(|| bundle_not_found(&id))
}

/// `DELETE T/policy-bundles/{id}`: removes that one version.
async fn remove(tenant: Tenant, PathParams(BundlePath { id }): PathParams<BundlePath>) -> Answer {
    tenant
        .mutate(|t| {
            let index = t.policy_bundles.iter().position(|row| row.id == id).ok_or_else(|| bundle_not_found(&id))?;
            t.policy_bundles.remove(index);
            Ok(())
        })
        .await?;
    Ok(Json(json!({ "deleted": true, "id": id })))
}

/// `GET T/policy-bundles?framework=&status=&enforcement_mode=&assignment=`: every version,
/// sorted by name and version, filtered. The first three filters ignore case, as clients
/// uppercase some values and not others; `assignment` matches one entry exactly.
async fn list(tenant: Tenant, query: QueryParams) -> Json<Value> {
    let rows = tenant
        .read(|t| {
            let mut rows: Vec<&PolicyBundle> = t
                .policy_bundles
                .iter()
                .filter(|row| query.allows_ignoring_case("framework", &row.framework))
                .filter(|row| query.allows_ignoring_case("status", &row.status))
                .filter(|row| query.allows_ignoring_case("enforcement_mode", &row.enforcement_mode))
                .filter(|row| match query.get("assignment") {
                    None => true,
                    Some(wanted) => row.assignments.iter().any(|a| a == wanted),
                })
                .collect();
            sort(&mut rows);
            rows.into_iter().map(render).collect::<Vec<_>>()
        })
        .await;
    let total = rows.len();
    Json(json!({ "data": rows, "total": total }))
}

/// `GET T/policy-bundles/effective?agent_id=&framework=`: the active versions that apply to
/// one agent, i.e. whose assignments contain `all`, `agent:<id>` or the bare `<id>`.
///
/// Every active version is returned, older ones included, because the store keeps them
/// active; clients that want one bundle per name take the highest `version`.
async fn effective(tenant: Tenant, query: QueryParams) -> Answer {
    let agent_id = query
        .get("agent_id")
        .ok_or_else(|| ApiError::invalid("the `agent_id` query parameter is required"))?
        .to_owned();
    let prefixed = format!("agent:{agent_id}");
    let rows = tenant
        .read(|t| {
            let mut rows: Vec<&PolicyBundle> = t
                .policy_bundles
                .iter()
                .filter(|row| row.status == "active")
                .filter(|row| query.allows_ignoring_case("framework", &row.framework))
                .filter(|row| row.assignments.iter().any(|a| a == "all" || *a == prefixed || *a == agent_id))
                .collect();
            sort(&mut rows);
            rows.into_iter().map(render).collect::<Vec<_>>()
        })
        .await;
    let total = rows.len();
    Ok(Json(json!({
        "data": rows,
        "total": total,
        "agent_id": agent_id,
    })))
}

fn sort(rows: &mut [&PolicyBundle]) {
    rows.sort_by(|a, b| (&a.name, a.version, &a.id).cmp(&(&b.name, b.version, &b.id)));
}

fn bundle_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("policy bundle {id:?} not found"))
}

/// A bundle version as GovAPI returns it, `raw_policy` included (`govapi.md` §4.13: the
/// client refreshes it from here when its state has none).
fn render(row: &PolicyBundle) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "framework": row.framework,
        "raw_policy": row.raw_policy,
        "source_uri": row.source_uri,
        "s3_uri": row.s3_uri,
        "s3_version_id": row.s3_version_id,
        "expected_hash": row.expected_hash,
        "assignments": row.assignments,
        "status": row.status,
        "enforcement_mode": row.enforcement_mode,
        "version": row.version,
        "policy_hash": row.policy_hash,
        "resolved_version": row.resolved_version,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}
