# A whole tenant: every resource type thoth manages, wired the way a security
# team runs Thoth. Secrets come from variables (THOTH_VAR_<name>), policies and
# provider configurations from files beside this one.

terraform {
  required_providers {
    thoth = {
      source = "atensecurity/thoth"
    }
  }
}

provider "thoth" {
  tenant_id = var.tenant_id

  # Unattended applies on merge ride out bursts of throttling and server errors.
  retry_max_attempts = 6
}

locals {
  team         = "claims"
  vendor_ok    = { for id, v in var.mcp_vendors : id => v if v.approved }
  broker_hosts = sort(distinct(flatten([for v in values(local.vendor_ok) : v.hosts])))
}

# Settings document: baseline governance, webhooks, SIEM export and PAM.

resource "thoth_governance_settings" "baseline" {
  compliance_profile = "soc2"

  shadow_low      = "allow"
  shadow_medium   = "step_up"
  shadow_high     = "block"
  shadow_critical = "block"

  secret_broker_enabled                = true
  secret_broker_provider               = "custom"
  secret_broker_strict_endpoint_mode   = true
  secret_broker_fail_on_missing_secret = true
  secret_broker_allowed_hosts          = local.broker_hosts
}

resource "thoth_webhook_settings" "events" {
  webhook_enabled = true
  webhook_url     = "https://siem.example.com/hooks/thoth"
  webhook_secret  = var.webhook_secret
}

resource "thoth_siem_settings" "splunk" {
  siem_provider         = "splunk"
  siem_webhook_enabled  = true
  siem_webhook_url      = "https://splunk.example.com:8088/services/collector"
  siem_webhook_secret   = var.siem_secret
  siem_webhook_provider = "splunk_hec"
}

resource "thoth_pam_settings" "okta" {
  pam_enabled                 = true
  pam_provider                = "okta"
  pam_request_url             = "https://pam.example.com/requests"
  pam_request_secret          = var.pam_request_secret
  pam_request_timeout_seconds = 20
}

resource "thoth_billing_overage_cap" "cap" {
  overage_cap_usd = 2500
}

resource "thoth_webhook_test" "events" {
  trigger    = sha256(thoth_webhook_settings.events.webhook_url)
  depends_on = [thoth_webhook_settings.events]
}

# Device management and browser governance.

resource "thoth_mdm_provider" "jamf" {
  provider_name = "jamf"
  name          = "Jamf Pro"
  enabled       = true
  config_json   = file("${path.module}/mdm-provider.json")
}

resource "thoth_mdm_sync" "jamf" {
  provider_name         = thoth_mdm_provider.jamf.provider_name
  trigger               = "initial"
  poll_interval_seconds = 1
  timeout_seconds       = 30
}

resource "thoth_browser_provider" "chrome" {
  provider_name = "chrome"
  name          = "Chrome Enterprise"
  config_json   = file("${path.module}/browser/chrome-provider.json")
}

resource "thoth_browser_policy" "chrome_baseline" {
  name             = "chrome-baseline-v1"
  provider_name    = thoth_browser_provider.chrome.provider_name
  enforcement_mode = "enforce"
  policy_json      = file("${path.module}/browser/chrome-policy.json")
}

resource "thoth_browser_enrollment" "ana" {
  provider_name = thoth_browser_provider.chrome.provider_name
  user_id       = "ana.ruiz@example.com"
  device_id     = "claims-mbp-001"
  status        = "active"
}

# Fleets, endpoints and their scoped API keys.

resource "thoth_fleet" "claims" {
  name             = "${local.team}-laptops"
  region           = "eu-west-1"
  rollout_strategy = "canary"
  rollout_pct      = 10
  provider_name    = "jamf"
}

resource "thoth_endpoint" "claims" {
  for_each = var.endpoints

  endpoint_id      = each.key
  hostname         = each.value.hostname
  employee_name    = each.value.employee
  department       = local.team
  os               = each.value.os
  enrollment       = "jamf"
  environment      = "prod"
  enforcement_mode = "enforce"
  fleet_id         = thoth_fleet.claims.fleet_id
  provider_name    = "jamf"
}

resource "thoth_fleet_api_key" "claims" {
  name            = "claims-fleet-reader"
  scope_target_id = thoth_fleet.claims.fleet_id
  permissions     = ["read"]
}

