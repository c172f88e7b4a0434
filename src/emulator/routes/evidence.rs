//! Governance evidence: the evidence backfill (`govapi.md` §4.10) on its primary and fallback
//! paths, the decision-field backfill (§4.11), the evidence hash chain and its verification,
//! the evidence SLOs, and the operator's decision metadata export (§5).
//!
//! Both backfills read their parameters from the query string or from a JSON object body,
//! and accept a literal `null` body (§1.8). The evidence backfill appends one hash-chained
//! record per decision event (see `derived`) that has none yet; the chain is stored, so
//! `verify-chain` recomputes every hash and reports a breach if a data file was tampered
//! with. The primary backfill path can be made to answer 404 or 405 through the emulator-only
//! switches, to exercise the clients' fallback.

use std::collections::BTreeSet;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::derived::{decision_events, DecisionEvent};
use super::{governance, thoth, Answer, AppState, Tenant, TenantPath};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{ActionParams, Body, PathParams, QueryParams};
use crate::emulator::store::model::{EvidenceRecord, TenantData};

/// The `prev_hash` of the first record of a chain.
const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The collection the backfill reads events from (UNSURE: the real name is not documented).
const SOURCE_COLLECTION: &str = "behavioral_events";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&governance("/evidence/thoth/backfill"), post(evidence_backfill_primary))
        .route(&thoth("/governance/evidence/thoth/backfill"), post(evidence_backfill_fallback))
        .route(&thoth("/governance/backfill-decision-fields"), post(decision_field_backfill))
        .route(&governance("/evidence/verify-chain"), get(verify_chain))
        .route(&thoth("/evidence/chain"), get(chain))
        .route(&thoth("/governance/evidence-slos"), get(evidence_slos))
        .route(&thoth("/governance/decision-metadata/export"), get(decision_metadata_export))
        .route(&thoth("/governance/moses/training/decision-metadata/collect"), post(decision_metadata_collect))
}

/// The parameters of an evidence backfill.
struct EvidenceBackfill {
    limit: u64,
    include_blocked_events: bool,
    dry_run: bool,
    integration_id: Option<String>,
}

impl EvidenceBackfill {
    fn parse(query: QueryParams, body: Body) -> Result<Self, ApiError> {
        let params = ActionParams::new(query, body)?;
        Ok(EvidenceBackfill {
            limit: params.u64_in("limit", 1..=1000, 200)?,
            include_blocked_events: params.bool("include_blocked_events", true)?,
            dry_run: params.bool("dry_run", false)?,
            integration_id: params.opt_str("integration_id")?,
        })
    }
}

/// `POST G/evidence/thoth/backfill`: the primary path, unless the tenant's emulator switch
/// makes it answer 404 or 405.
async fn evidence_backfill_primary(tenant: Tenant, query: QueryParams, body: Body) -> Answer {
    let params = EvidenceBackfill::parse(query, body)?;
    let answer = tenant
        .mutate(move |t| {
            match t.emulator.evidence_backfill_primary_status {
                Some(404) => return Err(ApiError::not_found("no such route")),
                Some(405) => return Err(ApiError::method_not_allowed()),
                _ => {}
            }
            Ok(run_evidence_backfill(t, &params))
        })
        .await?;
    Ok(Json(answer))
}

/// `POST T/governance/evidence/thoth/backfill`: the fallback path, always served.
async fn evidence_backfill_fallback(tenant: Tenant, query: QueryParams, body: Body) -> Answer {
    let params = EvidenceBackfill::parse(query, body)?;
    let answer = tenant.mutate(move |t| Ok(run_evidence_backfill(t, &params))).await?;
    Ok(Json(answer))
}

