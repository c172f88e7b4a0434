//! Bringing a tenant that already exists under management: `import` blocks for every
//! lifecycle kind, `thoth import`, and the refusal of ids the tenant does not have. Nothing is
//! duplicated or disabled on the way.

use serde_json::Value;

use crate::faults::assert_one_of_each_recorded;
use crate::full::CANARIES;
use crate::support::{copy_dir, repo_path, thoth, TempDir, Tenant};

const PLAN: &[&str] = &["plan", "--detailed-exitcode"];
const APPLY: &[&str] = &["apply", "--auto-approve"];

/// The import id the Terraform provider takes for a recorded object.
fn import_id(address: &str, entry: &Value) -> String {
    let id = entry["id"].as_str().unwrap_or_default().to_owned();
    match address.split('.').next().unwrap_or_default() {
        // The provider also takes `tenant/slug` for these.
        "thoth_browser_provider" | "thoth_mdm_provider" => format!("acme/{id}"),
        "thoth_policy_change_artifact_apply" => id.split('/').next().unwrap_or_default().to_owned(),
        _ => id,
    }
}

/// A copy of the full example with no state, and an `import` block for every object a first
/// apply of it created on `t`'s tenant.
fn adopting_copy(t: &Tenant) -> TempDir {
    let state = t.state();
    let dir = TempDir::new("adopt");
    copy_dir(&repo_path("examples/full"), dir.path());
    let mut blocks = String::new();
    for r in state["resources"].as_array().expect("resources") {
        let address = r["address"].as_str().expect("address");
        if address.starts_with("data.") {
            continue;
        }
        blocks
            .push_str(&format!("import {{\n  to = {address}\n  id = {}\n}}\n\n", Value::String(import_id(address, r))));
    }
    std::fs::write(dir.path().join("imports.tf"), blocks).expect("imports.tf");
    dir
}

fn run(dir: &std::path::Path, t: &Tenant, args: &[&str]) -> crate::support::Run {
    let env = t.emulator.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(&CANARIES);
    thoth(dir, args, &all)
}

