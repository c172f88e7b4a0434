//! Every data source read by the real binary against an emulator process: a configuration that
//! creates the objects the data sources need (or seeds them through the emulator-only routes),
//! declares every data source, and exposes what they read as outputs. The outputs must hold
//! the values the emulator has, not merely be present.

use reqwest::Method;
use serde_json::{json, Value};
use thoth::schema::Schema;

use crate::support::{thoth, EmulatorProcess, Run, TempDir, TENANT};

/// The objects the data sources read, created by the same apply.
const RESOURCES: &str = r#"
resource "thoth_fleet" "eu" {
  name          = "EU laptops"
  region        = "eu-west-1"
  status        = "active"
  provider_name = "jamf"
}

resource "thoth_endpoint" "laptop" {
  endpoint_id   = "ep-laptop-1"
  hostname      = "laptop-1.example.com"
  environment   = "prod"
  enrollment    = "jamf"
  proxy_version = "1.4.0"
  fleet_id      = thoth_fleet.eu.fleet_id
  agent_ids     = ["agent-7"]
}

resource "thoth_fleet_api_key" "ci" {
  name            = "ci"
  scope_target_id = thoth_fleet.eu.fleet_id
  permissions     = ["read"]
}

resource "thoth_mdm_provider" "jamf" {
  provider_name = "jamf"
  name          = "Jamf Pro"
}

resource "thoth_mdm_sync" "jamf" {
  provider_name       = thoth_mdm_provider.jamf.provider_name
  wait_for_completion = false
}

resource "thoth_browser_provider" "chrome" {
  provider_name = "chrome"
  name          = "Chrome Enterprise"
}

resource "thoth_browser_policy" "baseline" {
  name          = "baseline"
  provider_name = thoth_browser_provider.chrome.provider_name
  policy_json   = jsonencode({ block_paste_of_secrets = true })
}

resource "thoth_browser_enrollment" "laptop" {
  provider_name = thoth_browser_provider.chrome.provider_name
  user_id       = "alice"
  device_id     = "laptop-1"
}

resource "thoth_policy_bundle" "guard" {
  name        = "guard"
  framework   = "OPA"
  raw_policy  = "package guard\n\ndefault allow := false\n"
  assignments = ["agent:agent-7"]
}

resource "thoth_pack_assignment" "soc2" {
  agent_id    = "agent-7"
  pack_id     = "soc2-type2"
  environment = "prod"
}

resource "thoth_policy_exception" "shell" {
  violation_id           = "viol-1"
  requested_by           = "alice@example.com"
  business_justification = "Release tooling needs a shell."
  frequency_estimate     = "weekly"
  data_sensitivity       = "low"
  agent_id               = "agent-7"
  tool_name              = "shell"
}

resource "thoth_evidence_backfill" "all" {}
"#;

/// Every data source the emulator can answer, with its inputs.
const DATA_SOURCES: &str = r#"
data "thoth_tenant_settings" "this" {}

data "thoth_fleet" "eu" {
  fleet_id = thoth_fleet.eu.fleet_id
}

data "thoth_fleets" "eu" {
  region        = "EU-WEST-1"
  provider_name = "jamf"
  depends_on    = [thoth_fleet.eu]
}

data "thoth_endpoints" "prod" {
  environment = "prod"
  fleet_id    = thoth_fleet.eu.fleet_id
}

data "thoth_endpoint_stats" "all" {}

data "thoth_mdm_providers" "all" {}

data "thoth_mdm_sync_job" "jamf" {
  job_id = thoth_mdm_sync.jamf.id
}

data "thoth_browser_providers" "all" {}

data "thoth_browser_policies" "chrome" {
  provider_name = thoth_browser_provider.chrome.provider_name
}

data "thoth_browser_enrollments" "active" {
  provider_name = thoth_browser_provider.chrome.provider_name
  status        = "active"
}

