//! Read-only insight endpoints (`govapi.md` §5): the governance feed and tool summary, the
//! governance reports, and the forensics and evidence-bundle reads.
//!
//! Everything here is computed on each request from the tenant's decision events (see
//! `derived`), endpoints, fleets, approvals and policy exceptions; nothing is stored. A
//! report's id is a digest of its content, so `GET T/reports/{report_id}` finds a report
//! listed by `GET T/reports` for as long as the data it summarises does not change. The
//! emulator records no sessions or incidents, so their forensics and evidence bundles are
//! always 404; an agent's latest forensics exist for every known agent.

use std::collections::BTreeMap;

use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::derived::{decision_events, known_agents, DecisionEvent};
use super::evidence::timestamp_param;
use super::{thoth, Answer, AppState, Tenant, TenantPath};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{PathParams, QueryParams};
use crate::emulator::store::model::TenantData;

const SORT_KEYS: &[&str] = &["timestamp", "agent_id", "tool_name", "decision"];
const SORT_DIRS: &[&str] = &["asc", "desc"];
const CADENCES: &[&str] = &["7d", "30d", "custom"];
const REPORT_STATUSES: &[&str] = &["PENDING", "COMPLETED", "FAILED"];

/// The price per thousand tokens the cost reports use when the request names none (UNSURE).
const DEFAULT_RATE_USD_PER_1K_TOKENS: f64 = 0.002;
const PRICING_VERSION: &str = "2026-01";
const PRICING_UPDATED_AT: &str = "2026-01-01T00:00:00Z";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/governance/feed"), get(feed))
        .route(&thoth("/governance/tools"), get(tools))
        .route(&thoth("/reports"), get(list_reports))
        .route(&thoth("/reports/day7"), get(day7))
        .route(&thoth("/reports/overview"), get(overview))
        .route(&thoth("/reports/cost"), get(cost))
        .route(&thoth("/reports/executive-summary"), get(executive_summary))
        .route(&thoth("/reports/board-incident/{violation_id}"), get(board_incident))
        .route(&thoth("/reports/{report_id}"), get(read_report))
        .route(&thoth("/sessions/{session_id}/forensics"), get(session_forensics))
        .route(&thoth("/sessions/{session_id}/evidence-bundle"), get(evidence_bundle))
        .route(&thoth("/incidents/{incident_id}/forensics"), get(incident_forensics))
        .route(&thoth("/agents/{agent_id}/forensics/latest"), get(agent_forensics))
}

#[derive(Deserialize)]
struct ViolationPath {
    violation_id: String,
}

#[derive(Deserialize)]
struct ReportPath {
    report_id: String,
}

/// The session of a path; the tenant does not matter, as no tenant has sessions.
#[derive(Deserialize)]
struct SessionPath {
    session_id: String,
}

/// The incident of a path; the tenant does not matter, as no tenant has incidents.
#[derive(Deserialize)]
struct IncidentPath {
    incident_id: String,
}

#[derive(Deserialize)]
struct AgentPath {
    agent_id: String,
}

