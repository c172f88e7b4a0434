//! MCP governance: the vendor registry (`govapi.md` §4.20), the inventory report and digest
//! of observed MCP traffic (§5), and the catalog verify check (§4.21).
//!
//! Vendors are keyed by the client's `vendor_id` (path-escaped by clients, decoded by the
//! router, so `vendor with spaces` works) and listed sorted by it. Their `host_patterns` are
//! kept as sent, order and repeats included: the contract allows a server to reorder them, but
//! the provider compares what it reads back with what it sent and reports a de-duplicated list
//! as an inconsistent result (thoth compares them as sets either way). Observed traffic comes from the emulator-only route
//! `POST /{tenant}/_emulator/mcp-calls` (see the `seed` module); a call is approved when its
//! host matches a pattern of an approved vendor (`api.example.com` exactly, `*.example.com`
//! any subdomain, both without regard to case).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{thoth, Answer, AppState, StatusAnswer, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams, QueryParams};
use crate::emulator::store::model::{McpVendor, TenantData};

const SOURCES: &[&str] = &["manual", "discovered"];

/// The default and the range of `window_hours` for the inventory reads (the operator's
/// bounds).
const DEFAULT_WINDOW_HOURS: u64 = 168;
const MAX_WINDOW_HOURS: u64 = 4320;

/// How many endpoints the digest lists as top offenders.
const TOP_ENDPOINTS: usize = 5;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/mcp/vendors"), get(list).post(create))
        .route(&thoth("/mcp/vendors/{vendor_id}"), get(read).put(update).delete(remove))
        .route(&thoth("/mcp/inventory/report"), get(inventory_report))
        .route(&thoth("/mcp/inventory/digest"), get(inventory_digest))
        .route(&thoth("/mcp/catalog/verify"), post(catalog_verify))
}

#[derive(Deserialize)]
struct VendorPath {
    vendor_id: String,
}

/// The fields shared by create and update.
struct VendorInput {
    display_name: String,
    host_patterns: Vec<String>,
    approved: Option<bool>,
    source: Option<String>,
    notes: Option<String>,
    last_seen_at: Option<String>,
}

impl VendorInput {
    /// `display_name` and at least one host pattern are required; `source` is `manual` or
    /// `discovered`; `last_seen_at` is RFC 3339.
    fn parse(fields: &Fields<'_>) -> Result<Self, ApiError> {
        // Kept as sent, order and repeats included: the provider compares the list it sent
        // with the one it reads back.
        let host_patterns: Vec<String> = fields.opt_str_list("host_patterns")?.unwrap_or_default();
        if host_patterns.is_empty() {
            return Err(ApiError::invalid("`host_patterns` must list at least one host pattern"));
        }
        Ok(VendorInput {
            display_name: fields.req_str("display_name")?,
            host_patterns: host_patterns.into_iter().collect(),
            approved: fields.opt_bool("approved")?,
            source: fields.opt_enum("source", SOURCES)?,
            notes: fields.opt_str("notes")?,
            last_seen_at: fields.opt_timestamp("last_seen_at")?,
        })
    }
}

