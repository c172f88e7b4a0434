//! The real shape of a synthetic tenant: what large tenants' configurations hold.
//!
//! Each resource sets eight to twelve attributes where its type has that many. Every JSON
//! attribute is built with `jsonencode` from nested objects; browser policies merge a base
//! document of dozens of keys, read with `file()`, with their own keys; bundles alternate Rego
//! heredocs, Cedar heredocs and Rego rendered with `templatefile()`; pack assignments carry
//! JSON overrides and the individual behavioural controls for hundreds of agents; the settings,
//! the webhook and the browser provider use sensitive variables and locals.

use std::fmt::Write as _;

use super::{split, PACKS};

/// The base document every browser policy merges its own keys into.
fn browser_base() -> String {
    let mut keys = Vec::new();
    for (i, category) in
        ["chat", "code", "image", "voice", "search", "agents", "translation", "writing"].iter().enumerate()
    {
        keys.push(format!(
            "  \"{category}_assistants\": {{\"action\": \"{}\", \"log\": true, \"max_upload_kb\": {}, \"allowed_file_types\": [\"txt\", \"md\", \"csv\"]}}",
            ["block", "warn", "allow"][i % 3],
            256 * (i + 1)
        ));
    }
    for (i, flag) in [
        "block_paste_of_secrets",
        "block_file_upload",
        "redact_pii",
        "warn_on_new_domain",
        "require_sso",
        "block_incognito",
        "capture_prompts",
        "capture_responses",
        "block_extensions_unlisted",
        "enforce_tenant_restrictions",
        "dlp_inline",
        "screenshot_protection",
    ]
    .iter()
    .enumerate()
    {
        keys.push(format!("  \"{flag}\": {}", i % 2 == 0));
    }
    keys.push("  \"dlp\": {\"patterns\": [\"AKIA[0-9A-Z]{16}\", \"ghp_[A-Za-z0-9]{36}\", \"xox[bp]-[0-9A-Za-z-]+\"], \"action\": \"redact\", \"notify\": {\"channel\": \"#sec-alerts\", \"threshold\": 3}}".to_owned());
    keys.push("  \"allowed_ai_domains\": [\"chat.openai.com\", \"claude.ai\", \"gemini.google.com\", \"copilot.microsoft.com\"]".to_owned());
    keys.push(
        "  \"session\": {\"idle_timeout_minutes\": 30, \"reauth_hours\": 12, \"banner\": \"AI use is monitored\"}"
            .to_owned(),
    );
    keys.push("  \"reporting\": {\"daily_digest\": true, \"weekly_review\": true, \"retention_days\": 400}".to_owned());
    format!("{{\n{}\n}}\n", keys.join(",\n"))
}

/// The Rego template some bundles render with `templatefile()`.
const REGO_TEMPLATE: &str = r#"package thoth.synthetic.${name}

import rego.v1

default allow := false

approved_hosts := {%{ for h in hosts ~}"${h}", %{ endfor ~}}

allow if {
  input.request.host in approved_hosts
  input.agent.risk < ${risk}
  not deny
}

deny if {
  input.request.data_classification == "restricted"
  input.agent.environment != "${environment}"
}
"#;

/// The configuration files of a real-shaped tenant of about `n` resources.
pub(super) fn tenant(n: usize) -> Vec<(String, String)> {
    let [fleets, bundles, policies, vendors, packs, enrollments, endpoints] = split(n);
    // The webhook settings are a fourth resource that is always there.
    let endpoints = endpoints.saturating_sub(1);
    let mut files = vec![
        ("main.tf".to_owned(), MAIN.to_owned()),
        ("browser/base.json".to_owned(), browser_base()),
        ("policies/bundle.rego.tftpl".to_owned(), REGO_TEMPLATE.to_owned()),
    ];

    let mut text = String::new();
    for i in 1..fleets {
        let _ = write!(
            text,
            r#"resource "thoth_fleet" "f{i}" {{
  name             = "fleet-{i}"
  region           = var.region
  policy_id        = "pol-{i:04}"
  policy_name      = "${{local.owner}}-fleet-{i}"
  status           = "active"
  rollout_strategy = "{strategy}"
  rollout_pct      = {pct}
  provider_name    = "{provider}"
}}

"#,
            strategy = ["staged", "canary"][i % 2],
            pct = 10 + i % 90,
            provider = ["jamf", "intune", "workspace_one"][i % 3],
        );
    }
    for i in 0..endpoints {
        let _ = write!(
            text,
            r#"resource "thoth_endpoint" "e{i}" {{
  endpoint_id    = "ep-{i:06}"
  hostname       = "host-{i:06}.corp.example"
  employee_name  = "Employee {i}"
  employee_email = "employee.{i}@corp.example"
  department     = local.departments[{dept}]
  os             = "{os}"
  os_version     = "{os_version}"
  enrollment     = "{enrollment}"
  environment    = var.environment
  proxy_version  = "1.{minor}.0"
  fleet_id       = thoth_fleet.f{fleet}.fleet_id
  agent_ids      = ["agent-{agent:05}", "agent-{next:05}"]
}}

