//! What a saved plan binds and how secrets are digested: a reviewed plan file cannot be
//! altered, nor its inputs changed, without `apply FILE` refusing; digests are keyed or
//! memory-hard, differ between equal secrets, and states of the earlier scheme migrate.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::Tenant;

const SECRET: &str = "canary-binding-secret-5d1e2a";
const VARS: [(&str, &str); 1] = [("THOTH_VAR_webhook_secret", SECRET)];

fn tenant() -> Tenant {
    let t = Tenant::from_example("bootstrap");
    let vars = t.read("variables.tf");
    t.write(
        "variables.tf",
        &format!("{vars}\nvariable \"unused_note\" {{\n  type    = string\n  default = \"a\"\n}}\n"),
    );
    t
}

fn saved(t: &Tenant) -> Value {
    t.run_with(&["plan", "-out=reviewed.plan"], &VARS).expect_code(0);
    serde_json::from_str(&t.read("reviewed.plan")).expect("plan file")
}

#[track_caller]
fn refused(t: &Tenant, extra: &[(&str, &str)], why: &str) {
    let mut env = VARS.to_vec();
    env.extend_from_slice(extra);
    let run = t.run_with(&["apply", "reviewed.plan"], &env);
    run.expect_code(1);
    assert!(run.stderr.contains(why), "expected {why:?}\n{}", run.stderr);
    assert!(!t.path().join("thoth.state.json").exists(), "nothing was applied");
}

#[test]
fn a_variable_changed_after_review_refuses_the_saved_plan() {
    let t = tenant();
    let file = saved(&t);
    assert!(!t.read("reviewed.plan").contains(SECRET));
    assert!(
        file["variables"]["webhook_secret"].as_str().is_some_and(|d| d.starts_with("argon2id:")),
        "{}",
        file["variables"]
    );
    refused(&t, &[("THOTH_VAR_unused_note", "b")], "`var.unused_note` differ from the values the plan was made with");
    t.run_with(&["apply", "reviewed.plan"], &VARS).expect_code(0);
}

#[test]
fn editing_the_shown_text_or_dropping_fingerprints_is_caught() {
    let t = tenant();
    t.run_with(&["apply", "--auto-approve"], &VARS).expect_code(0);
    t.edit("main.tf", "shadow_medium   = \"step_up\"", "shadow_medium   = \"allow\"");
    let mut file = saved(&t);
    let original = file.clone();

    // The text a reviewer reads says nothing changes.
    file["human"] = Value::String("No changes.\n".to_owned());
    t.write("reviewed.plan", &serde_json::to_string(&file).expect("json"));
    let run = t.run_with(&["show", "reviewed.plan"], &VARS);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    let apply = t.run_with(&["apply", "reviewed.plan"], &VARS);
    apply.expect_code(1);
    assert!(apply.stderr.contains("the file was altered"), "{}", apply.stderr);

    // Without its fingerprints, a remote change since the review would go unnoticed.
    let mut file = original.clone();
    file["remote_fingerprints"] = Value::Object(serde_json::Map::new());
    t.write("reviewed.plan", &serde_json::to_string(&file).expect("json"));
    let apply = t.run_with(&["apply", "reviewed.plan"], &VARS);
    apply.expect_code(1);
    assert!(apply.stderr.contains("changed on the control plane since the plan was made"), "{}", apply.stderr);

    t.write("reviewed.plan", &serde_json::to_string(&original).expect("json"));
    t.run_with(&["apply", "reviewed.plan"], &VARS).expect_code(0);
}

