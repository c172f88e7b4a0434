//! Endpoints (`govapi.md` §4.7): a natural-key "register" upsert keyed by the client's
//! `endpoint_id`, reads, a filtered list, fleet-wide statistics and quarantine. There is no
//! delete.
//!
//! The list is sorted by `endpoint_id`. `endpoint_id` `stats` can never be read back, because
//! the literal route `T/endpoints/stats` wins over `T/endpoints/{endpoint_id}`.

use std::cmp::Ordering;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{thoth, Answer, AppState, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams, QueryParams};
use crate::emulator::store::model::{Endpoint, TenantData};

/// The enforcement modes the contract lists.
const ENFORCEMENT_MODES: &[&str] = &["enforce", "shadow", "off"];

/// Endpoints not seen for this long count as stale in the statistics.
const STALE_AFTER_SECONDS: u64 = 24 * 3600;

/// Endpoints whose `risk_score` is at least this count as at risk (UNSURE: the scale of
/// `risk_score` is not documented; 0–100 is assumed).
const AT_RISK_SCORE: f64 = 70.0;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/endpoints"), get(list).post(register))
        .route(&thoth("/endpoints/stats"), get(stats))
        .route(&thoth("/endpoints/{endpoint_id}"), get(read))
        .route(&thoth("/endpoints/{endpoint_id}/quarantine"), post(quarantine))
}

#[derive(Deserialize)]
struct EndpointPath {
    endpoint_id: String,
}

/// `POST T/endpoints`: registers an endpoint or updates the one with the same `endpoint_id`.
///
/// Repeating a registration changes nothing but `last_seen` and `updated_at`. Choices where
/// the contract is silent:
/// - The plain optional fields are replaced by every registration, so a field left out is
///   cleared (the client sends every configured key, as for fleets; UNSURE whether the real
///   register patches instead).
/// - `status` and `enforcement_mode` are optional and computed: when left out they keep their
///   stored value, and a new endpoint starts `online` in `shadow` mode (the mode that cannot
///   block anyone by surprise). Re-registering therefore never lifts a quarantine.
/// - `enforcement_mode` must be `enforce`, `shadow` or `off`; the other vocabularies (`os`,
///   `enrollment`, `environment`) are free text.
/// - A `fleet_id` must name an existing fleet: 400 "fleet does not exist", as for API keys
///   (UNSURE: only the API key check is reported).
async fn register(tenant: Tenant, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let endpoint_id = fields.req_str("endpoint_id")?;
    let hostname = fields.req_str("hostname")?;
    let status = fields.opt_non_empty_str("status")?;
    let enforcement_mode = fields.opt_enum("enforcement_mode", ENFORCEMENT_MODES)?;
    let employee_name = fields.opt_str("employee_name")?;
    let employee_email = fields.opt_str("employee_email")?;
    let department = fields.opt_str("department")?;
    let os = fields.opt_str("os")?;
    let os_version = fields.opt_str("os_version")?;
    let enrollment = fields.opt_str("enrollment")?;
    let environment = fields.opt_str("environment")?;
    let proxy_version = fields.opt_str("proxy_version")?;
    let fleet_id = fields.opt_non_empty_str("fleet_id")?;
    let provider = fields.opt_str("provider")?;
    let risk_score = fields.opt_f64("risk_score")?;
    let violations_today = fields.opt_u64("violations_today")?;
    let sessions_today = fields.opt_u64("sessions_today")?;
    let agent_ids = fields.opt_str_list("agent_ids")?;
    let row = tenant
        .mutate(move |t| {
            if let Some(fleet_id) = &fleet_id {
                if !t.fleets.iter().any(|fleet| &fleet.fleet_id == fleet_id) {
                    return Err(ApiError::invalid(format!("fleet does not exist: {fleet_id:?}")));
                }
            }
            let now = clock::now();
            let row = t.endpoints.get_or_insert_with(&endpoint_id.clone(), || Endpoint {
                endpoint_id,
                hostname: String::new(),
                employee_name: None,
                employee_email: None,
                department: None,
                os: None,
                os_version: None,
                enrollment: None,
                status: "online".to_owned(),
                enforcement_mode: "shadow".to_owned(),
                environment: None,
                proxy_version: None,
                fleet_id: None,
                provider: None,
                risk_score: None,
                violations_today: None,
                sessions_today: None,
                agent_ids: None,
                last_seen: now.clone(),
                created_at: now.clone(),
                updated_at: now.clone(),
            });
            row.hostname = hostname;
            row.employee_name = employee_name;
            row.employee_email = employee_email;
            row.department = department;
            row.os = os;
            row.os_version = os_version;
            row.enrollment = enrollment;
            if let Some(status) = status {
                row.status = status;
            }
            if let Some(mode) = enforcement_mode {
                row.enforcement_mode = mode;
            }
            row.environment = environment;
            row.proxy_version = proxy_version;
            row.fleet_id = fleet_id;
            row.provider = provider;
            row.risk_score = risk_score;
            row.violations_today = violations_today;
            row.sessions_today = sessions_today;
            row.agent_ids = agent_ids;
            row.last_seen.clone_from(&now);
            row.updated_at = now;
            let id = row.endpoint_id.clone();
            t.endpoints.get(&id).map(|row| render(t, row)).ok_or_else(|| endpoint_not_found(&id))
        })
        .await?;
    Ok(Json(row))
}

