//! Configurations written for the Terraform provider apply the first time and converge: blank
//! optional strings are left out of requests as the provider leaves them out, what the
//! emulator answers holds nothing the request did not, and actions run after what they
//! exercise without `depends_on`.

use serde_json::Value;

use crate::support::Tenant;

const APPLY: &[&str] = &["apply", "--auto-approve"];
const REPLAN: &[&str] = &["plan", "--detailed-exitcode"];

fn tenant(main_tf: &str) -> Tenant {
    let t = Tenant::from_dir("tests/fixtures/tenants/transport");
    t.write("main.tf", main_tf);
    t
}

const BROWSER_AND_VENDOR: &str = "resource \"thoth_browser_provider\" \"chrome\" {\n  provider_name = \"chrome\"\n  name          = \"Chrome\"\n  config_json   = jsonencode({ client_secret = \"browser-provider-secret-77\" })\n}\n\nresource \"thoth_browser_policy\" \"p\" {\n  name          = \"p\"\n  provider_name = thoth_browser_provider.chrome.provider_name\n  policy_json   = jsonencode({ block_uploads = true })\n}\n\nresource \"thoth_browser_enrollment\" \"e\" {\n  provider_name = thoth_browser_provider.chrome.provider_name\n  user_id       = \"ana@example.com\"\n  device_id     = \"dev-1\"\n}\n\nresource \"thoth_mcp_vendor\" \"v\" {\n  vendor_id     = \"acme\"\n  display_name  = \"Acme\"\n  host_patterns = [\"b.acme.example\", \"a.acme.example\", \"b.acme.example\"]\n}\n";

#[test]
fn blank_optional_strings_are_left_out_and_converge() {
    let t = tenant(
        "resource \"thoth_policy_exception\" \"e\" {\n  request_id             = \"exc-blank\"\n  violation_id           = \"vio-1\"\n  requested_by           = \"ana@example.com\"\n  business_justification = \"Needed.\"\n  frequency_estimate     = \"weekly\"\n  data_sensitivity       = \"internal\"\n  hold_token             = \"\"\n  agent_id               = \"  \"\n  tool_name              = \"\"\n}\n",
    );
    t.run_with(APPLY, &[]).expect_code(0);
    let row = t.emulator.get("policy-exceptions/exc-blank");
    assert!(row["hold_token"].is_null(), "{row}");
    t.run_with(REPLAN, &[]).expect_code(0);
}

/// A blank optional JSON attribute is left out, as the provider leaves it out, rather than
/// refused as invalid JSON; a blank required one is still an error.
#[test]
fn blank_optional_json_attributes_are_left_out_and_converge() {
    let t = tenant(
        "resource \"thoth_browser_provider\" \"chrome\" {\n  provider_name = \"chrome\"\n  config_json   = \"\"\n}\n\nresource \"thoth_browser_policy\" \"p\" {\n  name          = \"p\"\n  provider_name = thoth_browser_provider.chrome.provider_name\n  policy_json   = jsonencode({ a = 1 })\n  metadata_json = \"\"\n}\n\nresource \"thoth_browser_enrollment\" \"e\" {\n  provider_name = thoth_browser_provider.chrome.provider_name\n  user_id       = \"u\"\n  device_id     = \"d\"\n  metadata_json = \" \"\n}\n\nresource \"thoth_pack_assignment\" \"a\" {\n  agent_id       = \"agent-1\"\n  pack_id        = \"soc2-type2\"\n  overrides_json = \"\"\n}\n\nresource \"thoth_governance_settings\" \"g\" {\n  compliance_profile  = \"soc2\"\n  extra_settings_json = \"\"\n}\n",
    );
    t.run_with(APPLY, &[]).expect_code(0);
    let policies = t.emulator.get("browser/policies");
    assert_eq!(policies["data"].as_array().map(Vec::len), Some(1), "{policies}");
    assert!(policies["data"][0]["metadata"].is_null(), "{policies}");
    t.run_with(REPLAN, &[]).expect_code(0);

    t.write(
        "main.tf",
        "resource \"thoth_browser_policy\" \"p\" {\n  name          = \"p\"\n  provider_name = \"chrome\"\n  policy_json   = \"\"\n}\n",
    );
    let refused = t.run_with(&["validate"], &[]);
    refused.expect_code(1);
    assert!(refused.stderr.contains("invalid JSON in `policy_json`"), "{}", refused.stderr);
}