#[test]
fn a_tenant_adopted_with_import_blocks_for_every_kind_plans_imports_and_converges_without_duplicates() {
    let t = Tenant::from_example("full");
    t.run_with(APPLY, &CANARIES).expect_code(0);
    let copy = adopting_copy(&t);
    let plan = run(copy.path(), &t, &["plan", "--format", "json"]);
    plan.expect_code(0);
    let doc: Value = serde_json::from_str(&plan.stdout).expect("JSON plan");
    let changes = doc["changes"].as_array().expect("changes");
    let managed = t.state()["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| !r["address"].as_str().unwrap_or("").starts_with("data."))
        .count();
    assert_eq!(doc["summary"]["import"], managed, "every object is imported:\n{}", plan.stdout);
    for c in changes {
        assert!(c["import_id"].is_string(), "only imports, no create, delete or run: {c}");
        // What an import changes is only what the tenant never reveals: its secrets.
        for a in c["attributes"].as_array().expect("attributes") {
            assert_eq!(a["after"]["kind"], "sensitive", "{} changes {}", c["address"], a["name"]);
        }
    }
    let human = run(copy.path(), &t, &["plan"]);
    assert!(human.stdout.contains("# thoth_fleet.claims will be imported"), "{}", human.stdout);
    assert!(human.stdout.contains("imported from the tenant's `acme/chrome`"), "{}", human.stdout);
    run(copy.path(), &t, APPLY).expect_code(0);
    run(copy.path(), &t, PLAN).expect_code(0);
    let adopted: Value =
        serde_json::from_str(&std::fs::read_to_string(copy.path().join("thoth.state.json")).expect("state"))
            .expect("state JSON");
    assert_one_of_each_recorded(&t.emulator, &adopted, "after the adoption");
    // The objects are the same ones, under the same ids.
    for r in t.state()["resources"].as_array().expect("resources") {
        let address = r["address"].as_str().expect("address");
        let mine = adopted["resources"].as_array().and_then(|rs| rs.iter().find(|x| x["address"] == address)).cloned();
        assert_eq!(mine.map(|m| m["id"].clone()), Some(r["id"].clone()), "{address}");
    }
}

#[test]
fn thoth_import_adopts_one_object_and_an_id_the_tenant_lacks_is_refused() {
    let t = Tenant::from_example("full");
    t.run_with(APPLY, &CANARIES).expect_code(0);
    let fleet = t.recorded("thoth_fleet.claims")["id"].as_str().expect("fleet id").to_owned();
    let pack = t.recorded("thoth_pack_assignment.claims_bot_soc2")["id"].as_str().expect("pack id").to_owned();
    let dir = TempDir::new("import");
    copy_dir(&repo_path("examples/full"), dir.path());
    let imported = run(dir.path(), &t, &["import", "thoth_fleet.claims", &fleet]);
    imported.expect_code(0);
    assert!(imported.stdout.contains(&format!("Imported `thoth_fleet.claims` from `{fleet}`")), "{}", imported.stdout);
    assert!(imported.stdout.contains("It matches the configuration."), "{}", imported.stdout);
    let again = run(dir.path(), &t, &["import", "thoth_fleet.claims", &fleet]);
    again.expect_code(1);
    assert!(again.stderr.contains("is already managed"), "{}", again.stderr);
    run(dir.path(), &t, &["import", "thoth_pack_assignment.claims_bot_soc2", &pack]).expect_code(0);
    let wrong = run(dir.path(), &t, &["import", "thoth_pack_assignment.claims_bot_soc2", "just-one-part"]);
    wrong.expect_code(1);
    let missing = run(dir.path(), &t, &["import", "thoth_mcp_vendor.catalogue[\"figma\"]", "no-such-vendor"]);
    missing.expect_code(1);
    assert!(missing.stderr.contains("tenant `acme` has no thoth_mcp_vendor `no-such-vendor`"), "{}", missing.stderr);
    let unknown = run(dir.path(), &t, &["import", "thoth_fleet.nowhere", "x"]);
    unknown.expect_code(1);
    assert!(unknown.stderr.contains("has no resource block"), "{}", unknown.stderr);
    // An import block naming an id the tenant does not have stops the plan, naming it.
    std::fs::write(dir.path().join("imports.tf"), "import {\n  to = thoth_fleet.spare\n  id = \"flt_missing\"\n}\n\nresource \"thoth_fleet\" \"spare\" {\n  name = \"spare\"\n}\n").expect("imports.tf");
    let plan = run(dir.path(), &t, &["plan"]);
    plan.expect_code(1);
    assert!(plan.stderr.contains("has no thoth_fleet `flt_missing`"), "{}", plan.stderr);
    assert!(plan.stderr.contains("[imports.tf:1:1]"), "located at the block:\n{}", plan.stderr);
}

#[test]
fn an_exported_tenant_plans_imports_only_applies_and_replans_to_no_change() {
    let t = Tenant::from_example("full");
    t.run_with(APPLY, &CANARIES).expect_code(0);
    let out = TempDir::new("export");
    let dir = out.path().join("tenant");
    let exported = t.run_with(&["export", "--out", dir.to_str().expect("path")], &[]);
    exported.expect_code(0);
    assert!(exported.stdout.contains("Exported 22 object(s) of tenant `acme`"), "{}", exported.transcript());
    assert!(
        exported.stderr.contains("not exported: `thoth_webhook_test`: it is a one-shot action"),
        "{}",
        exported.stderr
    );
    for (path, bytes) in crate::support::snapshot_dir(&dir) {
        let text = String::from_utf8_lossy(&bytes);
        for (_, secret) in CANARIES {
            assert!(!text.contains(secret), "a secret is in {}", path.display());
        }
    }
    let fleet = std::fs::read_to_string(dir.join("fleet.tf")).expect("fleet.tf");
    assert!(fleet.contains("provider_name    = thoth_mdm_provider.jamf.provider_name"), "a reference:\n{fleet}");
    let endpoints = std::fs::read_to_string(dir.join("endpoint.tf")).expect("endpoint.tf");
    assert!(endpoints.contains("= thoth_fleet.claims_laptops.id"), "a reference:\n{endpoints}");
    assert!(dir.join("policies/mcp_guardrails.rego").exists());
    assert!(dir.join("browser/chrome_baseline_v1-policy.json").exists());
    // Credentials the control plane never returns (MDM and browser provider `config`) cannot
    // be exported: the configuration leaves them out, and the plan imports without them.
    assert!(
        !dir.join("variables.tf").exists()
            || !std::fs::read_to_string(dir.join("variables.tf")).unwrap_or_default().contains("default")
    );
    let secret: [(&str, &str); 0] = [];
    let env = t.emulator.env();
    let mut with_secret: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    with_secret.extend_from_slice(&secret);
    let plan = thoth(&dir, &["plan", "--format", "json"], &with_secret);
    plan.expect_code(0);
    let doc: Value = serde_json::from_str(&plan.stdout).expect("JSON plan");
    assert_eq!(doc["summary"]["import"], 22, "{}", plan.stdout);
    for c in doc["changes"].as_array().expect("changes") {
        assert!(c["import_id"].is_string(), "only imports: {c}");
        for a in c["attributes"].as_array().expect("attributes") {
            assert_eq!(a["after"]["kind"], "sensitive", "{} changes {}", c["address"], a["name"]);
        }
    }
    thoth(&dir, APPLY, &with_secret).expect_code(0);
    thoth(&dir, PLAN, &with_secret).expect_code(0);
    let adopted: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("thoth.state.json")).expect("state")).expect("JSON");
    for r in adopted["resources"].as_array().expect("resources") {
        let address = r["address"].as_str().unwrap_or_default();
        assert!(r["id"].is_string(), "{address}");
    }
    let fleets = crate::full::rows(&t.emulator.get("fleets"), "data");
    assert_eq!(fleets.len(), 1, "no second fleet");
    assert_eq!(crate::full::rows(&t.emulator.get("browser/policies"), "data").len(), 1, "no second browser policy");
}

