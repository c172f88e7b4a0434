//! Terraform's command line: every single-dash spelling of a flag thoth shares with Terraform
//! does what the double-dash form does, usage errors exit 1, and `--target`, `--replace` and
//! `destroy` plan what Terraform's do.

use crate::full::CANARIES;
use crate::support::{thoth, Tenant};

/// Runs the two spellings of one command on copies of the same tenant state and compares
/// their exit codes and output.
#[test]
fn every_terraform_spelling_matches_the_double_dash_form() {
    let t = Tenant::from_example("full");
    t.run_with(&["apply", "--auto-approve"], &CANARIES).expect_code(0);
    t.edit("main.tf", "rollout_pct      = 10", "rollout_pct      = 20");
    let pairs: &[(&[&str], &[&str])] = &[
        (&["plan", "-detailed-exitcode"], &["plan", "--detailed-exitcode"]),
        (
            &["plan", "-no-color", "-input=false", "-lock=false"],
            &["plan", "--no-color", "--input=false", "--lock=false"],
        ),
        (
            &["plan", "-var", "approval_id=", "-var-file=example.tfvars"],
            &["plan", "--var", "approval_id=", "--var-file", "example.tfvars"],
        ),
        (&["plan", "-target=thoth_fleet.claims"], &["plan", "--target", "thoth_fleet.claims"]),
        (&["plan", "-replace=thoth_mdm_provider.jamf"], &["plan", "--replace", "thoth_mdm_provider.jamf"]),
        (&["plan", "-refresh-only"], &["plan", "--refresh-only"]),
        (&["plan", "-destroy", "-lock-timeout=1s"], &["plan", "--destroy", "--lock-timeout", "1s"]),
        (&["-chdir=.", "validate"], &["--chdir", ".", "validate"]),
        (&["plan", "-out=single.plan"], &["plan", "--out", "double.plan"]),
        (&["plan", "-refresh=false", "-detailed-exitcode"], &["plan", "--refresh=false", "--detailed-exitcode"]),
        (&["plan", "-json"], &["plan", "--json"]),
        (&["validate", "-no-color"], &["validate", "--no-color"]),
    ];
    for (single, double) in pairs {
        let a = t.run_with(single, &CANARIES);
        let b = t.run_with(double, &CANARIES);
        assert_eq!(a.code, b.code, "{single:?}\n{}\n{}", a.transcript(), b.transcript());
        let normalise = |s: &str| {
            let s = s.replace("single.plan", "FILE").replace("double.plan", "FILE");
            // Stream events carry the time they happened.
            s.split("\"@timestamp\":\"")
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 {
                        part.to_owned()
                    } else {
                        part.split_once('"').map_or(String::new(), |(_, r)| r.to_owned())
                    }
                })
                .collect::<String>()
        };
        assert_eq!(normalise(&a.stdout), normalise(&b.stdout), "{single:?}");
        assert_eq!(normalise(&a.stderr), normalise(&b.stderr), "{single:?}");
    }
    // An apply spelled Terraform's way, with its confirmation flags.
    let apply =
        t.run_with(&["apply", "-auto-approve", "-parallelism=2", "-lock-timeout=5s", "-input=false"], &CANARIES);
    apply.expect_code(0);
    t.run_with(&["plan", "-detailed-exitcode"], &CANARIES).expect_code(0);
}

#[test]
fn usage_errors_exit_1_never_2() {
    let t = Tenant::from_example("bootstrap");
    for args in
        [&["plan", "-nonsense"][..], &["plan", "--detailed-exitcode", "--parallelism", "x"], &["frobnicate"], &[]]
    {
        let run = t.run_with(args, &[]);
        assert_eq!(run.code, 1, "{args:?}: {}", run.transcript());
    }
    assert_eq!(thoth(t.path(), &["-help"], &[]).code, 0);
    assert_eq!(thoth(t.path(), &["--version"], &[]).code, 0);
}