/// `GET T/governance/feed`: decision events, filtered, sorted and paged.
///
/// Filters: `agent_id`, `caller_agent_id`, `tool_name`, `decision`, `reason_code` (exact),
/// `search` (a case-insensitive substring of the agent, tool, reason or reason code), `from`
/// and `to` (UTC timestamps in the emulator's shape, inclusive). `sort_by` is `timestamp`
/// (default), `agent_id`, `tool_name` or `decision`; `sort_dir` `desc` (default) or `asc`.
/// `page` starts at 1; `per_page` is 1–500, default 50.
async fn feed(tenant: Tenant, query: QueryParams) -> Answer {
    let page = query.u64_in("page", 1..=u64::from(u32::MAX))?.unwrap_or(1);
    let per_page = query.u64_in("per_page", 1..=500)?.unwrap_or(50);
    let sort_by = query.one_of("sort_by", SORT_KEYS)?.unwrap_or_else(|| "timestamp".to_owned());
    let sort_dir = query.one_of("sort_dir", SORT_DIRS)?.unwrap_or_else(|| "desc".to_owned());
    let from = timestamp_param(&query, "from")?;
    let to = timestamp_param(&query, "to")?;
    let search = query.get("search").map(str::to_lowercase);
    let answer = tenant
        .read(|t| {
            let events = decision_events(t);
            let mut rows: Vec<&DecisionEvent<'_>> = events
                .iter()
                .filter(|e| query.allows("agent_id", e.approval.agent_id.as_deref().unwrap_or_default()))
                // Approval events have no calling agent, so a caller filter matches none.
                .filter(|_| query.get("caller_agent_id").is_none())
                .filter(|e| query.allows("tool_name", e.approval.tool_name.as_deref().unwrap_or_default()))
                .filter(|e| query.allows("decision", e.decision))
                .filter(|e| query.allows("reason_code", e.reason_code))
                .filter(|e| from.as_deref().is_none_or(|from| e.timestamp >= from))
                .filter(|e| to.as_deref().is_none_or(|to| e.timestamp <= to))
                .filter(|e| {
                    search.as_deref().is_none_or(|needle| {
                        [e.approval.agent_id.as_deref(), e.approval.tool_name.as_deref(), e.approval.reason.as_deref()]
                            .into_iter()
                            .flatten()
                            .chain([e.reason_code])
                            .any(|text| text.to_lowercase().contains(needle))
                    })
                })
                .collect();
            let key = |e: &DecisionEvent<'_>| -> String {
                match sort_by.as_str() {
                    "agent_id" => e.approval.agent_id.clone().unwrap_or_default(),
                    "tool_name" => e.approval.tool_name.clone().unwrap_or_default(),
                    "decision" => e.decision.to_owned(),
                    _ => e.timestamp.to_owned(),
                }
            };
            rows.sort_by(|a, b| (key(a), &a.event_id).cmp(&(key(b), &b.event_id)));
            if sort_dir == "desc" {
                rows.reverse();
            }
            let total = rows.len();
            let offset = (page - 1).saturating_mul(per_page);
            let data: Vec<Value> =
                super::derived::page(rows, offset, Some(per_page)).into_iter().map(|e| e.render(t)).collect();
            json!({
                "data": data,
                "total": total,
                "page": page,
                "per_page": per_page,
                "sort_by": sort_by,
                "sort_dir": sort_dir,
            })
        })
        .await;
    Ok(Json(answer))
}

/// `GET T/governance/tools?window_hours=&limit=`: per tool, the decisions of the last
/// `window_hours` (default 24), most used first, at most `limit` (default 50) tools. The
/// `risk_tier` comes from the settings' `tool_risk_overrides`, `unclassified` otherwise.
async fn tools(tenant: Tenant, query: QueryParams) -> Answer {
    let window_hours = query.u64_in("window_hours", 1..=8760)?.unwrap_or(24);
    let limit = query.u64_in("limit", 1..=1000)?.unwrap_or(50);
    let since = clock::seconds_ago(window_hours.saturating_mul(3600));
    let answer = tenant
        .read(|t| {
            let mut per_tool: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
            for event in decision_events(t).iter().filter(|e| e.timestamp >= since.as_str()) {
                let Some(tool) = event.approval.tool_name.as_deref() else { continue };
                let counts = per_tool.entry(tool).or_default();
                let slot = match event.decision {
                    "allow" => 0,
                    "block" => 1,
                    _ => 2,
                };
                counts[slot] += 1;
            }
            let overrides = t.settings.document.get("tool_risk_overrides");
            let mut rows: Vec<(&str, [u64; 3])> = per_tool.into_iter().collect();
            rows.sort_by(|a, b| b.1.iter().sum::<u64>().cmp(&a.1.iter().sum::<u64>()).then(a.0.cmp(b.0)));
            let total = rows.len();
            let data: Vec<Value> = super::derived::page(rows, 0, Some(limit))
                .into_iter()
                .map(|(tool, [allowed, blocked, step_up])| {
                    let tier = overrides.and_then(|o| o.get(tool)).and_then(Value::as_str).unwrap_or("unclassified");
                    json!({
                        "tool_name": tool,
                        "calls": allowed + blocked + step_up,
                        "allowed": allowed,
                        "blocked": blocked,
                        "step_up": step_up,
                        "risk_tier": tier,
                    })
                })
                .collect();
            json!({ "data": data, "total": total, "window_hours": window_hours, "limit": limit })
        })
        .await;
    Ok(Json(answer))
}