/// Scans the `limit` oldest decision events and appends an evidence record for each one that
/// has none (blocked ones only with `include_blocked_events`); a dry run appends nothing and
/// reports `would_create` instead of `created`. The response also echoes the effective
/// parameters, which clients ignore.
fn run_evidence_backfill(t: &mut TenantData, params: &EvidenceBackfill) -> Value {
    let existing: BTreeSet<&str> = t.evidence_chain.iter().map(|record| record.event_id.as_str()).collect();
    let events = decision_events(t);
    let scanned: Vec<&DecisionEvent<'_>> =
        events.iter().take(usize::try_from(params.limit).unwrap_or(usize::MAX)).collect();
    let skipped_existing = scanned.iter().filter(|event| existing.contains(event.event_id.as_str())).count();
    let candidates: Vec<(String, Option<String>, &'static str)> = scanned
        .iter()
        .filter(|event| !existing.contains(event.event_id.as_str()))
        .filter(|event| params.include_blocked_events || !event.blocked())
        .map(|event| (event.event_id.clone(), event.approval.agent_id.clone(), event.decision))
        .collect();
    let examined = scanned.len();
    drop(events);
    let mut evidence_ids = Vec::new();
    if !params.dry_run {
        let now = clock::now();
        for (event_id, agent_id, decision) in &candidates {
            let record = append_record(t, event_id, agent_id.clone(), decision, params.integration_id.clone(), &now);
            evidence_ids.push(record);
        }
    }
    let created = evidence_ids.len();
    json!({
        "source_collection": SOURCE_COLLECTION,
        "examined": examined,
        "candidates": candidates.len(),
        "created": created,
        "would_create": if params.dry_run { candidates.len() } else { 0 },
        "skipped_existing": skipped_existing,
        "evidence_ids": evidence_ids,
        "dry_run": params.dry_run,
        "limit": params.limit,
        "include_blocked_events": params.include_blocked_events,
        "integration_id": params.integration_id,
    })
}

/// Appends one record to the chain and returns its evidence id, which is derived from the
/// event id (an event has at most one record).
fn append_record(
    t: &mut TenantData,
    event_id: &str,
    agent_id: Option<String>,
    decision: &str,
    integration_id: Option<String>,
    now: &str,
) -> String {
    let prev_hash = t.evidence_chain.last().map_or_else(|| GENESIS_HASH.to_owned(), |r| r.record_hash.clone());
    let chain_index = t.evidence_chain.last().map_or(1, |r| r.chain_index.saturating_add(1));
    let mut record = EvidenceRecord {
        chain_index,
        evidence_id: format!("evd_{}", &clock::sha256_hex(event_id.as_bytes())[..16]),
        event_id: event_id.to_owned(),
        event_type: "approval_decision".to_owned(),
        agent_id,
        decision: decision.to_owned(),
        integration_id,
        prev_hash,
        record_hash: String::new(),
        created_at: now.to_owned(),
    };
    record.record_hash = record_hash(&record);
    let id = record.evidence_id.clone();
    t.evidence_chain.push(record);
    id
}

/// The SHA-256 over the previous hash and every field of a record except its own hash.
fn record_hash(record: &EvidenceRecord) -> String {
    let content = json!([
        record.prev_hash,
        record.chain_index,
        record.evidence_id,
        record.event_id,
        record.event_type,
        record.agent_id,
        record.decision,
        record.integration_id,
        record.created_at,
    ]);
    clock::sha256_hex(content.to_string().as_bytes())
}

/// Checks the first `limit` records of the chain: every hash must match the record and link
/// to its predecessor, and indexes must count up from 1. Returns how many records were
/// checked and the first breach found.
fn check_chain(chain: &[EvidenceRecord], limit: usize) -> (usize, Option<String>) {
    let mut prev = GENESIS_HASH;
    for (position, record) in chain.iter().take(limit).enumerate() {
        let expected_index = u64::try_from(position).unwrap_or(u64::MAX).saturating_add(1);
        let breach = if record.chain_index != expected_index {
            Some(format!(
                "record {} has chain_index {}, expected {expected_index}",
                record.evidence_id, record.chain_index
            ))
        } else if record.prev_hash != prev {
            Some(format!("record {} does not link to its predecessor", record.chain_index))
        } else if record.record_hash != record_hash(record) {
            Some(format!("record {} does not match its hash", record.chain_index))
        } else {
            None
        };
        if breach.is_some() {
            return (position + 1, breach);
        }
        prev = &record.record_hash;
    }
    (chain.len().min(limit), None)
}

/// `GET G/evidence/verify-chain?limit=`: verifies the first `limit` records (all by default).
async fn verify_chain(tenant: Tenant, query: QueryParams) -> Answer {
    let limit = query.u64_in("limit", 1..=1_000_000)?;
    let answer = tenant
        .read(|t| {
            let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
            let (records_checked, breach) = check_chain(&t.evidence_chain, limit);
            json!({
                "verified": breach.is_none(),
                "records_checked": records_checked,
                "chain_head": t.evidence_chain.last().map_or(0, |r| r.chain_index),
                "breach_detail": breach,
                "verified_at": clock::now(),
            })
        })
        .await;
    Ok(Json(answer))
}

/// `GET T/evidence/chain?limit=&from_sequence=`: the records whose `chain_index` is greater
/// than `from_sequence` (default 0), at most `limit` (1–500, default 100), under `data` (the
/// contract allows `data` or `chain`; clients read both); `total` counts every record after
/// the cursor (UNSURE: it could be the whole chain's length).
async fn chain(tenant: Tenant, query: QueryParams) -> Answer {
    let limit = query.u64_in("limit", 1..=500)?.unwrap_or(100);
    let from = query.u64_in("from_sequence", 0..=u64::MAX)?.unwrap_or(0);
    let answer = tenant
        .read(|t| {
            let after: Vec<&EvidenceRecord> = t.evidence_chain.iter().filter(|r| r.chain_index > from).collect();
            let total = after.len();
            let rows: Vec<Value> = after
                .into_iter()
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .map(|r| {
                    json!({
                        "chain_index": r.chain_index,
                        "evidence_id": r.evidence_id,
                        "event_id": r.event_id,
                        "event_type": r.event_type,
                        "agent_id": r.agent_id,
                        "decision": r.decision,
                        "integration_id": r.integration_id,
                        "prev_hash": r.prev_hash,
                        "record_hash": r.record_hash,
                        "created_at": r.created_at,
                    })
                })
                .collect();
            json!({ "data": rows, "total": total })
        })
        .await;
    Ok(Json(answer))
}

/// `POST T/governance/backfill-decision-fields`: scans the decision events of the last
/// `window_hours` (at most `limit`). The emulator derives every decision field when it makes
/// an event, so nothing ever needs patching: every examined row is `skipped_no_change`.
/// Nothing is written, dry run or not.
async fn decision_field_backfill(tenant: Tenant, query: QueryParams, body: Body) -> Answer {
    let params = ActionParams::new(query, body)?;
    let limit = params.u64_in("limit", 1..=5000, 500)?;
    let window_hours = params.u64_in("window_hours", 1..=2880, 720)?;
    let include_blocked_events = params.bool("include_blocked_events", true)?;
    let dry_run = params.bool("dry_run", false)?;
    let since = clock::seconds_ago(window_hours.saturating_mul(3600));
    let examined = tenant
        .read(|t| {
            decision_events(t)
                .iter()
                .filter(|event| event.timestamp >= since.as_str())
                .filter(|event| include_blocked_events || !event.blocked())
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .count()
        })
        .await;
    Ok(Json(json!({
        "examined": examined,
        "candidates": 0,
        "updated": 0,
        "would_update": 0,
        "skipped_no_change": examined,
        "patched_violation_id": 0,
        "patched_decision_reason_code": 0,
        "patched_authorization_decision": 0,
        "patched_enforcement_trace_id": 0,
        "patched_decision_evidence": 0,
        "patched_deepllm_enrichment": 0,
        "row_ids": [],
        "dry_run": dry_run,
        "limit": limit,
        "window_hours": window_hours,
        "include_blocked_events": include_blocked_events,
    })))
}

/// The SLO thresholds: rates are ratios from 0 to 1 (UNSURE: 0–100 is possible), the latency
/// is an upper bound in seconds.
const THRESHOLDS: &[(&str, f64)] = &[
    ("violation_id_presence_rate", 0.99),
    ("decision_reason_code_coverage", 0.99),
    ("policy_reference_coverage_non_allow", 0.95),
    ("evidence_chain_verification_success", 1.0),
    ("deepllm_enrichment_join_rate", 0.9),
    ("decision_to_api_visibility_latency_p95_seconds", 60.0),
];

/// `GET T/governance/evidence-slos?window_hours=&scan_limit=` (defaults 24 and 20000, the
/// documentation's example values).
///
/// The metrics are computed over the decision events of the window: violation-relevant rows
/// are blocked ones or ones with a `violation_id`; `policy_reference_coverage_non_allow` is
/// the share of non-allow rows that have an evidence record (the emulator's stand-in for a
/// policy reference, so that running the evidence backfill visibly fixes it);
/// `evidence_chain_verification_success` is 1 when the whole chain verifies. A rate over no
/// rows is 1. Enrichment and visibility latency are not modelled (1 and 0).
async fn evidence_slos(tenant: Tenant, query: QueryParams) -> Answer {
    let window_hours = query.u64_in("window_hours", 1..=8760)?.unwrap_or(24);
    let scan_limit = query.u64_in("scan_limit", 1..=1_000_000)?.unwrap_or(20_000);
    let since = clock::seconds_ago(window_hours.saturating_mul(3600));
    let answer = tenant
        .read(|t| {
            let evidenced: BTreeSet<&str> = t.evidence_chain.iter().map(|r| r.event_id.as_str()).collect();
            let events = decision_events(t);
            let rows: Vec<&DecisionEvent<'_>> = events
                .iter()
                .filter(|event| event.timestamp >= since.as_str())
                .take(usize::try_from(scan_limit).unwrap_or(usize::MAX))
                .collect();
            let relevant: Vec<_> = rows.iter().filter(|e| e.blocked() || e.approval.violation_id.is_some()).collect();
            let non_allow: Vec<_> = rows.iter().filter(|e| e.decision != "allow").collect();
            let rate = |part: usize, whole: usize| {
                if whole == 0 {
                    1.0
                } else {
                    super::fleets::round2(part as f64 / whole as f64)
                }
            };
            let chain_ok = check_chain(&t.evidence_chain, usize::MAX).1.is_none();
            let metrics = json!({
                "rows_scanned": rows.len(),
                "violation_relevant_rows": relevant.len(),
                "violation_id_presence_rate":
                    rate(relevant.iter().filter(|e| e.approval.violation_id.is_some()).count(), relevant.len()),
                "decision_reason_code_coverage": 1.0,
                "policy_reference_coverage_non_allow":
                    rate(non_allow.iter().filter(|e| evidenced.contains(e.event_id.as_str())).count(), non_allow.len()),
                "evidence_chain_verification_success": if chain_ok { 1.0 } else { 0.0 },
                "deepllm_enrichment_join_rate": 1.0,
                "decision_to_api_visibility_latency_p95_seconds": 0.0,
            });
            let mut thresholds = serde_json::Map::new();
            let mut failures = Vec::new();
            for (name, threshold) in THRESHOLDS {
                thresholds.insert((*name).to_owned(), json!(threshold));
                let value = metrics[*name].as_f64().unwrap_or_default();
                let met = if name.ends_with("_seconds") { value <= *threshold } else { value >= *threshold };
                if !met {
                    failures.push(*name);
                }
            }
            json!({
                "tenant_id": tenant.id(),
                "generated_at": clock::now(),
                "window_hours": window_hours,
                "scan_limit": scan_limit,
                "passed": failures.is_empty(),
                "failures": failures,
                "thresholds": thresholds,
                "metrics": metrics,
            })
        })
        .await;
    Ok(Json(answer))
}

/// `GET T/governance/decision-metadata/export?from=&to=&limit=` (operator only): the decision
/// events between `from` and `to` (RFC 3339, both optional), at most `limit` (default 500).
/// `approval_count` counts the resolved approvals among them.
async fn decision_metadata_export(tenant: Tenant, query: QueryParams) -> Answer {
    let from = timestamp_param(&query, "from")?;
    let to = timestamp_param(&query, "to")?;
    let limit = query.u64_in("limit", 1..=5000)?.unwrap_or(500);
    let answer = tenant
        .read(|t| {
            let events = decision_events(t);
            let selected: Vec<&DecisionEvent<'_>> = events
                .iter()
                .filter(|e| from.as_deref().is_none_or(|from| e.timestamp >= from))
                .filter(|e| to.as_deref().is_none_or(|to| e.timestamp <= to))
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .collect();
            let approval_count = selected.iter().filter(|e| e.decision != "step_up").count();
            json!({
                "from": from,
                "to": to,
                "record_count": selected.len(),
                "approval_count": approval_count,
                "records": selected.iter().map(|e| e.render(t)).collect::<Vec<_>>(),
            })
        })
        .await;
    Ok(Json(answer))
}

/// `POST T/governance/moses/training/decision-metadata/collect` (operator only): accepts an
/// export payload and counts its records; the emulator keeps nothing.
async fn decision_metadata_collect(PathParams(TenantPath { tenant: _ }): PathParams<TenantPath>, body: Body) -> Answer {
    let body = body.into_object()?;
    let accepted = body.get("records").and_then(Value::as_array).map_or(0, Vec::len);
    Ok(Json(json!({ "accepted": accepted, "collected_at": clock::now() })))
}

/// An optional timestamp query parameter, which must be in the emulator's own UTC shape so
/// that it compares correctly with stored timestamps.
pub(super) fn timestamp_param(query: &QueryParams, key: &str) -> Result<Option<String>, ApiError> {
    match query.get(key) {
        None => Ok(None),
        Some(at) if clock::is_canonical(at) => Ok(Some(at.to_owned())),
        Some(at) => Err(ApiError::invalid(format!(
            "the `{key}` query parameter must be a UTC timestamp such as 2026-11-28T17:42:00Z, got {at:?}"
        ))),
    }
}
