# The verification checklist and evidence quality checks of the headless operations guide,
# read from the tenant after every apply.

data "thoth_tenant_settings" "current" {
  depends_on = [thoth_governance_settings.baseline]
}

data "thoth_mdm_providers" "all" {
  depends_on = [thoth_mdm_provider.jamf]
}

data "thoth_endpoints" "claims" {
  fleet_id = thoth_fleet.claims.fleet_id
}

data "thoth_governance_evidence_slos" "daily" {
  window_hours = 24
}

# What `thoth verify` holds the tenant to, beyond the defaults.
verify {
  window_hours = 24
  stale_after  = "24h"
}

check "claims_laptops_enrolled" {
  assert {
    condition     = data.thoth_endpoints.claims.total >= length(var.endpoints)
    error_message = "Not every claims laptop is enrolled in the claims fleet."
  }
}

check "evidence_slos_met" {
  assert {
    condition     = data.thoth_governance_evidence_slos.daily.passed
    error_message = "The evidence SLOs of the last 24 hours are breached."
  }
}

output "compliance_profile" {
  value = data.thoth_tenant_settings.current.compliance_profile
}

output "mdm_providers" {
  value = data.thoth_mdm_providers.all.total
}

output "enrolled_endpoints" {
  value = data.thoth_endpoints.claims.total
}

output "evidence_slos_passed" {
  value = data.thoth_governance_evidence_slos.daily.passed
}