/// Decision counts over the last `days`.
fn decision_counts(t: &TenantData, days: u64) -> Value {
    let since = clock::seconds_ago(days.saturating_mul(86_400));
    let events = decision_events(t);
    let recent: Vec<&DecisionEvent<'_>> = events.iter().filter(|e| e.timestamp >= since.as_str()).collect();
    let count = |decision: &str| recent.iter().filter(|e| e.decision == decision).count();
    json!({
        "total": recent.len(),
        "allow": count("allow"),
        "block": count("block"),
        "step_up": count("step_up"),
    })
}

/// The tenant's inventory and workflow counts, shared by several reports.
fn posture(t: &TenantData) -> Value {
    let pending_approvals = t.approvals.iter().filter(|a| a.status == "pending").count();
    let open_exceptions =
        t.policy_exceptions.iter().filter(|e| matches!(e.status.as_str(), "pending" | "under_review")).count();
    json!({
        "fleets": t.fleets.len(),
        "endpoints": t.endpoints.len(),
        "quarantined_endpoints": t.endpoints.values().filter(|e| e.status == "quarantined").count(),
        "agents": known_agents(t).len(),
        "active_policy_bundles": t.policy_bundles.iter().filter(|b| b.status == "active").count(),
        "pending_approvals": pending_approvals,
        "open_policy_exceptions": open_exceptions,
        "evidence_records": t.evidence_chain.len(),
    })
}

fn days(query: &QueryParams, default: u64) -> Result<u64, ApiError> {
    Ok(query.u64_in("days", 1..=3650)?.unwrap_or(default))
}

fn rate(query: &QueryParams) -> Result<f64, ApiError> {
    Ok(query.non_negative_f64("rate")?.unwrap_or(DEFAULT_RATE_USD_PER_1K_TOKENS))
}

/// `GET T/reports/day7?days=` (default 7): the first-week adoption report.
async fn day7(tenant: Tenant, query: QueryParams) -> Answer {
    let days = days(&query, 7)?;
    let answer = tenant
        .read(|t| {
            json!({
                "tenant_id": tenant.id(),
                "days": days,
                "generated_at": clock::now(),
                "decisions": decision_counts(t, days),
                "posture": posture(t),
            })
        })
        .await;
    Ok(Json(answer))
}

/// `GET T/reports/overview?days=` (default 30).
async fn overview(tenant: Tenant, query: QueryParams) -> Answer {
    let days = days(&query, 30)?;
    let answer = tenant
        .read(|t| {
            json!({
                "tenant_id": tenant.id(),
                "days": days,
                "generated_at": clock::now(),
                "decisions": decision_counts(t, days),
                "posture": posture(t),
                "packs_assigned": t.pack_assignments.values().flat_map(|p| p.values()).filter(|r| r.status == "active").count(),
                "mcp_vendors": t.mcp_vendors.len(),
            })
        })
        .await;
    Ok(Json(answer))
}

/// The cost figures: the emulator meters no tokens, so every amount is 0, priced with the
/// built-in catalogue.
fn cost_figures(days: u64, rate: f64) -> Value {
    let catalogue = json!({ "version": PRICING_VERSION, "rate_usd_per_1k_tokens": DEFAULT_RATE_USD_PER_1K_TOKENS });
    json!({
        "days": days,
        "rate": rate,
        "total_tokens": 0,
        "estimated_cost_usd": 0.0,
        "pricing_source": "catalog",
        "pricing_version": PRICING_VERSION,
        "pricing_sha256": clock::sha256_hex(catalogue.to_string().as_bytes()),
        "pricing_updated_at": PRICING_UPDATED_AT,
        "pricing_evidence": {
            "priced_with_catalog_count": 0,
            "event_estimated_fallbacks": 0,
            "flat_rate_fallbacks": 0,
            "unresolved_models": [],
        },
    })
}

/// `GET T/reports/cost?days=&rate=` (defaults 30 and 0.002 USD per 1K tokens).
async fn cost(PathParams(TenantPath { tenant: _ }): PathParams<TenantPath>, query: QueryParams) -> Answer {
    Ok(Json(cost_figures(days(&query, 30)?, rate(&query)?)))
}