/// `POST T/mcp/vendors`: creates a vendor (201); an existing `vendor_id` is a 409
/// `mcp_vendor_exists` (UNSURE in the contract; clients GET first and PUT existing vendors).
/// `approved` defaults to `false`.
async fn create(tenant: Tenant, body: Body) -> StatusAnswer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let vendor_id = fields.req_str("vendor_id")?;
    let mut input = VendorInput::parse(&fields)?;
    if tenant.guesses() {
        input.host_patterns.sort();
        input.host_patterns.dedup();
    }
    let row = tenant
        .mutate(move |t| {
            if t.mcp_vendors.contains_key(&vendor_id) {
                return Err(ApiError::conflict(
                    "mcp_vendor_exists",
                    format!("MCP vendor {vendor_id:?} already exists"),
                ));
            }
            let now = clock::now();
            let row = McpVendor {
                vendor_id: vendor_id.clone(),
                display_name: input.display_name,
                approved: input.approved.unwrap_or(false),
                host_patterns: input.host_patterns,
                source: input.source,
                notes: input.notes,
                last_seen_at: input.last_seen_at,
                created_at: now.clone(),
                updated_at: now,
            };
            let rendered = render(&row);
            t.mcp_vendors.insert(vendor_id, row);
            Ok(rendered)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// `GET T/mcp/vendors/{vendor_id}`.
async fn read(tenant: Tenant, PathParams(VendorPath { vendor_id }): PathParams<VendorPath>) -> Answer {
    tenant
        .read(|t| t.mcp_vendors.get(&vendor_id).map(render))
        .await
        .map(Json)
        .ok_or_else(|| vendor_not_found(&vendor_id))
}

/// `PUT T/mcp/vendors/{vendor_id}`: updates a vendor. A `vendor_id` in the body (Terraform
/// repeats it, the operator does not) must match the path. `display_name` and
/// `host_patterns` are replaced; `approved`, `source`, `notes` and `last_seen_at` keep their
/// stored values when left out, as clients re-send their prior values anyway.
async fn update(tenant: Tenant, PathParams(VendorPath { vendor_id }): PathParams<VendorPath>, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    if let Some(in_body) = fields.opt_str("vendor_id")? {
        if in_body != vendor_id {
            return Err(ApiError::invalid(format!(
                "`vendor_id` {in_body:?} in the body does not match {vendor_id:?} in the path"
            )));
        }
    }
    let mut input = VendorInput::parse(&fields)?;
    if tenant.guesses() {
        input.host_patterns.sort();
        input.host_patterns.dedup();
    }
    let row = tenant
        .mutate(move |t| {
            let row = t.mcp_vendors.get_mut(&vendor_id).ok_or_else(|| vendor_not_found(&vendor_id))?;
            row.display_name = input.display_name;
            row.host_patterns = input.host_patterns;
            if let Some(approved) = input.approved {
                row.approved = approved;
            }
            if input.source.is_some() {
                row.source = input.source;
            }
            if input.notes.is_some() {
                row.notes = input.notes;
            }
            if input.last_seen_at.is_some() {
                row.last_seen_at = input.last_seen_at;
            }
            row.updated_at = clock::now();
            Ok(render(row))
        })
        .await?;
    Ok(Json(row))
}

/// `DELETE T/mcp/vendors/{vendor_id}`: `{"deleted": true, "vendor_id": ...}`.
async fn remove(tenant: Tenant, PathParams(VendorPath { vendor_id }): PathParams<VendorPath>) -> Answer {
    let removed = vendor_id.clone();
    tenant.mutate(move |t| t.mcp_vendors.remove(&removed).map(drop).ok_or_else(|| vendor_not_found(&removed))).await?;
    Ok(Json(json!({ "deleted": true, "vendor_id": vendor_id })))
}

/// `GET T/mcp/vendors?approved=true|false`: vendors sorted by id, filtered.
async fn list(tenant: Tenant, query: QueryParams) -> Answer {
    let approved = query.bool("approved")?;
    let rows = tenant
        .read(|t| {
            t.mcp_vendors
                .values()
                .filter(|row| approved.is_none_or(|approved| row.approved == approved))
                .map(render)
                .collect::<Vec<_>>()
        })
        .await;
    Ok(Json(json!({ "data": rows })))
}

fn vendor_not_found(vendor_id: &str) -> ApiError {
    ApiError::not_found(format!("MCP vendor {vendor_id:?} not found"))
}

/// Whether `host` matches a vendor host pattern.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(domain) => host.strip_suffix(domain).is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        None => pattern == host,
    }
}

/// Whether calls to `host` are approved: some approved vendor has a matching pattern.
fn host_approved(t: &TenantData, host: &str) -> bool {
    t.mcp_vendors.values().filter(|v| v.approved).any(|v| v.host_patterns.iter().any(|p| host_matches(p, host)))
}

/// One endpoint's MCP traffic in a window.
#[derive(Default)]
struct EndpointTraffic {
    total_calls: u64,
    approved_calls: u64,
    unapproved_calls: u64,
    /// Unapproved calls per host.
    unapproved_hosts: BTreeMap<String, u64>,
}

