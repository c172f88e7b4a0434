//! Governance packs (`govapi.md` §4.18–4.19): the built-in pack catalogue, its rule versions,
//! per-agent pack assignments (apply, list, revoke), the bulk apply action and the runtime
//! status.
//!
//! The catalogue is fixed data compiled into the emulator, holding the pack ids the
//! documentation and runbooks mention plus a few more; assigning a pack outside it is a 400.
//! Revoking an assignment keeps the row with `status: "revoked"` but takes it out of the
//! agent's list (UNSURE whether the real list shows revoked rows; hiding them is what lets a
//! client notice the revocation); `?include_revoked=true` shows them. Lists are sorted by
//! pack id, agents by id.

use std::collections::BTreeSet;

use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::derived::known_agents;
use super::{thoth, Answer, AppState, Tenant, TenantPath};
use crate::emulator::clock;
use crate::emulator::error::ApiError;
use crate::emulator::extract::{Body, Fields, PathParams, QueryParams};
use crate::emulator::store::model::{PackAssignment, TenantData};

const ENVIRONMENTS: &[&str] = &["dev", "prod"];

/// The behavioural controls an override may set, with their allowed ranges.
const BEHAVIORAL_CONTROLS: &[(&str, f64, f64)] = &[
    ("mismatch_boost", 0.0, 100.0),
    ("delegation_boost", 0.0, 100.0),
    ("trust_floor", 0.0, 1.0),
    ("critical_threshold", 0.0, 1.0),
];

/// One pack of the catalogue.
struct Pack {
    pack_id: &'static str,
    regulation: &'static str,
    display_name: &'static str,
    description: &'static str,
    base_pack_version: &'static str,
    /// Oldest first; the last one is current.
    versions: &'static [PackVersion],
}

/// One published version of a pack's rules.
struct PackVersion {
    version: u64,
    published_at: &'static str,
    changelog: &'static str,
    /// Rule ids and titles.
    rules: &'static [(&'static str, &'static str)],
}

impl Pack {
    fn current(&self) -> &PackVersion {
        // Every pack of the catalogue has at least one version; the fallback keeps this total.
        self.versions.last().unwrap_or(&EMPTY_VERSION)
    }
}

const EMPTY_VERSION: PackVersion = PackVersion { version: 0, published_at: clock::NEVER, changelog: "", rules: &[] };

