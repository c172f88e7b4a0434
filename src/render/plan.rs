//! The human plan, apply progress lines, the apply report and outputs.

use std::fmt::Write as _;

use super::value_text;
use crate::apply::{Outcome, Report, Step};
use crate::config::{CheckKind, CheckResult, CheckStatus};
use crate::model::Value;
use crate::plan::rollout::{RolloutView, StageView};
use crate::plan::{Action, AttrChange, Change, Impact, Plan, Shown};
use crate::vecmap::VecMap;

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Replace => "-/+",
        Action::Delete => "-",
        Action::Forget => "⊘",
        Action::Run => "!",
        Action::Read => "<=",
        Action::NoOp => " ",
    }
}

/// What the change does, as the end of a sentence whose subject is its address.
pub(crate) fn action_text(c: &Change) -> &'static str {
    if c.outside {
        return if c.action == Action::Forget { "was deleted outside thoth" } else { "was changed outside thoth" };
    }
    if c.import.is_some() {
        return match c.action {
            Action::Update => "will be imported and updated in place",
            Action::Replace => "will be imported and replaced",
            _ => "will be imported",
        };
    }
    if c.moved_from.is_some() {
        return match c.action {
            Action::Update => "has moved and will be updated in place",
            Action::Replace => "has moved and must be replaced",
            _ => "has moved",
        };
    }
    match (c.action, c.soft) {
        (Action::Create, _) => "will be created",
        (Action::Update, _) => "will be updated in place",
        (Action::Replace, _) => "must be replaced",
        (Action::Delete, true) => "will be disabled (soft delete)",
        (Action::Delete, false) => "will be deleted",
        (Action::Forget, _) => "will be forgotten (no remote call)",
        (Action::Run, _) => "will run",
        (Action::Read, _) => "will be read during apply",
        (Action::NoOp, _) => "is up to date",
    }
}

fn headline(c: &Change) -> String {
    let what = action_text(c);
    let impact = match c.impact() {
        Impact::Neutral => String::new(),
        other => format!(" [{}]", other.label()),
    };
    format!("# {} {what}{impact}", c.address)
}

/// JSON text pretty-printed with sorted keys, when `text` is a JSON object or array.
pub(crate) fn pretty_json(text: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(text).ok()?;
    if !(json.is_object() || json.is_array()) {
        return None;
    }
    serde_json::to_string_pretty(&crate::remote::mapping::canonical(&json)).ok()
}

/// A line diff of two long or structured texts (JSON compared with sorted keys), or `None`
/// when the values are short enough to show on one line.
pub(crate) fn text_diff(before: &str, after: &str) -> Option<Vec<String>> {
    let (b, a) = match (pretty_json(before), pretty_json(after)) {
        (Some(b), Some(a)) => (b, a),
        _ if before.contains('\n') || after.contains('\n') || before.len() + after.len() > 120 => {
            (before.to_owned(), after.to_owned())
        }
        _ => return None,
    };
    let diff = similar::TextDiff::from_lines(&b, &a);
    let mut lines = Vec::new();
    // Three lines of context around each change; skipped stretches are marked.
    for (n, group) in diff.grouped_ops(3).iter().enumerate() {
        if n > 0 {
            lines.push("  ...".to_owned());
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                lines.push(format!("{sign} {}", change.value().trim_end_matches('\n')));
            }
        }
    }
    Some(lines)
}

