//! The language beyond single blocks, end to end: `count`, `for_each`, splats, `lifecycle`,
//! `templatefile` and `yamldecode`, planned and applied against an emulator.

use serde_json::json;

use crate::support::Tenant;

const PLAN: &[&str] = &["plan", "--detailed-exitcode"];
const APPLY: &[&str] = &["apply", "--auto-approve"];

fn applied() -> Tenant {
    let t = Tenant::from_dir("tests/fixtures/tenants/language");
    let apply = t.run_with(APPLY, &[]);
    apply.expect_code(0);
    assert!(apply.stdout.contains("Apply complete: 7 created"), "{}", apply.stdout);
    t
}

fn rows(t: &Tenant, path: &str) -> Vec<serde_json::Value> {
    t.emulator.get(path)["data"].as_array().cloned().unwrap_or_default()
}

#[test]
fn repeated_blocks_have_keyed_instances_in_plan_state_and_outputs() {
    let t = Tenant::from_dir("tests/fixtures/tenants/language");
    let plan = t.run_with(PLAN, &[]);
    plan.expect_code(2);
    for header in [
        "# thoth_browser_provider.all[\"chrome\"] will be created",
        "# thoth_browser_policy.baseline[\"firefox\"] will be created",
        "# thoth_browser_enrollment.laptop[1] will be created",
    ] {
        assert!(plan.stdout.contains(header), "missing {header}:\n{}", plan.stdout);
    }
    let apply = t.run_with(APPLY, &[]);
    apply.expect_code(0);
    assert!(apply.stdout.contains("enrollment_ids = [\"enr_"), "{}", apply.stdout);
    assert!(apply.stdout.contains("policy_ids     = { chrome = \"pol_"), "{}", apply.stdout);
    assert!(!t.recorded("thoth_browser_enrollment.laptop[1]").is_null());
    assert!(!t.recorded("thoth_browser_policy.baseline[\"chrome\"]").is_null());

    let enrollments = rows(&t, "browser/enrollments");
    let mut devices: Vec<&str> = enrollments.iter().filter_map(|e| e["device_id"].as_str()).collect();
    devices.sort_unstable();
    assert_eq!(devices, ["laptop-00", "laptop-01"]);
    let policies = rows(&t, "browser/policies");
    assert_eq!(
        policies[0]["policy"],
        json!({"allowed_hosts": ["api.figma.com", "api.notion.com"], "block_paste_of_secrets": true})
    );
    let bundle = &rows(&t, "policy-bundles")[0];
    assert_eq!(bundle["raw_policy"], "package guard\n\nallowed_hosts := {\"api.figma.com\", \"api.notion.com\", }");
    assert_eq!(bundle["framework"], "OPA");
    t.run_with(PLAN, &[]).expect_code(0);

    // Fewer instances: the last one goes, the others stay.
    let fewer = t.run_with(&["plan", "--var", "laptops=1"], &[]);
    fewer.expect_code(0);
    assert!(
        fewer.stdout.contains("# thoth_browser_enrollment.laptop[1] will be disabled (soft delete)"),
        "{}",
        fewer.stdout
    );
    assert!(fewer.stdout.contains("Plan: 0 to create, 0 to update, 0 to replace, 1 to delete"), "{}", fewer.stdout);
}

#[test]
fn ignore_changes_leaves_remote_values_alone() {
    let t = applied();
    t.emulator.post("browser/providers", json!({"provider": "chrome", "name": "Renamed by hand"}));
    t.edit("main.tf", "name = \"Chrome Enterprise\"", "name = \"Chrome\"");
    t.run_with(PLAN, &[]).expect_code(0);
    let chrome = rows(&t, "browser/providers").into_iter().find(|p| p["provider"] == "chrome").expect("chrome");
    assert_eq!(chrome["name"], "Renamed by hand");
}