data "thoth_api_keys" "fleet" {
  scope_level     = "fleet"
  scope_target_id = thoth_fleet.eu.fleet_id
  active_only     = true
}

data "thoth_api_key_metrics" "all" {}

data "thoth_api_key_authorization" "ci" {
  key_id        = thoth_fleet_api_key.ci.key_id
  api_key       = thoth_fleet_api_key.ci.api_key
  permission    = "read"
  resource_type = "endpoint"
  resource_id   = thoth_endpoint.laptop.endpoint_id
}

data "thoth_policy_bundles" "opa" {
  framework  = "OPA"
  depends_on = [thoth_policy_bundle.guard]
}

data "thoth_effective_policy_bundles" "agent" {
  agent_id   = "agent-7"
  depends_on = [thoth_policy_bundle.guard]
}

data "thoth_approvals" "denied" {
  status = "denied"
}

data "thoth_policy_exception" "shell" {
  request_id = thoth_policy_exception.shell.request_id
}

data "thoth_policy_exceptions" "alice" {
  requested_by = "alice@example.com"
}

data "thoth_policy_change_artifact" "spaced" {
  request_id = "req with spaces"
}

data "thoth_policy_change_artifacts" "staging" {
  target_environment = "staging"
  limit              = 10
}

data "thoth_mcp_vendor" "spaced" {
  vendor_id = "vendor with spaces"
}

data "thoth_mcp_vendors" "approved" {
  approved = true
}

data "thoth_mcp_inventory_report" "week" {}

data "thoth_mcp_inventory_digest" "day" {
  window_hours = 24
}

data "thoth_evidence_chain" "head" {
  limit = 10
}

data "thoth_evidence_verify" "all" {}

data "thoth_governance_evidence_slos" "day" {
  window_hours = 24
  scan_limit   = 1000
}

data "thoth_governance_feed" "all" {
  per_page = 10
  sort_dir = "asc"
}

data "thoth_governance_tools" "day" {
  window_hours = 24
}

data "thoth_governance_packs" "all" {}

data "thoth_governance_pack_rules" "soc2" {
  pack_id = "soc2-type2"
}

data "thoth_governance_pack_rule_versions" "soc2" {
  pack_id = "soc2-type2"
}

data "thoth_governance_runtime_status" "prod" {
  environment = "prod"
  depends_on  = [thoth_pack_assignment.soc2]
}

data "thoth_governance_board_incident_summary" "viol" {
  violation_id = "viol-1"
}

data "thoth_governance_cost_report" "month" {
  days = 30
  rate = 0.5
}

data "thoth_governance_day7_report" "week" {
  days = 7
}

data "thoth_governance_reports_overview" "month" {
  days = 30
}

data "thoth_governance_executive_summary" "month" {
  days = 30
}

data "thoth_report_data" "latest" {
  cadence  = "7d"
  status   = "COMPLETED"
  agent_id = "agent-7"
}

data "thoth_agent_latest_forensics" "agent" {
  agent_id = "agent-7"
}

data "thoth_billing_pricing" "this" {}

data "thoth_billing_monthly_cost" "this" {}

data "thoth_billing_credit_bank" "this" {
  average_monthly_burn_cents = 5000
}

data "thoth_billing_estimate" "march" {
  period                    = "2026-03"
  compliance_uplift_percent = 10
}

data "thoth_billing_invoices" "recent" {
  limit = 5
}

data "thoth_billing_reports" "all" {}

data "thoth_billing_artifacts" "recent" {
  limit = 5
}
"#;

/// What the data sources read, as outputs.
const OUTPUTS: &str = r#"
output "settings_profile" { value = data.thoth_tenant_settings.this.compliance_profile }
output "settings_regimes" { value = data.thoth_tenant_settings.this.regulatory_regimes }
output "settings_shell_risk" { value = data.thoth_tenant_settings.this.tool_risk_overrides["shell"] }
output "settings_webhook" { value = [data.thoth_tenant_settings.this.webhook_enabled, data.thoth_tenant_settings.this.webhook_url] }
output "settings_doc_profile" { value = jsondecode(data.thoth_tenant_settings.this.settings_json).compliance_profile }

