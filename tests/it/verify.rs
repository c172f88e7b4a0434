//! `thoth verify`: the operations guide's checklist against the live tenant, in three formats,
//! passing after apply and failing (exit 4) on a stale endpoint and a failed MDM sync.

use serde_json::{json, Value};

use crate::full::CANARIES;
use crate::support::{repo_path, snapshot, validate, Tenant};

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_path("schemas/verify.schema.json")).expect("schema"))
        .expect("schema JSON")
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap_or_default().to_owned(),
                        i["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn verify_passes_after_apply_and_fails_on_a_stale_endpoint_and_a_failed_sync() {
    let t = Tenant::from_example("full");
    // Before anything is applied, nothing is enrolled and no MDM provider is managed.
    let before = t.run_with(&["verify", "--format", "json"], &CANARIES);
    before.expect_code(4);
    t.run_with(&["apply", "--auto-approve"], &CANARIES).expect_code(0);

    let json_run = t.run_with(&["verify", "--format", "json"], &CANARIES);
    json_run.expect_code(0);
    let report: Value = serde_json::from_str(&json_run.stdout).expect("JSON report");
    let schema = schema();
    assert_eq!(validate(&schema, &schema, &report, "$"), Vec::<String>::new());
    let names: Vec<String> = statuses(&report).into_iter().map(|(n, _)| n).collect();
    for expected in [
        "settings",
        "mdm",
        "endpoints",
        "endpoint_health",
        "webhook",
        "evidence_slos",
        "decision_backfill",
        "check.evidence_slos_met",
    ] {
        assert!(names.iter().any(|n| n == expected), "no `{expected}` in {names:?}");
    }
    assert!(statuses(&report).iter().all(|(_, s)| s == "pass"), "{:?}", statuses(&report));

    // The periodic evidence job runs only the evidence items.
    let evidence = t.run_with(&["verify", "--only", "evidence", "--format", "json"], &CANARIES);
    evidence.expect_code(0);
    let only: Value = serde_json::from_str(&evidence.stdout).expect("JSON report");
    let names: Vec<String> = statuses(&only).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["evidence_slos", "decision_backfill"]);

    // A laptop stops reporting, and the last MDM sync fails.
    t.emulator.request_at(
        reqwest::Method::POST,
        "_emulator/heartbeats",
        Some(json!({"endpoint_id": "ep-claims-002", "seen_at": "2026-01-05T08:00:00Z"})),
    );
    let jamf = |enabled: bool| json!({"provider": "jamf", "name": "Jamf Pro", "enabled": enabled});
    t.emulator.post("mdm/providers", jamf(false));
    let job = t.emulator.post("mdm/providers/jamf/sync", json!({}));
    let job_id = job["job_id"].as_str().expect("job id").to_owned();
    for _ in 0..2 {
        t.emulator.get(&format!("mdm/sync-jobs/{job_id}"));
    }
    t.emulator.post("mdm/providers", jamf(true));

    let human = t.run_with(&["verify"], &CANARIES);
    human.expect_code(4);
    snapshot("verify_failing_human", &human.stdout);
    let markdown = t.run_with(&["verify", "--format", "markdown"], &CANARIES);
    markdown.expect_code(4);
    snapshot("verify_failing_markdown", &markdown.stdout);
    let json_run = t.run_with(&["verify", "--format", "json"], &CANARIES);
    json_run.expect_code(4);
    let report: Value = serde_json::from_str(&json_run.stdout).expect("JSON report");
    assert_eq!(validate(&schema, &schema, &report, "$"), Vec::<String>::new());
    snapshot("verify_failing_json", &json_run.stdout);
    let failed: Vec<String> = statuses(&report).into_iter().filter(|(_, s)| s == "fail").map(|(n, _)| n).collect();
    assert_eq!(failed, ["mdm", "endpoint_health"]);
    // A looser threshold from the command line accepts the quiet laptop.
    let loose = t.run_with(&["verify", "--only", "health", "--stale-after", "10000d"], &CANARIES);
    loose.expect_code(0);
    for (_, canary) in CANARIES {
        assert!(!human.stdout.contains(canary) && !json_run.stdout.contains(canary));
    }
}
