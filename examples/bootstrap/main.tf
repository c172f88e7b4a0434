# The tenant bootstrap of the headless operations guide, as code:
# baseline governance, a SIEM webhook, a Jamf MDM provider, a strict secrets
# broker for MCP/API tools, Chrome browser governance and an OPA policy bundle.

terraform {
  required_providers {
    thoth = {
      source = "atensecurity/thoth"
    }
  }
}

provider "thoth" {
  tenant_id   = var.tenant_id
  apex_domain = var.apex_domain
}

locals {
  stitch_host = var.stitch_host

  # Secrets broker auth bindings: credentials are resolved at request time
  # from managed secret backends, never stored in endpoint tool config.
  auth_bindings = [
    {
      host_pattern = "api.figma.com"
      header       = "Authorization"
      secret_ref   = "op://design/figma/token"
      prefix       = "Bearer "
    },
    {
      host_pattern = "api.notion.com"
      header       = "Authorization"
      secret_ref   = "vault://kv/data/notion#token"
      prefix       = "Bearer "
    },
    {
      host_pattern = local.stitch_host
      header       = "Authorization"
      secret_ref   = "aws-sm://prod/stitch/token"
      prefix       = "Bearer "
    },
  ]
}

# Step 2: baseline governance.
resource "thoth_governance_settings" "baseline" {
  compliance_profile = "soc2"

  shadow_low      = "allow"
  shadow_medium   = "step_up"
  shadow_high     = "block"
  shadow_critical = "block"

  # Step 3: strict, fail-closed secrets broker.
  secret_broker_enabled                = true
  secret_broker_provider               = "custom"
  secret_broker_strict_endpoint_mode   = true
  secret_broker_fail_on_missing_secret = true
  secret_broker_allowed_hosts          = ["api.figma.com", "api.notion.com", local.stitch_host]
  secret_broker_auth_bindings_json     = jsonencode(local.auth_bindings)
}

resource "thoth_webhook_settings" "siem" {
  webhook_enabled       = true
  webhook_url           = var.webhook_url
  webhook_secret        = var.webhook_secret
  test_webhook_on_apply = true
}

resource "thoth_mdm_provider" "jamf" {
  provider_name = "jamf"
  name          = "Jamf Pro"
  enabled       = true
  config_json   = file("${path.module}/mdm-provider.json")
}

# Step 4: browser governance.
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

resource "thoth_policy_bundle" "mcp_guardrails" {
  name             = "mcp-guardrails"
  description      = "Deny MCP tool calls to hosts outside the secrets broker allow-list"
  framework        = "OPA"
  raw_policy       = file("${path.module}/policies/mcp_guardrails.rego")
  assignments      = ["all"]
  enforcement_mode = "enforce"

  depends_on = [thoth_governance_settings.baseline]
}

output "browser_policy_id" {
  value = thoth_browser_policy.chrome_baseline.id
}

output "bundle_version" {
  value = thoth_policy_bundle.mcp_guardrails.version
}