output "fleet_name" { value = data.thoth_fleet.eu.name }
output "fleet_region" { value = data.thoth_fleet.eu.region }
output "fleet_endpoint_count" { value = data.thoth_fleet.eu.endpoint_count }
output "fleet_id_matches" { value = jsondecode(data.thoth_fleet.eu.response_json).fleet_id == thoth_fleet.eu.fleet_id }
output "fleets_total" { value = data.thoth_fleets.eu.total }
output "fleets_names" { value = [for f in jsondecode(data.thoth_fleets.eu.data_json) : f.name] }
output "endpoints_total" { value = data.thoth_endpoints.prod.total }
output "endpoints_ids" { value = [for e in jsondecode(data.thoth_endpoints.prod.data_json) : e.endpoint_id] }
output "endpoint_stats" { value = [data.thoth_endpoint_stats.all.total, data.thoth_endpoint_stats.all.managed, data.thoth_endpoint_stats.all.latest_version] }

output "mdm_total" { value = data.thoth_mdm_providers.all.total }
output "mdm_names" { value = [for p in jsondecode(data.thoth_mdm_providers.all.data_json) : p.name] }
output "sync_provider" { value = data.thoth_mdm_sync_job.jamf.provider_name }
output "sync_status" { value = data.thoth_mdm_sync_job.jamf.status }
output "sync_job_id" { value = jsondecode(data.thoth_mdm_sync_job.jamf.job_json).job_id == thoth_mdm_sync.jamf.id }

output "browser_providers_total" { value = data.thoth_browser_providers.all.total }
output "browser_policy_names" { value = [for p in jsondecode(data.thoth_browser_policies.chrome.data_json) : p.name] }
output "browser_enrollments_total" { value = data.thoth_browser_enrollments.active.total }

output "api_keys_total" { value = data.thoth_api_keys.fleet.total }
output "api_keys_names" { value = [for k in jsondecode(data.thoth_api_keys.fleet.data_json) : k.name] }
output "api_key_metrics_sdk" { value = data.thoth_api_key_metrics.all.active_sdk_keys }
output "authorization" {
  value = [
    data.thoth_api_key_authorization.ci.valid,
    data.thoth_api_key_authorization.ci.permission_allowed,
    data.thoth_api_key_authorization.ci.scope_allowed,
    data.thoth_api_key_authorization.ci.scope_level,
  ]
}

output "bundles_total" { value = data.thoth_policy_bundles.opa.total }
output "effective_names" { value = [for b in jsondecode(data.thoth_effective_policy_bundles.agent.data_json) : b.name] }
output "approvals_total" { value = data.thoth_approvals.denied.total }
output "approvals_ids" { value = [for a in jsondecode(data.thoth_approvals.denied.data_json) : a.approval_id] }

output "exception_status" { value = data.thoth_policy_exception.shell.status }
output "exception_requester" { value = data.thoth_policy_exception.shell.requested_by }
output "exceptions_total" { value = data.thoth_policy_exceptions.alice.total }
output "artifact_environment" { value = data.thoth_policy_change_artifact.spaced.target_environment }
output "artifact_request" { value = jsondecode(data.thoth_policy_change_artifact.spaced.data_json).request_id }
output "artifacts_total" { value = data.thoth_policy_change_artifacts.staging.total }

output "vendor_name" { value = jsondecode(data.thoth_mcp_vendor.spaced.response_json).display_name }
output "approved_vendors" { value = [for v in jsondecode(data.thoth_mcp_vendors.approved.data_json) : v.vendor_id] }
output "approved_vendors_total" { value = data.thoth_mcp_vendors.approved.total }
output "mcp_report" { value = [data.thoth_mcp_inventory_report.week.total, data.thoth_mcp_inventory_report.week.window_hours] }
output "mcp_digest" {
  value = [
    data.thoth_mcp_inventory_digest.day.total_endpoints,
    data.thoth_mcp_inventory_digest.day.unapproved_endpoints,
    data.thoth_mcp_inventory_digest.day.unapproved_calls,
    length(data.thoth_mcp_inventory_digest.day.recommended_actions),
  ]
}