/// Where the provider reads blank JSON text as the empty document, sends the default for a
/// blank value or trims one, thoth does too, instead of refusing what the provider accepts.
#[test]
fn blank_json_the_provider_sends_as_an_empty_document_is_sent_so_and_converges() {
    let t = tenant(
        "resource \"thoth_governance_settings\" \"g\" {\n  compliance_profile               = \"soc2\"\n  secret_broker_auth_bindings_json = \"\"\n}\n\nresource \"thoth_policy_exception\" \"x\" {\n  request_id             = \"exc-blank\"\n  violation_id           = \"vio-1\"\n  agent_id               = \"agent-1\"\n  tool_name              = \"figma.export\"\n  requested_by           = \"ana@example.com\"\n  business_justification = \"Evidence packs.\"\n  frequency_estimate     = \"weekly\"\n  data_sensitivity       = \"internal\"\n}\n\nresource \"thoth_policy_exception_review\" \"x\" {\n  request_id         = thoth_policy_exception.x.request_id\n  review_decision    = \"approve\"\n  reviewed_by        = \"security@example.com\"\n  policy_change_json = \" \"\n}\n\nresource \"thoth_policy_change_artifact_apply\" \"x\" {\n  request_id    = thoth_policy_exception_review.x.request_id\n  applied_by    = \"security@example.com\"\n  apply_channel = \"\"\n  policy_format = \" rego \"\n}\n",
    );
    t.run_with(APPLY, &[]).expect_code(0);
    // A blank channel is sent as the default, and formats are sent trimmed, as the provider does.
    let artifact = t.emulator.get("policy-change-artifacts/exc-blank");
    assert_eq!(
        (artifact["apply_channel"].as_str(), artifact["policy_format"].as_str()),
        (Some("govapi"), Some("rego")),
        "{artifact}"
    );
    let settings = t.emulator.get("settings");
    assert_eq!(settings["secret_broker"]["auth_bindings"], serde_json::json!([]), "{settings}");
    let exception = t.emulator.get("policy-exceptions/exc-blank");
    assert_eq!(exception["policy_change"], serde_json::json!({}), "{exception}");
    t.run_with(REPLAN, &[]).expect_code(0);
}

#[test]
fn the_emulator_returns_no_write_only_or_invented_values_and_thoth_converges() {
    let t = tenant(BROWSER_AND_VENDOR);
    t.run_with(APPLY, &[]).expect_code(0);
    let providers = t.emulator.get("browser/providers");
    let provider = &providers["data"][0];
    assert!(provider.get("config").is_none() && provider.get("status").is_none(), "{provider}");
    assert!(!providers.to_string().contains("browser-provider-secret-77"));
    let policy = &t.emulator.get("browser/policies")["data"][0];
    assert!(policy.get("metadata").is_none(), "{policy}");
    t.run_with(REPLAN, &[]).expect_code(0);
    // Host patterns are kept as sent, repeats included; thoth compares them as a set.
    let sent = serde_json::json!(["b.acme.example", "a.acme.example", "b.acme.example"]);
    t.emulator.put("mcp/vendors/acme", serde_json::json!({"display_name": "Acme", "host_patterns": sent}));
    assert_eq!(t.emulator.get("mcp/vendors/acme")["host_patterns"], sent);
    t.run_with(REPLAN, &[]).expect_code(0);
}

