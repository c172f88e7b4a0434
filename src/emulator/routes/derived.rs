//! Views computed from stored data and shared by several areas: the tenant's decision events
//! and the set of agents the tenant knows about; and the paging of lists.
//!
//! The emulator runs no agents, so it has no behavioural event stream of its own. Its
//! decision events are derived from approvals instead, which is what an approval is on the
//! real control plane: a `STEP_UP` hold on a tool call, later allowed or blocked. Every
//! approval yields one event for its current state: `step_up` while pending, then `allow` or
//! `block` once resolved (a new event, with a new id, that needs its own evidence). The
//! evidence backfill, the governance feed and tools, the evidence SLOs, the decision metadata
//! export and the reports all read these events, so seeding approvals gives them all data.
//! Nothing here mutates anything.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::QueryParams;
use crate::emulator::store::model::{Approval, TenantData};

/// One governance decision about one tool call.
pub(super) struct DecisionEvent<'a> {
    pub(super) event_id: String,
    /// When the decision was taken: the approval's creation, or its resolution.
    pub(super) timestamp: &'a str,
    /// `step_up`, `allow` or `block`.
    pub(super) decision: &'static str,
    pub(super) reason_code: &'static str,
    pub(super) approval: &'a Approval,
}

impl DecisionEvent<'_> {
    /// Whether the decision blocked the call.
    pub(super) fn blocked(&self) -> bool {
        self.decision == "block"
    }

    /// The event as the governance feed and the exports show it.
    pub(super) fn render(&self, t: &TenantData) -> Value {
        let evidence_id =
            t.evidence_chain.iter().find(|record| record.event_id == self.event_id).map(|r| r.evidence_id.clone());
        json!({
            "event_id": self.event_id,
            "timestamp": self.timestamp,
            "agent_id": self.approval.agent_id,
            "caller_agent_id": null,
            "tool_name": self.approval.tool_name,
            "decision": self.decision,
            "reason_code": self.reason_code,
            "reason": self.approval.reason,
            "approval_id": self.approval.approval_id,
            "violation_id": self.approval.violation_id,
            "evidence_id": evidence_id,
        })
    }
}

/// Every decision event of the tenant, oldest first (ties broken by id).
pub(super) fn decision_events(t: &TenantData) -> Vec<DecisionEvent<'_>> {
    let mut events: Vec<DecisionEvent<'_>> = t
        .approvals
        .iter()
        .map(|approval| {
            let (decision, reason_code, timestamp) = match approval.status.as_str() {
                "approved" => ("allow", "approval_granted", approval.resolved_at.as_deref()),
                "denied" => ("block", "approval_denied", approval.resolved_at.as_deref()),
                _ => ("step_up", "approval_pending", None),
            };
            let event_id =
                format!("evt_{}", &clock::sha256_hex(format!("{}\n{decision}", approval.approval_id).as_bytes())[..16]);
            DecisionEvent {
                event_id,
                timestamp: timestamp.unwrap_or(&approval.created_at),
                decision,
                reason_code,
                approval,
            }
        })
        .collect();
    events.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
    events
}

/// Every agent id the tenant mentions: on endpoints, in pack assignments, in approvals and in
/// policy bundle assignments (`agent:<id>` or a bare id), sorted.
pub(super) fn known_agents(t: &TenantData) -> BTreeSet<String> {
    let mut agents = BTreeSet::new();
    for endpoint in t.endpoints.values() {
        agents.extend(endpoint.agent_ids.iter().flatten().cloned());
    }
    agents.extend(t.pack_assignments.keys().cloned());
    agents.extend(t.approvals.iter().filter_map(|approval| approval.agent_id.clone()));
    for bundle in t.policy_bundles.iter() {
        for assignment in &bundle.assignments {
            match assignment.strip_prefix("agent:") {
                Some(agent) => agents.insert(agent.to_owned()),
                None if assignment != "all" => agents.insert(assignment.clone()),
                None => false,
            };
        }
    }
    agents.retain(|agent| !agent.trim().is_empty());
    agents
}

/// Pages through `rows` with a 0-based `offset` and an optional `limit`.
pub(super) fn page<T>(rows: Vec<T>, offset: u64, limit: Option<u64>) -> Vec<T> {
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let limit = limit.map_or(usize::MAX, |limit| usize::try_from(limit).unwrap_or(usize::MAX));
    rows.into_iter().skip(offset).take(limit).collect()
}

/// The `limit` (1–1000) and `offset` (default 0) parameters of a list answered as
/// `{data, total}`.
pub(super) struct Paging {
    offset: u64,
    limit: Option<u64>,
}

impl Paging {
    pub(super) fn from_query(query: &QueryParams) -> Result<Paging, ApiError> {
        Ok(Paging {
            limit: query.u64_in("limit", 1..=1000)?,
            offset: query.u64_in("offset", 0..=u64::MAX)?.unwrap_or(0),
        })
    }

    /// `{data, total}`: one page of the rows, and how many rows there are in all.
    pub(super) fn answer(&self, rows: Vec<Value>) -> Value {
        let total = rows.len();
        json!({ "data": page(rows, self.offset, self.limit), "total": total })
    }
}