/// The catalogue, sorted by pack id.
const CATALOGUE: &[Pack] = &[
    Pack {
        pack_id: "cis-l1",
        regulation: "CIS",
        display_name: "CIS Benchmarks Level 1",
        description: "Baseline hardening controls for agent tool use.",
        base_pack_version: "2025.4",
        versions: &[
            PackVersion {
                version: 1,
                published_at: "2025-10-01T00:00:00Z",
                changelog: "Initial release.",
                rules: &[("cis-l1-1", "Block shell tools without an approval"), ("cis-l1-2", "Log every tool call")],
            },
            PackVersion {
                version: 2,
                published_at: "2026-02-01T00:00:00Z",
                changelog: "Adds outbound network restrictions.",
                rules: &[
                    ("cis-l1-1", "Block shell tools without an approval"),
                    ("cis-l1-2", "Log every tool call"),
                    ("cis-l1-3", "Restrict outbound hosts to approved MCP vendors"),
                ],
            },
        ],
    },
    Pack {
        pack_id: "eu-ai-act",
        regulation: "EU AI Act",
        display_name: "EU AI Act high-risk obligations",
        description: "Human oversight and record keeping for high-risk AI systems.",
        base_pack_version: "2026.1",
        versions: &[PackVersion {
            version: 1,
            published_at: "2026-01-15T00:00:00Z",
            changelog: "Initial release.",
            rules: &[
                ("euaia-14", "Human oversight for consequential actions"),
                ("euaia-12", "Automatic record keeping of decisions"),
            ],
        }],
    },
    Pack {
        pack_id: "fedramp-moderate",
        regulation: "FedRAMP",
        display_name: "FedRAMP Moderate",
        description: "Access control and audit controls at the FedRAMP Moderate baseline.",
        base_pack_version: "2025.2",
        versions: &[
            PackVersion {
                version: 1,
                published_at: "2025-06-01T00:00:00Z",
                changelog: "Initial release.",
                rules: &[("ac-6", "Least privilege for agent credentials"), ("au-2", "Audit every decision")],
            },
            PackVersion {
                version: 2,
                published_at: "2025-12-01T00:00:00Z",
                changelog: "Adds session termination.",
                rules: &[
                    ("ac-6", "Least privilege for agent credentials"),
                    ("ac-12", "Terminate idle agent sessions"),
                    ("au-2", "Audit every decision"),
                ],
            },
        ],
    },
    Pack {
        pack_id: "gdpr-ai-agents",
        regulation: "GDPR",
        display_name: "GDPR for AI agents",
        description: "Data minimisation and purpose limitation for agents handling personal data.",
        base_pack_version: "2025.3",
        versions: &[PackVersion {
            version: 1,
            published_at: "2025-09-01T00:00:00Z",
            changelog: "Initial release.",
            rules: &[
                ("gdpr-5-1-c", "Minimise personal data passed to tools"),
                ("gdpr-5-1-b", "Block tools outside the declared purpose"),
            ],
        }],
    },
    Pack {
        pack_id: "hipaa-minimum-necessary",
        regulation: "HIPAA",
        display_name: "HIPAA minimum necessary",
        description: "Limits protected health information to the minimum necessary.",
        base_pack_version: "2025.1",
        versions: &[
            PackVersion {
                version: 1,
                published_at: "2025-03-01T00:00:00Z",
                changelog: "Initial release.",
                rules: &[("hipaa-164-502-b", "Redact PHI not needed by the tool")],
            },
            PackVersion {
                version: 2,
                published_at: "2025-11-01T00:00:00Z",
                changelog: "Adds a step-up for bulk PHI exports.",
                rules: &[
                    ("hipaa-164-502-b", "Redact PHI not needed by the tool"),
                    ("hipaa-164-312-b", "Step up bulk PHI exports"),
                ],
            },
        ],
    },
    Pack {
        pack_id: "nist-ai-rmf",
        regulation: "NIST AI RMF",
        display_name: "NIST AI Risk Management Framework",
        description: "Govern, map, measure and manage controls for AI agents.",
        base_pack_version: "2025.4",
        versions: &[PackVersion {
            version: 1,
            published_at: "2025-10-15T00:00:00Z",
            changelog: "Initial release.",
            rules: &[("govern-1-1", "Document agent risk owners"), ("manage-2-2", "Block unapproved model providers")],
        }],
    },
    Pack {
        pack_id: "soc2-type2",
        regulation: "SOC 2",
        display_name: "SOC 2 Type II",
        description: "Logical access and change management controls.",
        base_pack_version: "2025.2",
        versions: &[
            PackVersion {
                version: 1,
                published_at: "2025-05-01T00:00:00Z",
                changelog: "Initial release.",
                rules: &[("cc6-1", "Restrict logical access to tools"), ("cc7-2", "Monitor anomalous tool use")],
            },
            PackVersion {
                version: 2,
                published_at: "2025-08-01T00:00:00Z",
                changelog: "Adds change approval for policy edits.",
                rules: &[
                    ("cc6-1", "Restrict logical access to tools"),
                    ("cc7-2", "Monitor anomalous tool use"),
                    ("cc8-1", "Approve changes to governance policy"),
                ],
            },
            PackVersion {
                version: 3,
                published_at: "2026-01-10T00:00:00Z",
                changelog: "Tightens anomaly thresholds.",
                rules: &[
                    ("cc6-1", "Restrict logical access to tools"),
                    ("cc7-2", "Monitor anomalous tool use (tightened)"),
                    ("cc8-1", "Approve changes to governance policy"),
                ],
            },
        ],
    },
];

