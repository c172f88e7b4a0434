//! Apply killed with SIGKILL at many moments: every kill leaves a state file that can be read,
//! the next apply takes over the dead run's lock, looks up the creates it may have sent, and
//! the tenant converges with exactly one of each object.

use std::thread;
use std::time::Duration;

use crate::faults::assert_exactly_one_of_each;
use crate::full::CANARIES;
use crate::support::Tenant;

/// Distinct moments, in milliseconds after the start of apply, at which it is killed.
fn moments() -> Vec<u64> {
    (0..24).map(|k| 60 + k * 55).collect()
}

/// Kills an apply of the full example after `delay_ms`, checks what it left, then kills a
/// second apply a little later, and finally applies to the end.
fn kill_and_converge(delay_ms: u64) -> Result<(), String> {
    let t = Tenant::with_emulator_args("examples/full", &["--latency-ms", "40"]);
    for delay in [delay_ms, delay_ms / 2 + 30] {
        let mut child = t.spawn_with(&["apply", "--auto-approve"], &CANARIES);
        thread::sleep(Duration::from_millis(delay));
        // SIGKILL: the process gets no chance to clean up.
        let _ = child.kill();
        let _ = child.wait();
        for file in ["thoth.state.json", "thoth.state.json.backup"] {
            let text = t.read(file);
            if !text.is_empty() && serde_json::from_str::<serde_json::Value>(&text).is_err() {
                return Err(format!("kill at {delay} ms left an unreadable `{file}`:\n{text}"));
            }
        }
    }
    let apply = t.run_with(&["apply", "--auto-approve"], &CANARIES);
    if apply.code != 0 {
        return Err(format!("apply after the kills at {delay_ms} ms failed:\n{}", apply.transcript()));
    }
    let plan = t.run_with(&["plan", "--detailed-exitcode"], &CANARIES);
    if plan.code != 0 {
        return Err(format!("no convergence after the kills at {delay_ms} ms:\n{}", plan.transcript()));
    }
    let result = std::panic::catch_unwind(|| assert_exactly_one_of_each(&t, &format!("killed at {delay_ms} ms")));
    result.map_err(|e| {
        e.downcast_ref::<String>().cloned().unwrap_or_else(|| format!("duplicates after a kill at {delay_ms} ms"))
    })
}

#[test]
fn apply_killed_at_two_dozen_moments_never_duplicates_or_loses_an_object() {
    let moments = moments();
    let mut failures = Vec::new();
    // Four tenants at a time, each with its own emulator.
    for chunk in moments.chunks(4) {
        let results: Vec<Result<(), String>> = thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|d| s.spawn(move || kill_and_converge(*d))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("panicked".to_owned()))).collect()
        });
        failures.extend(results.into_iter().filter_map(Result::err));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn two_concurrent_applies_cannot_both_write() {
    let t = Tenant::with_emulator_args("examples/full", &["--latency-ms", "40"]);
    let first = t.spawn_with(&["apply", "--auto-approve"], &CANARIES);
    thread::sleep(Duration::from_millis(150));
    let second = t.run_with(&["apply", "--auto-approve"], &CANARIES);
    second.expect_code(1);
    assert!(second.stderr.contains("locked"), "{}", second.stderr);
    let status = first.wait_with_output().expect("first apply").status;
    assert!(status.success(), "the first apply finishes: {status}");
    assert_exactly_one_of_each(&t, "after two concurrent applies");
    t.run_with(&["plan", "--detailed-exitcode"], &CANARIES).expect_code(0);
}

#[test]
fn sigint_mid_apply_stops_scheduling_and_saves_what_finished() {
    let t = Tenant::with_emulator_args("examples/full", &["--latency-ms", "150"]);
    let child = t.spawn_with(&["apply", "--auto-approve", "--parallelism", "2"], &CANARIES);
    thread::sleep(Duration::from_millis(900));
    let sent = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill -INT");
    assert!(sent.success());
    let output = child.wait_with_output().expect("interrupted apply");
    assert_eq!(output.status.code(), Some(1), "an interrupted apply fails");
    let state = t.state();
    let recorded = state["resources"].as_array().map_or(0, Vec::len);
    assert!(recorded > 0, "what finished before the interrupt is recorded");
    assert!(recorded < 31, "the interrupt stopped the apply early ({recorded} recorded)");
    assert!(!t.path().join("thoth.state.json.lock").exists(), "the lock is released");
    // The next apply finishes the job without duplicates.
    t.run_with(&["apply", "--auto-approve"], &CANARIES).expect_code(0);
    assert_exactly_one_of_each(&t, "after an interrupted apply");
}

#[test]
fn changes_finished_but_not_yet_in_the_state_file_are_replayed_from_the_journal() {
    let t = Tenant::from_example("full");
    t.run_with(&["apply", "--auto-approve"], &CANARIES).expect_code(0);
    // As a kill leaves it: the fleet's entry only in the journal, not in the state file.
    let mut state = t.state();
    let resources = state["resources"].as_array_mut().expect("resources");
    let at = resources.iter().position(|r| r["address"] == "thoth_fleet.claims").expect("fleet entry");
    let fleet = resources.remove(at);
    t.write("thoth.state.json", &serde_json::to_string_pretty(&state).expect("state"));
    let mut entry = fleet.clone();
    let entry_map = entry.as_object_mut().expect("entry");
    entry_map.remove("address");
    let line = serde_json::json!({"done": "thoth_fleet.claims", "entry": entry});
    t.write("thoth.state.json.journal", &format!("{line}\n{{\"done\": \"thoth_fl"));
    // The plan sees the fleet as created; apply records it and empties the journal.
    t.run_with(&["plan", "--detailed-exitcode"], &CANARIES).expect_code(0);
    t.run_with(&["apply", "--auto-approve"], &CANARIES).expect_code(0);
    assert_eq!(t.recorded("thoth_fleet.claims")["id"], fleet["id"]);
    assert!(!t.path().join("thoth.state.json.journal").exists());
    assert_exactly_one_of_each(&t, "after replaying the journal");
}