/// The text of one attribute line (or block), without its leading indentation.
fn attr_text(c: &Change, a: &AttrChange, indent: usize) -> (char, String) {
    let pad = " ".repeat(indent + 4);
    let block = |lines: Vec<String>| {
        let mut text = String::from("<<-DIFF\n");
        for l in lines {
            let _ = writeln!(text, "{}", format!("{pad}{l}").trim_end());
        }
        let _ = write!(text, "{}DIFF", " ".repeat(indent + 2));
        text
    };
    let new = |after: &Shown| match after {
        Shown::Value(Value::String(s)) => match pretty_json(s) {
            Some(p) => block(p.lines().map(|l| format!("  {l}")).collect()),
            None => shown_text(after, indent),
        },
        other => shown_text(other, indent),
    };
    match (&a.before, &a.after) {
        (Shown::Absent, after) => ('+', new(after)),
        _ if matches!(c.action, Action::Create | Action::Run) && matches!(a.before, Shown::Absent) => {
            ('+', new(&a.after))
        }
        (Shown::Sensitive, Shown::Sensitive) => ('~', "(sensitive value changed)".to_owned()),
        (Shown::Value(Value::String(b)), Shown::Value(Value::String(af))) => match text_diff(b, af) {
            Some(lines) => ('~', block(lines)),
            None => ('~', format!("{} -> {}", shown_text(&a.before, indent), shown_text(&a.after, indent))),
        },
        (Shown::Value(Value::Map(b)), Shown::Value(Value::Map(af))) => ('~', block(map_diff(b, af))),
        (before, after) => ('~', format!("{} -> {}", shown_text(before, indent), shown_text(after, indent))),
    }
}

/// A map compared key by key: only added, removed and changed keys, in key order.
fn map_diff(before: &VecMap<String, Value>, after: &VecMap<String, Value>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (before.get(k), after.get(k)) {
            (Some(b), Some(a)) if b == a => None,
            (Some(b), Some(a)) => Some(format!("~ {k:?} = {} -> {}", value_text(b, 0), value_text(a, 0))),
            (None, Some(a)) => Some(format!("+ {k:?} = {}", value_text(a, 0))),
            (Some(b), None) => Some(format!("- {k:?} = {}", value_text(b, 0))),
            (None, None) => None,
        })
        .collect()
}

fn shown_text(s: &Shown, indent: usize) -> String {
    match s {
        Shown::Absent => "null".to_owned(),
        Shown::Value(v) => value_text(v, indent),
        Shown::Sensitive => "(sensitive value)".to_owned(),
        Shown::Unknown => "(known after apply)".to_owned(),
    }
}

/// The plan as a reviewer reads it in a terminal or a CI log.
pub fn plan_human(plan: &Plan) -> String {
    let mut out = String::new();
    let changes = shown_changes(plan);
    if changes.is_empty() && plan.refresh_only {
        let _ = writeln!(out, "No changes outside thoth. The state matches tenant `{}`.", plan.tenant_id);
        return out;
    }
    if changes.is_empty() {
        if let Some(view) = &plan.rollout {
            let _ = writeln!(out, "{}", rollout_lines(view));
        }
        let _ = writeln!(out, "No changes. Tenant `{}` matches the configuration.", plan.tenant_id);
        if let Some(line) = unmanaged_line(plan) {
            let _ = writeln!(out, "\n{line}");
        }
        if !plan.checks.is_empty() {
            let _ = write!(out, "\n{}", checks(&plan.checks));
        }
        return out;
    }
    if let Some(view) = &plan.rollout {
        out.push_str(&rollout_lines(view));
        out.push('\n');
    }
    if plan.refresh_only {
        let _ = writeln!(
            out,
            "These objects of tenant `{}` changed outside thoth; applying this refresh-only plan records them in the state and changes nothing on the tenant:",
            plan.tenant_id
        );
    } else {
        let _ = writeln!(out, "thoth will perform the following actions on tenant `{}`:", plan.tenant_id);
    }
    for c in changes {
        out.push('\n');
        out.push_str(&change_block(c));
    }
    out.push('\n');
    if let Some(line) = unmanaged_line(plan) {
        let _ = writeln!(out, "{line}");
    }
    if !plan.checks.is_empty() {
        let _ = writeln!(out, "{}", checks(&plan.checks));
    }
    let _ = writeln!(out, "{}", summary_line(plan));
    let _ = writeln!(out, "{}", impact_line(plan));
    super::terminal_safe(out)
}

/// The changes a plan shows, destroys and replacements first, then by address.
pub(crate) fn shown_changes(plan: &Plan) -> Vec<&Change> {
    let mut cs: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp || c.import.is_some() || c.moved_from.is_some())
        .collect();
    cs.sort_by(|a, b| a.action.cmp(&b.action).then_with(|| a.address.cmp(&b.address)));
    cs
}

