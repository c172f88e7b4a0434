//! The state, its journal and its lock in a shared backend (a real PostgreSQL, a real S3 server)
//! as CI runners use it: each run in a fresh copy of the configuration directory with no file
//! kept from the one before.

use std::path::Path;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::faults::assert_one_of_each_recorded;
use crate::full::CANARIES;
use crate::servers::{postgres, s3, Postgres, Proxy};
use crate::support::{copy_dir, repo_path, thoth_command, Run, TempDir, Tenant};

/// A schema name no other test uses.
fn schema(name: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("t_{name}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Where the state lives for one test.
#[derive(Clone)]
pub(crate) enum Where {
    Pg { schema: String, port: u16 },
    S3 { bucket: String },
}

impl Where {
    pub(crate) fn pg(name: &str) -> Where {
        Where::Pg { schema: schema(name), port: postgres().port }
    }

    pub(crate) fn s3(name: &str) -> Where {
        Where::S3 { bucket: s3().bucket(name) }
    }

    pub(crate) fn backend_tf(&self) -> String {
        match self {
            Where::Pg { schema, .. } => {
                format!("terraform {{\n  backend \"pg\" {{\n    schema_name = \"{schema}\"\n  }}\n}}\n")
            }
            Where::S3 { bucket } => format!(
                "terraform {{\n  backend \"s3\" {{\n    bucket         = \"{bucket}\"\n    key            = \"tenants/acme/thoth.state.json\"\n    region         = \"us-east-1\"\n    use_path_style = true\n    use_lockfile   = true\n\n    endpoints {{\n      s3 = \"http://127.0.0.1:{}\"\n    }}\n  }}\n}}\n",
                s3().port
            ),
        }
    }

    /// The environment that reaches the backend (its secrets stay out of the configuration).
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Where::Pg { port, .. } => vec![("PG_CONN_STR", Postgres::conn_str(*port))],
            Where::S3 { .. } => {
                vec![("AWS_ACCESS_KEY_ID", "test".to_owned()), ("AWS_SECRET_ACCESS_KEY", "test".to_owned())]
            }
        }
    }
}

/// A fresh working copy of an example that keeps its state `at`.
pub(crate) fn working_copy(example: &str, at: &Where) -> TempDir {
    let dir = TempDir::new("copy");
    copy_dir(&repo_path(&format!("examples/{example}")), dir.path());
    std::fs::write(dir.path().join("backend.tf"), at.backend_tf()).expect("backend.tf");
    dir
}

fn env_for<'a>(t: &Tenant, at: &Where, extra: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = t.emulator.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    all.extend(at.env().into_iter().map(|(k, v)| (k.to_owned(), v)));
    all.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    all
}