fn find_pack(pack_id: &str) -> Option<&'static Pack> {
    CATALOGUE.iter().find(|pack| pack.pack_id == pack_id)
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(&thoth("/packs"), get(catalogue))
        .route(&thoth("/packs/apply"), post(bulk_apply))
        .route(&thoth("/packs/runtime-status"), get(runtime_status))
        .route(&thoth("/packs/{pack_id}/rules"), get(rules))
        .route(&thoth("/packs/{pack_id}/rules/history"), get(history))
        .route(&thoth("/agents/{agent_id}/apply-pack"), post(apply_pack))
        .route(&thoth("/agents/{agent_id}/packs"), get(agent_packs))
        .route(&thoth("/agents/{agent_id}/packs/{pack_id}"), delete(revoke))
}

/// A catalogue pack of a path; the catalogue is the same for every tenant.
#[derive(Deserialize)]
struct PackPath {
    pack_id: String,
}

#[derive(Deserialize)]
struct AgentPath {
    agent_id: String,
}

#[derive(Deserialize)]
struct AssignmentPath {
    agent_id: String,
    pack_id: String,
}

/// `GET T/packs`: the catalogue, `{packs, total}`.
async fn catalogue(PathParams(TenantPath { tenant: _ }): PathParams<TenantPath>) -> Json<Value> {
    let packs: Vec<Value> = CATALOGUE
        .iter()
        .map(|pack| {
            json!({
                "pack_id": pack.pack_id,
                "regulation": pack.regulation,
                "display_name": pack.display_name,
                "description": pack.description,
                "base_pack_version": pack.base_pack_version,
                "current_version": pack.current().version,
                "total_versions": pack.versions.len(),
                "rule_count": pack.current().rules.len(),
            })
        })
        .collect();
    Json(json!({ "total": packs.len(), "packs": packs }))
}

/// `GET T/packs/{pack_id}/rules`: the pack with its current rule version.
async fn rules(PathParams(PackPath { pack_id }): PathParams<PackPath>) -> Answer {
    let pack = find_pack(&pack_id).ok_or_else(|| pack_not_found(&pack_id))?;
    Ok(Json(json!({
        "pack_id": pack.pack_id,
        "regulation": pack.regulation,
        "display_name": pack.display_name,
        "base_pack_version": pack.base_pack_version,
        "total_versions": pack.versions.len(),
        "current_version": render_version(pack.current(), true),
    })))
}

/// `GET T/packs/{pack_id}/rules/history`: every version, newest first, `{versions, total}`.
async fn history(PathParams(PackPath { pack_id }): PathParams<PackPath>) -> Answer {
    let pack = find_pack(&pack_id).ok_or_else(|| pack_not_found(&pack_id))?;
    let versions: Vec<Value> = pack.versions.iter().rev().map(|v| render_version(v, false)).collect();
    Ok(Json(json!({ "pack_id": pack.pack_id, "versions": versions, "total": pack.versions.len() })))
}

fn render_version(version: &PackVersion, with_rules: bool) -> Value {
    let mut out = json!({
        "version": version.version,
        "published_at": version.published_at,
        "changelog": version.changelog,
        "rule_count": version.rules.len(),
    });
    if with_rules {
        let rules: Vec<Value> =
            version.rules.iter().map(|(rule_id, title)| json!({ "rule_id": rule_id, "title": title })).collect();
        out["rules"] = Value::Array(rules);
    }
    out
}

/// The validated options of one assignment.
struct AssignmentInput {
    approval_policy_id: String,
    environment: Option<String>,
    overrides: Option<Map<String, Value>>,
}