/// How many objects of the types in use the tenant holds outside configuration and state.
pub(crate) fn unmanaged_line(plan: &Plan) -> Option<String> {
    if plan.unmanaged.is_empty() {
        return None;
    }
    let counts: Vec<String> = plan.unmanaged.iter().map(|(t, ids)| format!("{} × {t}", ids.len())).collect();
    Some(format!("Unmanaged: {} (in the tenant, in neither the configuration nor the state).", counts.join(", ")))
}

/// The summary line of a plan.
pub(crate) fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    if plan.refresh_only {
        return format!(
            "Refresh-only plan: {} changed and {} deleted outside thoth; nothing to change on the tenant.",
            s.update, s.forget
        );
    }
    let mut adopted = String::new();
    if s.import > 0 {
        adopted.push_str(&format!("{} to import, ", s.import));
    }
    if s.moved > 0 {
        adopted.push_str(&format!("{} moved, ", s.moved));
    }
    format!(
        "Plan: {adopted}{} to create, {} to update, {} to replace, {} to delete, {} to forget{}.",
        s.create,
        s.update,
        s.replace,
        s.delete,
        s.forget,
        if s.run > 0 { format!(", {} action(s) to run", s.run) } else { String::new() }
    )
}

/// One change as a block of HCL-like lines: the headline, notes and changed attributes.
pub(crate) fn change_block(c: &Change) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  {}", headline(c));
    if let Some(id) = &c.import {
        let _ = writeln!(out, "  # (imported from the tenant's `{id}`; nothing is created)");
    }
    if let Some(from) = &c.moved_from {
        let _ = writeln!(out, "  # (moved from `{from}`; the object on the tenant stays as it is)");
    }
    if let Some(note) = &c.note {
        let _ = writeln!(out, "  # ({note})");
    }
    if c.drifted && c.action != Action::Create {
        let _ = writeln!(out, "  # (changed outside thoth since the last apply)");
    }
    let block = if c.kind == crate::schema::Kind::DataSource { "data" } else { "resource" };
    let _ = writeln!(out, "  {} {block} \"{}\" \"{}\" {{", symbol(c.action), c.address.type_name, c.address.name);
    let width = c
        .attrs
        .iter()
        .map(|a| a.name.len())
        .chain(c.identifying.iter().map(|(n, _)| n.len()))
        .max()
        .unwrap_or(0)
        .max(2);
    for (name, value) in &c.identifying {
        let _ = writeln!(out, "        {name:<width$} = {}", value_text(value, 8));
    }
    for a in &c.attrs {
        let (sym, text) = attr_text(c, a, 6);
        let mut notes = Vec::new();
        if a.forces_replacement && c.action == Action::Replace {
            notes.push("forces replacement");
        }
        // A create names the attributes that loosen; what it tightens is its purpose.
        if a.impact == Impact::Loosens || (a.impact == Impact::Tightens && c.action != Action::Create) {
            notes.push(a.impact.label());
        }
        if a.drift {
            notes.push("changed outside thoth");
        }
        let notes = if notes.is_empty() { String::new() } else { format!(" # {}", notes.join(", ")) };
        let _ = writeln!(out, "      {sym} {:<width$} = {text}{notes}", a.name);
    }
    if matches!(c.action, Action::Create | Action::Run) && !matches!(c.id_after, Shown::Absent) {
        let _ = writeln!(out, "      + {:<width$} = {}", "id", shown_text(&c.id_after, 8));
    }
    let _ = writeln!(out, "    }}");
    out
}

/// How many changes loosen, tighten or cannot be judged.
pub(crate) fn impact_counts(plan: &Plan) -> [(Impact, usize); 3] {
    let count = |i: Impact| plan.changes.iter().filter(|c| c.impact() == i).count();
    [
        (Impact::Loosens, count(Impact::Loosens)),
        (Impact::Tightens, count(Impact::Tightens)),
        (Impact::Unknown, count(Impact::Unknown)),
    ]
}

pub(crate) fn impact_line(plan: &Plan) -> String {
    let [(_, loosens), (_, tightens), (_, unknown)] = impact_counts(plan);
    format!("Security impact: {loosens} loosening, {tightens} tightening, {unknown} unknown.")
}