/// `GET T/endpoints/{endpoint_id}`.
async fn read(tenant: Tenant, PathParams(EndpointPath { endpoint_id }): PathParams<EndpointPath>) -> Answer {
    tenant
        .read(|t| t.endpoints.get(&endpoint_id).map(|row| render(t, row)))
        .await
        .map(Json)
        .ok_or_else(|| endpoint_not_found(&endpoint_id))
}

/// `GET T/endpoints?env=&fleet_id=`: endpoints sorted by id; `env` filters on `environment`.
async fn list(tenant: Tenant, query: QueryParams) -> Json<Value> {
    let rows = tenant
        .read(|t| {
            t.endpoints
                .values()
                .filter(|row| query.allows("env", row.environment.as_deref().unwrap_or_default()))
                .filter(|row| query.allows("fleet_id", row.fleet_id.as_deref().unwrap_or_default()))
                .map(|row| render(t, row))
                .collect::<Vec<_>>()
        })
        .await;
    Json(json!({ "data": rows }))
}

/// `GET T/endpoints/stats`: counts over every endpoint of the tenant.
///
/// `managed` counts endpoints with an `enrollment` other than `unmanaged`; `stale` those not
/// seen for a day; `at_risk` those with a `risk_score` of at least 70; `proxy_outdated` those
/// whose `proxy_version` is older than `latest_version`, the newest one registered (compared
/// numerically part by part; `null` when no endpoint reports a version).
async fn stats(tenant: Tenant) -> Json<Value> {
    let stats = tenant
        .read(|t| {
            let stale_before = clock::seconds_ago(STALE_AFTER_SECONDS);
            let latest = latest_proxy_version(t);
            let rows: Vec<&Endpoint> = t.endpoints.values().collect();
            let count = |f: &dyn Fn(&Endpoint) -> bool| rows.iter().filter(|row| f(row)).count();
            let managed = count(&|row| row.enrollment.as_deref().is_some_and(|e| !e.is_empty() && e != "unmanaged"));
            json!({
                "total": rows.len(),
                "managed": managed,
                "unmanaged": rows.len() - managed,
                "online": count(&|row| row.status == "online"),
                "quarantined": count(&|row| row.status == "quarantined"),
                "stale": count(&|row| row.last_seen < stale_before),
                "at_risk": count(&|row| row.risk_score.is_some_and(|score| score >= AT_RISK_SCORE)),
                "proxy_outdated": count(&|row| outdated(row, latest.as_deref())),
                "latest_version": latest,
            })
        })
        .await;
    Json(stats)
}