"#,
            dept = i % 8,
            os = ["macos", "windows", "linux"][i % 3],
            os_version = ["14.5", "11 23H2", "6.8"][i % 3],
            enrollment = ["jamf", "intune", "manual"][i % 3],
            minor = 6 + i % 4,
            fleet = i % fleets,
            agent = i % 500,
            next = (i + 1) % 500,
        );
    }
    files.push(("fleets_endpoints.tf".to_owned(), std::mem::take(&mut text)));

    for i in 0..bundles {
        let raw_policy = match i % 3 {
            0 => format!(
                "templatefile(\"policies/bundle.rego.tftpl\", {{ name = \"b{i}\", hosts = local.allowed_hosts, risk = {}, environment = var.environment }})",
                50 + i % 50
            ),
            1 => format!(
                "<<-EOT\n    package thoth.synthetic.b{i}\n\n    import rego.v1\n\n    default allow := false\n\n    allow if {{\n      input.request.host in {{\"api.figma.com\", \"api.notion.com\"}}\n      input.agent.risk < {}\n      count(input.agent.violations) == 0\n    }}\n\n    deny contains msg if {{\n      input.request.tool == \"shell\"\n      msg := sprintf(\"shell is not allowed for %s\", [input.agent.id])\n    }}\n  EOT",
                50 + i % 50
            ),
            _ => format!(
                "<<-EOT\n    permit (\n      principal in Thoth::Group::\"engineering-{i}\",\n      action == Thoth::Action::\"invoke_tool\",\n      resource in Thoth::ToolSet::\"approved\"\n    )\n    when {{ context.risk < {} && context.environment == \"prod\" }};\n\n    forbid (\n      principal,\n      action == Thoth::Action::\"upload\",\n      resource\n    )\n    when {{ resource.classification == \"restricted\" }};\n  EOT",
                40 + i % 60
            ),
        };
        let framework = if i % 3 == 2 { "CEDAR" } else { "OPA" };
        let (status, mode) = if i % 5 == 4 { ("staged", "observe") } else { ("active", "enforce") };
        let _ = write!(
            text,
            r#"resource "thoth_policy_bundle" "b{i}" {{
  name             = "bundle-{i}"
  description      = "Guardrails for ${{local.owner}}, set {i}"
  framework        = "{framework}"
  assignments      = ["all"]
  status           = "{status}"
  enforcement_mode = "{mode}"
  raw_policy       = {raw_policy}
}}

"#
        );
    }
    for i in 0..policies {
        let _ = write!(
            text,
            r#"resource "thoth_browser_policy" "p{i}" {{
  name             = "browser-policy-{i}"
  provider_name    = thoth_browser_provider.chrome.provider_name
  enforcement_mode = "{mode}"
  active           = true
  created_by       = local.owner
  updated_by       = local.owner
  policy_json = jsonencode(merge(jsondecode(file("browser/base.json")), {{
    blocked_ai_domains = ["ai-{i}.example", "chat-{i}.example", "gen-{i}.example"]
    owner              = local.owner
    scope              = {{ departments = [local.departments[{dept}]], environments = [var.environment], groups = ["group-{i}"] }}
    exceptions         = [{{ user = "lead-{i}@corp.example", until = "2027-06-30", reason = "evaluation" }}]
    thresholds         = {{ warn = {warn}, block = {block} }}
  }}))
  metadata_json = jsonencode({{ ticket = "SEC-{ticket}", reviewed = true, labels = {{ tier = "{tier}", region = var.region }} }})
}}

"#,
            mode = ["monitor", "enforce"][i % 2],
            dept = i % 8,
            warn = 30 + i % 20,
            block = 70 + i % 20,
            ticket = 1000 + i,
            tier = ["gold", "silver", "bronze"][i % 3],
        );
    }
    files.push(("policies.tf".to_owned(), std::mem::take(&mut text)));

    for i in 0..vendors {
        let _ = write!(
            text,
            r#"resource "thoth_mcp_vendor" "v{i}" {{
  vendor_id     = "vendor-{i:05}"
  display_name  = "Vendor {i}"
  host_patterns = ["api.vendor-{i}.example", "*.vendor-{i}.example", "mcp.vendor-{i}.example", "vendor-{i}.example"]
  approved      = {approved}
  source        = "{source}"
  notes         = "Reviewed by ${{local.owner}} for ${{var.environment}}; ticket SEC-{ticket}"
  last_seen_at  = "2026-11-{day:02}T08:00:00Z"
}}