#[test]
fn generate_config_out_writes_the_blocks_import_targets_lack_and_plans_with_them() {
    let t = Tenant::from_example("full");
    t.run_with(APPLY, &CANARIES).expect_code(0);
    let fleet = t.recorded("thoth_fleet.claims")["id"].as_str().expect("fleet id").to_owned();
    let policy = t.recorded("thoth_browser_policy.chrome_baseline")["id"].as_str().expect("policy id").to_owned();
    let dir = TempDir::new("generate");
    std::fs::write(
        dir.path().join("imports.tf"),
        format!("import {{\n  to = thoth_fleet.claims\n  id = \"{fleet}\"\n}}\n\nimport {{\n  to = thoth_browser_policy.baseline\n  id = \"{policy}\"\n}}\n"),
    )
    .expect("imports.tf");
    let without = run(dir.path(), &t, &["plan"]);
    without.expect_code(1);
    assert!(
        without.stderr.contains("`thoth_fleet.claims` is imported but has no resource block"),
        "{}",
        without.stderr
    );
    let generated = run(dir.path(), &t, &["plan", "--generate-config-out", "generated.tf", "--detailed-exitcode"]);
    generated.expect_code(2);
    assert!(
        generated.stderr.contains("Wrote 2 block(s) for import targets into `generated.tf`"),
        "{}",
        generated.stderr
    );
    let text = std::fs::read_to_string(dir.path().join("generated.tf")).expect("generated.tf");
    assert!(text.contains("resource \"thoth_fleet\" \"claims\" {"), "{text}");
    assert!(text.contains("policy_json      = file(\"${path.module}/browser/baseline-policy.json\")"), "{text}");
    assert!(generated.stdout.contains("Plan: 2 to import, 0 to create"), "{}", generated.stdout);
    let again = run(dir.path(), &t, &["plan", "--generate-config-out", "generated.tf"]);
    again.expect_code(0);
    run(dir.path(), &t, APPLY).expect_code(0);
    run(dir.path(), &t, PLAN).expect_code(0);
    assert_eq!(crate::full::rows(&t.emulator.get("fleets"), "data").len(), 1);
}