/// The traffic of the last `window_hours`, per endpoint, sorted by endpoint id.
fn traffic(t: &TenantData, window_hours: u64) -> BTreeMap<&str, EndpointTraffic> {
    let since = clock::seconds_ago(window_hours.saturating_mul(3600));
    let mut out: BTreeMap<&str, EndpointTraffic> = BTreeMap::new();
    for call in t.mcp_calls.iter().filter(|call| call.observed_at >= since) {
        let entry = out.entry(call.endpoint_id.as_str()).or_default();
        entry.total_calls = entry.total_calls.saturating_add(call.calls);
        if host_approved(t, &call.host) {
            entry.approved_calls = entry.approved_calls.saturating_add(call.calls);
        } else {
            entry.unapproved_calls = entry.unapproved_calls.saturating_add(call.calls);
            let host = entry.unapproved_hosts.entry(call.host.to_ascii_lowercase()).or_default();
            *host = host.saturating_add(call.calls);
        }
    }
    out
}

fn window_hours(query: &QueryParams) -> Result<u64, ApiError> {
    Ok(query.u64_in("window_hours", 1..=MAX_WINDOW_HOURS)?.unwrap_or(DEFAULT_WINDOW_HOURS))
}

fn render_traffic(t: &TenantData, endpoint_id: &str, traffic: &EndpointTraffic) -> Value {
    json!({
        "endpoint_id": endpoint_id,
        "hostname": t.endpoints.get(endpoint_id).map(|e| e.hostname.clone()),
        "total_calls": traffic.total_calls,
        "approved_calls": traffic.approved_calls,
        "unapproved_calls": traffic.unapproved_calls,
        "unapproved_hosts": traffic.unapproved_hosts.keys().collect::<Vec<_>>(),
    })
}

/// `GET T/mcp/inventory/report?window_hours=` (default 168): one row per endpoint with MCP
/// traffic in the window, `{data, total, window_hours}`.
async fn inventory_report(tenant: Tenant, query: QueryParams) -> Answer {
    let window_hours = window_hours(&query)?;
    let answer = tenant
        .read(|t| {
            let rows: Vec<Value> =
                traffic(t, window_hours).iter().map(|(id, traffic)| render_traffic(t, id, traffic)).collect();
            json!({ "data": rows, "total": rows.len(), "window_hours": window_hours })
        })
        .await;
    Ok(Json(answer))
}

/// `GET T/mcp/inventory/digest?window_hours=` (default 168): totals over the report, the
/// endpoints with the most unapproved calls, and one recommended action per unapproved host
/// (most calls first).
async fn inventory_digest(tenant: Tenant, query: QueryParams) -> Answer {
    let window_hours = window_hours(&query)?;
    let answer = tenant
        .read(|t| {
            let traffic = traffic(t, window_hours);
            let mut offenders: Vec<(&str, &EndpointTraffic)> =
                traffic.iter().filter(|(_, tr)| tr.unapproved_calls > 0).map(|(id, tr)| (*id, tr)).collect();
            offenders.sort_by(|a, b| b.1.unapproved_calls.cmp(&a.1.unapproved_calls).then(a.0.cmp(b.0)));
            let mut hosts: BTreeMap<&str, u64> = BTreeMap::new();
            for traffic in traffic.values() {
                for (host, calls) in &traffic.unapproved_hosts {
                    let entry = hosts.entry(host.as_str()).or_default();
                    *entry = entry.saturating_add(*calls);
                }
            }
            let mut hosts: Vec<(&str, u64)> = hosts.into_iter().collect();
            hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let actions: Vec<String> = hosts
                .iter()
                .map(|(host, calls)| {
                    format!("Review MCP host `{host}` ({calls} unapproved calls): register it as an approved vendor or block it")
                })
                .collect();
            json!({
                "window_hours": window_hours,
                "total_endpoints": traffic.len(),
                "unapproved_endpoints": offenders.len(),
                "unapproved_calls": offenders.iter().map(|(_, tr)| tr.unapproved_calls).sum::<u64>(),
                "top_unapproved_endpoints": offenders
                    .iter()
                    .take(TOP_ENDPOINTS)
                    .map(|(id, tr)| render_traffic(t, id, tr))
                    .collect::<Vec<_>>(),
                "recommended_actions": actions,
            })
        })
        .await;
    Ok(Json(answer))
}

