//! The verification report: a line per item for people, a table for a pull request or an
//! issue, and a versioned JSON document (`schemas/verify.schema.json`) for pipelines.

use std::fmt::Write as _;

use serde_json::json;

use crate::verify::{Report, Status};

/// The version of the JSON report.
pub const VERIFY_FORMAT_VERSION: u32 = 1;

fn totals(report: &Report) -> String {
    format!(
        "{} passed, {} failed, {} skipped{}.",
        report.count(Status::Pass),
        report.count(Status::Fail),
        report.count(Status::Skip),
        match report.count(Status::Error) {
            0 => String::new(),
            n => format!(", {n} could not be read"),
        }
    )
}

pub fn verify_human(report: &Report) -> String {
    let mut out = format!("Verification of tenant `{}`:\n\n", report.tenant_id);
    let width = report.items.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for item in &report.items {
        let _ = writeln!(out, "  {:<5}  {:<width$}  {}", item.status.as_str(), item.name, item.reason);
        for d in &item.details {
            let _ = writeln!(out, "  {:<5}  {:<width$}    - {d}", "", "");
        }
    }
    let _ = writeln!(out, "\n{}", totals(report));
    out
}

pub fn verify_markdown(report: &Report) -> String {
    let mut out = format!("### thoth verify for tenant `{}`\n\n", report.tenant_id);
    let _ = writeln!(out, "| | item | result |\n|---|---|---|");
    for item in &report.items {
        let mark = match item.status {
            Status::Pass => ":white_check_mark:",
            Status::Fail => ":x:",
            Status::Skip => ":fast_forward:",
            Status::Error => ":warning:",
        };
        let mut text = escape(&item.reason);
        for d in &item.details {
            let _ = write!(text, "<br>• {}", escape(d));
        }
        let _ = writeln!(out, "| {mark} | `{}` | {text} |", item.name.replace('`', "'"));
    }
    let _ = writeln!(out, "\n{}", totals(report));
    out
}

/// Text in a table cell: no pipes, markup or line breaks of its own.
fn escape(text: &str) -> String {
    text.replace('\n', " ").replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('|', "\\|")
}

pub fn verify_json(report: &Report) -> String {
    let t = &report.thresholds;
    let doc = json!({
        "format_version": VERIFY_FORMAT_VERSION,
        "thoth_version": env!("CARGO_PKG_VERSION"),
        "tenant_id": report.tenant_id,
        "passed": report.exit_code() == 0,
        "thresholds": {
            "window_hours": t.window_hours,
            "decision_window_hours": t.decision_window_hours,
            "stale_after_seconds": t.stale_after.as_secs(),
            "min_endpoints": t.min_endpoints,
            "require_current_runtime": t.require_current_runtime,
        },
        "summary": {
            "pass": report.count(Status::Pass),
            "fail": report.count(Status::Fail),
            "skip": report.count(Status::Skip),
            "error": report.count(Status::Error),
        },
        "items": report.items.iter().map(|i| json!({
            "name": i.name,
            "group": i.group.as_str(),
            "status": i.status.as_str(),
            "reason": i.reason,
            "details": i.details,
        })).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