output "evidence_chain_total" { value = data.thoth_evidence_chain.head.total }
output "evidence_verify" {
  value = [
    data.thoth_evidence_verify.all.verified,
    data.thoth_evidence_verify.all.records_checked,
    data.thoth_evidence_verify.all.chain_head,
  ]
}
output "slos_tenant" { value = data.thoth_governance_evidence_slos.day.tenant_id }
output "slos_rows_scanned" { value = data.thoth_governance_evidence_slos.day.rows_scanned }
output "slos_chain_success" { value = data.thoth_governance_evidence_slos.day.evidence_chain_verification_success }

output "feed_total" { value = data.thoth_governance_feed.all.total }
output "tools" { value = [for t in jsondecode(data.thoth_governance_tools.day.data_json) : "${t.tool_name}:${t.risk_tier}"] }
output "packs_total" { value = data.thoth_governance_packs.all.total }
output "pack_rules" { value = [data.thoth_governance_pack_rules.soc2.display_name, data.thoth_governance_pack_rules.soc2.total_versions] }
output "pack_rule_versions_total" { value = data.thoth_governance_pack_rule_versions.soc2.total }
output "runtime_assignments" { value = jsondecode(data.thoth_governance_runtime_status.prod.response_json).total_active_assignments }
output "board_incident_agents" { value = jsondecode(data.thoth_governance_board_incident_summary.viol.response_json).agents }
output "cost_pricing_version" { value = data.thoth_governance_cost_report.month.pricing_version }
output "cost_rate" { value = jsondecode(data.thoth_governance_cost_report.month.response_json).rate }
output "report_days" {
  value = [
    jsondecode(data.thoth_governance_day7_report.week.response_json).days,
    jsondecode(data.thoth_governance_reports_overview.month.response_json).days,
    jsondecode(data.thoth_governance_executive_summary.month.response_json).days,
  ]
}
output "report_data" {
  value = [
    jsondecode(data.thoth_report_data.latest.response_json).cadence,
    jsondecode(data.thoth_report_data.latest.response_json).status,
    data.thoth_report_data.latest.report_id,
  ]
}
output "agent_forensics" { value = [data.thoth_agent_latest_forensics.agent.agent_name, data.thoth_agent_latest_forensics.agent.risk_score] }

output "pricing" {
  value = [
    data.thoth_billing_pricing.this.active_tier,
    data.thoth_billing_pricing.this.catalog_version,
    data.thoth_billing_pricing.this.base_monthly_platform_fee_usd,
    data.thoth_billing_pricing.this.included_policy_checks,
    data.thoth_billing_pricing.this.overage_cap_usd,
  ]
}
output "monthly_cost" { value = [data.thoth_billing_monthly_cost.this.tier, data.thoth_billing_monthly_cost.this.total_cost_usd] }
output "credit_bank" { value = [data.thoth_billing_credit_bank.this.low_balance_threshold_cents, data.thoth_billing_credit_bank.this.low_balance_alert] }
output "estimate" {
  value = [
    data.thoth_billing_estimate.march.period_effective,
    data.thoth_billing_estimate.march.line_item_platform_fee_cents,
    data.thoth_billing_estimate.march.line_item_compliance_uplift_cents,
    data.thoth_billing_estimate.march.net_total_cents,
  ]
}
output "billing_lists" {
  value = [
    data.thoth_billing_invoices.recent.total,
    data.thoth_billing_reports.all.total,
    data.thoth_billing_artifacts.recent.total_count,
  ]
}
"#;