impl AssignmentInput {
    /// Reads `approval_policy_id` (default `default`) and `environment` (`dev` or `prod`), and
    /// checks that the `behavioral_controls` of `overrides` are in range.
    fn parse(fields: &Fields<'_>, overrides: Option<Map<String, Value>>) -> Result<Self, ApiError> {
        if let Some(overrides) = &overrides {
            check_overrides(overrides)?;
        }
        Ok(AssignmentInput {
            approval_policy_id: fields.opt_non_empty_str("approval_policy_id")?.unwrap_or_else(|| "default".to_owned()),
            environment: fields.opt_enum("environment", ENVIRONMENTS)?,
            overrides: overrides.filter(|o| !o.is_empty()),
        })
    }
}

/// Checks the `behavioral_controls` of an overrides object.
fn check_overrides(overrides: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(controls) = overrides.get("behavioral_controls").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Value::Object(controls) = controls else {
        return Err(ApiError::invalid("`behavioral_controls` must be a JSON object"));
    };
    let fields = Fields(controls);
    for (name, min, max) in BEHAVIORAL_CONTROLS {
        fields.opt_f64_in(name, *min, *max)?;
    }
    Ok(())
}

/// Creates or re-applies an assignment of a catalogue pack and returns the stored row.
fn assign<'t>(
    t: &'t mut TenantData,
    agent_id: &str,
    pack: &Pack,
    input: AssignmentInput,
    now: &str,
) -> &'t PackAssignment {
    let row = t
        .pack_assignments
        .get_or_insert_with(agent_id, Default::default)
        .entry(pack.pack_id.to_owned())
        .or_insert_with(|| PackAssignment {
            agent_id: agent_id.to_owned(),
            pack_id: pack.pack_id.to_owned(),
            status: "active".to_owned(),
            regulation: pack.regulation.to_owned(),
            rule_version: pack.current().version,
            approval_policy_id: String::new(),
            environment: None,
            overrides: None,
            applied_by: "api".to_owned(),
            applied_at: now.to_owned(),
            revoked_at: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        });
    "active".clone_into(&mut row.status);
    row.rule_version = pack.current().version;
    row.approval_policy_id = input.approval_policy_id;
    row.environment = input.environment;
    row.overrides = input.overrides;
    now.clone_into(&mut row.applied_at);
    row.revoked_at = None;
    now.clone_into(&mut row.updated_at);
    row
}

/// `POST T/agents/{agent_id}/apply-pack`: assigns a pack to an agent, or re-applies it with
/// new options (a revoked assignment becomes active again). `pack_id` must be in the
/// catalogue (400 otherwise, as an unknown reference in a body).
async fn apply_pack(tenant: Tenant, PathParams(AgentPath { agent_id }): PathParams<AgentPath>, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let pack_id = fields.req_str("pack_id")?;
    let pack = find_pack(&pack_id).ok_or_else(|| unknown_pack(&pack_id))?;
    let input = AssignmentInput::parse(&fields, fields.opt_object("overrides")?)?;
    let row = tenant.mutate(move |t| Ok(render_assignment(assign(t, &agent_id, pack, input, &clock::now())))).await?;
    Ok(Json(row))
}

/// `GET T/agents/{agent_id}/packs?include_revoked=`: the agent's assignments, `{packs}`.
async fn agent_packs(
    tenant: Tenant,
    PathParams(AgentPath { agent_id }): PathParams<AgentPath>,
    query: QueryParams,
) -> Answer {
    let include_revoked = query.bool("include_revoked")?.unwrap_or(false);
    let rows = tenant
        .read(|t| {
            t.pack_assignments
                .get(&agent_id)
                .into_iter()
                .flat_map(|packs| packs.values())
                .filter(|row| include_revoked || row.status == "active")
                .map(render_assignment)
                .collect::<Vec<_>>()
        })
        .await;
    Ok(Json(json!({ "agent_id": agent_id, "packs": rows })))
}