/// `GET T/reports/executive-summary?days=&rate=` (defaults 30 and 0.002).
async fn executive_summary(tenant: Tenant, query: QueryParams) -> Answer {
    let days = days(&query, 30)?;
    let rate = rate(&query)?;
    let answer = tenant
        .read(|t| {
            let decisions = decision_counts(t, days);
            let headline =
                format!("{} governed decisions in {days} days, {} blocked", decisions["total"], decisions["block"]);
            json!({
                "tenant_id": tenant.id(),
                "days": days,
                "generated_at": clock::now(),
                "headline": headline,
                "decisions": decisions,
                "posture": posture(t),
                "cost": cost_figures(days, rate),
            })
        })
        .await;
    Ok(Json(answer))
}

/// `GET T/reports/board-incident/{violation_id}`: what the tenant knows about a violation, from
/// the approvals and policy exceptions that name it; 404 when none does.
async fn board_incident(
    tenant: Tenant,
    PathParams(ViolationPath { violation_id }): PathParams<ViolationPath>,
) -> Answer {
    tenant
        .read(|t| {
            let approvals: Vec<Value> = t
                .approvals
                .iter()
                .filter(|a| a.violation_id.as_deref() == Some(&violation_id))
                .map(super::approvals::render)
                .collect();
            let exceptions: Vec<Value> = t
                .policy_exceptions
                .iter()
                .filter(|e| e.violation_id == violation_id)
                .map(|e| json!({ "request_id": e.request_id, "status": e.status, "requested_by": e.requested_by }))
                .collect();
            if approvals.is_empty() && exceptions.is_empty() {
                return Err(ApiError::not_found(format!("violation {violation_id:?} not found")));
            }
            let agents: Vec<&str> = t
                .approvals
                .iter()
                .filter(|a| a.violation_id.as_deref() == Some(&violation_id))
                .filter_map(|a| a.agent_id.as_deref())
                .chain(
                    t.policy_exceptions
                        .iter()
                        .filter(|e| e.violation_id == violation_id)
                        .filter_map(|e| e.agent_id.as_deref()),
                )
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            Ok(Json(json!({
                "violation_id": violation_id,
                "tenant_id": tenant.id(),
                "generated_at": clock::now(),
                "agents": agents,
                "approvals": approvals,
                "policy_exceptions": exceptions,
            })))
        })
        .await
}

/// The governance report covering the `cadence` window (7 days unless `30d`), with a
/// content-derived id and hash. The generation time is the newest decision's (or the
/// epoch), so the same data always makes the same report.
fn governance_report(t: &TenantData, tenant: &str, cadence: &str) -> Value {
    let days = if cadence == "30d" { 30 } else { 7 };
    let events = decision_events(t);
    let generated_at = events.last().map_or(clock::NEVER, |e| e.timestamp).to_owned();
    let decisions = decision_counts(t, days);
    let pending = t.approvals.iter().filter(|a| a.status == "pending").count();
    let content = json!({
        "tenant_id": tenant,
        "cadence": cadence,
        "governance_metrics": { "decisions": decisions, "posture": posture(t) },
        "economic_metrics": cost_figures(days, DEFAULT_RATE_USD_PER_1K_TOKENS),
        "dlp_metrics": { "redactions": 0, "blocked_exfiltration_attempts": 0 },
        "forensic_ledger": {
            "evidence_records": t.evidence_chain.len(),
            "chain_head": t.evidence_chain.last().map_or(0, |r| r.chain_index),
        },
        "post_approval_gap": { "pending_approvals": pending, "median_resolution_seconds": null },
    });
    let report_hash = clock::sha256_hex(content.to_string().as_bytes());
    let mut report = json!({
        "report_id": format!("rpt_{}", &report_hash[..16]),
        "tenant_id": tenant,
        "cadence": cadence,
        "time_range": { "days": days, "to": generated_at },
        "generated_at": generated_at,
        "status": "COMPLETED",
        "report_hash": report_hash,
    });
    for key in ["governance_metrics", "economic_metrics", "dlp_metrics", "forensic_ledger", "post_approval_gap"] {
        report[key] = content[key].clone();
    }
    report
}