/// The data sources whose objects the emulator never has (it records no sessions, incidents,
/// billing reports or billing artifacts): their reads fail with a 404 that names the path.
const UNANSWERED: &str = r#"
data "thoth_session_forensics" "s" {
  session_id = "session one"
}

data "thoth_evidence_bundle" "s" {
  session_id = "session-1"
}

data "thoth_incident_forensics" "i" {
  incident_id = "incident one"
}

data "thoth_billing_report" "march" {
  year  = 2026
  month = 3
}

data "thoth_billing_artifact" "march" {
  year  = 2026
  month = 3
}
"#;

/// An emulator and an empty configuration directory pointed at it.
struct Setup {
    dir: TempDir,
    emulator: EmulatorProcess,
    _data: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let data = TempDir::new("data-sources-data");
        let emulator = EmulatorProcess::start(data.path());
        Setup { dir: TempDir::new("data-sources"), emulator, _data: data }
    }

    fn seed(&self, path: &str, body: Value) -> Value {
        self.emulator.request_at(Method::POST, path, Some(body))
    }

    fn run(&self, config: &str, args: &[&str]) -> Run {
        std::fs::write(self.dir.path().join("main.tf"), config).expect("write main.tf");
        let env = self.emulator.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        thoth(self.dir.path(), args, &env)
    }

    fn outputs(&self) -> Value {
        let text = std::fs::read_to_string(self.dir.path().join("thoth.state.json")).expect("state file");
        let state: Value = serde_json::from_str(&text).expect("state is JSON");
        state["outputs"].clone()
    }
}

/// The names of the data sources a configuration declares.
fn declared(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|line| line.strip_prefix("data \""))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_data_source_is_declared_by_these_tests() {
    let mut covered = declared(DATA_SOURCES);
    covered.extend(declared(UNANSWERED));
    covered.sort();
    let known: Vec<String> = Schema::get().data_source_names().map(str::to_owned).collect();
    assert_eq!(covered, known, "the tests declare exactly the data sources with a descriptor");
    assert_eq!(known.len(), 52);
}