/// What a step is doing while it runs.
pub fn running_text(action: Action) -> &'static str {
    match action {
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Delete => "deleting",
        Action::Forget => "forgetting",
        Action::Run => "running",
        Action::Read => "reading",
        Action::NoOp => "checking",
    }
}

/// One progress line for a finished step.
pub fn step_line(step: &Step) -> String {
    let verb = match (step.action, step.soft) {
        (Action::Create, _) => "created",
        (Action::Update, _) => "updated",
        (Action::Replace, _) => "replaced",
        (Action::Delete, true) => "disabled",
        (Action::Delete, false) => "deleted",
        (Action::Forget, _) => "forgotten",
        (Action::Run, _) => "ran",
        (Action::Read, _) => "read",
        (Action::NoOp, _) => "unchanged",
    };
    match &step.outcome {
        Outcome::Done => format!("{}: {verb} after {:.1}s", step.address, step.elapsed.as_secs_f64()),
        Outcome::Failed(e) => format!("{}: failed: {e}", step.address),
        Outcome::Skipped(why) => format!("{}: not attempted: {why}", step.address),
    }
}

pub fn apply_report(report: &Report) -> String {
    let mut out = String::new();
    for w in &report.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if let Some(e) = &report.state_error {
        let _ = writeln!(out, "error: {e}");
        let _ = writeln!(out, "hint: the changes listed above were made but could not all be recorded; fix the state location and run `thoth apply` again");
    }
    let count = |f: &dyn Fn(&Step) -> bool| report.steps.iter().filter(|s| f(s)).count();
    let done = |a: Action| count(&|s: &Step| s.action == a && s.outcome == Outcome::Done);
    let failed = count(&|s: &Step| matches!(s.outcome, Outcome::Failed(_)));
    let skipped = count(&|s: &Step| matches!(s.outcome, Outcome::Skipped(_)));
    let _ = write!(
        out,
        "Apply {}: {} created, {} updated, {} replaced, {} deleted, {} forgotten, {} ran",
        if report.failed() { "incomplete" } else { "complete" },
        done(Action::Create),
        done(Action::Update),
        done(Action::Replace),
        done(Action::Delete),
        done(Action::Forget),
        done(Action::Run),
    );
    if failed + skipped > 0 {
        let _ = write!(out, "; {failed} failed, {skipped} not attempted");
    }
    out.push_str(".\n");
    super::terminal_safe(out)
}

/// A rollout's progress, and the changes a stage's plan holds back for other stages.
pub(crate) fn rollout_lines(view: &RolloutView) -> String {
    let mut out = if view.rollback {
        format!(
            "Rollback of stage `{}` of rollout `{}`: its objects return to what they were before its last apply.\n",
            view.stage, view.name
        )
    } else {
        let at = view.stages.iter().position(|s| s.name == view.stage).map_or(0, |i| i + 1);
        format!("Rollout `{}`, stage `{}` ({at} of {}):\n", view.name, view.stage, view.stages.len())
    };
    let width = view.stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &view.stages {
        let _ = writeln!(out, "  {:<width$}  {}", s.name, stage_status(s, s.name == view.stage && !view.rollback));
    }
    if !view.held.is_empty() {
        let _ = writeln!(out, "Held for other stages ({}):", view.held.len());
        for h in &view.held {
            let stage = h.stage.as_deref().map(|s| format!(", stage {s}")).unwrap_or_default();
            let _ = writeln!(out, "  {} ({}{stage})", h.address, super::json::action_name(h.action));
        }
    }
    out
}

/// How a stage stands, in a few words.
pub(crate) fn stage_status(s: &StageView, current: bool) -> String {
    let mut parts = Vec::new();
    match (s.pending, current) {
        (0, true) => parts.push("this plan: nothing to change".to_owned()),
        (n, true) => parts.push(format!("this plan: {n} change(s)")),
        (0, false) => {}
        (n, false) => parts.push(format!("{n} change(s) not applied")),
    }
    match &s.applied_at {
        Some(at) => parts.push(format!("last applied {at}")),
        None => parts.push("not applied yet".to_owned()),
    }
    match s.gate_passes {
        Some(true) => match &s.soak_until {
            Some(until) => parts.push(format!("gate passes, soaking until {until}")),
            None => parts.push("gate passes".to_owned()),
        },
        Some(false) => parts.push("gate fails".to_owned()),
        None => {}
    }
    parts.join("; ")
}