/// `GET T/reports?cadence=&status=`: the current report per cadence (`7d` and `30d`, or the
/// one asked for), all `COMPLETED`, under `data` with `total` (UNSURE: the envelope is not
/// documented).
async fn list_reports(tenant: Tenant, query: QueryParams) -> Answer {
    let cadence = query.one_of("cadence", CADENCES)?;
    let status = query.get("status").map(str::to_ascii_uppercase);
    if let Some(status) = &status {
        if !REPORT_STATUSES.contains(&status.as_str()) {
            return Err(ApiError::invalid(format!("`status` must be one of {}", REPORT_STATUSES.join(", "))));
        }
    }
    let answer = tenant
        .read(|t| {
            let cadences: Vec<&str> = match &cadence {
                Some(cadence) => vec![cadence.as_str()],
                None => vec!["7d", "30d"],
            };
            let rows: Vec<Value> = if status.as_deref().is_some_and(|s| s != "COMPLETED") {
                Vec::new()
            } else {
                cadences.into_iter().map(|c| governance_report(t, tenant.id(), c)).collect()
            };
            json!({ "data": rows, "total": rows.len() })
        })
        .await;
    Ok(Json(answer))
}

/// `GET T/reports/{report_id}?cadence=&status=`: `latest` is the current report of `cadence`
/// (default `7d`); any other id must be the id of a current report. A `status` other than
/// `COMPLETED` finds nothing.
async fn read_report(
    tenant: Tenant,
    PathParams(ReportPath { report_id }): PathParams<ReportPath>,
    query: QueryParams,
) -> Answer {
    let cadence = query.one_of("cadence", CADENCES)?;
    let status = query.get("status").map(str::to_ascii_uppercase);
    tenant
        .read(|t| {
            if status.as_deref().is_some_and(|s| s != "COMPLETED") {
                return None;
            }
            if report_id == "latest" {
                return Some(governance_report(t, tenant.id(), cadence.as_deref().unwrap_or("7d")));
            }
            let cadences: Vec<&str> = cadence.as_deref().map_or_else(|| CADENCES.to_vec(), |c| vec![c]);
            cadences
                .into_iter()
                .map(|c| governance_report(t, tenant.id(), c))
                .find(|r| r["report_id"] == report_id.as_str())
        })
        .await
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("report {report_id:?} not found")))
}

/// `GET T/sessions/{session_id}/forensics`: the emulator records no sessions.
async fn session_forensics(PathParams(path): PathParams<SessionPath>) -> ApiError {
    ApiError::not_found(format!("session {:?} not found", path.session_id))
}

/// `GET T/sessions/{session_id}/evidence-bundle`: the emulator records no sessions.
async fn evidence_bundle(PathParams(path): PathParams<SessionPath>) -> ApiError {
    ApiError::not_found(format!("session {:?} not found", path.session_id))
}

/// `GET T/incidents/{incident_id}/forensics`: the emulator records no incidents.
async fn incident_forensics(PathParams(path): PathParams<IncidentPath>) -> ApiError {
    ApiError::not_found(format!("incident {:?} not found", path.incident_id))
}

/// `GET T/agents/{agent_id}/forensics/latest`: the agent's decision events, the tools and
/// packs that shape its attack surface, and a risk score of 10 per blocked decision (at most
/// 100). 404 for an agent the tenant does not know.
async fn agent_forensics(tenant: Tenant, PathParams(AgentPath { agent_id }): PathParams<AgentPath>) -> Answer {
    tenant
        .read(|t| {
            if !known_agents(t).contains(&agent_id) {
                return Err(ApiError::not_found(format!("agent {agent_id:?} not found")));
            }
            let events: Vec<DecisionEvent<'_>> = decision_events(t)
                .into_iter()
                .filter(|e| e.approval.agent_id.as_deref() == Some(agent_id.as_str()))
                .collect();
            let blocked = events.iter().filter(|e| e.blocked()).count() as u64;
            let tools: std::collections::BTreeSet<&str> =
                events.iter().filter_map(|e| e.approval.tool_name.as_deref()).collect();
            let packs: Vec<&str> = t
                .pack_assignments
                .get(&agent_id)
                .into_iter()
                .flat_map(|p| p.values())
                .filter(|r| r.status == "active")
                .map(|r| r.pack_id.as_str())
                .collect();
            Ok(Json(json!({
                "agent_id": agent_id,
                "agent_name": agent_id,
                "session_id": null,
                "risk_score": (blocked * 10).min(100),
                "events": events.iter().map(|e| e.render(t)).collect::<Vec<_>>(),
                "telemetry_summary": {
                    "decisions": events.len(),
                    "blocked": blocked,
                    "last_decision_at": events.last().map(|e| e.timestamp),
                },
                "attack_surface": { "tools": tools, "packs": packs },
            })))
        })
        .await
}