#[test]
fn data_sources_read_what_the_tenant_holds() {
    let s = Setup::new();
    // What only the runtime creates on a real control plane, and what the configuration does
    // not own.
    s.emulator.put(
        "settings",
        json!({
            "compliance_profile": "hipaa",
            "regulatory_regimes": ["hipaa", "soc2"],
            "tool_risk_overrides": {"shell": "high"},
            "webhook": {"enabled": true, "url": "https://siem.example.com/thoth"},
        }),
    );
    let pending = s.seed(
        "_emulator/approvals",
        json!({"agent_id": "agent-7", "tool_name": "shell", "violation_id": "viol-1", "reason": "shell access"}),
    );
    let denied = s.seed(
        "_emulator/approvals",
        json!({"agent_id": "agent-7", "tool_name": "shell", "violation_id": "viol-1", "status": "denied"}),
    );
    assert_ne!(pending["approval_id"], denied["approval_id"]);
    s.seed(
        "_emulator/policy-change-artifacts",
        json!({"request_id": "req with spaces", "target_environment": "staging", "owner": "secops"}),
    );
    s.seed("_emulator/mcp-calls", json!({"endpoint_id": "ep-laptop-1", "host": "mcp.unknown.example", "calls": 3}));
    s.emulator.post(
        "mcp/vendors",
        json!({"vendor_id": "vendor with spaces", "display_name": "Spaced Vendor", "approved": true,
               "host_patterns": ["api.spaced.example"]}),
    );
    s.emulator.post(
        "mcp/vendors",
        json!({"vendor_id": "shady", "display_name": "Shady", "host_patterns": ["mcp.shady.example"]}),
    );

    // Rows that the filters of the data sources must leave out.
    s.emulator.post("fleets", json!({"name": "US desktops", "region": "us-east-1", "provider": "intune"}));
    s.emulator
        .post("endpoints", json!({"endpoint_id": "ep-dev-1", "hostname": "dev-1.example.com", "environment": "dev"}));
    s.emulator.post("api-keys", json!({"scope_level": "organization", "permissions": ["read"], "name": "org"}));
    s.emulator.post(
        "policy-bundles",
        json!({"name": "cedar-guard", "framework": "CEDAR", "raw_policy": "permit(principal, action, resource);",
               "assignments": ["agent:agent-9"]}),
    );
    s.emulator.post(
        "policy-exceptions",
        json!({"violation_id": "viol-2", "requested_by": "bob@example.com", "business_justification": "Debugging.",
               "frequency_estimate": "once", "data_sensitivity": "low"}),
    );
    s.emulator.post(
        "browser/enrollments",
        json!({"provider": "chrome", "user_id": "bob", "device_id": "desktop-2", "status": "pending"}),
    );
    s.seed("_emulator/policy-change-artifacts", json!({"request_id": "req-prod", "target_environment": "prod"}));

    let started = std::time::Instant::now();
    let apply = s.run(
        &format!("{RESOURCES}{DATA_SOURCES}{OUTPUTS}"),
        &["apply", "--auto-approve", "--secrets-out", "keys.json"],
    );
    apply.expect_code(0);
    // The new key's plaintext reaches the user once, in a private file, and nowhere else.
    let delivered = std::fs::read_to_string(s.dir.path().join("keys.json")).expect("the secrets file");
    let keys: serde_json::Value = serde_json::from_str(&delivered).expect("JSON");
    let plaintext = keys["thoth_fleet_api_key.ci"]["api_key"].as_str().expect("the key").to_owned();
    assert!(!plaintext.is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.dir.path().join("keys.json")).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    for (path, bytes) in crate::support::snapshot_dir(s.dir.path()) {
        if path.to_string_lossy() != "keys.json" {
            assert!(!String::from_utf8_lossy(&bytes).contains(&plaintext), "the key is in {}", path.display());
        }
    }
    assert!(!apply.stdout.contains(&plaintext), "the key is not printed");
    assert_eq!(
        apply.stderr,
        "The plaintext of `thoth_fleet_api_key.ci.api_key` is in `keys.json` (mode 0600); thoth keeps it nowhere else.\n",
        "no warnings"
    );
    let shown = |name: &str, text: &str| {
        apply.stdout.lines().any(|line| line.starts_with(&format!("{name} ")) && line.ends_with(&format!("= {text}")))
    };
    assert!(shown("fleet_name", r#""EU laptops""#), "{}", apply.stdout);
    assert!(shown("authorization", r#"[true, true, true, "fleet"]"#), "{}", apply.stdout);
    assert!(started.elapsed().as_secs() < 5, "the apply took {:?}", started.elapsed());

    let out = s.outputs();
    let expect = |name: &str, want: Value| assert_eq!(out[name], want, "output `{name}`; all outputs: {out:#}");

    expect("settings_profile", json!("hipaa"));
    expect("settings_regimes", json!(["hipaa", "soc2"]));
    expect("settings_shell_risk", json!("high"));
    expect("settings_webhook", json!([true, "https://siem.example.com/thoth"]));
    expect("settings_doc_profile", json!("hipaa"));

    expect("fleet_name", json!("EU laptops"));
    expect("fleet_region", json!("eu-west-1"));
    expect("fleet_endpoint_count", json!(1));
    expect("fleet_id_matches", json!(true));
    expect("fleets_total", json!(1));
    expect("fleets_names", json!(["EU laptops"]));
    expect("endpoints_total", json!(1));
    expect("endpoints_ids", json!(["ep-laptop-1"]));
    expect("endpoint_stats", json!([2, 1, "1.4.0"]));

    expect("mdm_total", json!(1));
    expect("mdm_names", json!(["Jamf Pro"]));
    expect("sync_provider", json!("jamf"));
    let status = out["sync_status"].as_str().unwrap_or_default();
    assert!(["queued", "running", "succeeded"].contains(&status), "sync status `{status}`");
    expect("sync_job_id", json!(true));

    expect("browser_providers_total", json!(1));
    expect("browser_policy_names", json!(["baseline"]));
    expect("browser_enrollments_total", json!(1));

    expect("api_keys_total", json!(1));
    expect("api_keys_names", json!(["ci"]));
    expect("api_key_metrics_sdk", json!(1));
    // The fleet key covers the fleet's endpoint.
    expect("authorization", json!([true, true, true, "fleet"]));

    expect("bundles_total", json!(1));
    expect("effective_names", json!(["guard"]));
    expect("approvals_total", json!(1));
    expect("approvals_ids", json!([denied["approval_id"]]));

    expect("exception_status", json!("pending"));
    expect("exception_requester", json!("alice@example.com"));
    expect("exceptions_total", json!(1));
    expect("artifact_environment", json!("staging"));
    expect("artifact_request", json!("req with spaces"));
    expect("artifacts_total", json!(1));

    expect("vendor_name", json!("Spaced Vendor"));
    expect("approved_vendors", json!(["vendor with spaces"]));
    expect("approved_vendors_total", json!(1));
    expect("mcp_report", json!([1, 168]));
    expect("mcp_digest", json!([1, 1, 3, 1]));

    // The backfill gave both decision events (the pending and the denied approval) evidence.
    expect("evidence_chain_total", json!(2));
    expect("evidence_verify", json!([true, 2, 2]));
    expect("slos_tenant", json!(TENANT));
    expect("slos_rows_scanned", json!(2));
    expect("slos_chain_success", json!(1));

    expect("feed_total", json!(2));
    expect("tools", json!(["shell:high"]));
    expect("packs_total", json!(7));
    expect("pack_rules", json!(["SOC 2 Type II", 3]));
    expect("pack_rule_versions_total", json!(3));
    expect("runtime_assignments", json!(1));
    expect("board_incident_agents", json!(["agent-7"]));
    expect("cost_pricing_version", json!("2026-01"));
    expect("cost_rate", json!(0.5));
    expect("report_days", json!([7, 30, 30]));
    expect("report_data", json!(["7d", "COMPLETED", "latest"]));
    expect("agent_forensics", json!(["agent-7", 10]));

    expect("pricing", json!(["pilot", "2026-01", 2500, 1_000_000, 0]));
    let monthly = &out["monthly_cost"];
    assert_eq!(monthly[0], "pilot", "{out:#}");
    assert!(monthly[1].as_f64().is_some_and(|usd| usd >= 2500.0), "{out:#}");
    expect("credit_bank", json!([10_000, false]));
    expect("estimate", json!(["2026-03", 250_000, 25_000, 275_000]));
    expect("billing_lists", json!([0, 0, 0]));
}

#[test]
fn data_sources_of_missing_objects_fail_with_the_path_they_read() {
    let s = Setup::new();
    let plan = s.run(UNANSWERED, &["plan"]);
    plan.expect_code(1);
    // Long messages are wrapped inside a frame, so they are compared without whitespace.
    let flat: String = plan.stderr.chars().filter(|c| !c.is_whitespace() && *c != '│').collect();
    for (address, path) in [
        ("data.thoth_session_forensics.s", "thoth/sessions/session%20one/forensics"),
        ("data.thoth_evidence_bundle.s", "thoth/sessions/session-1/evidence-bundle"),
        ("data.thoth_incident_forensics.i", "thoth/incidents/incident%20one/forensics"),
        ("data.thoth_billing_report.march", "billing/reports/2026/3"),
        ("data.thoth_billing_artifact.march", "billing/artifacts/2026/3"),
    ] {
        assert!(flat.contains(&format!("cannotread`{address}`")), "{address}:\n{}", plan.stderr);
        assert!(flat.contains(&format!("GET/acme/{path}failedwithHTTP404")), "{path}:\n{}", plan.stderr);
    }
}
