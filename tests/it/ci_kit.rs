//! The CI kit in `examples/ci/`: the workflow files pass actionlint (and their scripts
//! shellcheck), and the scripts the workflows run plan, comment and apply end to end against
//! the emulator with the state in PostgreSQL, each step in a fresh working copy as runners are.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::backends::{run_in, working_copy, Where};
use crate::full::CANARIES;
use crate::support::{repo_path, Run, TempDir, Tenant};

/// A tool `.ci/run` installs, found where it put it or on `PATH`.
fn tool(env: &str, name: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    let local = repo_path("target/ci-tools/venv/bin").join(name);
    if local.exists() {
        return local;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("`{name}` is needed by this test: run `.ci/run`, which installs it, or set {env}"))
}

#[test]
fn the_workflows_pass_actionlint_and_their_scripts_shellcheck() {
    let actionlint = tool("THOTH_TEST_ACTIONLINT", "actionlint");
    let shellcheck = tool("THOTH_TEST_SHELLCHECK", "shellcheck");
    let workflows: Vec<PathBuf> =
        std::fs::read_dir(repo_path("examples/ci/github")).expect("workflows").flatten().map(|e| e.path()).collect();
    assert!(workflows.len() >= 2, "{workflows:?}");
    // actionlint checks the `run:` scripts with shellcheck when it finds it on PATH.
    let path = format!(
        "{}:{}",
        shellcheck.parent().expect("shellcheck dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let lint =
        Command::new(&actionlint).arg("-oneline").args(&workflows).env("PATH", path).output().expect("actionlint");
    assert!(
        lint.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    let scripts = [
        "examples/ci/scripts/thoth-plan.sh",
        "examples/ci/scripts/thoth-apply.sh",
        "examples/ci/scripts/thoth-verify.sh",
    ];
    let check = Command::new(&shellcheck).args(scripts.map(repo_path)).output().expect("shellcheck");
    assert!(check.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&check.stdout));
    // The GitLab file is YAML whose jobs each run a script in a declared stage.
    let text = std::fs::read_to_string(repo_path("examples/ci/gitlab/thoth.gitlab-ci.yml")).expect("gitlab file");
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("the GitLab file is YAML");
    let root = &docs[0];
    let stages: Vec<&str> = root["stages"].as_vec().expect("stages").iter().filter_map(|s| s.as_str()).collect();
    for job in ["thoth-plan", "thoth-no-loosening", "thoth-apply", "thoth-verify"] {
        assert!(root[job]["script"].as_vec().is_some_and(|s| !s.is_empty()), "{job} has no script");
        let stage = root[job]["stage"].as_str().expect("a stage");
        assert!(stages.contains(&stage), "{job}: stage {stage} is not declared");
    }
}

/// Runs one of the kit's scripts in `dir` the way a runner does: `thoth` on `PATH`, the
/// tenant's and the backend's credentials in the environment.
fn script(dir: &Path, t: &Tenant, at: &Where, name: &str, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let bin = Path::new(env!("CARGO_BIN_EXE_thoth")).parent().expect("bin dir").to_path_buf();
    let mut cmd = Command::new("sh");
    cmd.arg(repo_path(&format!("examples/ci/scripts/{name}"))).args(args).current_dir(dir).env_clear();
    cmd.env("PATH", format!("{}:/usr/bin:/bin", bin.display())).env("NO_COLOR", "1");
    if let Ok(home) = std::env::var("HOME") {
        cmd.env("HOME", home);
    }
    for (k, v) in t.emulator.env() {
        cmd.env(k, v);
    }
    for (k, v) in at.env() {
        cmd.env(k, v);
    }
    for (k, v) in CANARIES.iter().chain(extra) {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("run the script");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A fresh checkout of a repository that keeps the tenant's configuration in `tenant/`.
struct Checkout(TempDir);

impl Checkout {
    fn new(at: &Where) -> Checkout {
        let root = TempDir::new("checkout");
        std::fs::create_dir(root.path().join(".git")).expect("a repository");
        let copy = working_copy("full", at);
        crate::support::copy_dir(copy.path(), &root.path().join("tenant"));
        Checkout(root)
    }

    fn root(&self) -> &Path {
        self.0.path()
    }

    fn tenant(&self) -> PathBuf {
        self.0.path().join("tenant")
    }
}

fn edit(checkout: &Checkout, from: &str, to: &str) {
    let path = checkout.tenant().join("main.tf");
    let text = std::fs::read_to_string(&path).expect("main.tf");
    assert!(text.contains(from), "`{from}` in main.tf");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("edit");
}

#[test]
fn the_kit_plans_on_a_pull_request_and_applies_the_reviewed_plan_on_merge() {
    let at = Where::pg("ci");
    let t = Tenant::from_example("full");
    let artifacts = TempDir::new("artifacts");
    let out = artifacts.path().join("out");
    let out_text = out.display().to_string();
    let gh_output = artifacts.path().join("github_output");
    let gh_output_text = gh_output.display().to_string();
    let env = [("THOTH_OUT", out_text.as_str()), ("GITHUB_OUTPUT", gh_output_text.as_str()), ("THOTH_DIR", "tenant")];
    let dir = [("THOTH_DIR", "tenant")];

    // The pull request's runner plans; the comment and the saved plan are its artifacts.
    let pr = Checkout::new(&at);
    let planned = script(pr.root(), &t, &at, "thoth-plan.sh", &[], &env);
    planned.expect_code(0);
    assert_eq!(std::fs::read_to_string(&gh_output).expect("step output"), "changes=true\n");
    let comment = std::fs::read_to_string(out.join("plan.md")).expect("plan.md");
    let marker = comment.lines().next().expect("a first line");
    assert_eq!(marker, "<!-- thoth-plan dir=\"tenant\" tenant=\"acme\" workspace=\"default\" -->");
    assert!(comment.contains("### thoth plan for tenant `acme`"), "{comment}");
    for (_, secret) in CANARIES {
        assert!(!comment.contains(secret), "a secret is in the comment");
        assert!(!std::fs::read_to_string(out.join("tenant.plan")).expect("plan").contains(secret));
    }

    // The merge's runner, on a fresh machine, applies exactly the reviewed plan.
    let merge = Checkout::new(&at);
    let applied = script(merge.root(), &t, &at, "thoth-apply.sh", &[&format!("{out_text}/tenant.plan")], &dir);
    applied.expect_code(0);
    assert!(!applied.stderr.contains("planning again"), "{}", applied.transcript());
    let next = Checkout::new(&at);
    run_in(&next.tenant(), &t, &at, &["plan", "--detailed-exitcode"]).expect_code(0);

    // The next pull request's comment says there is nothing to do, in the same comment.
    std::fs::remove_file(&gh_output).expect("reset the step output");
    let again = script(next.root(), &t, &at, "thoth-plan.sh", &[], &env);
    again.expect_code(0);
    assert_eq!(std::fs::read_to_string(&gh_output).expect("step output"), "changes=false\n");
    let second = std::fs::read_to_string(out.join("plan.md")).expect("plan.md");
    assert_eq!(second.lines().next(), Some(marker), "the same marker finds the same comment");

    // A reviewed change overtaken by another apply is planned again and stopped for review.
    let reviewed = Checkout::new(&at);
    edit(&reviewed, "rollout_pct      = 10", "rollout_pct      = 20");
    script(reviewed.root(), &t, &at, "thoth-plan.sh", &[], &env).expect_code(0);
    let other = Checkout::new(&at);
    edit(&other, "rollout_pct      = 10", "rollout_pct      = 30");
    run_in(&other.tenant(), &t, &at, &["apply", "--auto-approve"]).expect_code(0);
    let stale_merge = Checkout::new(&at);
    edit(&stale_merge, "rollout_pct      = 10", "rollout_pct      = 20");
    let stopped = script(stale_merge.root(), &t, &at, "thoth-apply.sh", &[&format!("{out_text}/tenant.plan")], &dir);
    stopped.expect_code(1);
    assert!(stopped.stderr.contains("the saved plan cannot be applied"), "{}", stopped.transcript());
    assert!(stopped.stderr.contains("were not reviewed"), "{}", stopped.transcript());
    let fleet = crate::full::rows(&t.emulator.get("fleets"), "data");
    assert_eq!(fleet[0]["rollout_pct"], 30, "nothing unreviewed was applied");

    // Without a reviewed plan, a merge that changes nothing succeeds.
    let nothing = Checkout::new(&at);
    edit(&nothing, "rollout_pct      = 10", "rollout_pct      = 30");
    let quiet = script(nothing.root(), &t, &at, "thoth-apply.sh", &[], &dir);
    quiet.expect_code(0);
    assert!(quiet.stdout.contains("Nothing left to apply."), "{}", quiet.transcript());

    // The scheduled evidence job passes, and fails once the evidence SLOs are breached.
    let summary = artifacts.path().join("summary.md");
    let summary_text = summary.display().to_string();
    let verify_env = [("THOTH_DIR", "tenant"), ("ONLY", "evidence"), ("GITHUB_STEP_SUMMARY", summary_text.as_str())];
    let scheduled = Checkout::new(&at);
    let evidence = script(scheduled.root(), &t, &at, "thoth-verify.sh", &[], &verify_env);
    evidence.expect_code(0);
    let report = std::fs::read_to_string(&summary).expect("the job summary");
    assert!(report.contains("`evidence_slos`") && !report.contains("`mdm`"), "{report}");
    // After an apply, every item: a laptop gone quiet fails the run with 4.
    t.emulator.request_at(
        reqwest::Method::POST,
        "_emulator/heartbeats",
        Some(serde_json::json!({"endpoint_id": "ep-claims-001", "seen_at": "2026-01-05T08:00:00Z"})),
    );
    let full = script(scheduled.root(), &t, &at, "thoth-verify.sh", &[], &[verify_env[0], verify_env[2]]);
    full.expect_code(4);
    assert!(full.stderr.contains("an item fails"), "{}", full.transcript());
}