/// `POST T/mcp/catalog/verify?env=`: which policies govern a principal and which MCP tools it
/// may use.
///
/// The body needs at least one of `principal`, `human_role`, `human_principal`, a non-empty
/// `human_groups` or a non-empty `auth_context` object. An agent principal (`agent:<id>` or a
/// bare id) is matched by the active policy bundles assigned to it (or to `all`) and by its
/// active pack assignments (in `env`, when both name an environment). The tools are the MCP
/// vendors: approved ones are allowed, the others blocked.
async fn catalog_verify(tenant: Tenant, query: QueryParams, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let principal = fields.opt_non_empty_str("principal")?;
    let human_role = fields.opt_non_empty_str("human_role")?;
    let human_principal = fields.opt_non_empty_str("human_principal")?;
    let human_groups = fields.opt_str_list("human_groups")?.unwrap_or_default();
    let auth_context = fields.opt_object("auth_context")?.unwrap_or_default();
    if principal.is_none()
        && human_role.is_none()
        && human_principal.is_none()
        && human_groups.is_empty()
        && auth_context.is_empty()
    {
        return Err(ApiError::invalid(
            "give at least one of `principal`, `human_role`, `human_principal`, `human_groups` or `auth_context`",
        ));
    }
    let env = query.get("env").map(str::to_owned);
    let agent = principal.as_deref().map(|p| p.strip_prefix("agent:").unwrap_or(p).to_owned());
    let answer = tenant
        .read(|t| {
            let mut matched = Vec::new();
            for bundle in t.policy_bundles.iter().filter(|b| b.status == "active") {
                let applies = bundle.assignments.iter().any(|a| {
                    a == "all"
                        || agent.as_deref().is_some_and(|agent| a == agent || a.strip_prefix("agent:") == Some(agent))
                });
                if applies {
                    matched.push(json!({
                        "type": "policy_bundle",
                        "id": bundle.id,
                        "name": bundle.name,
                        "version": bundle.version,
                        "framework": bundle.framework,
                    }));
                }
            }
            if let Some(packs) = agent.as_deref().and_then(|agent| t.pack_assignments.get(agent)) {
                for row in packs.values().filter(|row| row.status == "active") {
                    let env_ok = match (&env, &row.environment) {
                        (Some(env), Some(row_env)) => env == row_env,
                        _ => true,
                    };
                    if env_ok {
                        matched
                            .push(json!({ "type": "pack", "pack_id": row.pack_id, "rule_version": row.rule_version }));
                    }
                }
            }
            let (allowed, blocked): (Vec<&McpVendor>, Vec<&McpVendor>) =
                t.mcp_vendors.values().partition(|v| v.approved);
            json!({
                "environment": env,
                "principal": principal,
                "policy_count": matched.len(),
                "matched_policies": matched,
                "allowed_tools": allowed.iter().map(|v| &v.vendor_id).collect::<Vec<_>>(),
                "blocked_tools": blocked.iter().map(|v| &v.vendor_id).collect::<Vec<_>>(),
                "verified_at": clock::now(),
            })
        })
        .await;
    Ok(Json(answer))
}

/// A vendor as GovAPI returns it.
fn render(row: &McpVendor) -> Value {
    json!({
        "vendor_id": row.vendor_id,
        "display_name": row.display_name,
        "approved": row.approved,
        "host_patterns": row.host_patterns,
        "source": row.source,
        "notes": row.notes,
        "last_seen_at": row.last_seen_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::host_matches;

    #[test]
    fn host_patterns_match_exactly_or_by_subdomain() {
        assert!(host_matches("api.openai.com", "API.openai.com"));
        assert!(host_matches("*.openai.com", "api.openai.com"));
        assert!(!host_matches("*.openai.com", "openai.com"));
        assert!(!host_matches("*.openai.com", "evilopenai.com"));
        assert!(!host_matches("api.openai.com", "api.openai.com.evil"));
    }
}
