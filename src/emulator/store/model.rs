//! The stored data of one tenant: what the emulator remembers between requests and restarts.
//!
//! These types are the storage format (each row persisted as JSON by the parent module), not
//! the wire format: the routes modules render them into GovAPI responses, which is where secrets are
//! left out and derived fields (`status`, `compiled_policy`) are computed. Nothing here
//! validates requests or knows about HTTP.
//!
//! Every area is a field of [`TenantData`], a collection of `rows` that tracks what each
//! mutation touched. `TenantData` also reads the JSON tenant files of earlier emulators, with
//! `#[serde(default)]`: a file written before an area existed loads with that area empty. Data the emulator can only derive
//! (decision events, fleet counts, reports) is not stored; the routes compute it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::rows::{Keyed, One, Table, Tracked};

/// Declares [`TenantData`] and the list of its areas by name, which is how the store names
/// them on disk.
macro_rules! tenant_data {
    ($($(#[$doc:meta])* $area:ident: $ty:ty,)*) => {
        /// Everything the emulator stores for one tenant.
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        pub(crate) struct TenantData {
            $($(#[$doc])* pub(crate) $area: $ty,)*
        }

        impl TenantData {
            /// Every area with its name.
            pub(super) fn areas(&self) -> Vec<(&'static str, &dyn Tracked)> {
                vec![$((stringify!($area), &self.$area as &dyn Tracked),)*]
            }

            /// Every area with its name, to change.
            pub(super) fn areas_mut(&mut self) -> Vec<(&'static str, &mut dyn Tracked)> {
                vec![$((stringify!($area), &mut self.$area as &mut dyn Tracked),)*]
            }
        }
    };
}

tenant_data! {
    /// The tenant settings document (`GET/PUT T/settings`).
    settings: One<Settings>,
    /// MDM provider rows keyed by their `provider` slug.
    mdm_providers: Keyed<MdmProvider>,
    /// MDM sync jobs keyed by `job_id`.
    mdm_sync_jobs: Keyed<MdmSyncJob>,
    /// Browser provider rows keyed by their `provider` slug.
    browser_providers: Keyed<BrowserProvider>,
    /// Browser policies in creation order.
    browser_policies: Table<BrowserPolicy>,
    /// Browser enrollments in creation order.
    browser_enrollments: Table<BrowserEnrollment>,
    /// Every policy bundle version that was not deleted, in creation order.
    policy_bundles: Table<PolicyBundle>,
    /// The highest bundle `version` ever handed out per bundle `name`, so that deleting the
    /// newest version never lets its number be reused.
    policy_bundle_versions: Keyed<u64>,
    /// Fleets in creation order.
    fleets: Table<Fleet>,
    /// Endpoints keyed by their client-chosen `endpoint_id`.
    endpoints: Keyed<Endpoint>,
    /// API keys in creation order, revoked ones included. Only a digest of each plaintext key
    /// is kept.
    api_keys: Table<ApiKey>,
    /// The latest policy sync; `None` until the first trigger.
    policy_sync: One<Option<PolicySyncRun>>,
    /// Approvals in creation order (seeded through the emulator-only routes).
    approvals: Table<Approval>,
    /// Policy exception requests in creation order.
    policy_exceptions: Table<PolicyException>,
    /// Policy change artifacts in creation order, at most one per `request_id`.
    policy_change_artifacts: Table<PolicyChangeArtifact>,
    /// Pack assignments keyed by agent id, then pack id; revoked rows are kept.
    pack_assignments: Keyed<BTreeMap<String, PackAssignment>>,
    /// MCP vendors keyed by their client-chosen `vendor_id`.
    mcp_vendors: Keyed<McpVendor>,
    /// Observed MCP traffic in the order it was recorded (seeded through the emulator-only
    /// routes), the input of the MCP inventory report and digest.
    mcp_calls: Table<McpCall>,
    /// The tenant's hash-chained evidence records, in chain order (appended by the evidence
    /// backfill).
    evidence_chain: Table<EvidenceRecord>,
    /// The billing profile's writable part.
    billing: One<Billing>,
    /// Emulator-only switches that change how some routes answer, for tests.
    emulator: One<EmulatorSwitches>,
}

/// The settings document, split into the part that is echoed and the secrets that are not.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Settings {
    /// The document as last written, without `updated_at` and without any secret value.
    pub(crate) document: Map<String, Value>,
    /// Secret values keyed by their dotted path (`webhook.secret`).
    pub(crate) secrets: BTreeMap<String, String>,
    /// When the document was last written; `None` for a tenant that never wrote it.
    pub(crate) updated_at: Option<String>,
}

/// One MDM provider row (`govapi.md` §4.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MdmProvider {
    pub(crate) provider: String,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    /// Provider credentials; stored, never returned.
    pub(crate) config: Map<String, Value>,
    pub(crate) last_sync_at: Option<String>,
    pub(crate) last_sync_status: Option<String>,
    pub(crate) last_sync_job_id: Option<String>,
    pub(crate) last_error: Option<String>,
    pub(crate) synced_endpoints: u64,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One MDM sync job (`govapi.md` §4.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MdmSyncJob {
    pub(crate) job_id: String,
    pub(crate) provider: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub(crate) status: String,
    pub(crate) synced_endpoints: u64,
    pub(crate) unassigned_count: u64,
    pub(crate) error: Option<String>,
    pub(crate) started_at: Option<String>,
    pub(crate) completed_at: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One browser provider row (`govapi.md` §4.3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BrowserProvider {
    pub(crate) provider: String,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    /// `connected`, `degraded` or `disconnected`: a hint the client may set, absent until it
    /// does (the contract does not say the server sets one).
    #[serde(default)]
    pub(crate) status: Option<String>,
    /// Write-only credentials, kept as digests (`store::config_at_rest`).
    pub(crate) config: Map<String, Value>,
    /// What a guessing server echoes (`--guesses` only): the last `config` sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) echoed: Option<Map<String, Value>>,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One browser policy row (`govapi.md` §4.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BrowserPolicy {
    pub(crate) policy_id: String,
    pub(crate) name: String,
    pub(crate) provider: String,
    /// `monitor` or `enforce`.
    pub(crate) enforcement_mode: String,
    pub(crate) active: bool,
    pub(crate) version: u64,
    pub(crate) policy: Map<String, Value>,
    /// Absent until a request holds it.
    #[serde(default)]
    pub(crate) metadata: Option<Map<String, Value>>,
    pub(crate) created_by: String,
    pub(crate) updated_by: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One browser enrollment row (`govapi.md` §4.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BrowserEnrollment {
    pub(crate) enrollment_id: String,
    pub(crate) provider: String,
    pub(crate) user_id: String,
    pub(crate) device_id: String,
    pub(crate) browser_profile: Option<String>,
    /// `active`, `pending` or `disabled`.
    pub(crate) status: String,
    pub(crate) last_seen_at: Option<String>,
    /// Absent until a request holds it.
    #[serde(default)]
    pub(crate) metadata: Option<Map<String, Value>>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One version of a policy bundle (`govapi.md` §4.13).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PolicyBundle {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    /// `OPA` or `CEDAR`.
    pub(crate) framework: String,
    pub(crate) raw_policy: Option<String>,
    pub(crate) source_uri: Option<String>,
    pub(crate) s3_uri: Option<String>,
    pub(crate) s3_version_id: Option<String>,
    pub(crate) expected_hash: Option<String>,
    pub(crate) assignments: Vec<String>,
    /// `active`, `staged` or `paused`.
    pub(crate) status: String,
    /// `enforce` or `observe`.
    pub(crate) enforcement_mode: String,
    pub(crate) version: u64,
    pub(crate) policy_hash: String,
    pub(crate) resolved_version: String,
    pub(crate) created_by: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One fleet (`govapi.md` §4.6). Optional inputs are `None` when the last write left them out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Fleet {
    pub(crate) fleet_id: String,
    pub(crate) name: String,
    /// A short, stable, server-made code derived from the id.
    pub(crate) fleet_code: String,
    pub(crate) region: Option<String>,
    pub(crate) policy_id: Option<String>,
    pub(crate) policy_name: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) rollout_strategy: Option<String>,
    pub(crate) rollout_pct: Option<u64>,
    pub(crate) provider: Option<String>,
    pub(crate) last_deployed_at: Option<String>,
    pub(crate) last_deployed_version: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One registered endpoint (`govapi.md` §4.7).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    pub(crate) endpoint_id: String,
    pub(crate) hostname: String,
    pub(crate) employee_name: Option<String>,
    pub(crate) employee_email: Option<String>,
    pub(crate) department: Option<String>,
    pub(crate) os: Option<String>,
    pub(crate) os_version: Option<String>,
    pub(crate) enrollment: Option<String>,
    /// `online` by default, `quarantined` after a quarantine, or what the client sets.
    pub(crate) status: String,
    /// `shadow` by default, or what the client sets.
    pub(crate) enforcement_mode: String,
    pub(crate) environment: Option<String>,
    pub(crate) proxy_version: Option<String>,
    pub(crate) fleet_id: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) risk_score: Option<f64>,
    pub(crate) violations_today: Option<u64>,
    pub(crate) sessions_today: Option<u64>,
    pub(crate) agent_ids: Option<Vec<String>>,
    pub(crate) last_seen: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One API key (`govapi.md` §4.8). The plaintext is never stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApiKey {
    pub(crate) key_id: String,
    pub(crate) name: Option<String>,
    /// The first characters of the plaintext, safe to show.
    pub(crate) prefix: String,
    /// The hex SHA-256 of the plaintext, used by the authorize check.
    pub(crate) key_sha256: String,
    /// `organization`, `fleet`, `endpoint` or `agent`.
    pub(crate) scope_level: String,
    /// `""` for organization keys.
    pub(crate) scope_target_id: String,
    pub(crate) permissions: Vec<String>,
    pub(crate) jit_reason: Option<String>,
    pub(crate) ttl_seconds: Option<u64>,
    pub(crate) created_at: String,
    pub(crate) expires_at: Option<String>,
    pub(crate) revoked_at: Option<String>,
    pub(crate) last_used_at: Option<String>,
    /// How many successful authorize checks used this key.
    pub(crate) use_count: u64,
}

/// The outcome of the latest policy sync (`govapi.md` §4.12).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PolicySyncRun {
    /// A terminal status: `success` or `no_change`.
    pub(crate) status: String,
    pub(crate) synced_at: String,
    pub(crate) changed: bool,
    pub(crate) applied_agents: Vec<String>,
    pub(crate) skipped_count: u64,
    /// A digest of the active bundles that were synced, to tell `success` from `no_change`.
    pub(crate) fingerprint: String,
}

/// One approval request (`govapi.md` §4.14).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Approval {
    pub(crate) approval_id: String,
    /// `pending`, `approved` or `denied`.
    pub(crate) status: String,
    pub(crate) agent_id: Option<String>,
    pub(crate) tool_name: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) requested_by: Option<String>,
    pub(crate) violation_id: Option<String>,
    /// The decision as the resolver sent it (`approve`, `deny`, `approved`, `blocked`).
    pub(crate) decision: Option<String>,
    pub(crate) resolved_by: Option<String>,
    pub(crate) resolved_at: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One policy exception request and its review (`govapi.md` §4.15–4.16).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PolicyException {
    pub(crate) request_id: String,
    pub(crate) violation_id: String,
    pub(crate) requested_by: String,
    pub(crate) business_justification: String,
    pub(crate) frequency_estimate: String,
    pub(crate) data_sensitivity: String,
    pub(crate) hold_token: Option<String>,
    pub(crate) agent_id: Option<String>,
    pub(crate) tool_name: Option<String>,
    pub(crate) alternatives_considered: Option<String>,
    /// `pending`, `under_review`, `approved`, `denied` or `approved_with_modification`.
    pub(crate) status: String,
    pub(crate) reviewed_by: Option<String>,
    pub(crate) review_decision: Option<String>,
    pub(crate) review_notes: Option<String>,
    pub(crate) owner: Option<String>,
    pub(crate) target_environment: Option<String>,
    pub(crate) override_expires_at: Option<String>,
    pub(crate) policy_change: Option<Map<String, Value>>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One policy change artifact and its latest apply (`govapi.md` §4.17).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PolicyChangeArtifact {
    pub(crate) artifact_id: String,
    pub(crate) request_id: String,
    pub(crate) target_environment: String,
    /// `cedar`, `rego` or `yaml`.
    pub(crate) policy_format: String,
    pub(crate) policy_change: Map<String, Value>,
    pub(crate) owner: Option<String>,
    /// `generated` until the first apply, then `applied`.
    pub(crate) status: String,
    pub(crate) apply_count: u64,
    pub(crate) applied_at: Option<String>,
    pub(crate) applied_by: Option<String>,
    pub(crate) apply_channel: Option<String>,
    pub(crate) govapi_resource: Option<Value>,
    pub(crate) override_revoked: bool,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One governance pack applied to one agent (`govapi.md` §4.18).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PackAssignment {
    pub(crate) agent_id: String,
    pub(crate) pack_id: String,
    /// `active` or `revoked`.
    pub(crate) status: String,
    pub(crate) regulation: String,
    pub(crate) rule_version: u64,
    pub(crate) approval_policy_id: String,
    pub(crate) environment: Option<String>,
    pub(crate) overrides: Option<Map<String, Value>>,
    pub(crate) applied_by: String,
    pub(crate) applied_at: String,
    pub(crate) revoked_at: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// One MCP vendor (`govapi.md` §4.20).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct McpVendor {
    pub(crate) vendor_id: String,
    pub(crate) display_name: String,
    pub(crate) approved: bool,
    /// Sorted and without duplicates, as the server may reorder them.
    pub(crate) host_patterns: Vec<String>,
    pub(crate) source: Option<String>,
    pub(crate) notes: Option<String>,
    pub(crate) last_seen_at: Option<String>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// Calls from one endpoint to one MCP host, observed at one time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct McpCall {
    pub(crate) endpoint_id: String,
    pub(crate) host: String,
    pub(crate) calls: u64,
    pub(crate) observed_at: String,
}

/// One record of the evidence hash chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EvidenceRecord {
    /// 1-based position in the chain.
    pub(crate) chain_index: u64,
    pub(crate) evidence_id: String,
    /// The decision event this record is evidence of.
    pub(crate) event_id: String,
    pub(crate) event_type: String,
    pub(crate) agent_id: Option<String>,
    pub(crate) decision: String,
    pub(crate) integration_id: Option<String>,
    /// The `record_hash` of the previous record (64 zeros for the first one).
    pub(crate) prev_hash: String,
    /// SHA-256 over `prev_hash` and this record's content.
    pub(crate) record_hash: String,
    pub(crate) created_at: String,
}

/// The writable part of the billing profile (`govapi.md` §3).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Billing {
    pub(crate) overage_cap_usd: f64,
    pub(crate) overage_cap_updated_at: Option<String>,
}

/// Emulator-only switches, set through `PUT /{tenant}/_emulator/switches`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct EmulatorSwitches {
    /// How the primary evidence backfill path `G/evidence/thoth/backfill` answers: `None`
    /// serves it, `Some(404)` or `Some(405)` refuses so that clients fall back to the `T/...`
    /// path.
    pub(crate) evidence_backfill_primary_status: Option<u16>,
}