/// Runs `thoth` in `dir` against the tenant's emulator and the backend.
pub(crate) fn run_in(dir: &Path, t: &Tenant, at: &Where, args: &[&str]) -> Run {
    let env = env_for(t, at, &CANARIES);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = thoth_command(dir, args, &pairs).output().expect("run thoth");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn spawn_in(dir: &Path, t: &Tenant, at: &Where, args: &[&str]) -> std::process::Child {
    let env = env_for(t, at, &CANARIES);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    thoth_command(dir, args, &pairs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn thoth")
}

/// The tenant holds one of each object of the full example, as the backend's state records.
fn assert_exactly_one_of_each(t: &Tenant, at: &Where, label: &str) {
    let copy = working_copy("full", at);
    let run = run_in(copy.path(), t, at, &["state", "pull"]);
    run.expect_code(0);
    let state: Value = serde_json::from_str(&run.stdout).expect("the pulled state is JSON");
    assert_one_of_each_recorded(&t.emulator, &state, label);
}

const APPLY: &[&str] = &["apply", "--auto-approve"];
const PLAN: &[&str] = &["plan", "--detailed-exitcode"];

/// No file of the state is left in a working copy that uses a shared backend.
fn assert_no_local_state(dir: &Path) {
    for name in ["thoth.state.json", "thoth.state.json.journal", "thoth.state.json.lock", "thoth.state.json.backup"] {
        assert!(!dir.join(name).exists(), "`{name}` was written locally");
    }
}

fn second_copy_is_refused_then_waits(at: &Where) {
    let t = Tenant::with_emulator_args("examples/full", &["--latency-ms", "60"]);
    let first = working_copy("full", at);
    let second = working_copy("full", at);
    let mut holder = spawn_in(first.path(), &t, at, APPLY);
    thread::sleep(Duration::from_millis(700));
    let refused = run_in(second.path(), &t, at, APPLY);
    refused.expect_code(1);
    assert!(refused.stderr.contains("the state is locked: lock "), "{}", refused.stderr);
    assert!(refused.stderr.contains("for `apply`"), "the holder's operation is named:\n{}", refused.stderr);
    assert!(refused.stderr.contains("thoth force-unlock "), "{}", refused.stderr);
    // With a timeout, the second run waits for the first and then finds nothing to do.
    let waited = run_in(second.path(), &t, at, &["apply", "--auto-approve", "--lock-timeout", "2m"]);
    waited.expect_code(0);
    assert!(holder.wait().expect("first apply").success());
    assert_exactly_one_of_each(&t, at, "after two working copies applied");
    run_in(second.path(), &t, at, PLAN).expect_code(0);
    assert_no_local_state(first.path());
    assert_no_local_state(second.path());
}

#[test]
fn pg_a_second_working_copy_is_refused_naming_the_holder_and_waits_with_a_timeout() {
    second_copy_is_refused_then_waits(&Where::pg("lock"));
}

#[test]
fn s3_a_second_working_copy_is_refused_naming_the_holder_and_waits_with_a_timeout() {
    second_copy_is_refused_then_waits(&Where::s3("lock"));
}

#[test]
fn pg_a_killed_holder_stops_blocking_at_once() {
    let at = Where::pg("killed");
    let t = Tenant::with_emulator_args("examples/full", &["--latency-ms", "60"]);
    let first = working_copy("full", &at);
    let mut holder = spawn_in(first.path(), &t, &at, APPLY);
    thread::sleep(Duration::from_millis(700));
    let _ = holder.kill();
    let _ = holder.wait();
    // The holder's connection died with it, and PostgreSQL released its advisory lock.
    let second = working_copy("full", &at);
    let next = run_in(second.path(), &t, &at, &["apply", "--auto-approve", "--lock-timeout", "0s"]);
    next.expect_code(0);
    assert!(next.stderr.contains("took over a stale lock"), "the dead holder's record is replaced:\n{}", next.stderr);
    assert_exactly_one_of_each(&t, &at, "after the holder was killed");
}

#[test]
fn s3_a_lock_of_another_machine_is_shown_and_removed_with_force_unlock() {
    let at = Where::s3("foreign");
    let t = Tenant::from_example("bootstrap");
    let bucket = match &at {
        Where::S3 { bucket } => bucket.clone(),
        Where::Pg { .. } => unreachable!(),
    };
    let copy = crate::backends::working_copy("bootstrap", &at);
    let lock = serde_json::json!({
        "id": "5eed5eed5eed5eed", "owner": "runner", "host": "ci-runner-elsewhere", "pid": 4242,
        "operation": "apply", "created_at": "2026-12-01T00:00:00Z",
        "ci_url": "https://github.com/acme/tenant/actions/runs/77"
    });
    s3().put(&bucket, "tenants/acme/thoth.state.json.tflock", &lock.to_string());
    let vars = ["--var-file", "example.tfvars"];
    let apply: Vec<&str> = APPLY.iter().copied().chain(vars).collect();
    let refused = run_in(copy.path(), &t, &at, &apply);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("lock 5eed5eed5eed5eed held by runner@ci-runner-elsewhere (pid 4242) for `apply`"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("in https://github.com/acme/tenant/actions/runs/77"), "{}", refused.stderr);
    run_in(copy.path(), &t, &at, &["force-unlock", "0000", "--var-file", "example.tfvars"]).expect_code(1);
    let removed = run_in(copy.path(), &t, &at, &["force-unlock", "5eed5eed5eed5eed", "--var-file", "example.tfvars"]);
    removed.expect_code(0);
    assert!(removed.stdout.contains("Removed the lock 5eed5eed5eed5eed"), "{}", removed.stdout);
    run_in(copy.path(), &t, &at, &apply).expect_code(0);
    assert!(!s3().keys(&bucket).iter().any(|k| k.ends_with(".tflock")), "the lock is released after apply");
}

/// Kills an apply at `delay_ms` and again a little later, each in a fresh copy of the
/// configuration, then applies to the end in a third: the tenant converges with one of each.
fn kill_fresh_copies_and_converge(at: &Where, delay_ms: u64) -> Result<(), String> {
    let t = Tenant::with_emulator_args("examples/full", &["--latency-ms", "40"]);
    for delay in [delay_ms, delay_ms / 2 + 30] {
        let copy = working_copy("full", at);
        let mut child = spawn_in(copy.path(), &t, at, APPLY);
        thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        // The runner's disk is gone with it.
        drop(copy);
    }
    let last = working_copy("full", at);
    let apply = run_in(last.path(), &t, at, APPLY);
    if apply.code != 0 {
        return Err(format!("apply after the kills at {delay_ms} ms failed:\n{}", apply.transcript()));
    }
    let fresh = working_copy("full", at);
    let plan = run_in(fresh.path(), &t, at, PLAN);
    if plan.code != 0 {
        return Err(format!("no convergence after the kills at {delay_ms} ms:\n{}", plan.transcript()));
    }
    let result = std::panic::catch_unwind(|| assert_exactly_one_of_each(&t, at, &format!("killed at {delay_ms} ms")));
    result.map_err(|e| e.downcast_ref::<String>().cloned().unwrap_or_else(|| format!("duplicates at {delay_ms} ms")))
}

fn kill_matrix(at: impl Fn() -> Where, moments: &[u64]) {
    let mut failures = Vec::new();
    for chunk in moments.chunks(4) {
        let results: Vec<Result<(), String>> = thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|d| {
                    let at = at();
                    s.spawn(move || kill_fresh_copies_and_converge(&at, *d))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("panicked".to_owned()))).collect()
        });
        failures.extend(results.into_iter().filter_map(Result::err));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn pg_apply_killed_at_a_dozen_moments_converges_from_fresh_copies() {
    let moments: Vec<u64> = (0..12).map(|k| 250 + k * 110).collect();
    kill_matrix(|| Where::pg("kill"), &moments);
}

#[test]
fn s3_apply_killed_at_four_moments_converges_from_fresh_copies() {
    kill_matrix(|| Where::s3("kill"), &[300, 700, 1100, 1500]);
}

#[test]
fn a_plan_saved_in_one_working_copy_is_applied_from_another_and_refused_once_the_state_moved() {
    let at = Where::pg("saved");
    let t = Tenant::from_example("full");
    let planner = working_copy("full", &at);
    let applier = working_copy("full", &at);
    run_in(planner.path(), &t, &at, &["plan", "--out", "tenant.plan"]).expect_code(0);
    std::fs::copy(planner.path().join("tenant.plan"), applier.path().join("tenant.plan")).expect("copy the plan");
    let applied = run_in(applier.path(), &t, &at, &["apply", "tenant.plan"]);
    applied.expect_code(0);
    assert_exactly_one_of_each(&t, &at, "after applying the saved plan");

    // A reviewed plan, then another run applies a change first: the reviewed plan is stale.
    let edit = |dir: &Path, from: &str, to: &str| {
        let path = dir.join("main.tf");
        let text = std::fs::read_to_string(&path).expect("main.tf");
        assert!(text.contains(from), "`{from}` in main.tf");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("edit");
    };
    edit(planner.path(), "rollout_pct      = 10", "rollout_pct      = 20");
    run_in(planner.path(), &t, &at, &["plan", "--out", "tenant.plan"]).expect_code(0);
    std::fs::copy(planner.path().join("tenant.plan"), applier.path().join("reviewed.plan")).expect("copy the plan");
    let other = working_copy("full", &at);
    edit(other.path(), "rollout_pct      = 10", "rollout_pct      = 30");
    run_in(other.path(), &t, &at, APPLY).expect_code(0);
    edit(applier.path(), "rollout_pct      = 10", "rollout_pct      = 20");
    let stale = run_in(applier.path(), &t, &at, &["apply", "reviewed.plan"]);
    stale.expect_code(1);
    assert!(stale.stderr.contains("the state changed since the plan was made"), "{}", stale.stderr);
}

fn pulled(dir: &Path, t: &Tenant, at: &Where, vars: &[&str]) -> Value {
    let args: Vec<&str> = ["state", "pull"].iter().copied().chain(vars.iter().copied()).collect();
    let run = run_in(dir, t, at, &args);
    run.expect_code(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("state pull prints the state ({e}):\n{}", run.stdout))
}

/// What a migration must keep: lineage, serial and every entry.
fn essence(state: &Value) -> (Value, Value, Value) {
    (state["lineage"].clone(), state["serial"].clone(), state["resources"].clone())
}

#[test]
fn init_migrate_state_moves_local_to_pg_to_s3_and_back_keeping_lineage_serial_and_entries() {
    let t = Tenant::from_example("bootstrap");
    let vars: &[&str] = &["--var-file", "example.tfvars"];
    let with = |args: &[&str]| -> Vec<String> { args.iter().chain(vars).map(|s| (*s).to_owned()).collect() };
    let run = |at: &Where, args: &[&str]| {
        let args = with(args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_in(t.path(), &t, at, &refs)
    };
    let pg = Where::pg("migrate");
    let s3w = Where::s3("migrate");
    run(&pg, APPLY).expect_code(0);
    let local = t.state();
    assert!(!local["resources"].as_array().expect("resources").is_empty());

    // A shared backend with a local state beside it is refused until the state is moved.
    t.write("backend.tf", &pg.backend_tf());
    let refused = run(&pg, &["plan"]);
    refused.expect_code(1);
    assert!(refused.stderr.contains("holds a local state"), "{}", refused.stderr);
    run(&pg, &["init"]).expect_code(1);
    let moved = run(&pg, &["init", "--migrate-state"]);
    moved.expect_code(0);
    assert!(moved.stdout.contains("Moved workspace `default`"), "{}", moved.stdout);
    assert_eq!(essence(&pulled(t.path(), &t, &pg, vars)), essence(&local));
    run(&pg, PLAN).expect_code(0);

    // pg to s3: the backend changed since `init`, and plan says so.
    t.write("backend.tf", &s3w.backend_tf());
    let changed = run(&s3w, &["plan"]);
    changed.expect_code(1);
    assert!(changed.stderr.contains("the backend changed since `thoth init`"), "{}", changed.stderr);
    // The pg backend's settings come from the record of the last init, its secret from the
    // environment.
    let mut both = s3w.env();
    both.extend(pg.env());
    let env = env_for(&t, &s3w, &[]);
    let mut pairs: Vec<(String, String)> = env;
    pairs.extend(both.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args = with(&["init", "--migrate-state"]);
    let out =
        thoth_command(t.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &refs).output().expect("init");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(essence(&pulled(t.path(), &t, &s3w, vars)), essence(&local));
    run(&s3w, PLAN).expect_code(0);

    // s3 back to local, over the old local copy.
    std::fs::remove_file(t.path().join("backend.tf")).expect("remove backend.tf");
    std::fs::remove_file(t.path().join("thoth.state.json")).expect("remove the old local copy");
    run(&s3w, &["init", "--migrate-state"]).expect_code(0);
    assert_eq!(essence(&t.state()), essence(&local));
    run(&s3w, PLAN).expect_code(0);
}

#[test]
fn state_push_refuses_another_lineage_or_an_older_serial() {
    let at = Where::pg("push");
    let t = Tenant::from_example("bootstrap");
    let copy = working_copy("bootstrap", &at);
    let vars = ["--var-file", "example.tfvars"];
    let apply: Vec<&str> = APPLY.iter().copied().chain(vars).collect();
    run_in(copy.path(), &t, &at, &apply).expect_code(0);
    let state = pulled(copy.path(), &t, &at, &vars);
    let serial = state["serial"].as_u64().expect("serial");
    let push = |name: &str, value: &Value, extra: &[&str]| {
        std::fs::write(copy.path().join(name), serde_json::to_string_pretty(value).expect("json")).expect("write");
        let args: Vec<&str> =
            ["state", "push", name].iter().copied().chain(extra.iter().copied()).chain(vars).collect();
        run_in(copy.path(), &t, &at, &args)
    };
    let same = push("same.json", &state, &[]);
    same.expect_code(0);
    assert!(same.stdout.contains("already holds this state"), "{}", same.stdout);

    let mut other = state.clone();
    other["lineage"] = Value::String("00000000-0000-4000-8000-000000000000".to_owned());
    other["serial"] = Value::from(serial + 5);
    let refused = push("other.json", &other, &[]);
    refused.expect_code(1);
    assert!(refused.stderr.contains("it is another state"), "{}", refused.stderr);

    let mut older = state.clone();
    older["serial"] = Value::from(serial - 1);
    let refused = push("older.json", &older, &[]);
    refused.expect_code(1);
    assert!(refused.stderr.contains("older than the serial"), "{}", refused.stderr);

    let mut newer = state.clone();
    newer["serial"] = Value::from(serial + 1);
    newer["outputs"] = serde_json::json!({"pushed": true});
    push("newer.json", &newer, &[]).expect_code(0);
    assert_eq!(pulled(copy.path(), &t, &at, &vars)["outputs"]["pushed"], Value::Bool(true));
    // `--force` takes the other lineage, with a serial that still grows.
    push("other.json", &other, &["--force"]).expect_code(0);
    let forced = pulled(copy.path(), &t, &at, &vars);
    assert_eq!(forced["lineage"], other["lineage"]);
    assert!(forced["serial"].as_u64() > Some(serial + 1));
}

#[test]
fn a_backend_that_goes_away_mid_apply_leaves_an_errored_state_that_push_puts_back() {
    let pg = postgres();
    let proxy = Proxy::to(pg.port);
    let at = Where::Pg { schema: schema("outage"), port: proxy.port };
    let t = Tenant::with_emulator_args("examples/full", &["--latency-ms", "80"]);
    let copy = working_copy("full", &at);
    let env = env_for(&t, &at, &CANARIES);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let child = thoth_command(copy.path(), &["apply", "--auto-approve", "--parallelism", "2"], &pairs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("apply");
    thread::sleep(Duration::from_millis(1500));
    proxy.cut();
    let output = child.wait_with_output().expect("apply ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("errored.thoth.state.json"), "{stderr}");
    assert!(stderr.contains("thoth state push errored.thoth.state.json"), "{stderr}");
    let errored = copy.path().join("errored.thoth.state.json");
    let text = std::fs::read_to_string(&errored).expect("the errored state is written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&errored).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the errored state is private");
    }
    for (_, secret) in CANARIES {
        assert!(!text.contains(secret), "a secret is in the errored state");
    }
    let kept: Value = serde_json::from_str(&text).expect("the errored state is a state");
    assert!(!kept["resources"].as_array().expect("resources").is_empty(), "what was applied is in it");

    proxy.restore();
    run_in(copy.path(), &t, &at, &["state", "push", "errored.thoth.state.json"]).expect_code(0);
    run_in(copy.path(), &t, &at, APPLY).expect_code(0);
    let fresh = working_copy("full", &at);
    run_in(fresh.path(), &t, &at, PLAN).expect_code(0);
    assert_exactly_one_of_each(&t, &at, "after the backend came back");
}

#[test]
fn workspaces_keep_their_states_apart_in_pg() {
    let at = Where::pg("workspaces");
    let t = Tenant::from_example("bootstrap");
    let copy = working_copy("bootstrap", &at);
    let vars = ["--var-file", "example.tfvars"];
    let with = |args: &[&str]| -> Vec<String> { args.iter().chain(vars.iter()).map(|s| (*s).to_owned()).collect() };
    let run = |args: &[&str]| {
        let args = with(args);
        run_in(copy.path(), &t, &at, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run(APPLY).expect_code(0);
    run(&["workspace", "new", "staging"]).expect_code(0);
    let shown = run_in(copy.path(), &t, &at, &["workspace", "show"]);
    assert_eq!(shown.stdout.trim(), "staging");
    let listed = run(&["workspace", "list"]);
    assert_eq!(listed.stdout, "  default\n* staging\n", "{}", listed.transcript());
    // A new workspace starts from an empty state of its own.
    let plan = run(&["plan"]);
    assert!(plan.stdout.contains("to create"), "{}", plan.stdout);
    run(&["workspace", "select", "default"]).expect_code(0);
    run(PLAN).expect_code(0);
    run(&["workspace", "delete", "staging"]).expect_code(0);
    assert_eq!(run(&["workspace", "list"]).stdout, "* default\n");
    run(&["workspace", "delete", "default"]).expect_code(1);
}

/// Without the lock, a run whose stored state moves under it is refused at its next write,
/// and what it applied is kept in the errored state instead of overwriting the other run's.
fn a_write_over_a_moved_state_is_refused(at: &Where) {
    let t = Tenant::with_emulator_args("examples/full", &["--latency-ms", "80"]);
    let slow = working_copy("full", at);
    let other = working_copy("bootstrap", at);
    // The other run's state: a state of the same backend, pushed while the slow run works.
    let mut child = {
        let env = env_for(&t, at, &CANARIES);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        thoth_command(slow.path(), &["apply", "--auto-approve", "--lock=false", "--parallelism", "2"], &pairs)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("apply")
    };
    thread::sleep(Duration::from_millis(1500));
    let pulled = run_in(other.path(), &t, at, &["state", "pull", "--var-file", "example.tfvars"]);
    pulled.expect_code(0);
    let mut moved: Value = serde_json::from_str(&pulled.stdout).expect("a state is stored by now");
    moved["serial"] = Value::from(moved["serial"].as_u64().expect("serial") + 100);
    std::fs::write(other.path().join("moved.json"), moved.to_string()).expect("write");
    run_in(other.path(), &t, at, &["state", "push", "moved.json", "--lock=false", "--var-file", "example.tfvars"])
        .expect_code(0);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr).expect("read stderr");
    let status = child.wait().expect("apply ends");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("was changed by another run since this one read it"), "{stderr}");
    assert!(slow.path().join("errored.thoth.state.json").exists(), "{stderr}");
    let kept = pulled_serial(other.path(), &t, at);
    assert_eq!(kept, moved["serial"].as_u64(), "the other run's state was not overwritten");
}

fn pulled_serial(dir: &Path, t: &Tenant, at: &Where) -> Option<u64> {
    pulled(dir, t, at, &["--var-file", "example.tfvars"])["serial"].as_u64()
}

#[test]
fn pg_a_write_over_a_moved_state_is_refused() {
    a_write_over_a_moved_state_is_refused(&Where::pg("moved"));
}

#[test]
fn s3_a_write_over_a_moved_state_is_refused() {
    a_write_over_a_moved_state_is_refused(&Where::s3("moved"));
}