#[test]
fn target_replace_and_destroy_plan_what_terraform_plans() {
    let t = Tenant::from_example("full");
    let targeted = t.run_with(&["plan", "--target", "thoth_browser_policy.chrome_baseline"], &CANARIES);
    targeted.expect_code(0);
    assert!(targeted.stdout.contains("# thoth_browser_policy.chrome_baseline will be created"), "{}", targeted.stdout);
    assert!(
        targeted.stdout.contains("# thoth_browser_provider.chrome will be created"),
        "what it depends on:\n{}",
        targeted.stdout
    );
    assert!(!targeted.stdout.contains("thoth_fleet.claims"), "nothing else:\n{}", targeted.stdout);
    assert!(targeted.stderr.contains("`--target` is in effect"), "{}", targeted.stderr);
    t.run_with(&["apply", "--auto-approve", "--target", "thoth_browser_policy.chrome_baseline"], &CANARIES)
        .expect_code(0);
    assert!(!t.recorded("thoth_browser_provider.chrome").is_null());
    assert!(t.recorded("thoth_fleet.claims").is_null());
    t.run_with(&["apply", "--auto-approve"], &CANARIES).expect_code(0);

    let replace = t.run_with(&["plan", "--replace", "thoth_fleet.claims"], &CANARIES);
    replace.expect_code(0);
    assert!(replace.stdout.contains("# thoth_fleet.claims must be replaced"), "{}", replace.stdout);
    assert!(replace.stdout.contains("replacement requested with `--replace`"), "{}", replace.stdout);
    let unknown = t.run_with(&["plan", "--replace", "thoth_fleet.nowhere"], &CANARIES);
    unknown.expect_code(1);

    // `destroy`: the rails of apply, its confirmation first.
    let refused = t.run_with(&["destroy", "--input=false"], &CANARIES);
    refused.expect_code(1);
    assert!(refused.stderr.contains("apply needs confirmation"), "{}", refused.stderr);
    assert!(!t.recorded("thoth_fleet.claims").is_null(), "nothing was destroyed");
    let one = t.run_with(&["destroy", "--auto-approve", "--target", "thoth_browser_provider.chrome"], &CANARIES);
    one.expect_code(0);
    assert!(
        one.stdout.contains("thoth_browser_policy.chrome_baseline"),
        "what depends on the target goes too:\n{}",
        one.stdout
    );
    assert!(t.recorded("thoth_browser_provider.chrome").is_null());
    assert!(!t.recorded("thoth_fleet.claims").is_null(), "the rest stays");
    let all = t.run_with(&["destroy", "--auto-approve"], &CANARIES);
    all.expect_code(0);
    let left = t.state()["resources"].as_array().map_or(0, Vec::len);
    assert_eq!(left, 0, "{}", all.stdout);
}

/// `fmt` leaves the examples as they are, rewrites a mis-formatted file to Terraform's layout,
/// and with `-check` changes nothing and exits 3.
#[test]
fn fmt_rewrites_to_the_canonical_layout() {
    let copy = crate::support::TempDir::new("fmt-examples");
    crate::support::copy_dir(&crate::support::repo_path("examples"), copy.path());
    let before = crate::support::snapshot_dir(copy.path());
    thoth(copy.path(), &["fmt", "-recursive", "-check"], &[]).expect_code(0);
    thoth(copy.path(), &["fmt", "-recursive"], &[]).expect_code(0);
    assert_eq!(before, crate::support::snapshot_dir(copy.path()), "fmt changed an example");

    let dir = crate::support::TempDir::new("fmt");
    let messy = std::fs::read_to_string(crate::support::repo_path("tests/fixtures/fmt/messy.tf")).unwrap();
    std::fs::write(dir.path().join("main.tf"), &messy).unwrap();
    let check = thoth(dir.path(), &["fmt", "-check", "-diff"], &[]);
    check.expect_code(3);
    assert!(check.stdout.contains("+  rollout_pct = 10"), "{}", check.transcript());
    assert_eq!(std::fs::read_to_string(dir.path().join("main.tf")).unwrap(), messy, "-check wrote the file");
    thoth(dir.path(), &["fmt", "-write=false"], &[]).expect_code(0);
    assert_eq!(std::fs::read_to_string(dir.path().join("main.tf")).unwrap(), messy, "-write=false wrote the file");

    let run = thoth(dir.path(), &["fmt"], &[]);
    run.expect_code(0);
    assert_eq!(run.stdout, "main.tf\n");
    let formatted = std::fs::read_to_string(dir.path().join("main.tf")).unwrap();
    crate::support::snapshot("fmt_messy", &formatted);
    thoth(dir.path(), &["fmt", "-check"], &[]).expect_code(0);

    // A file that does not parse is reported where it breaks and left as it is.
    std::fs::write(dir.path().join("broken.tf"), "resource \"thoth_fleet\" \"x\" {\n  name = \"open\n}\n").unwrap();
    let broken = thoth(dir.path(), &["fmt"], &[]);
    broken.expect_code(1);
    assert!(broken.stderr.contains("broken.tf:2:"), "{}", broken.transcript());
    assert!(broken.stderr.contains("only rewrites files that parse"), "{}", broken.transcript());
}