#[test]
fn digests_are_keyed_when_a_key_is_set_and_states_of_the_earlier_scheme_migrate() {
    let t = tenant();
    let key = [("THOTH_DIGEST_KEY", "a-digest-key-kept-as-a-ci-secret")];
    let keyed: Vec<(&str, &str)> = VARS.iter().chain(key.iter()).copied().collect();
    t.run_with(&["apply", "--auto-approve"], &keyed).expect_code(0);
    let digest = |t: &Tenant| t.recorded("thoth_webhook_settings.siem")["secret_digests"]["webhook_secret"].clone();
    let first = digest(&t);
    assert!(first.as_str().is_some_and(|d| d.starts_with("hmac-sha256:")), "{first}");
    t.run_with(&["plan", "--detailed-exitcode"], &keyed).expect_code(0);

    // The state as the earlier scheme wrote it: a salted SHA-256, cheap to test guesses on.
    let mut state = t.state();
    let salt = state["digest_salt"].as_str().expect("salt").to_owned();
    let legacy = format!("sha256:{}", crate::support::hex(&Sha256::digest(format!("{salt}\0{SECRET}").as_bytes())));
    for r in state["resources"].as_array_mut().expect("resources") {
        if r["address"] == "thoth_webhook_settings.siem" {
            r["secret_digests"]["webhook_secret"] = Value::String(legacy.clone());
        }
    }
    t.write("thoth.state.json", &serde_json::to_string_pretty(&state).expect("json"));
    // It still tells that the secret is unchanged, and the next write replaces it.
    t.run_with(&["plan", "--detailed-exitcode"], &keyed).expect_code(0);
    t.run_with(&["apply", "--auto-approve"], &keyed).expect_code(0);
    let migrated = digest(&t);
    assert!(migrated.as_str().is_some_and(|d| d.starts_with("hmac-sha256:")), "{migrated}");
    assert!(!t.read("thoth.state.json").contains(&legacy));
    t.run_with(&["plan", "--detailed-exitcode"], &keyed).expect_code(0);
}

#[test]
fn what_the_server_computes_from_a_secret_stays_secret() {
    const TOKEN: &str = "canary-compiled-token-93b1f7";
    let t = Tenant::from_dir("tests/fixtures/tenants/transport");
    t.write(
        "main.tf",
        "variable \"token\" {\n  type      = string\n  sensitive = true\n}\n\nresource \"thoth_browser_provider\" \"chrome\" {\n  provider_name = \"chrome\"\n  name          = \"Chrome\"\n}\n\nresource \"thoth_browser_policy\" \"p\" {\n  name          = \"p\"\n  provider_name = thoth_browser_provider.chrome.provider_name\n  policy_json   = jsonencode({ banner_token = var.token, block_uploads = true })\n}\n\noutput \"compiled\" {\n  value     = thoth_browser_policy.p.compiled_policy_json\n  sensitive = true\n}\n",
    );
    let vars = [("THOTH_VAR_token", TOKEN)];
    let apply = t.run_with(&["apply", "--auto-approve"], &vars);
    apply.expect_code(0);
    // The control plane holds it compiled, with the token inside.
    assert!(t.emulator.get("browser/policies").to_string().contains(TOKEN));
    let plan = t.run_with(&["plan", "--detailed-exitcode"], &vars);
    plan.expect_code(0);
    let drift = t.run_with(&["plan", "--refresh-only"], &vars);
    let shown = t.run_with(&["state", "show", "thoth_browser_policy.p"], &vars);
    let output = t.run_with(&["output"], &vars);
    for text in [
        apply.transcript(),
        plan.transcript(),
        drift.transcript(),
        shown.transcript(),
        output.transcript(),
        t.read("thoth.state.json"),
        t.read("thoth.state.json.backup"),
        t.read("thoth.state.json.journal"),
    ] {
        assert!(!text.contains(TOKEN), "the compiled token leaked:\n{text}");
    }
}

#[test]
fn git_add_after_an_embedded_apply_commits_no_secret() {
    let dir = crate::support::TempDir::new("embedded-git");
    crate::support::copy_dir(&crate::support::repo_path("examples/bootstrap"), dir.path());
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "-q"]);
    let apply = crate::support::thoth(dir.path(), &["apply", "--embedded", "--auto-approve"], &VARS);
    apply.expect_code(0);
    git(&["add", "-A"]);
    let staged = git(&["diff", "--cached", "--name-only"]);
    assert!(!staged.contains(".thoth/"), "{staged}");
    let mdm_secret = "replace-with-your-jamf-api-client-secret";
    for name in staged.lines() {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
        assert!(!text.contains(SECRET), "{name} holds the webhook secret");
        if name.ends_with(".json") && name.contains("state") {
            assert!(!text.contains(mdm_secret), "{name} holds the MDM credentials");
        }
    }
    // Nor does the embedded control plane keep a secret in its data, ignored or not.
    for entry in walk(&dir.path().join(".thoth")) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).expect("read")).into_owned();
        assert!(!text.contains(SECRET) && !text.contains(mdm_secret), "{} holds a secret", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