/// `DELETE T/agents/{agent_id}/packs/{pack_id}`: revokes an active assignment; 404 when there
/// is none (never assigned, or already revoked).
async fn revoke(
    tenant: Tenant,
    PathParams(AssignmentPath { agent_id, pack_id }): PathParams<AssignmentPath>,
) -> Answer {
    let answer = tenant
        .mutate(move |t| {
            let row = t
                .pack_assignments
                .get_mut(&agent_id)
                .and_then(|packs| packs.get_mut(&pack_id))
                .filter(|row| row.status == "active")
                .ok_or_else(|| {
                    ApiError::not_found(format!("pack {pack_id:?} is not assigned to agent {agent_id:?}"))
                })?;
            let now = clock::now();
            "revoked".clone_into(&mut row.status);
            row.revoked_at = Some(now.clone());
            row.updated_at = now;
            Ok(json!({ "revoked": true, "agent_id": row.agent_id, "pack_id": row.pack_id, "revoked_at": row.revoked_at }))
        })
        .await?;
    Ok(Json(answer))
}

/// `POST T/packs/apply`: assigns several packs to several agents in one call.
///
/// Targets are the union of `agent_ids`, the agents of the endpoints of `fleet_ids`, the
/// agents of `endpoint_ids`, and, with `all_agents: true`, every known agent (see
/// `derived::known_agents`). At least one selector is required; unknown fleets and endpoints
/// are a 400. Each (agent, pack) pair is one operation: a pack outside the catalogue fails its
/// operations (reported in `results`) without failing the call. `overrides_by_pack` maps a
/// pack id to that pack's overrides.
async fn bulk_apply(tenant: Tenant, body: Body) -> Answer {
    let body = body.into_object()?;
    let fields = Fields(&body);
    let mut pack_ids: Vec<String> = Vec::new();
    for id in fields.opt_str_list("pack_ids")?.unwrap_or_default() {
        let id = id.trim().to_owned();
        if !pack_ids.contains(&id) {
            pack_ids.push(id);
        }
    }
    if pack_ids.is_empty() {
        return Err(ApiError::invalid("`pack_ids` must list at least one pack"));
    }
    let all_agents = fields.opt_bool("all_agents")?.unwrap_or(false);
    let agent_ids = fields.opt_str_list("agent_ids")?.unwrap_or_default();
    let fleet_ids = fields.opt_str_list("fleet_ids")?.unwrap_or_default();
    let endpoint_ids = fields.opt_str_list("endpoint_ids")?.unwrap_or_default();
    if !all_agents && agent_ids.is_empty() && fleet_ids.is_empty() && endpoint_ids.is_empty() {
        return Err(ApiError::invalid(
            "select targets with `all_agents: true` or at least one of `agent_ids`, `fleet_ids`, `endpoint_ids`",
        ));
    }
    let base = AssignmentInput::parse(&fields, None)?;
    let overrides_by_pack = fields.opt_object("overrides_by_pack")?.unwrap_or_default();
    let mut overrides: Map<String, Value> = Map::new();
    for (pack_id, value) in overrides_by_pack {
        match value {
            Value::Null => {}
            Value::Object(map) => {
                check_overrides(&map)?;
                overrides.insert(pack_id, Value::Object(map));
            }
            _ => return Err(ApiError::invalid(format!("`overrides_by_pack.{pack_id}` must be a JSON object"))),
        }
    }
    let answer = tenant
        .mutate(move |t| {
            let mut targets: BTreeSet<String> = agent_ids.into_iter().map(|a| a.trim().to_owned()).collect();
            if all_agents {
                targets.extend(known_agents(t));
            }
            for fleet_id in &fleet_ids {
                if !t.fleets.iter().any(|f| &f.fleet_id == fleet_id) {
                    return Err(ApiError::invalid(format!("fleet does not exist: {fleet_id:?}")));
                }
                let agents = t.endpoints.values().filter(|e| e.fleet_id.as_ref() == Some(fleet_id));
                targets.extend(agents.flat_map(|e| e.agent_ids.iter().flatten().cloned()));
            }
            for endpoint_id in &endpoint_ids {
                let endpoint = t
                    .endpoints
                    .get(endpoint_id)
                    .ok_or_else(|| ApiError::invalid(format!("endpoint does not exist: {endpoint_id:?}")))?;
                targets.extend(endpoint.agent_ids.iter().flatten().cloned());
            }
            targets.retain(|agent| !agent.is_empty());
            let now = clock::now();
            let mut results = Vec::new();
            let (mut applied, mut failed) = (0u64, 0u64);
            for agent_id in &targets {
                for pack_id in &pack_ids {
                    let Some(pack) = find_pack(pack_id) else {
                        failed += 1;
                        results.push(json!({
                            "agent_id": agent_id,
                            "pack_id": pack_id,
                            "status": "failed",
                            "error": format!("unknown pack {pack_id:?}"),
                        }));
                        continue;
                    };
                    let input = AssignmentInput {
                        approval_policy_id: base.approval_policy_id.clone(),
                        environment: base.environment.clone(),
                        overrides: overrides.get(pack_id).and_then(Value::as_object).cloned().filter(|o| !o.is_empty()),
                    };
                    let row = assign(t, agent_id, pack, input, &now);
                    applied += 1;
                    results.push(json!({
                        "agent_id": agent_id,
                        "pack_id": pack_id,
                        "status": "applied",
                        "rule_version": row.rule_version,
                    }));
                }
            }
            Ok(json!({
                "applied_count": applied,
                "failed_count": failed,
                "total_ops": applied + failed,
                "target_agent_ids": targets,
                "results": results,
            }))
        })
        .await?;
    Ok(Json(answer))
}