/// `version -json` is data, completions are scripts their shells accept, and the manual
/// pages cover every command; all come from the command-line definitions.
#[test]
fn version_completions_and_manual_pages() {
    let dir = crate::support::TempDir::new("info");
    let version = thoth(dir.path(), &["version", "-json"], &[]);
    version.expect_code(0);
    let value: serde_json::Value = serde_json::from_str(&version.stdout).expect("version -json is JSON");
    assert_eq!(value["thoth_version"], env!("CARGO_PKG_VERSION"));
    assert!(value["platform"].as_str().is_some_and(|p| p.contains('_')), "{value}");
    assert!(thoth(dir.path(), &["version"], &[])
        .stdout
        .starts_with(&format!("thoth v{}\n", env!("CARGO_PKG_VERSION"))));

    let bash = thoth(dir.path(), &["completions", "bash"], &[]);
    bash.expect_code(0);
    std::fs::write(dir.path().join("thoth.bash"), &bash.stdout).unwrap();
    let syntax =
        std::process::Command::new("bash").arg("-n").arg(dir.path().join("thoth.bash")).output().expect("bash");
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    for word in ["force-unlock", "graph", "--detailed-exitcode", "--generate-config-out"] {
        assert!(bash.stdout.contains(word), "bash completion lacks {word}");
    }
    for shell in ["zsh", "fish", "powershell"] {
        let script = thoth(dir.path(), &["completions", shell], &[]);
        script.expect_code(0);
        assert!(script.stdout.contains("workspace"), "{shell}");
    }
    assert_eq!(thoth(dir.path(), &["completions", "tcsh"], &[]).code, 1);

    let man = thoth(dir.path(), &["man"], &[]);
    man.expect_code(0);
    assert!(man.stdout.contains(".TH thoth 1"), "{}", &man.stdout[..200.min(man.stdout.len())]);
    thoth(dir.path(), &["man", "--out", "man"], &[]).expect_code(0);
    for page in ["thoth.1", "thoth-plan.1", "thoth-apply.1", "thoth-state.1", "thoth-workspace.1", "thoth-fmt.1"] {
        let text = std::fs::read_to_string(dir.path().join("man").join(page)).unwrap_or_default();
        assert!(text.contains(".SH NAME"), "{page} is not a manual page");
    }
}

/// `--refresh=false` plans against the state as recorded: a change made on the tenant outside
/// thoth goes unseen, a change to the configuration does not.
#[test]
fn refresh_false_plans_from_the_state_alone() {
    let t = Tenant::from_example("full");
    t.run_with(&["apply", "--auto-approve"], &CANARIES).expect_code(0);
    t.run_with(&["plan", "-refresh=false", "-detailed-exitcode"], &CANARIES).expect_code(0);
    // The fleet's rollout changed on the tenant behind thoth's back.
    let fleets = crate::full::rows(&t.emulator.get("fleets"), "data");
    let id = fleets[0]["fleet_id"].as_str().expect("fleet id").to_owned();
    let mut changed = fleets[0].clone();
    changed["rollout_pct"] = serde_json::json!(70);
    t.emulator.put(&format!("fleets/{id}"), changed);
    let refreshed = t.run_with(&["plan", "-detailed-exitcode"], &CANARIES);
    refreshed.expect_code(2);
    assert!(refreshed.stdout.contains("70"), "{}", refreshed.stdout);
    let blind = t.run_with(&["plan", "-refresh=false", "-detailed-exitcode"], &CANARIES);
    blind.expect_code(0);
    t.edit("main.tf", "rollout_pct      = 10", "rollout_pct      = 20");
    let edited = t.run_with(&["plan", "-refresh=false"], &CANARIES);
    edited.expect_code(0);
    assert!(edited.stdout.contains("~ rollout_pct = 10 -> 20"), "{}", edited.stdout);
    // What refers to the fleet's id waits for nothing: an update never changes the id.
    assert!(edited.stdout.contains("Plan: 0 to create, 1 to update, 0 to replace"), "{}", edited.stdout);
    // A saved plan made without refreshing applies without refreshing, and says so.
    t.run_with(&["plan", "-refresh=false", "-out=blind.plan"], &CANARIES).expect_code(0);
    t.run_with(&["apply", "blind.plan"], &CANARIES).expect_code(0);
    t.run_with(&["plan", "-refresh=false", "-detailed-exitcode"], &CANARIES).expect_code(0);
}

/// `THOTH_LOG=trace` logs every call and state operation, and never a secret: not the org
/// key, not a sensitive variable, not even when a message would carry one.
#[test]
fn diagnosis_logs_name_calls_and_never_secrets() {
    let t = Tenant::from_example("full");
    let log = t.path().join("thoth.log");
    let log_path = log.to_string_lossy().into_owned();
    let mut env: Vec<(&str, &str)> = CANARIES.to_vec();
    env.extend([("THOTH_LOG", "trace"), ("THOTH_LOG_PATH", log_path.as_str())]);
    t.run_with(&["apply", "--auto-approve"], &env).expect_code(0);
    let text = std::fs::read_to_string(&log).expect("the log file");
    assert!(text.contains("GET /acme/thoth/"), "{text}");
    assert!(text.contains("took the state lock"), "{text}");
    assert!(text.contains("wrote the state to"), "{text}");
    assert!(text.contains("thoth_fleet.claims: Create done"), "{text}");
    for secret in CANARIES.iter().map(|(_, v)| *v).chain([crate::support::KEY]) {
        assert!(!text.contains(secret), "`{secret}` is in the log");
    }
    // A secret that reaches a message is cleaned from it: a sensitive variable's value used
    // as the tenant id makes every call's path hold it.
    let fresh = Tenant::from_example("full");
    let bad = fresh.run_with(&["plan"], &[&env[..], &[("THOTH_VAR_tenant_id", "canary-full-webhook-5d1f")]].concat());
    bad.expect_code(0);
    let text = std::fs::read_to_string(&log).expect("the log file");
    assert!(!text.contains("canary-full-webhook-5d1f"), "{text}");
    assert!(text.contains("GET /(sensitive value)/thoth/"), "{text}");
}