/// `POST T/endpoints/{endpoint_id}/quarantine` (sent without a body): sets the status to
/// `quarantined` and returns the endpoint. Quarantining twice is harmless.
async fn quarantine(tenant: Tenant, PathParams(EndpointPath { endpoint_id }): PathParams<EndpointPath>) -> Answer {
    let row = tenant
        .mutate(move |t| {
            let row = t.endpoints.get_mut(&endpoint_id).ok_or_else(|| endpoint_not_found(&endpoint_id))?;
            if row.status != "quarantined" {
                "quarantined".clone_into(&mut row.status);
                row.updated_at = clock::now();
            }
            t.endpoints.get(&endpoint_id).map(|row| render(t, row)).ok_or_else(|| endpoint_not_found(&endpoint_id))
        })
        .await?;
    Ok(Json(row))
}

fn endpoint_not_found(endpoint_id: &str) -> ApiError {
    ApiError::not_found(format!("endpoint {endpoint_id:?} not found"))
}

/// The newest `proxy_version` any endpoint of the tenant reports.
pub(super) fn latest_proxy_version(t: &TenantData) -> Option<String> {
    t.endpoints
        .values()
        .filter_map(|row| row.proxy_version.as_deref())
        .max_by(|a, b| compare_versions(a, b))
        .map(str::to_owned)
}

/// Whether an endpoint reports a `proxy_version` older than `latest`.
pub(super) fn outdated(row: &Endpoint, latest: Option<&str>) -> bool {
    match (&row.proxy_version, latest) {
        (Some(version), Some(latest)) => compare_versions(version, latest).is_lt(),
        _ => false,
    }
}

/// Compares versions such as `1.10.2` and `v1.9` part by part, numerically where both parts
/// are numbers and as text otherwise; of two versions equal as far as both go, the longer is
/// the newer.
pub(super) fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (split_version(a), split_version(b));
    loop {
        let (x, y) = match (a.next(), b.next()) {
            (Some(x), Some(y)) => (x, y),
            (x, y) => return x.is_some().cmp(&y.is_some()),
        };
        let ordering = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
}

fn split_version(v: &str) -> impl Iterator<Item = &str> {
    v.trim().trim_start_matches(['v', 'V']).split(['.', '-', '+'])
}

/// An endpoint as GovAPI returns it.
///
/// The server fields are derived (UNSURE: their real vocabulary is unknown):
/// `managed_runtime_key_id` is the newest active endpoint-scoped API key for this endpoint,
/// `runtime_auth_mode` is `managed_key` when there is one and `unmanaged` otherwise, and
/// `identity_binding_user` is the employee e-mail.
pub(super) fn render(t: &TenantData, row: &Endpoint) -> Value {
    let now = clock::now();
    let managed_key = t
        .api_keys
        .iter()
        .rev()
        .find(|key| {
            key.scope_level == "endpoint"
                && key.scope_target_id == row.endpoint_id
                && super::api_keys::is_active(key, &now)
        })
        .map(|key| key.key_id.clone());
    json!({
        "endpoint_id": row.endpoint_id,
        "hostname": row.hostname,
        "employee_name": row.employee_name,
        "employee_email": row.employee_email,
        "department": row.department,
        "os": row.os,
        "os_version": row.os_version,
        "enrollment": row.enrollment,
        "status": row.status,
        "enforcement_mode": row.enforcement_mode,
        "environment": row.environment,
        "proxy_version": row.proxy_version,
        "fleet_id": row.fleet_id,
        "provider": row.provider,
        "risk_score": row.risk_score,
        "violations_today": row.violations_today,
        "sessions_today": row.sessions_today,
        "agent_ids": row.agent_ids,
        "runtime_auth_mode": if managed_key.is_some() { "managed_key" } else { "unmanaged" },
        "identity_binding_user": row.employee_email,
        "managed_runtime_key_id": managed_key,
        "last_seen": row.last_seen,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::compare_versions;
    use std::cmp::Ordering;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("1.10.0", "1.9.3"), Ordering::Greater);
        assert_eq!(compare_versions("v2.0", "2.0"), Ordering::Equal);
        assert_eq!(compare_versions("2.0", "2.0.1"), Ordering::Less);
    }
}
