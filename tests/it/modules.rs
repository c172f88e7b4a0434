//! Modules: local sources with `for_each`, nested calls and outputs; sources `terraform init`
//! fetched; and what is wrong with a module call, located.

use crate::support::{copy_dir, repo_path, thoth, TempDir, Tenant};

const PLAN: &[&str] = &["plan", "--detailed-exitcode"];
const APPLY: &[&str] = &["apply", "--auto-approve"];

#[test]
fn modules_with_for_each_nested_calls_and_outputs_apply_and_replan_to_no_change() {
    let t = Tenant::from_dir("tests/fixtures/tenants/modules");
    let plan = t.run_with(PLAN, &[]);
    plan.expect_code(2);
    for header in [
        "# module.governance.thoth_governance_settings.this will be created",
        "# module.browser[\"chrome\"].thoth_browser_provider.this will be created",
        "# module.browser[\"firefox\"].thoth_browser_policy.baseline will be created",
        "# module.browser[\"firefox\"].module.ring.thoth_fleet.ring will be created",
    ] {
        assert!(plan.stdout.contains(header), "missing {header}:\n{}", plan.stdout);
    }
    assert!(!plan.stderr.contains("warning"), "{}", plan.stderr);
    let apply = t.run_with(APPLY, &[]);
    apply.expect_code(0);
    assert!(apply.stdout.contains("Apply complete: 7 created"), "{}", apply.stdout);
    assert!(
        apply
            .stdout
            .contains("browser_policies   = { chrome = \"chrome-baseline-v1\", firefox = \"firefox-baseline-v1\" }"),
        "{}",
        apply.stdout
    );
    assert!(apply.stdout.contains("rings              = \"firefox-pilot\""), "{}", apply.stdout);
    assert!(apply.stdout.contains("tenant_settings_id = \"acme\""), "{}", apply.stdout);
    // Addresses name the module instance in the state.
    assert!(!t.recorded("module.browser[\"chrome\"].module.ring.thoth_fleet.ring").is_null());
    assert!(!t.recorded("module.governance.thoth_governance_settings.this").is_null());
    let settings = t.emulator.get("settings");
    assert_eq!(settings["regulatory_regimes"], serde_json::json!(["soc2", "gdpr"]));
    let fleets = crate::full::rows(&t.emulator.get("fleets"), "data");
    let mut names: Vec<&str> = fleets.iter().filter_map(|f| f["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["chrome-pilot", "firefox-pilot"]);
    t.run_with(PLAN, &[]).expect_code(0);

    // One instance fewer: only its objects go.
    t.edit("main.tf", "    firefox = \"Firefox ESR\"\n", "");
    t.edit("main.tf", "module.browser[\"firefox\"].ring", "module.browser[\"chrome\"].ring");
    let fewer = t.run_with(&["plan"], &[]);
    fewer.expect_code(0);
    assert!(
        fewer.stdout.contains("module.browser[\"firefox\"].module.ring.thoth_fleet.ring will be deleted"),
        "{}",
        fewer.stdout
    );
    assert!(!fewer.stdout.contains("module.browser[\"chrome\"].thoth_fleet"), "{}", fewer.stdout);
}

#[test]
fn a_module_terraform_init_fetched_is_read_from_its_manifest_and_a_missing_one_is_located() {
    let dir = TempDir::new("registry");
    copy_dir(
        &repo_path("tests/fixtures/tenants/modules/modules/thoth-governance"),
        &dir.path().join(".terraform/modules/governance"),
    );
    std::fs::write(
        dir.path().join("main.tf"),
        "module \"governance\" {\n  source  = \"app.terraform.io/acme/thoth-governance/thoth\"\n  version = \"~> 1.0\"\n\n  compliance_profile = \"hipaa\"\n}\n\nmodule \"elsewhere\" {\n  source = \"git::https://example.com/modules.git\"\n}\n",
    )
    .expect("main.tf");
    let missing = thoth(dir.path(), &["validate"], &[]);
    missing.expect_code(1);
    assert!(
        missing
            .stderr
            .contains("module `elsewhere` comes from `git::https://example.com/modules.git`, which is not on"),
        "{}",
        missing.stderr
    );
    assert!(missing.stderr.contains("run `terraform init` once"), "{}", missing.stderr);
    assert!(missing.stderr.contains("module `governance` comes from"), "without a manifest:\n{}", missing.stderr);

    std::fs::write(
        dir.path().join(".terraform/modules/modules.json"),
        r#"{"Modules":[{"Key":"","Source":"","Dir":"."},{"Key":"governance","Source":"app.terraform.io/acme/thoth-governance/thoth","Version":"1.0.2","Dir":".terraform/modules/governance"}]}"#,
    )
    .expect("manifest");
    std::fs::write(dir.path().join("main.tf"), "module \"governance\" {\n  source  = \"app.terraform.io/acme/thoth-governance/thoth\"\n  version = \"~> 1.0\"\n\n  compliance_profile = \"hipaa\"\n}\n").expect("main.tf");
    let fetched = thoth(dir.path(), &["validate"], &[]);
    fetched.expect_code(0);
}

#[test]
fn a_terraform_stack_plans_and_applies_each_deployment_as_its_own_tenant_and_state() {
    let t = Tenant::from_dir("tests/fixtures/tenants/stack");
    // The stack's files are never read as ordinary configuration.
    let plain = t.run_with(&["plan"], &[]);
    plain.expect_code(1);
    assert!(plain.stderr.contains("holds a Terraform Stack"), "{}", plain.stderr);
    assert!(plain.stderr.contains("--deployment NAME"), "{}", plain.stderr);

    let env = [("THOTH_TENANT_ID", "")];
    let plan = t.run_with(&["plan", "--deployment", "development", "--detailed-exitcode"], &env);
    plan.expect_code(2);
    assert!(plan.stdout.contains("on tenant `acme`"), "the deployment's tenant:\n{}", plan.stdout);
    assert!(
        plan.stdout.contains("# module.tenant_governance.thoth_governance_settings.this will be created"),
        "{}",
        plan.stdout
    );
    let apply = t.run_with(&["apply", "--deployment", "development", "--auto-approve"], &env);
    apply.expect_code(0);
    assert!(apply.stdout.contains("tenant_settings_id = \"acme\""), "{}", apply.stdout);
    assert!(t.path().join("thoth.state.d/development/thoth.state.json").exists(), "one state per deployment");
    t.run_with(&["plan", "--deployment", "development", "--detailed-exitcode"], &env).expect_code(0);

    let unknown = t.run_with(&["plan", "--deployment", "developmnet"], &env);
    unknown.expect_code(1);
    assert!(unknown.stderr.contains("did you mean `development`?"), "{}", unknown.stderr);
}

/// `graph` draws the resource blocks with the module boxes they sit in, in both formats, and a
/// saved plan's instances with their actions.
#[test]
fn graph_in_dot_and_mermaid_for_the_configuration_and_a_plan() {
    let t = Tenant::from_dir("tests/fixtures/tenants/modules");
    let dot = t.run_with(&["graph"], &[]);
    dot.expect_code(0);
    crate::support::snapshot("graph_modules_dot", &dot.stdout);
    let mermaid = t.run_with(&["graph", "-format=mermaid"], &[]);
    mermaid.expect_code(0);
    crate::support::snapshot("graph_modules_mermaid", &mermaid.stdout);
    t.run_with(&["plan", "--out", "tenant.plan"], &[]).expect_code(0);
    let planned = t.run_with(&["graph", "--format", "mermaid", "--plan", "tenant.plan"], &[]);
    planned.expect_code(0);
    crate::support::snapshot("graph_modules_plan_mermaid", &planned.stdout);
    assert!(planned.stdout.contains("[\"thoth_fleet.ring<br/>create\"]:::create"));
    assert!(planned.stdout.contains("[\"module.browser[#quot;firefox#quot;].module.ring\"]"));
}