#[test]
fn replace_triggered_by_replaces_the_dependents_of_a_change() {
    let t = applied();
    t.edit("main.tf", "mode = \"enforce\"", "mode = \"monitor\"");
    let plan = t.run_with(PLAN, &[]);
    plan.expect_code(2);
    assert!(plan.stdout.contains("# thoth_browser_enrollment.laptop[0] must be replaced"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("replace_triggered_by: `thoth_browser_policy.baseline[\"chrome\"].enforcement_mode` changes"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("Plan: 0 to create, 1 to update, 2 to replace"), "{}", plan.stdout);
    t.run_with(APPLY, &[]).expect_code(0);
    let enrollments = rows(&t, "browser/enrollments");
    assert_eq!(enrollments.len(), 4, "the replaced enrollments stay listed, disabled");
    assert_eq!(enrollments.iter().filter(|e| e["status"] == "disabled").count(), 2);
    t.run_with(PLAN, &[]).expect_code(0);
}

#[test]
fn create_before_destroy_is_honoured_when_both_objects_can_exist() {
    let t = applied();
    t.edit(
        "main.tf",
        "provider_name    = each.value.provider_name",
        "provider_name    = each.key == \"chrome\" ? \"island\" : each.value.provider_name",
    );
    let plan = t.run_with(PLAN, &[]);
    plan.expect_code(2);
    assert!(plan.stdout.contains("the new object is created before the old one is removed"), "{}", plan.stdout);
    t.run_with(APPLY, &[]).expect_code(0);
    let policies = rows(&t, "browser/policies");
    let island: Vec<_> = policies.iter().filter(|p| p["provider"] == "island").collect();
    assert_eq!(island.len(), 1);
    assert_eq!(island[0]["active"], true);
    let old_chrome = policies.iter().find(|p| p["provider"] == "chrome").expect("old chrome policy");
    assert_eq!(old_chrome["active"], false);
    t.run_with(PLAN, &[]).expect_code(0);
}

#[test]
fn prevent_destroy_is_kept_in_state_and_refuses_removal() {
    let t = applied();
    assert_eq!(t.recorded("thoth_policy_bundle.guard")["prevent_destroy"], true);
    let text = t.read("main.tf");
    let start = text.find("resource \"thoth_policy_bundle\" \"guard\"").expect("block");
    let end = text.find("output \"enrollment_ids\"").expect("outputs");
    t.write("main.tf", &format!("{}{}", &text[..start], &text[end..]));
    let plan = t.run_with(PLAN, &[]);
    plan.expect_code(1);
    assert!(
        plan.stderr.contains("`thoth_policy_bundle.guard` has `prevent_destroy` set, and this plan deletes it"),
        "{}",
        plan.stderr
    );
    assert_eq!(rows(&t, "policy-bundles").len(), 1);
}

#[test]
fn a_configuration_in_terraform_json_syntax_plans_applies_and_replans_to_no_change() {
    let t = Tenant::from_dir("tests/fixtures/tenants/json");
    let plan = t.run_with(PLAN, &[]);
    plan.expect_code(2);
    assert!(plan.stdout.contains("# thoth_fleet.ring[1] will be created"), "{}", plan.stdout);
    let apply = t.run_with(APPLY, &[]);
    apply.expect_code(0);
    assert!(apply.stdout.contains("rings = [\"claims-ring-0\", \"claims-ring-1\"]"), "{}", apply.stdout);
    t.run_with(PLAN, &[]).expect_code(0);
    // A file that is not JSON is a located diagnostic.
    t.write("broken.tf.json", "{\n  \"resource\": {\n    \"thoth_fleet\": [\n}\n");
    let broken = t.run_with(&["validate"], &[]);
    broken.expect_code(1);
    assert!(broken.stderr.contains("`broken.tf.json` is not valid JSON"), "{}", broken.stderr);
    assert!(broken.stderr.contains("[broken.tf.json:4:1]"), "{}", broken.stderr);
}
