//! The machine-readable event stream of `plan --json` and `apply --json`: one JSON object
//! per line, in the shape of Terraform's (`@level`, `@message`, `@module`, `@timestamp`,
//! `type`), described by `schemas/events.schema.json`. Secrets appear only as
//! `{"kind": "sensitive"}`, as in the JSON plan.

use serde_json::{json, Map, Value as Json};

use super::json::{action_name, change, check, output};
use crate::apply::{Outcome, Step};
use crate::config::{CheckResult, CheckStatus, SourceFile};
use crate::diag::{Diagnostic, Severity};
use crate::model::{Address, Value};
use crate::plan::{Action, Plan};

/// The version of the stream's format.
pub const UI_VERSION: &str = "1.0";

/// One event before it is stamped with the time it happened.
#[derive(Debug, Clone)]
pub struct Event {
    pub level: &'static str,
    pub message: String,
    pub kind: &'static str,
    pub fields: Map<String, Json>,
}

impl Event {
    fn new(level: &'static str, message: String, kind: &'static str, fields: Json) -> Event {
        let fields = match fields {
            Json::Object(map) => map,
            _ => Map::new(),
        };
        Event { level, message, kind, fields }
    }

    /// The event as one line of the stream, stamped with `timestamp` (RFC 3339).
    pub fn line(&self, timestamp: &str) -> String {
        let mut map = Map::new();
        map.insert("@level".to_owned(), json!(self.level));
        map.insert("@message".to_owned(), json!(self.message));
        map.insert("@module".to_owned(), json!("thoth.ui"));
        map.insert("@timestamp".to_owned(), json!(timestamp));
        map.insert("type".to_owned(), json!(self.kind));
        map.extend(self.fields.clone());
        let mut text = Json::Object(map).to_string();
        text.push('\n');
        text
    }
}

pub fn version() -> Event {
    let v = env!("CARGO_PKG_VERSION");
    Event::new("info", format!("thoth {v}"), "version", json!({ "thoth": v, "ui": UI_VERSION }))
}

/// Every event a plan makes: its changes, its check results, its summary and its outputs.
pub fn plan_events(plan: &Plan) -> Vec<Event> {
    let mut events: Vec<Event> = super::plan::shown_changes(plan)
        .into_iter()
        .map(|c| {
            Event::new(
                "info",
                format!("{}: plan to {}", c.address, action_name(c.action)),
                "planned_change",
                json!({ "change": change(c) }),
            )
        })
        .collect();
    events.extend(plan.checks.iter().map(check_event));
    events.push(summary(plan, "plan", None));
    events.push(outputs(&plan.outputs));
    events
}

pub fn check_event(c: &CheckResult) -> Event {
    let (level, said) = match c.status {
        CheckStatus::Pass => ("info", "passed".to_owned()),
        CheckStatus::Fail => ("warn", format!("failed: {}", c.messages.join("; "))),
        CheckStatus::Unknown => ("info", "known after apply".to_owned()),
    };
    Event::new(level, format!("{} {said}", super::plan::check_name(c)), "check_result", json!({ "check": check(c) }))
}

/// The counts of a plan, or with `done` those of an apply: how many of each action ran.
pub fn summary(plan: &Plan, operation: &str, done: Option<&[Step]>) -> Event {
    let count = |a: Action| match done {
        Some(steps) => steps.iter().filter(|s| s.action == a && s.outcome == Outcome::Done).count(),
        None => plan.changes.iter().filter(|c| c.action == a).count(),
    };
    let s = plan.summary();
    let (add, change, replace, remove, forget, run) = (
        count(Action::Create),
        count(Action::Update),
        count(Action::Replace),
        count(Action::Delete),
        count(Action::Forget),
        count(Action::Run),
    );
    let message = match operation {
        "apply" => format!("Apply complete: {add} created, {change} updated, {replace} replaced, {remove} deleted, {forget} forgotten, {run} ran"),
        _ => format!("Plan: {add} to create, {change} to update, {replace} to replace, {remove} to delete, {forget} to forget, {run} to run"),
    };
    Event::new(
        "info",
        message,
        "change_summary",
        json!({ "changes": {
            "add": add, "change": change, "replace": replace, "remove": remove, "forget": forget, "run": run,
            "import": s.import, "operation": operation,
        }}),
    )
}

pub fn outputs(values: &[(String, Value, bool)]) -> Event {
    let list: Vec<Json> = values.iter().map(|(n, v, s)| output(n, v, *s)).collect();
    Event::new("info", format!("Outputs: {}", values.len()), "outputs", json!({ "outputs": list }))
}

fn hook(address: &Address, action: Action) -> Json {
    json!({ "resource": { "addr": address.to_string(), "type": address.type_name, "name": address.name }, "action": action_name(action) })
}

pub fn apply_start(address: &Address, action: Action) -> Event {
    Event::new(
        "info",
        format!("{address}: {}…", super::running_text(action)),
        "apply_start",
        json!({ "hook": hook(address, action) }),
    )
}

/// A finished step: completed, errored, or skipped because something it needs failed.
pub fn apply_finished(step: &Step) -> Event {
    let mut h = hook(&step.address, step.action);
    h["elapsed_seconds"] = json!(step.elapsed.as_secs_f64());
    match &step.outcome {
        Outcome::Done => Event::new("info", super::step_line(step), "apply_complete", json!({ "hook": h })),
        Outcome::Failed(e) => {
            h["error"] = json!(e);
            Event::new("error", super::step_line(step), "apply_errored", json!({ "hook": h }))
        }
        Outcome::Skipped(why) => {
            h["reason"] = json!(why);
            Event::new("warn", super::step_line(step), "apply_skipped", json!({ "hook": h }))
        }
    }
}

/// The overall counter of an apply.
pub fn apply_progress(done: usize, total: usize, failed: usize, elapsed: std::time::Duration) -> Event {
    Event::new(
        "info",
        format!("{done} of {total} done, {failed} failed, {}s", elapsed.as_secs()),
        "apply_progress",
        json!({ "progress": { "done": done, "total": total, "failed": failed, "elapsed_seconds": elapsed.as_secs_f64() } }),
    )
}

/// A diagnostic, with the place in its file when it has one.
pub fn diagnostic(files: &[SourceFile], d: &Diagnostic) -> Event {
    let severity = if d.severity == Severity::Error { "error" } else { "warning" };
    let mut body = json!({ "severity": severity, "summary": d.message, "detail": d.help.clone().unwrap_or_default() });
    if let Some((span, file)) = d.span.and_then(|s| files.get(s.file).map(|f| (s, f))) {
        let place = |at: usize| {
            let at = at.min(file.text.len());
            let before = &file.text[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            json!({ "line": line, "column": column, "byte": at })
        };
        body["range"] = json!({ "filename": file.name, "start": place(span.start), "end": place(span.end) });
    }
    let level = if d.severity == Severity::Error { "error" } else { "warn" };
    Event::new(level, format!("{severity}: {}", d.message), "diagnostic", json!({ "diagnostic": body }))
}

/// An error that is not about a place in a file, with its hint.
pub fn failure(message: &str, hint: Option<&str>) -> Event {
    Event::new(
        "error",
        format!("error: {message}"),
        "diagnostic",
        json!({ "diagnostic": { "severity": "error", "summary": message, "detail": hint.unwrap_or_default() } }),
    )
}
