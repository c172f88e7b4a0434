//! The full example, which declares every resource type: first apply, a re-plan to zero, and
//! every lifecycle kind's create, update, replace, delete or forget, action re-run and drift,
//! with the real binary against an emulator process.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::Tenant;

const PLAN: &[&str] = &["plan", "--detailed-exitcode"];
const APPLY: &[&str] = &["apply", "--auto-approve"];
pub(crate) const CANARIES: [(&str, &str); 3] = [
    ("THOTH_VAR_webhook_secret", "canary-full-webhook-5d1f"),
    ("THOTH_VAR_siem_secret", "canary-full-siem-8c2e"),
    ("THOTH_VAR_pam_request_secret", "canary-full-pam-03ab"),
];

pub(crate) fn rows(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

/// The full example, applied once.
fn applied() -> Tenant {
    let t = Tenant::from_example("full");
    let apply = t.run_with(APPLY, &CANARIES);
    apply.expect_code(0);
    t
}

#[test]
fn full_example_applies_every_type_and_replans_to_zero() {
    let t = Tenant::from_example("full");
    let plan = t.run_with(PLAN, &CANARIES);
    plan.expect_code(2);
    assert!(
        plan.stdout
            .contains("Plan: 24 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget, 7 action(s) to run."),
        "{}",
        plan.stdout
    );
    let apply = t.run_with(APPLY, &CANARIES);
    apply.expect_code(0);
    assert!(apply.stdout.contains("Apply complete: 24 created, 0 updated, 0 replaced, 0 deleted, 0 forgotten, 7 ran."));
    for line in [
        "claims_bot_key       = (sensitive value)",
        r#"exception_status     = "approved""#,
        // The verification checklist, read through data sources after the apply.
        r#"compliance_profile   = "soc2""#,
        "enrolled_endpoints   = 2",
        "mdm_providers        = 1",
        "evidence_slos_passed = true",
    ] {
        assert!(apply.stdout.contains(line), "missing `{line}` in\n{}", apply.stdout);
    }

    // Exactly one of each object, with the configured values.
    let e = &t.emulator;
    let fleets = rows(&e.get("fleets"), "data");
    assert_eq!(fleets.len(), 1);
    assert_eq!(fleets[0]["name"], "claims-laptops");
    let fleet_id = fleets[0]["fleet_id"].as_str().expect("fleet id").to_owned();
    let endpoints = rows(&e.get("endpoints"), "data");
    assert_eq!(endpoints.len(), 2);
    assert!(endpoints.iter().all(|ep| ep["fleet_id"] == fleet_id.as_str()));
    let keys = rows(&e.get("api-keys"), "api_keys");
    let mut scopes: Vec<(String, String)> = keys
        .iter()
        .map(|k| (k["scope_level"].as_str().unwrap_or("").to_owned(), k["name"].as_str().unwrap_or("").to_owned()))
        .collect();
    scopes.sort();
    assert_eq!(
        scopes,
        [
            ("agent".to_owned(), "claims-bot-jit".to_owned()),
            ("endpoint".to_owned(), "claims-001-agent".to_owned()),
            ("fleet".to_owned(), "claims-fleet-reader".to_owned())
        ]
    );
    assert!(keys.iter().all(|k| k.get("api_key").is_none()), "the list never shows a plaintext key");
    let vendors = rows(&e.get("mcp/vendors"), "data");
    assert_eq!(vendors.len(), 3);
    let figma = e.get("mcp/vendors/figma");
    assert_eq!(figma["host_patterns"], json!(["*.figma.com", "api.figma.com"]), "a set is sent sorted");
    assert_eq!(e.get("mcp/vendors/pastebin")["approved"], false);
    let bundles: Vec<String> =
        rows(&e.get("policy-bundles"), "data").iter().filter_map(|b| b["name"].as_str().map(str::to_owned)).collect();
    for name in ["mcp-guardrails", "claims-least-privilege", "exception-figma-export"] {
        assert_eq!(bundles.iter().filter(|b| *b == name).count(), 1, "{name} in {bundles:?}");
    }
    assert_eq!(e.get("policy-exceptions/exc-figma-export")["status"], "approved");
    assert_eq!(e.get("policy-change-artifacts/exc-figma-export")["status"], "applied");
    let packs = rows(&e.get("agents/agent-claims-bot/packs"), "packs");
    assert_eq!(packs.len(), 1);
    assert_eq!(packs[0]["overrides"]["behavioral_controls"]["trust_floor"], 0.6);
    let settings = e.get("settings");
    assert_eq!(settings["siem"]["provider"], "splunk");
    assert_eq!(settings["pam"]["provider"], "okta");
    assert_eq!(settings["compliance_profile"], "soc2");
    let pricing = e.request_at(Method::GET, "billing/pricing", None);
    assert_eq!(pricing["pilot_package"]["overage_cap_usd"], 2500.0);
    let sync = t.recorded("thoth_mdm_sync.jamf");
    assert_eq!(sync["attributes"]["status"], "succeeded", "{sync}");

    // The state has no secret and no plaintext key; nothing printed has one either.
    let state = t.read("thoth.state.json");
    assert!(t.recorded("thoth_agent_api_key.claims_bot")["attributes"].get("api_key").is_none());
    for run in [&plan, &apply] {
        for (_, canary) in CANARIES {
            assert!(!run.transcript().contains(canary));
            assert!(!state.contains(canary));
        }
    }

    let replan = t.run_with(PLAN, &CANARIES);
    replan.expect_code(0);
    assert!(replan.stdout.contains("No changes."), "{}", replan.stdout);

    // Reading 29 objects of 24 types takes one call per list, not one per object: the
    // settings document, the pricing, four upsert lists, the bundle versions, and the lists of
    // fleets, endpoints, vendors, API keys, the agent's packs, exceptions and artifacts.
    let json = t.run_with(&["plan", "--format", "json", "--verbose"], &CANARIES);
    json.expect_code(0);
    let doc: Value = serde_json::from_str(&json.stdout).expect("JSON plan");
    assert_eq!(doc["refresh"]["calls"], 14, "{}", doc["refresh"]);
    assert!(json.stderr.contains("Read the tenant with 14 HTTP call(s)"), "{}", json.stderr);
}

#[test]
fn every_lifecycle_kind_updates_replaces_deletes_forgets_reruns_and_sees_drift() {
    let t = applied();
    let e = &t.emulator;
    let old_key = t.recorded("thoth_agent_api_key.claims_bot")["id"].as_str().expect("key id").to_owned();

    // Object with update: approving a vendor loosens, in place.
    t.edit(
        "variables.tf",
        r#"hosts = ["pastebin.com"], approved = false"#,
        r#"hosts = ["pastebin.com"], approved = true"#,
    );
    // Object without update: a new TTL replaces the key.
    t.edit("main.tf", "ttl_seconds     = 3600", "ttl_seconds     = 7200");
    // Object with delete: the Notion vendor goes.
    t.edit("variables.tf", r#"    notion   = { name = "Notion", hosts = ["api.notion.com"], approved = true }"#, "");
    // Object without delete: the second laptop is forgotten.
    t.edit(
        "variables.tf",
        r#"    "ep-claims-002" = { hostname = "claims-mbp-002", employee = "Ben Ode", os = "macos" }"#,
        "",
    );
    // Action: a new trigger runs it again.
    t.edit(
        "main.tf",
        r#"trigger = "2026-q4"
  limit"#,
        r#"trigger = "2027-q1"
  limit"#,
    );
    // Singleton: the overage cap is raised, after someone lowered it by hand.
    t.edit("main.tf", "overage_cap_usd = 2500", "overage_cap_usd = 3000");
    e.request_at(Method::PUT, "billing/overage-cap", Some(json!({"overage_cap_usd": 100})));
    // Settings section: the SIEM export is switched off.
    t.edit("main.tf", "siem_webhook_enabled  = true", "siem_webhook_enabled  = false");
    // Drift: the Figma vendor is renamed on the control plane.
    e.put(
        "mcp/vendors/figma",
        json!({"display_name": "Figma Inc", "host_patterns": ["api.figma.com", "*.figma.com"], "approved": true}),
    );
    // A pending approval appears.
    let approval = e.request_at(Method::POST, "_emulator/approvals", Some(json!({"tool_name": "shell.exec"})));
    let approval_id = approval["approval_id"].as_str().expect("approval id").to_owned();

    let var = format!("approval_id={approval_id}");
    let mut args: Vec<&str> = PLAN.to_vec();
    args.extend(["--var", &var]);
    let plan = t.run_with(&args, &CANARIES);
    plan.expect_code(2);
    let out = &plan.stdout;
    for expected in [
        r#"thoth_mcp_vendor.catalogue["pastebin"] will be updated in place [loosens]"#,
        "thoth_agent_api_key.claims_bot must be replaced",
        r#"thoth_mcp_vendor.catalogue["notion"] will be deleted"#,
        r#"thoth_endpoint.claims["ep-claims-002"] will be forgotten (no remote call)"#,
        "thoth_evidence_backfill.initial will run",
        "thoth_siem_settings.splunk will be updated in place [loosens]",
        r#"thoth_mcp_vendor.catalogue["figma"] will be updated in place"#,
        "thoth_approval_decision.pending[0] will be created",
        "thoth_billing_overage_cap.cap will be updated in place",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in\n{out}");
    }
    assert!(out.contains("# forces replacement"), "{out}");
    assert!(out.contains(r#"~ display_name = "Figma Inc" -> "Figma""#), "{out}");
    assert!(out.contains("thoth_agent_api_key.claims_bot must be replaced [loosens]"), "{out}");

    let mut args: Vec<&str> = APPLY.to_vec();
    args.extend(["--var", &var]);
    t.run_with(&args, &CANARIES).expect_code(0);

    assert_eq!(e.get("mcp/vendors/pastebin")["approved"], true);
    assert_eq!(e.get("mcp/vendors/figma")["display_name"], "Figma");
    let vendors: Vec<Value> = rows(&e.get("mcp/vendors"), "data");
    assert!(vendors.iter().all(|v| v["vendor_id"] != "notion"), "{vendors:?}");
    assert_eq!(rows(&e.get("endpoints"), "data").len(), 2, "a forgotten endpoint stays on the control plane");
    assert!(t.recorded(r#"thoth_endpoint.claims["ep-claims-002"]"#).is_null());
    let keys = rows(&e.get("api-keys"), "api_keys");
    let agent_keys: Vec<&Value> = keys.iter().filter(|k| k["scope_level"] == "agent").collect();
    let active: Vec<&&Value> = agent_keys.iter().filter(|k| k["active"] == true).collect();
    assert_eq!(active.len(), 1, "{agent_keys:?}");
    assert_eq!(active[0]["ttl_seconds"], 7200);
    assert!(agent_keys.iter().any(|k| k["key_id"] == old_key.as_str() && k["active"] == false));
    assert_eq!(e.get("settings")["siem"]["webhook"]["enabled"], false);
    assert!(out.contains("~ overage_cap_usd = 100 -> 3000 # changed outside thoth"), "{out}");
    let pricing = e.request_at(Method::GET, "billing/pricing", None);
    assert_eq!(pricing["pilot_package"]["overage_cap_usd"], 3000.0);
    let approvals = rows(&e.get("approvals"), "data");
    let resolved = approvals.iter().find(|a| a["approval_id"] == approval_id.as_str()).expect("approval");
    assert_eq!(resolved["status"], "denied");

    let mut args: Vec<&str> = PLAN.to_vec();
    args.extend(["--var", &var]);
    let replan = t.run_with(&args, &CANARIES);
    replan.expect_code(0);
}

#[test]
fn a_configuration_written_for_the_terraform_provider_plans_and_applies_unchanged() {
    let t = Tenant::from_dir("tests/fixtures/tenants/terraform_provider");
    let before = crate::support::snapshot_dir(t.path());
    // Terraform's own spellings: `TF_VAR_` variables and an auto-loaded `terraform.tfvars`.
    let env = [("TF_VAR_webhook_secret", "canary-tf-var-secret-91c2")];
    let plan = t.run_with(PLAN, &env);
    plan.expect_code(2);
    assert!(
        plan.stdout
            .contains("Plan: 7 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget, 2 action(s) to run."),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains(r#"thoth_pack_assignment.soc2[1] will be created"#), "{}", plan.stdout);
    assert!(
        plan.stdout.contains(r#"name             = "guardrails-prod""#),
        "terraform.tfvars is loaded\n{}",
        plan.stdout
    );
    assert_eq!(crate::support::snapshot_dir(t.path()), before, "a plan writes nothing into the configuration");

    let apply = t.run_with(APPLY, &env);
    apply.expect_code(0);
    assert!(
        apply.stdout.contains(r#"assignment_ids = ["agent-support-bot/soc2-type2", "agent-claims-bot/soc2-type2"]"#),
        "{}",
        apply.stdout
    );
    assert!(apply.stdout.contains("fleet_count    = 0"), "{}", apply.stdout);
    assert!(!apply.transcript().contains("canary-tf-var-secret-91c2"));
    t.run_with(PLAN, &env).expect_code(0);
}
