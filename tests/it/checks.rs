//! Check blocks and conditions: their results in every plan format and after apply, a
//! failing check as a warning or, with `--fail-on-check`, an error; failing preconditions as
//! errors; and the JSON event stream of plans and of an apply with a failure, each line
//! validated against `schemas/events.schema.json`.

use serde_json::Value;

use crate::full::CANARIES;
use crate::support::{repo_path, snapshot, validate, Tenant};

fn schema(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_path(&format!("schemas/{name}"))).expect("schema"))
        .expect("schema JSON")
}

/// Parses a stream and checks every line against the events schema.
fn events(stdout: &str) -> Vec<Value> {
    let schema = schema("events.schema.json");
    let mut out = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
        let problems = validate(&schema, &schema, &event, &format!("line {}", i + 1));
        assert!(problems.is_empty(), "{problems:#?}\n{line}");
        out.push(event);
    }
    assert_eq!(out.first().map(|e| e["type"].clone()), Some(Value::from("version")), "{stdout}");
    out
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

#[test]
fn checks_pass_and_fail_in_every_plan_format_and_after_apply() {
    let t = Tenant::from_dir("tests/fixtures/tenants/checks");
    // Before the first apply: the data source lists no fleet yet, and `self.id` is unknown.
    let human = t.run_with(&["plan", "-var", "pilot_pct=40"], &[]);
    human.expect_code(0);
    snapshot("checks_plan_human", &human.stdout);
    assert!(human.stderr.contains("warning: check.rollout_within_policy failed"), "{}", human.stderr);
    let markdown = t.run_with(&["plan", "-var", "pilot_pct=40", "--format", "markdown"], &[]);
    markdown.expect_code(0);
    let body = markdown.stdout.split_once("-->\n").map_or(markdown.stdout.as_str(), |(_, b)| b);
    snapshot("checks_plan_markdown", body);
    let json = t.run_with(&["plan", "-var", "pilot_pct=40", "--format", "json"], &[]);
    json.expect_code(0);
    let doc: Value = serde_json::from_str(&json.stdout).expect("JSON plan");
    let plan_schema = schema("plan.schema.json");
    assert_eq!(validate(&plan_schema, &plan_schema, &doc, "$"), Vec::<String>::new());
    let status = |doc: &Value, address: &str, kind: &str| {
        doc["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["address"] == address && c["kind"] == kind))
            .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(status(&doc, "check.rollout_within_policy", "check"), "fail");
    assert_eq!(status(&doc, "check.fleets_listed", "check"), "fail");
    assert_eq!(status(&doc, "thoth_fleet.pilot", "precondition"), "pass");
    assert_eq!(status(&doc, "thoth_fleet.pilot", "postcondition"), "unknown");
    assert_eq!(status(&doc, "output.pilot_fleet", "precondition"), "pass");
    assert_eq!(doc["outputs"][0]["value"]["value"], "pilot-laptops", "{}", doc["outputs"]);

    // `--fail-on-check` turns the failures into an error, for plan and for apply.
    let strict = t.run_with(&["plan", "-var", "pilot_pct=40", "--fail-on-check"], &[]);
    strict.expect_code(1);
    assert!(strict.stderr.contains("2 check(s) failed, and `--fail-on-check` was given"), "{}", strict.stderr);
    let refused = t.run_with(&["apply", "--auto-approve", "-var", "pilot_pct=40", "--fail-on-check"], &[]);
    refused.expect_code(1);
    assert!(t.emulator.get("fleets")["data"].as_array().is_some_and(Vec::is_empty), "applied despite the checks");

    // A failing check only warns: the apply goes ahead, and afterwards every check is known;
    // the one that depended on the tenant passes now that the fleet exists.
    let apply = t.run_with(&["apply", "--auto-approve"], &[]);
    apply.expect_code(0);
    assert!(apply.stderr.contains("warning: check.fleets_listed failed"), "{}", apply.stderr);
    assert!(apply.stdout.contains("Apply complete: 1 created"), "{}", apply.stdout);
    assert!(apply.stdout.contains("Checks: 5 passed, 0 failed, 0 known after apply."), "{}", apply.stdout);
    t.run_with(&["apply", "--auto-approve", "--fail-on-check"], &[]).expect_code(0);
    let replan = t.run_with(&["plan", "--format", "json", "--detailed-exitcode"], &[]);
    replan.expect_code(0);
    let doc: Value = serde_json::from_str(&replan.stdout).expect("JSON plan");
    assert!(doc["checks"].as_array().is_some_and(|c| c.iter().all(|c| c["status"] == "pass")), "{}", doc["checks"]);

    // A failed precondition stops the plan where the condition is written.
    let bad = t.run_with(&["plan", "-var", "pilot_pct=140"], &[]);
    bad.expect_code(1);
    assert!(
        bad.stderr.contains("precondition of `thoth_fleet.pilot` failed: A rollout cannot exceed 100%."),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("main.tf:21:5"), "{}", bad.stderr);
}

#[test]
fn the_json_stream_of_plans_and_of_an_apply_with_a_failure_validates() {
    let t = Tenant::from_example("full");
    // An exception recorded by hand under the id the configuration chooses: its create fails.
    t.emulator.post(
        "policy-exceptions",
        serde_json::json!({"request_id": "exc-figma-export", "violation_id": "vio-other", "requested_by": "bob@example.com",
               "business_justification": "By hand.", "frequency_estimate": "once", "data_sensitivity": "low"}),
    );
    let plan = t.run_with(&["plan", "-json"], &CANARIES);
    plan.expect_code(0);
    let planned = events(&plan.stdout);
    assert!(!of_type(&planned, "planned_change").is_empty());
    assert_eq!(of_type(&planned, "change_summary")[0]["changes"]["operation"], "plan");

    // Apply refuses to stream without a way to approve.
    let refused = t.run_with(&["apply", "-json"], &CANARIES);
    refused.expect_code(1);
    let said = events(&refused.stdout);
    assert!(of_type(&said, "diagnostic")[0]["diagnostic"]["summary"]
        .as_str()
        .unwrap_or_default()
        .contains("--auto-approve"));

    let apply = t.run_with(&["apply", "-json", "-auto-approve"], &CANARIES);
    apply.expect_code(1);
    let applied = events(&apply.stdout);
    let errored = of_type(&applied, "apply_errored");
    assert_eq!(errored.len(), 1, "{}", apply.stdout);
    assert_eq!(errored[0]["hook"]["resource"]["addr"], "thoth_policy_exception.figma_export");
    assert!(errored[0]["hook"]["error"].as_str().unwrap_or_default().contains("409"), "{}", errored[0]);
    let complete = of_type(&applied, "apply_complete");
    assert!(complete.len() > 10, "{}", apply.stdout);
    assert_eq!(of_type(&applied, "apply_start").len(), complete.len() + errored.len());
    let progress = of_type(&applied, "apply_progress");
    let last = progress.last().expect("progress events");
    assert_eq!(last["progress"]["done"], last["progress"]["total"]);
    assert!(last["progress"]["failed"].as_u64().unwrap_or_default() >= 1);
    let summary = of_type(&applied, "change_summary");
    assert_eq!(summary.last().map(|s| s["changes"]["operation"].clone()), Some(Value::from("apply")));
    // Nothing but the stream on standard output, and no secret anywhere in it.
    for (_, canary) in CANARIES {
        assert!(!apply.stdout.contains(canary) && !plan.stdout.contains(canary), "{canary} leaked into the stream");
    }
}
