//! Policy sync (`govapi.md` §4.12): a trigger and the status of the tenant's latest sync.
//!
//! A sync pushes the active policy bundles to the agents they apply to. The emulator does it
//! at once, inside the trigger, so the trigger and every later status read answer a terminal
//! status: `success` when the set of active bundles changed since the previous sync (for a
//! first sync: when there is any active bundle), `no_change` otherwise. Before the first
//! trigger the status is `idle` with `configured: false`. UNSURE: the real non-terminal
//! statuses are unknown, so the emulator never shows one.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::derived::known_agents;
use super::{thoth, Answer, AppState, Tenant};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::Body;
use crate::emulator::store::model::{PolicySyncRun, TenantData};

/// The interval of the server's own periodic sync (UNSURE: not documented).
const INTERVAL_SECONDS: u64 = 300;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(&thoth("/policies/sync"), post(trigger)).route(&thoth("/policies/sync/status"), get(status))
}

/// `POST T/policies/sync` (body `{}`, `null` or empty): runs a sync and returns its status.
///
/// `applied_agents` lists the known agents (see `derived::known_agents`) that at least one
/// active bundle applies to, when something changed; `skipped_count` counts the known agents
/// no active bundle applies to.
async fn trigger(tenant: Tenant, body: Body) -> Answer {
    if !matches!(body.0, Value::Null | Value::Object(_)) {
        return Err(ApiError::invalid("the request body must be a JSON object"));
    }
    let answer = tenant
        .mutate(|t| {
            let run = sync(t);
            *t.policy_sync.get_mut() = Some(run);
            Ok(render(t.policy_sync.as_ref()))
        })
        .await?;
    Ok(Json(answer))
}

/// `GET T/policies/sync/status`: the latest sync.
async fn status(tenant: Tenant) -> Json<Value> {
    Json(tenant.read(|t| render(t.policy_sync.as_ref())).await)
}

/// Computes the outcome of a sync run now.
fn sync(t: &TenantData) -> PolicySyncRun {
    let mut active: Vec<(&str, &str)> = t
        .policy_bundles
        .iter()
        .filter(|bundle| bundle.status == "active")
        .map(|bundle| (bundle.id.as_str(), bundle.policy_hash.as_str()))
        .collect();
    active.sort_unstable();
    let fingerprint = clock::sha256_hex(json!(active).to_string().as_bytes());
    let changed = match &*t.policy_sync {
        Some(previous) => previous.fingerprint != fingerprint,
        None => !active.is_empty(),
    };
    let agents = known_agents(t);
    let applies = |agent: &str| {
        t.policy_bundles.iter().filter(|bundle| bundle.status == "active").any(|bundle| {
            bundle.assignments.iter().any(|a| a == "all" || a == agent || a.strip_prefix("agent:") == Some(agent))
        })
    };
    let covered: Vec<String> = agents.iter().filter(|agent| applies(agent)).cloned().collect();
    let skipped = agents.len() - covered.len();
    PolicySyncRun {
        status: if changed { "success" } else { "no_change" }.to_owned(),
        synced_at: clock::now(),
        changed,
        applied_agents: if changed { covered } else { Vec::new() },
        skipped_count: u64::try_from(skipped).unwrap_or(u64::MAX),
        fingerprint,
    }
}

/// The status object of §4.12.
fn render(run: Option<&PolicySyncRun>) -> Value {
    match run {
        None => json!({
            "configured": false,
            "status": "idle",
            "synced_at": null,
            "changed": false,
            "applied_count": 0,
            "applied_agents": [],
            "skipped_count": 0,
            "error_count": 0,
            "errors": [],
            "interval_seconds": INTERVAL_SECONDS,
        }),
        Some(run) => json!({
            "configured": true,
            "status": run.status,
            "synced_at": run.synced_at,
            "changed": run.changed,
            "applied_count": run.applied_agents.len(),
            "applied_agents": run.applied_agents,
            "skipped_count": run.skipped_count,
            "error_count": 0,
            "errors": [],
            "interval_seconds": INTERVAL_SECONDS,
        }),
    }
}