resource "thoth_endpoint_api_key" "first" {
  name            = "claims-001-agent"
  scope_target_id = thoth_endpoint.claims["ep-claims-001"].endpoint_id
  permissions     = ["read", "write"]
  ttl_seconds     = 86400
}

resource "thoth_agent_api_key" "claims_bot" {
  name            = "claims-bot-jit"
  scope_target_id = "agent-claims-bot"
  permissions     = ["execute"]
  ttl_seconds     = 3600
  jit_reason      = "Quarterly claims reconciliation"
}

# Policies, packs and MCP tools.

resource "thoth_policy_bundle" "mcp_guardrails" {
  name             = "mcp-guardrails"
  description      = "Deny MCP tool calls to hosts outside the secrets broker allow-list"
  framework        = "OPA"
  raw_policy       = file("${path.module}/policies/mcp_guardrails.rego")
  assignments      = ["all"]
  enforcement_mode = "enforce"
}

resource "thoth_policy_bundle" "least_privilege" {
  name             = "claims-least-privilege"
  framework        = "CEDAR"
  raw_policy       = file("${path.module}/policies/least_privilege.cedar")
  assignments      = [thoth_fleet.claims.fleet_id]
  enforcement_mode = "observe"
}

resource "thoth_policy_sync" "bundles" {
  trigger               = join(",", [thoth_policy_bundle.mcp_guardrails.id, thoth_policy_bundle.least_privilege.id])
  poll_interval_seconds = 1
  timeout_seconds       = 30
}

resource "thoth_pack_assignment" "claims_bot_soc2" {
  agent_id    = "agent-claims-bot"
  pack_id     = "soc2-type2"
  environment = "prod"
  trust_floor = 0.6
}

resource "thoth_pack_assignment_bulk" "claims_fleet" {
  pack_ids    = ["gdpr-ai-agents", "cis-l1"]
  fleet_ids   = [thoth_fleet.claims.fleet_id]
  environment = "prod"
  trust_floor = 0.5
}

resource "thoth_mcp_vendor" "catalogue" {
  for_each = var.mcp_vendors

  vendor_id     = each.key
  display_name  = each.value.name
  host_patterns = each.value.hosts
  approved      = each.value.approved
  source        = "manual"
}

resource "thoth_mcp_catalog_verify" "claims_processor" {
  trigger     = jsonencode([for v in thoth_mcp_vendor.catalogue : v.approved])
  environment = "prod"
  human_role  = "claims-processor"
}

# Evidence maintenance.

resource "thoth_evidence_backfill" "initial" {
  trigger = "2026-q4"
  limit   = 500
}

resource "thoth_decision_field_backfill" "initial" {
  trigger      = "2026-q4"
  window_hours = 168
  dry_run      = true
}

# The exception workflow: a request, its review, and the resulting policy change.

resource "thoth_policy_exception" "figma_export" {
  request_id             = "exc-figma-export"
  violation_id           = "vio-2026-11-0042"
  agent_id               = "agent-claims-bot"
  tool_name              = "figma.export"
  requested_by           = "ana.ruiz@example.com"
  business_justification = "Claims evidence packs embed exported Figma frames."
  frequency_estimate     = "weekly"
  data_sensitivity       = "internal"
}

resource "thoth_policy_exception_review" "figma_export" {
  request_id         = thoth_policy_exception.figma_export.request_id
  review_decision    = "approve"
  reviewed_by        = "security@example.com"
  review_notes       = "Export limited to the claims workspace."
  target_environment = "prod"
  policy_change_json = jsonencode({
    raw_policy = file("${path.module}/policies/least_privilege.cedar")
  })
}

resource "thoth_policy_change_artifact_apply" "figma_export" {
  request_id       = thoth_policy_exception_review.figma_export.request_id
  applied_by       = "security@example.com"
  policy_format    = "cedar"
  bundle_name      = "exception-figma-export"
  assignments      = ["agent-claims-bot"]
  enforcement_mode = "enforce"
}

resource "thoth_approval_decision" "pending" {
  count = var.approval_id == "" ? 0 : 1

  approval_id = var.approval_id
  decision    = "deny"
}

output "fleet_id" {
  value = thoth_fleet.claims.fleet_id
}

output "endpoint_ids" {
  value = sort([for e in thoth_endpoint.claims : e.endpoint_id])
}

output "claims_bot_key" {
  value     = thoth_agent_api_key.claims_bot.api_key
  sensitive = true
}

output "exception_status" {
  value = thoth_policy_exception_review.figma_export.status
}