"#,
            approved = i % 4 != 0,
            source = ["manual", "discovered"][i % 2],
            ticket = 5000 + i,
            day = 1 + i % 28,
        );
    }
    for i in 0..packs {
        let _ = write!(
            text,
            r##"resource "thoth_pack_assignment" "a{i}" {{
  agent_id           = "agent-{agent:05}"
  pack_id            = "{pack}"
  approval_policy_id = "approval-{policy}"
  environment        = var.environment
  mismatch_boost     = {mismatch}
  delegation_boost   = {delegation}
  trust_floor        = 0.{trust}
  critical_threshold = 0.9
  overrides_json = jsonencode({{
    behavioral_controls = {{ session_decay = 0.{decay}, max_tool_chain = {chain} }}
    thresholds          = {{ pii = {{ warn = 0.4, block = 0.8 }}, secrets = {{ warn = 0.2, block = 0.5 }} }}
    exemptions          = ["tool:search", "tool:calendar-{i}"]
    notify              = {{ channel = "#agent-{agent}", on = ["block", "escalate"] }}
  }})
}}

"##,
            agent = i / PACKS.len(),
            pack = PACKS[i % PACKS.len()],
            policy = i % 12,
            mismatch = 5 + i % 20,
            delegation = 10 + i % 15,
            trust = 3 + i % 5,
            decay = 1 + i % 8,
            chain = 3 + i % 5,
        );
    }
    for i in 0..enrollments {
        let _ = write!(
            text,
            r#"resource "thoth_browser_enrollment" "n{i}" {{
  provider_name   = thoth_browser_provider.chrome.provider_name
  user_id         = "user-{i}@corp.example"
  device_id       = "device-{i:06}"
  browser_profile = "Work {profile}"
  status          = "active"
  last_seen_at    = "2026-11-{day:02}T09:30:00Z"
  metadata_json   = jsonencode({{ department = local.departments[{dept}], managed = true, labels = {{ site = "site-{site}", cohort = "{cohort}" }} }})
}}

"#,
            profile = i % 3,
            day = 1 + i % 28,
            dept = i % 8,
            site = i % 25,
            cohort = ["canary", "pilot", "broad"][i % 3],
        );
    }
    files.push(("agents.tf".to_owned(), text));
    files
}

/// The settings, the browser provider and the first fleet, with the variables and locals the
/// other files use.
const MAIN: &str = r#"# A synthetic tenant shaped like real ones, generated for benchmarks.

variable "environment" {
  type    = string
  default = "prod"
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "webhook_secret" {
  type      = string
  sensitive = true
  default   = "synthetic-webhook-secret-0c1d"
}

variable "chrome_service_account_key" {
  type      = string
  sensitive = true
  default   = "synthetic-service-account-key-7e2a"
}

locals {
  owner         = "platform-security"
  allowed_hosts = ["api.figma.com", "api.notion.com", "api.github.com", "api.linear.app"]
  departments   = ["engineering", "finance", "legal", "sales", "support", "marketing", "hr", "research"]
  browser_credentials = {
    customer_id     = "C0synthetic"
    service_account = "thoth-browser@synthetic.iam.example"
    key             = var.chrome_service_account_key
  }
}

resource "thoth_governance_settings" "baseline" {
  compliance_profile                   = "soc2"
  regulatory_regimes                   = ["soc2", "gdpr"]
  shadow_low                           = "allow"
  shadow_medium                        = "step_up"
  shadow_high                          = "block"
  shadow_critical                      = "block"
  secret_broker_enabled                = true
  secret_broker_strict_endpoint_mode   = true
  secret_broker_fail_on_missing_secret = true
  secret_broker_allowed_hosts          = local.allowed_hosts
  tool_risk_overrides                  = { shell = "critical", browser = "high", search = "low" }
}

resource "thoth_webhook_settings" "alerts" {
  webhook_enabled = true
  webhook_url     = "https://hooks.synthetic.example/thoth"
  webhook_secret  = var.webhook_secret
}

resource "thoth_browser_provider" "chrome" {
  provider_name = "chrome"
  name          = "Chrome Enterprise"
  enabled       = true
  config_json = jsonencode(merge(local.browser_credentials, {
    scopes = ["chrome.management.policy", "chrome.management.reports"]
    sync   = { interval_minutes = 15, org_units = ["/Engineering", "/Finance"], dry_run = false }
  }))
}

resource "thoth_fleet" "f0" {
  name             = "fleet-0"
  region           = var.region
  status           = "active"
  rollout_strategy = "staged"
  rollout_pct      = 100
  provider_name    = "jamf"
}
"#;