/// The results of check blocks and conditions: a count line, then one line per result that
/// did not pass (a passed one adds nothing a reviewer needs beyond the count).
pub fn checks(results: &[CheckResult]) -> String {
    if results.is_empty() {
        return String::new();
    }
    let count = |s: CheckStatus| results.iter().filter(|c| c.status == s).count();
    let mut out = format!(
        "Checks: {} passed, {} failed, {} known after apply.\n",
        count(CheckStatus::Pass),
        count(CheckStatus::Fail),
        count(CheckStatus::Unknown)
    );
    let mut shown: Vec<&CheckResult> = results.iter().filter(|c| c.status != CheckStatus::Pass).collect();
    shown.sort_by(|a, b| a.status.cmp(&b.status).then_with(|| a.address.cmp(&b.address)));
    for c in shown {
        let what = check_name(c);
        match c.status {
            CheckStatus::Fail => {
                let _ = writeln!(out, "  ! {what} failed: {}", c.messages.join("; "));
            }
            _ => {
                let _ = writeln!(out, "  ? {what} is known after apply");
            }
        }
    }
    out
}

/// `check.name`, or `thoth_fleet.x (postcondition)`.
pub fn check_name(c: &CheckResult) -> String {
    match c.kind {
        CheckKind::Check => c.address.clone(),
        kind => format!("{} ({})", c.address, kind.as_str()),
    }
}

/// Outputs after apply; sensitive ones are masked.
pub fn outputs(values: &[(String, Value, bool)]) -> String {
    if values.is_empty() {
        return String::new();
    }
    format!("\nOutputs:\n\n{}", output_lines(values))
}

/// Outputs as `name = value` lines, `=` aligned; sensitive ones masked.
pub fn output_lines(values: &[(String, Value, bool)]) -> String {
    let mut out = String::new();
    let width = values.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    for (name, value, sensitive) in values {
        let text = if *sensitive { "(sensitive value)".to_owned() } else { value_text(value, 0) };
        let _ = writeln!(out, "{name:<width$} = {text}");
    }
    out
}

/// What the state records of one object: its id, attributes, secrets (masked) and
/// dependencies.
pub fn state_entry(address: &crate::model::Address, entry: &crate::state::ResourceState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {address}:");
    let _ = writeln!(out, "resource \"{}\" \"{}\" {{", address.type_name, address.name);
    let mut lines: Vec<(String, String)> = vec![("id".to_owned(), value_text(&Value::String(entry.id.clone()), 2))];
    lines.extend(entry.attributes.iter().map(|(k, v)| (k.clone(), value_text(&Value::from_json(v), 2))));
    lines.extend(entry.secret_digests.keys().map(|k| (k.clone(), "(sensitive value)".to_owned())));
    lines.sort();
    let width = lines.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, text) in lines {
        let _ = writeln!(out, "    {name:<width$} = {text}");
    }
    let _ = writeln!(out, "}}");
    if entry.prevent_destroy {
        let _ = writeln!(out, "# protected by `lifecycle {{ prevent_destroy = true }}`");
    }
    if !entry.dependencies.is_empty() {
        let _ = writeln!(out, "# depends on: {}", entry.dependencies.join(", "));
    }
    super::terminal_safe(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> VecMap<String, Value> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect()
    }

    #[test]
    fn maps_are_diffed_key_by_key() {
        let before = map(&[("shell.exec", "block"), ("web.fetch", "allow"), ("fs.read", "allow")]);
        let after = map(&[("shell.exec", "block"), ("web.fetch", "step_up"), ("db.query", "block")]);
        assert_eq!(
            map_diff(&before, &after),
            [
                "+ \"db.query\" = \"block\"".to_owned(),
                "- \"fs.read\" = \"allow\"".to_owned(),
                "~ \"web.fetch\" = \"allow\" -> \"step_up\"".to_owned(),
            ]
        );
    }
}