#[test]
fn actions_run_after_what_they_exercise_without_depends_on() {
    let t = tenant(
        "variable \"secret\" {\n  type      = string\n  sensitive = true\n}\n\nresource \"thoth_webhook_test\" \"events\" {}\n\nresource \"thoth_webhook_settings\" \"siem\" {\n  webhook_enabled = true\n  webhook_url     = \"https://hooks.example.com/thoth\"\n  webhook_secret  = var.secret\n}\n\nresource \"thoth_mdm_sync\" \"jamf\" {\n  provider_name = \"jamf\"\n}\n\nresource \"thoth_mdm_provider\" \"jamf\" {\n  provider_name = \"jamf\"\n  name          = \"Jamf\"\n}\n\nresource \"thoth_policy_sync\" \"all\" {}\n\nresource \"thoth_policy_bundle\" \"b\" {\n  name       = \"b\"\n  framework  = \"OPA\"\n  raw_policy = \"package b\"\n}\n",
    );
    let vars = [("THOTH_VAR_secret", "fidelity-webhook-secret-31")];
    let graph = t.run_with(&["graph"], &vars);
    graph.expect_code(0);
    for edge in [
        "\"thoth_webhook_settings.siem\" -> \"thoth_webhook_test.events\"",
        "\"thoth_mdm_provider.jamf\" -> \"thoth_mdm_sync.jamf\"",
        "\"thoth_policy_bundle.b\" -> \"thoth_policy_sync.all\"",
    ] {
        assert!(graph.stdout.contains(edge), "{edge}\n{}", graph.stdout);
    }
    let plan = t.run_with(&["plan", "--format", "json"], &vars);
    let doc: Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    let test = doc["changes"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["address"] == "thoth_webhook_test.events"))
        .cloned();
    let depends = test.map(|c| c["depends_on"].clone()).unwrap_or_default();
    assert!(depends.as_array().is_some_and(|d| d.contains(&Value::from("thoth_webhook_settings.siem"))), "{depends}");
    t.run_with(APPLY, &vars).expect_code(0);
}

#[test]
fn pack_assignment_overrides_merge_as_the_provider_sends_them_and_converge() {
    let t = tenant(
        "resource \"thoth_pack_assignment\" \"bot\" {\n  agent_id       = \"agent-support-bot\"\n  pack_id        = \"soc2-type2\"\n  overrides_json = jsonencode({ note = \"kept\", behavioral_controls = { trust_floor = 0.2, mismatch_boost = 1.5 } })\n  trust_floor    = 0.6\n}\n",
    );
    let apply = t.run_with(APPLY, &[]);
    apply.expect_code(0);
    for part in [
        "sets `trust_floor` and `overrides_json`'s",
        "to different values; `trust_floor` wins",
        "this `behavioral_controls.trust_floor` is overridden",
    ] {
        assert!(apply.stderr.contains(part), "{part}\n{}", apply.stderr);
    }
    let packs = t.emulator.get("agents/agent-support-bot/packs");
    let controls = &packs["packs"][0]["overrides"]["behavioral_controls"];
    assert_eq!(controls["trust_floor"], 0.6, "{packs}");
    assert_eq!(controls["mismatch_boost"], 1.5, "{packs}");
    assert_eq!(packs["packs"][0]["overrides"]["note"], "kept", "{packs}");
    t.run_with(REPLAN, &[]).expect_code(0);
}

#[test]
fn against_a_server_that_guesses_thoth_converges_too() {
    let t = Tenant::with_emulator_args("tests/fixtures/tenants/transport", &["--guesses"]);
    t.write("main.tf", BROWSER_AND_VENDOR);
    t.run_with(APPLY, &[]).expect_code(0);
    let provider = &t.emulator.get("browser/providers")["data"][0];
    assert_eq!(provider["status"], "connected", "{provider}");
    assert!(provider["config"].is_object(), "{provider}");
    assert_eq!(t.emulator.get("browser/policies")["data"][0]["metadata"], serde_json::json!({}));
    assert_eq!(
        t.emulator.get("mcp/vendors/acme")["host_patterns"],
        serde_json::json!(["a.acme.example", "b.acme.example"])
    );
    t.run_with(REPLAN, &[]).expect_code(0);
    // Nothing thoth keeps holds the echoed credential.
    assert!(!t.read("thoth.state.json").contains("browser-provider-secret-77"));
}
