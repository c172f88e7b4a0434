//! Apply under injected network faults: latency, 503 bursts, ambiguous failures (the work is
//! done, then a 500 or a dropped connection) and throttling, one at a time and all at once.
//! Running apply again converges, and the control plane ends up with exactly one of each
//! object with the configured values.

use std::thread;

use reqwest::Method;
use serde_json::Value;

use crate::full::{rows, CANARIES};
use crate::support::Tenant;

/// How many applies a faulty network may need before everything has gone through.
const MAX_APPLIES: usize = 8;

/// Applies the full example until an apply succeeds and a plan shows no change, all through
/// the faulty emulator; returns the tenant and how many applies it took.
fn converge(faults: &[&str]) -> (Tenant, usize) {
    let mut args = vec!["--seed", "7"];
    args.extend_from_slice(faults);
    let t = Tenant::with_emulator_args("examples/full", &args);
    let mut transcripts = Vec::new();
    for attempt in 1..=MAX_APPLIES {
        let apply = t.run_with(&["apply", "--auto-approve"], &CANARIES);
        transcripts.push(apply.transcript());
        // Every run leaves a state file that can be read.
        let _ = t.state();
        if apply.code == 0 {
            let plan = t.run_with(&["plan", "--detailed-exitcode"], &CANARIES);
            if plan.code == 0 {
                return (t, attempt);
            }
            transcripts.push(plan.transcript());
        }
    }
    panic!("no convergence under {faults:?} after {MAX_APPLIES} applies:\n{}", transcripts.join("\n----\n"));
}

/// The control plane holds exactly one of each object of the full example.
pub(crate) fn assert_exactly_one_of_each(t: &Tenant, label: &str) {
    assert_one_of_each_recorded(&t.emulator, &t.state(), label);
}

/// The control plane holds exactly one of each object of the full example, and `state`
/// records the one fleet there is.
pub(crate) fn assert_one_of_each_recorded(e: &crate::support::EmulatorProcess, state: &Value, label: &str) {
    assert_eq!(rows(&e.get("fleets"), "data").len(), 1, "{label}: fleets");
    assert_eq!(rows(&e.get("endpoints"), "data").len(), 2, "{label}: endpoints");
    let keys = rows(&e.get("api-keys"), "api_keys");
    assert_eq!(keys.len(), 3, "{label}: api keys {keys:?}");
    assert_eq!(rows(&e.get("mcp/vendors"), "data").len(), 3, "{label}: vendors");
    assert_eq!(rows(&e.get("mdm/providers"), "data").len(), 1, "{label}: mdm providers");
    assert_eq!(rows(&e.get("browser/policies"), "data").len(), 1, "{label}: browser policies");
    assert_eq!(rows(&e.get("browser/enrollments"), "data").len(), 1, "{label}: browser enrollments");
    assert_eq!(rows(&e.get("policy-exceptions"), "data").len(), 1, "{label}: exceptions");
    let bundles = rows(&e.get("policy-bundles"), "data");
    for name in ["mcp-guardrails", "claims-least-privilege", "exception-figma-export"] {
        let versions: Vec<&Value> = bundles.iter().filter(|b| b["name"] == name).collect();
        assert_eq!(versions.len(), 1, "{label}: versions of bundle {name}: {versions:?}");
    }
    let artifact = e.get("policy-change-artifacts/exc-figma-export");
    assert_eq!(artifact["apply_count"], 1, "{label}: artifact applied once: {artifact}");
    let packs = rows(&e.get("agents/agent-claims-bot/packs"), "packs");
    assert_eq!(packs.len(), 1, "{label}: pack assignments");
    assert_eq!(e.get("settings")["compliance_profile"], "soc2", "{label}");
    assert_eq!(e.get("mcp/vendors/pastebin")["approved"], false, "{label}");
    let pricing = e.request_at(Method::GET, "billing/pricing", None);
    assert_eq!(pricing["pilot_package"]["overage_cap_usd"], 2500.0, "{label}");
    // Every recorded object is the one on the control plane.
    let fleet = state["resources"].as_array().and_then(|rs| rs.iter().find(|r| r["address"] == "thoth_fleet.claims"));
    assert_eq!(fleet.map(|f| f["id"].clone()), Some(rows(&e.get("fleets"), "data")[0]["fleet_id"].clone()), "{label}");
}