/// `GET T/packs/runtime-status?env=`: per catalogue pack, the active assignments (in that
/// environment, when `env` is given) and the agents they cover. The response is free-form in
/// the contract.
async fn runtime_status(tenant: Tenant, query: QueryParams) -> Json<Value> {
    let env = query.get("env").map(str::to_owned);
    let answer = tenant
        .read(|t| {
            let active: Vec<&PackAssignment> = t
                .pack_assignments
                .values()
                .flat_map(|packs| packs.values())
                .filter(|row| row.status == "active")
                .filter(|row| env.is_none() || row.environment == env)
                .collect();
            let packs: Vec<Value> = CATALOGUE
                .iter()
                .map(|pack| {
                    let agents: Vec<&str> = active
                        .iter()
                        .filter(|row| row.pack_id == pack.pack_id)
                        .map(|row| row.agent_id.as_str())
                        .collect();
                    json!({
                        "pack_id": pack.pack_id,
                        "regulation": pack.regulation,
                        "rule_version": pack.current().version,
                        "active_assignments": agents.len(),
                        "agents": agents,
                        "status": if agents.is_empty() { "idle" } else { "enforcing" },
                    })
                })
                .collect();
            json!({
                "environment": env,
                "total_active_assignments": active.len(),
                "packs": packs,
            })
        })
        .await;
    Json(answer)
}

fn pack_not_found(pack_id: &str) -> ApiError {
    ApiError::not_found(format!("pack {pack_id:?} not found"))
}

fn unknown_pack(pack_id: &str) -> ApiError {
    let known: Vec<&str> = CATALOGUE.iter().map(|pack| pack.pack_id).collect();
    ApiError::invalid(format!("unknown pack {pack_id:?}; the catalogue has {}", known.join(", ")))
}

/// An assignment as GovAPI returns it.
fn render_assignment(row: &PackAssignment) -> Value {
    json!({
        "agent_id": row.agent_id,
        "pack_id": row.pack_id,
        "status": row.status,
        "regulation": row.regulation,
        "rule_version": row.rule_version,
        "approval_policy_id": row.approval_policy_id,
        "environment": row.environment,
        "overrides": row.overrides,
        "applied_by": row.applied_by,
        "applied_at": row.applied_at,
        "revoked_at": row.revoked_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    })
}
