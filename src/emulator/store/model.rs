//! The stored data of one tenant: what the emulator remembers between requests and restarts.
//!
//! These types are the storage format (persisted as JSON by the parent module), not the wire
//! format: the routes modules render them into GovAPI responses, which is where secrets are
//! left out and derived fields (`status`, `compiled_policy`) are computed. Nothing here
//! validates requests or knows about HTTP.
//!
//! New areas (fleets, endpoints, API keys, MCP vendors, packs, actions) add a field to
//! [`TenantData`] with `#[serde(default)]`, so files written before the area existed still load.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything the emulator stores for one tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TenantData {
    /// The tenant settings document (`GET/PUT T/settings`).
    pub(crate) settings: Settings,
    /// MDM provider rows keyed by their `provider` slug.
    pub(crate) mdm_providers: BTreeMap<String, MdmProvider>,
    /// MDM sync jobs keyed by `job_id`.
    pub(crate) mdm_sync_jobs: BTreeMap<String, MdmSyncJob>,
    /// Browser provider rows keyed by their `provider` slug.
    pub(crate) browser_providers: BTreeMap<String, BrowserProvider>,
    /// Browser policies in creation order.
    pub(crate) browser_policies: Vec<BrowserPolicy>,
    /// Browser enrollments in creation order.
    pub(crate) browser_enrollments: Vec<BrowserEnrollment>,
    /// Every policy bundle version that was not deleted, in creation order.
    pub(crate) policy_bundles: Vec<PolicyBundle>,
    /// The highest bundle `version` ever handed out per bundle `name`, so that deleting the
    /// newest version never lets its number be reused.
    pub(crate) policy_bundle_versions: BTreeMap<String, u64>,
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
    /// `connected`, `degraded` or `disconnected` (a hint the client may set).
    pub(crate) status: String,
    pub(crate) config: Map<String, Value>,
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
    pub(crate) metadata: Map<String, Value>,
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
    pub(crate) metadata: Map<String, Value>,
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