#[test]
fn apply_converges_to_exactly_one_of_each_object_under_every_fault() {
    let matrix: [(&str, &[&str]); 5] = [
        ("latency", &["--latency-ms", "20"]),
        ("errors", &["--error-rate", "0.3"]),
        ("ambiguous", &["--ambiguous-rate", "0.3"]),
        ("throttle", &["--throttle-rps", "15"]),
        ("all", &["--latency-ms", "10", "--error-rate", "0.15", "--ambiguous-rate", "0.15", "--throttle-rps", "25"]),
    ];
    let results: Vec<(String, Tenant, usize)> = thread::scope(|s| {
        let handles: Vec<_> = matrix
            .iter()
            .map(|(label, faults)| {
                s.spawn(move || {
                    let (t, applies) = converge(faults);
                    (label.to_string(), t, applies)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("fault run")).collect()
    });
    for (label, mut t, applies) in results {
        // Checked without faults, on the same data.
        t.restart_emulator();
        assert_exactly_one_of_each(&t, &format!("{label} ({applies} applies)"));
        t.run_with(&["plan", "--detailed-exitcode"], &CANARIES).expect_code(0);
    }
}

/// The contract's fault matrix: 20% server errors, 10% ambiguous failures, 40 requests a
/// second. A plan succeeds every time, and one apply converges for almost every seed.
const MATRIX: [&str; 6] = ["--error-rate", "0.2", "--ambiguous-rate", "0.1", "--throttle-rps", "40"];

/// One seed of the matrix: whether the plan succeeded and whether a single apply converged
/// (checked against the same data without faults); the control plane never holds a
/// duplicate either way.
fn one_apply(seed: u32) -> (bool, bool, String) {
    let seed_text = seed.to_string();
    let mut args = vec!["--seed", seed_text.as_str()];
    args.extend_from_slice(&MATRIX);
    let mut t = Tenant::with_emulator_args("examples/full", &args);
    let plan = t.run_with(&["plan", "--detailed-exitcode"], &CANARIES);
    let apply = t.run_with(&["apply", "--auto-approve"], &CANARIES);
    t.restart_emulator();
    let converged = apply.code == 0 && t.run_with(&["plan", "--detailed-exitcode"], &CANARIES).code == 0;
    if !converged {
        // A second apply, fault-free, must finish the job without a duplicate.
        t.run_with(&["apply", "--auto-approve"], &CANARIES).expect_code(0);
    }
    assert_exactly_one_of_each(&t, &format!("seed {seed}"));
    (plan.code == 2, converged, format!("seed {seed}:\n{}\n{}", plan.transcript(), apply.transcript()))
}

#[test]
fn under_the_fault_matrix_a_plan_always_succeeds_and_one_apply_converges() {
    // `THOTH_FAULT_SEEDS=20` runs the longer measure the contract's target is stated for.
    let count = std::env::var("THOTH_FAULT_SEEDS").ok().and_then(|n| n.parse().ok()).unwrap_or(6u32);
    let seeds: Vec<u32> = (1..=count).collect();
    let results: Vec<(bool, bool, String)> = thread::scope(|s| {
        seeds
            .iter()
            .map(|seed| s.spawn(move || one_apply(*seed)))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("seed"))
            .collect()
    });
    let failed_plans: Vec<&String> = results.iter().filter(|r| !r.0).map(|r| &r.2).collect();
    assert!(
        failed_plans.is_empty(),
        "plans failed:\n{}",
        failed_plans.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    let unconverged: Vec<&String> = results.iter().filter(|r| !r.1).map(|r| &r.2).collect();
    assert!(
        // The contract's target is 19 of 20 seeds: one seed of a short run may need more.
        unconverged.len() <= (seeds.len() / 20).max(1),
        "{} of {} seeds needed a second apply:\n{}",
        unconverged.len(),
        seeds.len(),
        unconverged.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}