/// The plaintext a Terraform state holds for each secret of the full example.
fn plaintext(address: &str, attribute: &str) -> Option<String> {
    let canary = |name: &str| CANARIES.iter().find(|(k, _)| k.ends_with(name)).map(|(_, v)| (*v).to_owned());
    let file = |rel: &str| std::fs::read_to_string(repo_path(&format!("examples/full/{rel}"))).ok();
    match (address.split('.').next().unwrap_or_default(), attribute) {
        ("thoth_webhook_settings", "webhook_secret") => canary("webhook_secret"),
        ("thoth_siem_settings", "siem_webhook_secret") => canary("siem_secret"),
        ("thoth_pam_settings", "pam_request_secret") => canary("pam_request_secret"),
        ("thoth_browser_provider", "config_json") => file("browser/chrome-provider.json"),
        ("thoth_mdm_provider", "config_json") => file("mdm-provider.json"),
        (_, "api_key") => Some("thoth_key_plaintext_from_terraform".to_owned()),
        _ => None,
    }
}

/// The Terraform state the provider would have written for what thoth applied: resources by
/// module, type and name with their instances, plaintext secrets, a data source and an object
/// of another provider.
fn terraform_state(thoth_state: &Value) -> Value {
    let mut resources: std::collections::BTreeMap<(String, String, String), Vec<Value>> = Default::default();
    for r in thoth_state["resources"].as_array().expect("resources") {
        let address = r["address"].as_str().expect("address");
        // `module.ring.thoth_fleet.ring[0]` → module `module.ring`, type, name, key.
        let (module, rest) = match address.rfind("module.") {
            Some(_) if address.starts_with("module.") => {
                let parts: Vec<&str> = address.splitn(3, '.').collect();
                (format!("{}.{}", parts[0], parts[1]), parts[2].to_owned())
            }
            _ => (String::new(), address.to_owned()),
        };
        let (base, key) = match rest.find('[') {
            Some(i) => {
                (rest[..i].to_owned(), serde_json::from_str::<Value>(&rest[i + 1..rest.len() - 1]).expect("key"))
            }
            None => (rest.clone(), Value::Null),
        };
        let (type_name, name) = base.split_once('.').expect("type.name");
        let mut attributes = r["attributes"].as_object().cloned().unwrap_or_default();
        attributes.insert("id".to_owned(), r["id"].clone());
        attributes.insert("tenant_id".to_owned(), Value::String("acme".to_owned()));
        for secret in r["secret_digests"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
        {
            if let Some(text) = plaintext(address, &secret) {
                attributes.insert(secret, Value::String(text));
            }
        }
        let mut instance = serde_json::json!({
            "schema_version": 0,
            "attributes": attributes,
            "sensitive_attributes": [],
            "dependencies": r.get("dependencies").cloned().unwrap_or(Value::Array(Vec::new())),
        });
        if !key.is_null() {
            instance["index_key"] = key;
        }
        resources.entry((module, type_name.to_owned(), name.to_owned())).or_default().push(instance);
    }
    let mut list: Vec<Value> = resources
        .into_iter()
        .map(|((module, t, n), instances)| {
            let mut r = serde_json::json!({
                "mode": "managed", "type": t, "name": n,
                "provider": "provider[\"registry.terraform.io/atensecurity/thoth\"]", "instances": instances,
            });
            if !module.is_empty() {
                r["module"] = Value::String(module);
            }
            r
        })
        .collect();
    list.push(serde_json::json!({
        "mode": "data", "type": "thoth_governance_settings", "name": "current",
        "provider": "provider[\"registry.terraform.io/atensecurity/thoth\"]",
        "instances": [{"schema_version": 0, "attributes": {"id": "acme"}}]
    }));
    list.push(serde_json::json!({
        "mode": "managed", "type": "aws_s3_bucket", "name": "logs",
        "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
        "instances": [{"schema_version": 0, "attributes": {"id": "acme-logs"}}]
    }));
    serde_json::json!({
        "version": 4, "terraform_version": "1.9.8", "serial": 42,
        "lineage": "5c1f0e0a-8a5e-4d42-9d5f-3f2f6f0d8a11",
        "outputs": {"fleet": {"value": "claims-laptops", "type": "string"}, "key": {"value": "x", "type": "string", "sensitive": true}},
        "resources": list,
        "check_results": null
    })
}

#[test]
fn a_terraform_state_of_every_type_with_a_module_migrates_to_a_state_whose_plan_is_empty() {
    let t = Tenant::from_example("full");
    copy_dir(&repo_path("tests/fixtures/tenants/modules/modules/ring"), &t.path().join("modules/ring"));
    t.write(
        "ring.tf",
        "module \"ring\" {\n  source = \"./modules/ring\"\n\n  name   = \"pilot-ring\"\n  region = \"eu-west-1\"\n}\n",
    );
    t.run_with(APPLY, &CANARIES).expect_code(0);
    t.run_with(PLAN, &CANARIES).expect_code(0);
    let applied = t.state();
    let tf = terraform_state(&applied);
    for name in ["thoth.state.json", "thoth.state.json.backup"] {
        let _ = std::fs::remove_file(t.path().join(name));
    }
    t.write("terraform.tfstate", &serde_json::to_string_pretty(&tf).expect("json"));
    let migrated = t.run_with(&["migrate", "terraform", "terraform.tfstate"], &[]);
    migrated.expect_code(0);
    let moved = applied["resources"].as_array().expect("resources").len();
    assert!(
        migrated.stdout.contains(&format!("Moved {moved} object(s) from `terraform.tfstate`")),
        "{}",
        migrated.transcript()
    );
    assert!(migrated.stdout.contains("  module.ring.thoth_fleet.ring\n"), "{}", migrated.stdout);
    assert!(migrated.stdout.contains("  thoth_mcp_vendor.catalogue[\"figma\"]\n"), "{}", migrated.stdout);
    assert!(migrated.stderr.contains("not moved: `aws_s3_bucket.logs`"), "{}", migrated.stderr);
    assert!(migrated.stderr.contains("still holds") && migrated.stderr.contains("plaintext"), "{}", migrated.stderr);
    // The same objects under the same addresses: the plan is empty.
    t.run_with(PLAN, &CANARIES).expect_code(0);
    let state = t.state();
    assert_eq!(state["outputs"]["fleet"], "claims-laptops");
    assert!(state["outputs"].get("key").is_none(), "sensitive outputs are not kept");
    // No secret the Terraform state held in plaintext is in anything thoth wrote.
    for (path, bytes) in crate::support::snapshot_dir(t.path()) {
        if path.to_string_lossy().contains("terraform.tfstate") || path.starts_with("examples") {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        if !path.to_string_lossy().starts_with("thoth.state") && !path.starts_with(".thoth") {
            continue;
        }
        for (_, secret) in CANARIES {
            assert!(!text.contains(secret), "a secret is in {}", path.display());
        }
        assert!(!text.contains("thoth_key_plaintext_from_terraform"), "a key is in {}", path.display());
    }
    // A second migration does not replace the state without `--force`.
    let again = t.run_with(&["migrate", "terraform", "terraform.tfstate"], &[]);
    again.expect_code(1);
    assert!(again.stderr.contains("already holds a state"), "{}", again.stderr);
    t.write("old.tfstate", "{\"version\": 3, \"modules\": []}");
    let old = t.run_with(&["migrate", "terraform", "old.tfstate", "--force"], &[]);
    old.expect_code(1);
    assert!(old.stderr.contains("format version 3"), "{}", old.stderr);
}

/// Every browser provider, enrollment, fleet and vendor on the emulator, with whether each
/// is enabled.
fn inventory(t: &Tenant) -> Vec<Vec<Value>> {
    let e = &t.emulator;
    vec![
        crate::full::rows(&e.get("browser/providers"), "data"),
        crate::full::rows(&e.get("browser/enrollments"), "data"),
        crate::full::rows(&e.get("fleets"), "data"),
        crate::full::rows(&e.get("mcp/vendors"), "data"),
    ]
}

fn applied_full() -> Tenant {
    let t = Tenant::from_example("full");
    t.run_with(APPLY, &CANARIES).expect_code(0);
    t
}

#[test]
fn renames_with_and_without_moved_blocks_keep_every_object_as_it_is() {
    let t = applied_full();
    let before = inventory(&t);
    // A server-id object renamed with a `moved` block, a client-key upsert renamed without.
    t.edit("main.tf", "resource \"thoth_fleet\" \"claims\" {", "resource \"thoth_fleet\" \"claims_laptops\" {");
    for file in ["main.tf", "verification.tf"] {
        let text = t.read(file).replace("thoth_fleet.claims.", "thoth_fleet.claims_laptops.");
        t.write(file, &text);
    }
    t.write("moves.tf", "moved {\n  from = thoth_fleet.claims\n  to   = thoth_fleet.claims_laptops\n}\n");
    t.edit(
        "main.tf",
        "resource \"thoth_browser_provider\" \"chrome\" {",
        "resource \"thoth_browser_provider\" \"chrome_enterprise\" {",
    );
    let text = t.read("main.tf").replace("thoth_browser_provider.chrome.", "thoth_browser_provider.chrome_enterprise.");
    t.write("main.tf", &text);
    let plan = t.run_with(&["plan"], &CANARIES);
    plan.expect_code(0);
    assert!(plan.stdout.contains("# thoth_fleet.claims_laptops has moved"), "{}", plan.stdout);
    assert!(plan.stdout.contains("(moved from `thoth_fleet.claims`"), "{}", plan.stdout);
    assert!(plan.stdout.contains("# thoth_browser_provider.chrome_enterprise has moved"), "{}", plan.stdout);
    assert!(plan.stdout.contains("the block was renamed, so it is moved"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("will be created") && !plan.stdout.contains("soft delete"), "{}", plan.stdout);
    assert!(plan.stdout.contains("2 moved, 0 to create"), "{}", plan.stdout);
    t.run_with(APPLY, &CANARIES).expect_code(0);
    t.run_with(PLAN, &CANARIES).expect_code(0);
    assert_eq!(inventory(&t), before, "the tenant is as it was");
    assert!(!t.recorded("thoth_fleet.claims_laptops").is_null());
    assert!(t.recorded("thoth_fleet.claims").is_null());
}

#[test]
fn removed_blocks_state_mv_and_state_rm_leave_the_tenant_untouched() {
    let t = applied_full();
    let before = inventory(&t);
    // `removed` with `destroy = false`: the enrollment stays, enabled and unmanaged.
    let text = t.read("main.tf");
    let start = text.find("resource \"thoth_browser_enrollment\" \"ana\"").expect("enrollment block");
    let end = start + text[start..].find("\n}\n").expect("block end") + 3;
    t.write("main.tf", &format!("{}{}", &text[..start], &text[end..]));
    t.write(
        "removed.tf",
        "removed {\n  from = thoth_browser_enrollment.ana\n\n  lifecycle {\n    destroy = false\n  }\n}\n",
    );
    let plan = t.run_with(&["plan"], &CANARIES);
    assert!(plan.stdout.contains("# thoth_browser_enrollment.ana will be forgotten"), "{}", plan.transcript());
    assert!(plan.stdout.contains("a `removed` block with `destroy = false`"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("will be deleted") && !plan.stdout.contains("soft delete"), "{}", plan.stdout);
    t.run_with(APPLY, &CANARIES).expect_code(0);
    t.run_with(PLAN, &CANARIES).expect_code(0);
    assert_eq!(inventory(&t), before, "the enrollment is still there, enabled");

    // `state mv` of a whole block, with its configuration renamed to match.
    let mv = t.run_with(&["state", "mv", "thoth_endpoint.claims", "thoth_endpoint.laptops"], &[]);
    mv.expect_code(0);
    assert!(
        mv.stdout.contains(
            "Moved `thoth_endpoint.claims[\"ep-claims-001\"]` to `thoth_endpoint.laptops[\"ep-claims-001\"]`"
        ),
        "{}",
        mv.stdout
    );
    for file in ["main.tf", "verification.tf"] {
        let text = t
            .read(file)
            .replace("resource \"thoth_endpoint\" \"claims\"", "resource \"thoth_endpoint\" \"laptops\"")
            .replace("thoth_endpoint.claims", "thoth_endpoint.laptops");
        t.write(file, &text);
    }
    t.run_with(PLAN, &CANARIES).expect_code(0);
    assert!(t.path().join("thoth.state.json.backup").exists(), "a backup is kept");
    let listed = t.run_with(&["state", "list", "thoth_endpoint.laptops"], &[]);
    assert_eq!(listed.stdout.lines().count(), 2, "{}", listed.stdout);
    let shown = t.run_with(&["state", "show", "thoth_webhook_settings.events"], &CANARIES);
    shown.expect_code(0);
    assert!(shown.stdout.contains("    webhook_secret  = (sensitive value)\n"), "{}", shown.stdout);
    for (_, secret) in CANARIES {
        assert!(!shown.stdout.contains(secret));
    }

    // `state rm`: the fleet stays on the tenant; the next plan would create it again, so it is
    // imported back instead.
    let fleet = t.recorded("thoth_fleet.claims")["id"].as_str().expect("fleet").to_owned();
    t.run_with(&["state", "rm", "thoth_fleet.claims"], &[]).expect_code(0);
    assert!(t.recorded("thoth_fleet.claims").is_null());
    assert_eq!(inventory(&t), before, "nothing left the tenant");
    t.run_with(&["import", "thoth_fleet.claims", &fleet], &CANARIES).expect_code(0);
    t.run_with(PLAN, &CANARIES).expect_code(0);
    let outputs = t.run_with(&["output", "--json"], &[]);
    outputs.expect_code(0);
    assert!(serde_json::from_str::<Value>(&outputs.stdout).is_ok(), "{}", outputs.stdout);
}

#[test]
fn creates_of_objects_the_tenant_has_are_overwrites_or_refusals_with_the_import_hint() {
    let t = Tenant::from_example("full");
    // Made by hand before thoth manages anything: a browser provider with the key of the
    // configuration's, and an endpoint with its id.
    t.emulator.post("browser/providers", serde_json::json!({"provider": "chrome", "name": "Chrome (set up by hand)"}));
    t.emulator.post(
        "endpoints",
        serde_json::json!({"endpoint_id": "ep-claims-001", "hostname": "by-hand", "owner_email": "x@example.com"}),
    );
    let plan = t.run_with(&["plan"], &CANARIES);
    plan.expect_code(1);
    assert!(
        plan.stderr
            .contains("`thoth_endpoint.claims[\"ep-claims-001\"]` would create `ep-claims-001`, which the tenant has"),
        "{}",
        plan.stderr
    );
    assert!(plan.stderr.contains("`thoth import thoth_endpoint.claims[\"ep-claims-001\"]"), "{}", plan.stderr);
    // With the endpoint imported, the provider shows as the overwrite it is.
    t.write("imports.tf", "import {\n  to = thoth_endpoint.claims[\"ep-claims-001\"]\n  id = \"ep-claims-001\"\n}\n");
    let plan = t.run_with(&["plan"], &CANARIES);
    plan.expect_code(0);
    assert!(plan.stdout.contains("exists on the tenant, unmanaged: it will be overwritten"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("~ name          = \"Chrome (set up by hand)\" -> \"Chrome Enterprise\"")
            || plan.stdout.contains("\"Chrome (set up by hand)\""),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_create_the_control_plane_refuses_as_existing_is_an_error_with_the_import_hint() {
    let t = Tenant::from_example("full");
    // An exception recorded by hand under the id the configuration chooses, with other inputs.
    t.emulator.post(
        "policy-exceptions",
        serde_json::json!({"request_id": "exc-figma-export", "violation_id": "vio-other", "requested_by": "bob@example.com",
               "business_justification": "By hand.", "frequency_estimate": "once", "data_sensitivity": "low"}),
    );
    let apply = t.run_with(APPLY, &CANARIES);
    apply.expect_code(1);
    assert!(apply.stdout.contains("409"), "{}", apply.stdout);
    assert!(
        apply.stdout.contains("`thoth_policy_exception.figma_export` exists on the tenant already, and thoth never takes over an object it did not create"),
        "{}",
        apply.stdout
    );
    assert!(apply.stdout.contains("thoth import thoth_policy_exception.figma_export ID"), "{}", apply.stdout);
    assert!(t.recorded("thoth_policy_exception.figma_export").is_null(), "the object is not adopted");
    let rows = crate::full::rows(&t.emulator.get("policy-exceptions"), "data");
    let mine: Vec<&Value> = rows.iter().filter(|r| r["request_id"] == "exc-figma-export").collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["violation_id"], "vio-other", "the object made by hand is untouched");
}

#[test]
fn refresh_only_records_what_changed_outside_thoth_and_changes_nothing_on_the_tenant() {
    let t = applied_full();
    let fleet = t.recorded("thoth_fleet.claims")["id"].as_str().expect("fleet").to_owned();
    t.emulator.put(&format!("fleets/{fleet}"), serde_json::json!({"name": "claims-laptops", "rollout_pct": 50}));
    t.emulator.request_at(reqwest::Method::DELETE, "thoth/mcp/vendors/pastebin", None);
    let plan = t.run_with(&["plan", "--refresh-only", "--detailed-exitcode"], &CANARIES);
    plan.expect_code(2);
    assert!(plan.stdout.contains("# thoth_fleet.claims was changed outside thoth"), "{}", plan.stdout);
    assert!(plan.stdout.contains("rollout_pct"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("# thoth_mcp_vendor.catalogue[\"pastebin\"] was deleted outside thoth"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("Refresh-only plan: 1 changed and 1 deleted outside thoth"), "{}", plan.stdout);
    let before = inventory(&t);
    t.run_with(&["apply", "--refresh-only", "--auto-approve"], &CANARIES).expect_code(0);
    assert_eq!(inventory(&t), before, "the tenant is not written");
    assert_eq!(t.recorded("thoth_fleet.claims")["attributes"]["rollout_pct"], 50);
    assert!(t.recorded("thoth_mcp_vendor.catalogue[\"pastebin\"]").is_null());
    t.run_with(&["plan", "--refresh-only", "--detailed-exitcode"], &CANARIES).expect_code(0);
    // The configuration still says otherwise: a normal plan puts it back, without drift.
    let normal = t.run_with(&["plan"], &CANARIES);
    assert!(normal.stdout.contains("# thoth_fleet.claims will be updated in place"), "{}", normal.stdout);
    assert!(normal.stdout.contains("# thoth_mcp_vendor.catalogue[\"pastebin\"] will be created"), "{}", normal.stdout);
}
