//! Plan and apply of the bootstrap example with the real binary against an emulator process:
//! first apply, no-op re-plan, updates, soft deletes, secrets, drift and durability.

use serde_json::{json, Value};

use crate::support::{EmulatorProcess, TempDir, Tenant};

const SECRET_A: &str = "canary-webhook-secret-7f3a9c1e";
const SECRET_B: &str = "canary-webhook-secret-rotated-42d8b0";
const PLAN: &[&str] = &["plan", "--detailed-exitcode"];
const APPLY: &[&str] = &["apply", "--auto-approve"];

fn secret(value: &str) -> [(&'static str, &str); 1] {
    [("THOTH_VAR_webhook_secret", value)]
}

/// The bootstrap example, applied once with `SECRET_A`.
fn applied() -> Tenant {
    let t = Tenant::from_example("bootstrap");
    t.run_with(APPLY, &secret(SECRET_A)).expect_code(0);
    t
}

fn data(v: &Value) -> Vec<Value> {
    v["data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn first_apply_creates_everything_and_a_replan_is_empty() {
    let t = Tenant::from_example("bootstrap");
    let plan = t.run_with(PLAN, &secret(SECRET_A));
    plan.expect_code(2);
    assert!(
        plan.stdout.contains("Plan: 6 to create, 0 to update, 0 to replace, 0 to delete, 0 to forget."),
        "{}",
        plan.stdout
    );

    let apply = t.run_with(APPLY, &secret(SECRET_A));
    apply.expect_code(0);
    assert!(apply.stdout.contains("Apply complete: 6 created"), "{}", apply.stdout);
    assert!(apply.stdout.contains("bundle_version    = 1"), "{}", apply.stdout);

    // What the control plane holds now.
    let settings = t.emulator.get("settings");
    assert_eq!(settings["compliance_profile"], "soc2");
    assert_eq!(
        settings["shadow_policy"],
        json!({"low": "allow", "medium": "step_up", "high": "block", "critical": "block"})
    );
    assert_eq!(settings["secret_broker"]["strict_endpoint_mode"], true);
    assert_eq!(settings["secret_broker"]["fail_on_missing_secret"], true);
    assert_eq!(
        settings["secret_broker"]["allowed_hosts"],
        json!(["api.figma.com", "api.notion.com", "api.stitch.example.com"])
    );
    let refs: Vec<&str> = settings["secret_broker"]["auth_bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .filter_map(|b| b["secret_ref"].as_str())
        .collect();
    assert_eq!(refs, ["op://design/figma/token", "vault://kv/data/notion#token", "aws-sm://prod/stitch/token"]);
    assert_eq!(settings["webhook"]["url"], "https://siem.company.com/hooks/thoth");
    assert!(settings["webhook"].get("secret").is_none(), "the emulator never echoes secrets");

    let mdm = data(&t.emulator.get("mdm/providers"));
    assert_eq!(mdm.len(), 1);
    assert_eq!((mdm[0]["provider"].as_str(), mdm[0]["enabled"].as_bool()), (Some("jamf"), Some(true)));
    let policies = data(&t.emulator.get("browser/policies"));
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0]["enforcement_mode"], "enforce");
    assert_eq!(policies[0]["policy"]["dlp"]["block_paste_of_secrets"], true);
    let bundles = data(&t.emulator.get("policy-bundles"));
    assert_eq!(bundles.len(), 1);
    assert_eq!((bundles[0]["framework"].as_str(), bundles[0]["version"].as_i64()), (Some("OPA"), Some(1)));

    let replan = t.run_with(PLAN, &secret(SECRET_A));
    replan.expect_code(0);
    assert!(replan.stdout.contains("No changes."), "{}", replan.stdout);
}

#[test]
fn an_attribute_change_is_an_update_in_place() {
    let t = applied();
    t.edit("main.tf", "shadow_high     = \"block\"", "shadow_high     = \"step_up\"");
    let plan = t.run_with(PLAN, &secret(SECRET_A));
    plan.expect_code(2);
    assert!(plan.stdout.contains("# thoth_governance_settings.baseline will be updated in place"), "{}", plan.stdout);
    assert!(plan.stdout.contains("~ shadow_high = \"block\" -> \"step_up\""), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 0 to create, 1 to update"), "{}", plan.stdout);

    t.run_with(APPLY, &secret(SECRET_A)).expect_code(0);
    let settings = t.emulator.get("settings");
    assert_eq!(settings["shadow_policy"]["high"], "step_up");
    // The one read-modify-write kept every other section.
    assert_eq!(settings["webhook"]["url"], "https://siem.company.com/hooks/thoth");
    assert_eq!(settings["secret_broker"]["strict_endpoint_mode"], true);
    t.run_with(PLAN, &secret(SECRET_A)).expect_code(0);
}

#[test]
fn a_bundle_change_appends_a_version() {
    let t = applied();
    let first_id = t.recorded("thoth_policy_bundle.mcp_guardrails")["id"].clone();
    t.write("policies/mcp_guardrails.rego", &format!("{}\n# reviewed\n", t.read("policies/mcp_guardrails.rego")));
    let plan = t.run_with(PLAN, &secret(SECRET_A));
    plan.expect_code(2);
    assert!(plan.stdout.contains("~ raw_policy = <<-DIFF"), "{}", plan.stdout);
    assert!(plan.stdout.contains("+ # reviewed"), "the policy diff is shown: {}", plan.stdout);
    assert!(plan.stdout.contains("appends a new version"), "{}", plan.stdout);
    let apply = t.run_with(APPLY, &secret(SECRET_A));
    apply.expect_code(0);
    assert!(apply.stdout.contains("bundle_version    = 2"), "{}", apply.stdout);
    let versions = data(&t.emulator.get("policy-bundles"));
    assert_eq!(versions.len(), 2);
    let now_id = t.recorded("thoth_policy_bundle.mcp_guardrails")["id"].clone();
    assert_ne!(first_id, now_id);
    t.run_with(PLAN, &secret(SECRET_A)).expect_code(0);
}

#[test]
fn removing_an_upsert_resource_soft_deletes_it() {
    let t = applied();
    let text = t.read("main.tf");
    let start = text.find("resource \"thoth_mdm_provider\" \"jamf\"").expect("jamf block");
    let end = start + text[start..].find("\n}\n").expect("block end") + 3;
    t.write("main.tf", &format!("{}{}", &text[..start], &text[end..]));

    let plan = t.run_with(PLAN, &secret(SECRET_A));
    plan.expect_code(2);
    assert!(plan.stdout.contains("# thoth_mdm_provider.jamf will be disabled (soft delete)"), "{}", plan.stdout);
    assert!(plan.stdout.contains("upserts enabled = false; the row stays listed"), "{}", plan.stdout);
    assert!(plan.stdout.contains("1 to delete"), "{}", plan.stdout);

    t.run_with(APPLY, &secret(SECRET_A)).expect_code(0);
    let mdm = data(&t.emulator.get("mdm/providers"));
    assert_eq!(mdm.len(), 1, "a soft delete keeps the row");
    assert_eq!(mdm[0]["enabled"], false);
    assert!(t.recorded("thoth_mdm_provider.jamf").is_null());
    t.run_with(PLAN, &secret(SECRET_A)).expect_code(0);
}

#[test]
fn a_secret_change_is_detected_by_digest_and_never_shown_or_stored() {
    let t = applied();
    let same = t.run_with(PLAN, &secret(SECRET_A));
    same.expect_code(0);

    let plan = t.run_with(PLAN, &secret(SECRET_B));
    plan.expect_code(2);
    assert!(plan.stdout.contains("~ webhook_secret = (sensitive value changed)"), "{}", plan.stdout);
    let apply = t.run_with(APPLY, &secret(SECRET_B));
    apply.expect_code(0);
    t.run_with(PLAN, &secret(SECRET_B)).expect_code(0);

    // Neither value anywhere thoth wrote: outputs, state, backup.
    let mut artifacts = vec![same.transcript(), plan.transcript(), apply.transcript()];
    artifacts.push(t.read("thoth.state.json"));
    artifacts.push(t.read("thoth.state.json.backup"));
    for text in &artifacts {
        assert!(!text.contains(SECRET_A) && !text.contains(SECRET_B), "a secret leaked:\n{text}");
    }
    // The MDM credentials are secrets too.
    for text in &artifacts {
        assert!(!text.contains("replace-with-your-jamf-api-client-secret"), "MDM config leaked");
    }
    let digests = t.recorded("thoth_webhook_settings.siem")["secret_digests"].clone();
    assert!(digests["webhook_secret"].as_str().is_some_and(|d| d.starts_with("argon2id:")), "{digests}");
}

#[test]
fn the_state_file_is_private_versioned_and_backed_up() {
    let t = applied();
    let first = t.state();
    assert_eq!(first["format_version"], 1);
    assert_eq!(first["tenant_id"], "acme");
    t.edit("main.tf", "shadow_medium   = \"step_up\"", "shadow_medium   = \"block\"");
    t.run_with(APPLY, &secret(SECRET_A)).expect_code(0);
    let second = t.state();
    assert_eq!(first["lineage"], second["lineage"]);
    assert!(second["serial"].as_u64() > first["serial"].as_u64());
    let backup: Value = serde_json::from_str(&t.read("thoth.state.json.backup")).expect("backup is JSON");
    // The backup is the state the apply started from.
    assert_eq!(backup["serial"], first["serial"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.path().join("thoth.state.json")).expect("state").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A state of another tenant is refused rather than mixed up.
    let other = t.run_with(&["plan", "--tenant-id", "other-tenant"], &secret(SECRET_A));
    other.expect_code(1);
    assert!(other.stderr.contains("belongs to tenant `acme`"), "{}", other.stderr);
}

#[test]
fn the_emulator_keeps_its_data_across_a_restart() {
    let data = TempDir::new("restart");
    let t = Tenant::from_example("bootstrap");
    let emulator = EmulatorProcess::start(data.path());
    let env: Vec<(&str, String)> =
        emulator.env().into_iter().chain([("THOTH_VAR_webhook_secret", SECRET_A.to_owned())]).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    crate::support::thoth(t.path(), APPLY, &env).expect_code(0);

    let emulator = emulator.restart();
    let env: Vec<(&str, String)> =
        emulator.env().into_iter().chain([("THOTH_VAR_webhook_secret", SECRET_A.to_owned())]).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let replan = crate::support::thoth(t.path(), PLAN, &env);
    replan.expect_code(0);
    assert!(replan.stdout.contains("No changes."), "{}", replan.stdout);
}

#[test]
fn a_change_made_on_the_control_plane_shows_as_drift() {
    let t = applied();
    let mut doc = t.emulator.get("settings");
    doc["shadow_policy"]["critical"] = json!("allow");
    t.emulator.put("settings", doc);
    let plan = t.run_with(PLAN, &secret(SECRET_A));
    plan.expect_code(2);
    assert!(plan.stdout.contains("changed outside thoth since the last apply"), "{}", plan.stdout);
    assert!(plan.stdout.contains("~ shadow_critical = \"allow\" -> \"block\""), "{}", plan.stdout);
    t.run_with(APPLY, &secret(SECRET_A)).expect_code(0);
    assert_eq!(t.emulator.get("settings")["shadow_policy"]["critical"], "block");
}

#[test]
fn an_object_deleted_remotely_is_created_again() {
    let t = applied();
    let id = t.recorded("thoth_policy_bundle.mcp_guardrails")["id"].as_str().expect("id").to_owned();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let status = reqwest::Client::new()
            .delete(format!("{}/acme/thoth/policy-bundles/{id}", t.emulator.url))
            .header("X-Api-Key", crate::support::KEY)
            .send()
            .await
            .expect("delete")
            .status();
        assert!(status.is_success());
    });
    let plan = t.run_with(PLAN, &secret(SECRET_A));
    plan.expect_code(2);
    assert!(plan.stdout.contains("deleted outside thoth since the last apply"), "{}", plan.stdout);
    t.run_with(APPLY, &secret(SECRET_A)).expect_code(0);
    t.run_with(PLAN, &secret(SECRET_A)).expect_code(0);
}

#[test]
fn apply_refuses_to_run_unconfirmed_without_a_terminal() {
    let t = Tenant::from_example("bootstrap");
    let run = t.run_with(&["apply"], &secret(SECRET_A));
    run.expect_code(1);
    assert!(run.stderr.contains("standard input is not a terminal"), "{}", run.stderr);
    assert!(data(&t.emulator.get("mdm/providers")).is_empty(), "nothing was applied");
    assert!(!t.path().join("thoth.state.json").exists());
}

#[test]
fn missing_credentials_are_a_clear_error() {
    let t = Tenant::from_example("bootstrap");
    let run = crate::support::thoth(
        t.path(),
        &["plan"],
        &[("THOTH_VAR_webhook_secret", SECRET_A), ("THOTH_TENANT_ID", "acme")],
    );
    run.expect_code(1);
    assert!(run.stderr.contains("no credentials for the control plane"), "{}", run.stderr);
    let wrong = crate::support::thoth(
        t.path(),
        &["plan"],
        &[
            ("THOTH_VAR_webhook_secret", SECRET_A),
            ("THOTH_TENANT_ID", "acme"),
            ("THOTH_API_KEY", "thoth_org_canary_wrong_key_91c2"),
            ("THOTH_API_BASE_URL", &t.emulator.url),
        ],
    );
    wrong.expect_code(1);
    assert!(wrong.stderr.contains("HTTP 401"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("canary_wrong_key"), "the key must not be echoed: {}", wrong.stderr);
}

#[test]
fn embedded_runs_plan_and_apply_without_credentials() {
    let t = Tenant::from_example("bootstrap");
    let run = crate::support::thoth(t.path(), &["apply", "--embedded", "--auto-approve"], &secret(SECRET_A));
    run.expect_code(0);
    assert!(run.stderr.contains("this is not a real tenant"), "{}", run.stderr);
    assert!(t.path().join(".thoth/embedded").is_dir());
    let again = crate::support::thoth(t.path(), &["plan", "--embedded", "--detailed-exitcode"], &secret(SECRET_A));
    again.expect_code(0);
}

#[test]
fn values_assigned_during_apply_reach_the_resources_that_use_them() {
    let t = Tenant::from_dir("tests/fixtures/tenants/references");
    let plan = t.run_with(PLAN, &[]);
    plan.expect_code(2);
    assert!(plan.stdout.contains("+ metadata_json = (known after apply)"), "{}", plan.stdout);
    t.run_with(APPLY, &[]).expect_code(0);

    let bundle_id = t.recorded("thoth_policy_bundle.guard")["id"].as_str().expect("bundle id").to_owned();
    let policy = data(&t.emulator.get("browser/policies")).remove(0);
    assert_eq!(policy["metadata"], json!({"bundle_id": bundle_id, "bundle": "guard@v1"}));
    let enrollment = data(&t.emulator.get("browser/enrollments")).remove(0);
    assert_eq!(enrollment["metadata"]["policy"], policy["policy_id"]);
    t.run_with(PLAN, &[]).expect_code(0);

    // A new bundle version changes the values derived from it, and only those.
    t.edit("main.tf", "permit(principal, action, resource);", "forbid(principal, action, resource);");
    let plan = t.run_with(PLAN, &[]);
    plan.expect_code(2);
    assert!(plan.stdout.contains("Plan: 0 to create, 2 to update"), "{}", plan.stdout);
    t.run_with(APPLY, &[]).expect_code(0);
    let new_id = t.recorded("thoth_policy_bundle.guard")["id"].as_str().expect("bundle id").to_owned();
    assert_ne!(new_id, bundle_id);
    let policy = data(&t.emulator.get("browser/policies")).remove(0);
    assert_eq!(policy["metadata"], json!({"bundle_id": new_id, "bundle": "guard@v2"}));
    t.run_with(PLAN, &[]).expect_code(0);
}

#[test]
fn the_readme_commands_run_the_example_on_the_embedded_control_plane() {
    let t = Tenant::from_example("bootstrap");
    let root = t.path().parent().expect("parent");
    let dir = t.path().file_name().and_then(|n| n.to_str()).expect("dir name");
    let plan =
        crate::support::thoth(root, &["--chdir", dir, "plan", "--embedded", "--var-file", "example.tfvars"], &[]);
    plan.expect_code(0);
    assert!(plan.stdout.contains("Plan: 6 to create"), "{}", plan.stdout);
    let apply = crate::support::thoth(
        root,
        &["--chdir", dir, "apply", "--embedded", "--auto-approve", "--var-file", "example.tfvars"],
        &[],
    );
    apply.expect_code(0);
    assert!(apply.stdout.contains("Apply complete: 6 created"), "{}", apply.stdout);
    assert!(t.path().join("thoth.state.json").is_file());
    assert!(!apply.stdout.contains("example-webhook-secret-not-for-production"));
}

#[test]
fn changing_a_replace_on_change_attribute_replaces_the_object() {
    let t = applied();
    let old_policy = t.recorded("thoth_browser_policy.chrome_baseline")["id"].as_str().expect("policy id").to_owned();
    t.edit("main.tf", "provider_name = \"chrome\"", "provider_name = \"firefox\"");
    let plan = t.run_with(PLAN, &secret(SECRET_A));
    plan.expect_code(2);
    assert!(plan.stdout.contains("# thoth_browser_provider.chrome must be replaced"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("~ provider_name = \"chrome\" -> \"firefox\" # forces replacement"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("# thoth_browser_policy.chrome_baseline must be replaced"), "{}", plan.stdout);
    assert!(plan.stdout.contains("0 to create, 0 to update, 2 to replace"), "{}", plan.stdout);

    t.run_with(APPLY, &secret(SECRET_A)).expect_code(0);
    let providers = data(&t.emulator.get("browser/providers"));
    let enabled: Vec<(&str, bool)> = providers
        .iter()
        .map(|p| (p["provider"].as_str().unwrap_or(""), p["enabled"].as_bool().unwrap_or(true)))
        .collect();
    assert_eq!(enabled, [("chrome", false), ("firefox", true)]);
    let policies = data(&t.emulator.get("browser/policies"));
    assert_eq!(policies.len(), 2);
    let old = policies.iter().find(|p| p["policy_id"] == old_policy.as_str()).expect("old policy stays listed");
    assert_eq!(old["active"], false);
    let new_id = t.recorded("thoth_browser_policy.chrome_baseline")["id"].as_str().expect("policy id").to_owned();
    assert_ne!(new_id, old_policy);
    let new = policies.iter().find(|p| p["policy_id"] == new_id.as_str()).expect("new policy");
    assert_eq!((new["provider"].as_str(), new["active"].as_bool()), (Some("firefox"), Some(true)));
    t.run_with(PLAN, &secret(SECRET_A)).expect_code(0);
}

#[test]
fn a_locked_state_refuses_a_second_apply_until_unlocked() {
    let t = Tenant::from_example("bootstrap");
    // A lock held by a live process (this test) on this host.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_owned();
    let lock = json!({
        "id": "0123456789abcdef", "owner": "ci", "host": host, "pid": std::process::id(),
        "operation": "apply", "created_at": "2026-11-28T00:00:00Z"
    });
    t.write("thoth.state.json.lock", &lock.to_string());
    let refused = t.run_with(&["apply", "--auto-approve", "--lock-timeout", "1s"], &secret(SECRET_A));
    refused.expect_code(1);
    assert!(refused.stderr.contains("the state is locked: lock 0123456789abcdef held by ci@"), "{}", refused.stderr);
    assert!(refused.stderr.contains("thoth force-unlock 0123456789abcdef"), "{}", refused.stderr);
    assert!(data(&t.emulator.get("mdm/providers")).is_empty(), "nothing was applied");

    let wrong = t.run_with(&["force-unlock", "ffff"], &[]);
    wrong.expect_code(1);
    t.run_with(&["force-unlock", "0123456789abcdef"], &[]).expect_code(0);
    t.run_with(APPLY, &secret(SECRET_A)).expect_code(0);
    assert!(!t.path().join("thoth.state.json.lock").exists(), "the lock is released after apply");
}

#[test]
fn a_lock_left_by_a_dead_process_is_taken_over() {
    let t = Tenant::from_example("bootstrap");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_owned();
    let lock = json!({
        "id": "deadbeefdeadbeef", "owner": "ci", "host": host, "pid": 4_000_000_000u32,
        "operation": "apply", "created_at": "2026-11-28T00:00:00Z"
    });
    t.write("thoth.state.json.lock", &lock.to_string());
    let run = t.run_with(APPLY, &secret(SECRET_A));
    run.expect_code(0);
    assert!(run.stderr.contains("took over a stale lock deadbeefdeadbeef"), "{}", run.stderr);
}
