//! Staged rollouts: a bundle change and a fleet change go to the canary ring, then the pilot
//! ring once the canary's gate passes after its soak, then everyone; a rollback returns the
//! canary ring to its previous bundle version and fleet values. Every step re-plans to no
//! change.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{snapshot, Tenant};

const SOAK: Duration = Duration::from_secs(3);

fn vars(policy: &str, pct: &str) -> Vec<String> {
    vec!["-var".to_owned(), format!("policy_version={policy}"), "-var".to_owned(), format!("rollout_pct={pct}")]
}

fn run(t: &Tenant, args: &[&str], vars: &[String]) -> crate::support::Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(vars.iter().map(String::as_str));
    t.run_with(&all, &[])
}

fn fleet(t: &Tenant, ring: &str) -> Value {
    crate::full::rows(&t.emulator.get("fleets"), "data")
        .into_iter()
        .find(|f| f["name"] == format!("ring-{ring}"))
        .unwrap_or_else(|| panic!("no fleet ring-{ring}"))
}

/// The newest version of a ring's bundle.
fn bundle(t: &Tenant, ring: &str) -> Value {
    let mut versions: Vec<Value> = crate::full::rows(&t.emulator.get("policy-bundles"), "data")
        .into_iter()
        .filter(|b| b["name"] == format!("guard-{ring}"))
        .collect();
    versions.sort_by_key(|b| b["version"].as_i64().unwrap_or_default());
    versions.pop().unwrap_or_else(|| panic!("no bundle guard-{ring}"))
}

fn wait_out_the_soak(since: Instant) {
    if let Some(left) = (SOAK + Duration::from_millis(300)).checked_sub(since.elapsed()) {
        std::thread::sleep(left);
    }
}

#[test]
fn a_three_stage_rollout_gated_soaked_and_rolled_back() {
    let t = Tenant::from_dir("tests/fixtures/tenants/rollout");
    let v1 = vars("v1", "10");
    // Changes to rollout stages apply one stage at a time, or all at once when asked.
    let refused = run(&t, &["apply", "--auto-approve"], &v1);
    refused.expect_code(1);
    assert!(refused.stderr.contains("with `--stage"), "{}", refused.stderr);
    run(&t, &["apply", "--auto-approve", "--all-stages"], &v1).expect_code(0);

    // The new policy and rollout percentage: the canary ring's plan holds the others back.
    let v2 = vars("v2", "20");
    let plan = run(&t, &["plan", "--stage", "canary", "--format", "markdown"], &v2);
    plan.expect_code(0);
    let body = plan.stdout.split_once("-->\n").map_or(plan.stdout.as_str(), |(_, b)| b);
    snapshot("rollout_canary_markdown", body);
    let early = run(&t, &["apply", "--auto-approve", "--stage", "pilot"], &v2);
    early.expect_code(1);
    assert!(early.stderr.contains("stage `canary` has 2 change(s) not applied"), "{}", early.stderr);

    run(&t, &["apply", "--auto-approve", "--stage", "canary"], &v2).expect_code(0);
    let canary_done = Instant::now();
    run(&t, &["plan", "--stage", "canary", "--detailed-exitcode"], &v2).expect_code(0);
    assert_eq!(fleet(&t, "canary")["rollout_pct"], 20);
    assert_eq!(fleet(&t, "pilot")["rollout_pct"], 10, "the pilot ring changed with the canary");
    assert!(bundle(&t, "canary")["raw_policy"].as_str().unwrap_or_default().contains("# v2"));

    // The canary soaks: the pilot ring waits, and waits again while a fleet reports errors.
    let soaking = run(&t, &["apply", "--auto-approve", "--stage", "pilot"], &v2);
    if canary_done.elapsed() < SOAK {
        soaking.expect_code(1);
        assert!(soaking.stderr.contains("stage `canary` is soaking"), "{}", soaking.stderr);
    }
    let sentinel = t.emulator.post("fleets", json!({"name": "sentinel", "status": "error"}));
    let sentinel_id = sentinel["fleet_id"].as_str().expect("fleet id").to_owned();
    wait_out_the_soak(canary_done);
    let gated = run(&t, &["apply", "--auto-approve", "--stage", "pilot"], &v2);
    gated.expect_code(1);
    assert!(
        gated.stderr.contains("the gate of stage `canary` fails: check.no_fleet_in_error must pass"),
        "{}",
        gated.stderr
    );
    assert_eq!(fleet(&t, "pilot")["rollout_pct"], 10);
    t.emulator.put(&format!("fleets/{sentinel_id}"), json!({"name": "sentinel", "status": "active"}));
    run(&t, &["apply", "--auto-approve", "--stage", "pilot"], &v2).expect_code(0);
    let pilot_done = Instant::now();
    run(&t, &["plan", "--stage", "pilot", "--detailed-exitcode"], &v2).expect_code(0);
    assert_eq!(fleet(&t, "pilot")["rollout_pct"], 20);

    wait_out_the_soak(pilot_done);
    run(&t, &["apply", "--auto-approve", "--stage", "broad"], &v2).expect_code(0);
    run(&t, &["plan", "--detailed-exitcode"], &v2).expect_code(0);
    assert_eq!(fleet(&t, "broad")["rollout_pct"], 20);

    // A regression on the canary ring: its rollback is planned, reviewable and saved like
    // any plan, then applied.
    let rollback = run(&t, &["plan", "--rollback", "--stage", "canary", "--out", "rollback.plan"], &v2);
    rollback.expect_code(0);
    assert!(rollback.stdout.contains("Rollback of stage `canary` of rollout `guard`"), "{}", rollback.stdout);
    assert!(rollback.stdout.contains("~ rollout_pct = 20 -> 10"), "{}", rollback.stdout);
    assert!(rollback.stdout.contains("+ # v1"), "{}", rollback.stdout);
    run(&t, &["apply", "rollback.plan"], &v2).expect_code(0);
    assert_eq!(fleet(&t, "canary")["rollout_pct"], 10);
    let restored = bundle(&t, "canary");
    assert!(restored["raw_policy"].as_str().unwrap_or_default().contains("# v1"), "{restored}");
    assert!(
        restored["version"].as_i64().unwrap_or_default() >= 3,
        "the previous version is published again: {restored}"
    );
    assert_eq!(fleet(&t, "pilot")["rollout_pct"], 20, "the rollback touched another stage");
    run(&t, &["plan", "--rollback", "--stage", "canary", "--detailed-exitcode"], &v2).expect_code(0);
    // `thoth rollback` applies it directly, and has nothing left to do.
    let again = run(&t, &["rollback", "--stage", "canary", "--auto-approve"], &v2);
    again.expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    // The history is in the state.
    let state = t.state();
    let history = &state["rollouts"]["guard"];
    for stage in ["canary", "pilot", "broad"] {
        assert_eq!(history[stage][0]["complete"], true, "{history}");
    }
}
