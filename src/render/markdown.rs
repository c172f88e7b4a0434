//! The plan as Markdown for a pull-request comment: counts by action and by security impact,
//! loosening and destructive changes first, every change's details in a collapsible section
//! with policy diffs in `diff` blocks, and never more than [`MARKDOWN_LIMIT`] characters.
//!
//! When the whole plan does not fit, lower-priority detail goes first: the details of
//! neutral changes, then of the others, then the one-line entries of non-destructive,
//! non-loosening changes. The comment says what it left out. A destroy, a replacement or a
//! loosening line is never dropped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::plan::{action_text, change_block, impact_counts, shown_changes, summary_line};
use crate::config::{CheckResult, CheckStatus};
use crate::model::InstanceKey;
use crate::plan::rollout::RolloutView;
use crate::plan::{Action, Change, Impact, Plan};

/// The hidden first line of a plan comment, which CI finds to update the comment in place: one
/// comment per configuration directory, tenant and workspace.
pub fn marker(directory: &str, tenant: &str, workspace: &str) -> String {
    let quoted = |s: &str| serde_json::Value::String(s.replace("--", "- -")).to_string();
    format!("<!-- thoth-plan dir={} tenant={} workspace={} -->\n", quoted(directory), quoted(tenant), quoted(workspace))
}

/// GitHub refuses comments over 65,536 characters; this leaves room for a footer.
pub const MARKDOWN_LIMIT: usize = 65_000;

fn destructive(c: &Change) -> bool {
    matches!(c.action, Action::Delete | Action::Replace | Action::Forget)
}

fn line(c: &Change) -> String {
    let loosening: Vec<&str> =
        c.attrs.iter().filter(|a| a.impact == Impact::Loosens).map(|a| a.name.as_str()).collect();
    let impact = match c.impact() {
        Impact::Neutral => String::new(),
        Impact::Loosens if !loosening.is_empty() => format!(" — **loosens** (`{}`)", loosening.join("`, `")),
        i => format!(" — **{}**", i.label()),
    };
    let forced: Vec<&str> = c.attrs.iter().filter(|a| a.forces_replacement).map(|a| a.name.as_str()).collect();
    let forced = if c.action == Action::Replace && !forced.is_empty() {
        format!(" (forced by `{}`)", forced.join("`, `"))
    } else {
        String::new()
    };
    let drift = if c.drifted && c.action != Action::Create { " (changed outside thoth)" } else { "" };
    format!("- `{}` {}{forced}{drift}{impact}\n", c.address, action_text(c))
}

fn details(c: &Change) -> String {
    let impact = match c.impact() {
        Impact::Neutral => String::new(),
        i => format!(" [{}]", i.label()),
    };
    // The block shows values from the control plane: no fence or tag in them closes ours.
    let block = super::terminal_safe(change_block(c));
    let fence = super::fence_for(&block);
    format!(
        "<details><summary><code>{}</code> {}{impact}</summary>\n\n{fence}diff\n{block}{fence}\n\n</details>\n",
        super::html_safe(&c.address.to_string()),
        action_text(c),
    )
}

/// The changes in as few lines as possible: one per type, action and impact, naming every
/// instance, with consecutive `count` indexes as ranges (`b[0-4999]`).
fn compact(changes: &[&&Change]) -> String {
    /// The instance keys of each block, by type, action and impact.
    type Groups<'a> = BTreeMap<(&'a str, &'a str, Impact), BTreeMap<&'a str, Vec<&'a Option<InstanceKey>>>>;
    let mut groups = Groups::new();
    for c in changes {
        groups
            .entry((c.address.type_name.as_str(), action_text(c), c.impact()))
            .or_default()
            .entry(c.address.name.as_str())
            .or_default()
            .push(&c.address.key);
    }
    let mut out = String::new();
    for ((type_name, what, impact), blocks) in groups {
        let mut names = Vec::new();
        let mut count = 0;
        for (block, keys) in blocks {
            count += keys.len();
            let mut indexes: Vec<usize> = keys
                .iter()
                .filter_map(|k| match k {
                    Some(InstanceKey::Index(i)) => Some(*i),
                    _ => None,
                })
                .collect();
            indexes.sort_unstable();
            let mut i = 0;
            while i < indexes.len() {
                let mut j = i;
                while j + 1 < indexes.len() && indexes[j + 1] == indexes[j] + 1 {
                    j += 1;
                }
                names.push(if i == j {
                    format!("{block}[{}]", indexes[i])
                } else {
                    format!("{block}[{}-{}]", indexes[i], indexes[j])
                });
                i = j + 1;
            }
            for key in keys {
                match key {
                    None => names.push(block.to_owned()),
                    Some(InstanceKey::Name(n)) => names.push(format!("{block}[{n:?}]")),
                    Some(InstanceKey::Index(_)) => {}
                }
            }
        }
        let impact = match impact {
            Impact::Neutral => String::new(),
            i => format!(" — **{}**", i.label()),
        };
        let _ = writeln!(out, "- {count} × `{type_name}` {what}{impact}: {}", names.join(", "));
    }
    out
}

/// The plan as a Markdown comment, at most `limit` characters unless the lines that are never
/// dropped alone are longer.
pub fn plan_markdown(plan: &Plan, limit: usize) -> String {
    let changes = shown_changes(plan);
    let mut out = format!("### thoth plan for tenant `{}`\n\n", plan.tenant_id);
    if let Some(view) = &plan.rollout {
        out.push_str(&rollout(view));
    }
    if changes.is_empty() {
        out.push_str("No changes. The tenant matches the configuration.\n");
        if let Some(line) = super::plan::unmanaged_line(plan) {
            let _ = writeln!(out, "\n{line}");
        }
        out.push_str(&checks(plan));
        return out;
    }
    let s = plan.summary();
    let [(_, loosens), (_, tightens), (_, unknown)] = impact_counts(plan);
    let _ = writeln!(out, "| | create | update | replace | delete | forget | run |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| **changes** | {} | {} | {} | {} | {} | {} |\n",
        s.create, s.update, s.replace, s.delete, s.forget, s.run
    );
    let _ = writeln!(
        out,
        "**Security impact:** {loosens} loosening, {tightens} tightening, {unknown} unknown (never assumed safe).\n"
    );
    let loosening: Vec<&&Change> = changes.iter().filter(|c| c.impact() == Impact::Loosens).collect();
    let destroying: Vec<&&Change> =
        changes.iter().filter(|c| destructive(c) && c.impact() != Impact::Loosens).collect();
    let others: Vec<&&Change> = changes.iter().filter(|c| !destructive(c) && c.impact() != Impact::Loosens).collect();
    // Room kept for the notes on what was left out and the closing line.
    let reserve = 400;
    let budget = limit.saturating_sub(reserve);
    // The lines never dropped: one per change, or grouped per type when that does not fit.
    let full = |list: &[&&Change]| list.iter().map(|c| line(c)).collect::<String>();
    let grouped = out.len() + full(&loosening).len() + full(&destroying).len() > budget;
    let lines = |list: &[&&Change]| if grouped { compact(list) } else { full(list) };
    if !loosening.is_empty() {
        let _ = writeln!(out, "#### Loosening changes ({})\n", loosening.len());
        out.push_str(&lines(&loosening));
        out.push('\n');
    }
    if !destroying.is_empty() {
        let _ = writeln!(out, "#### Destroyed, replaced or forgotten ({})\n", destroying.len());
        out.push_str(&lines(&destroying));
        out.push('\n');
    }
    let mut omitted_lines = 0;
    if !others.is_empty() {
        let _ = writeln!(out, "#### Other changes ({})\n", others.len());
        for c in &others {
            let l = line(c);
            if out.len() + l.len() > budget {
                omitted_lines += 1;
            } else {
                out.push_str(&l);
            }
        }
        if omitted_lines > 0 {
            let _ = writeln!(out, "- … and {omitted_lines} more, not listed here to stay under the size limit");
        }
        out.push('\n');
    }
    // Details, the most important first: loosening, destructive, unknown, then the rest.
    let mut ordered: Vec<&&Change> = changes.iter().collect();
    ordered.sort_by_key(|c| {
        (
            match c.impact() {
                Impact::Loosens => 0,
                _ if destructive(c) => 1,
                Impact::Unknown => 2,
                Impact::Tightens => 3,
                Impact::Neutral => 4,
            },
            c.address.to_string(),
        )
    });
    let mut section = String::from("#### Details\n\n");
    let mut omitted_details = 0;
    for c in ordered {
        let d = details(c);
        if out.len() + section.len() + d.len() > budget {
            omitted_details += 1;
        } else {
            section.push_str(&d);
        }
    }
    if omitted_details < changes.len() {
        out.push_str(&section);
        out.push('\n');
    }
    if omitted_details > 0 {
        let _ = writeln!(
            out,
            "_The details of {omitted_details} change(s) are left out to keep this comment under {limit} characters; \
             `thoth plan` prints them all._\n"
        );
    }
    if let Some(line) = super::plan::unmanaged_line(plan) {
        let _ = writeln!(out, "{line}\n");
    }
    let checked = checks(plan);
    if !checked.is_empty() {
        let _ = writeln!(out, "{}", checked.trim_start());
    }
    let _ = writeln!(out, "{}", summary_line(plan));
    out
}

/// The rollout's progress: each stage's standing, the stage of each change of the plan, and
/// what the plan holds back.
fn rollout(view: &RolloutView) -> String {
    let mut out = if view.rollback {
        format!("#### Rollback of stage `{}` of rollout `{}`\n\nIts objects return to what they were before its last apply.\n\n", view.stage, view.name)
    } else {
        let at = view.stages.iter().position(|s| s.name == view.stage).map_or(0, |i| i + 1);
        format!("#### Rollout `{}`: stage `{}` ({at} of {})\n\n", view.name, view.stage, view.stages.len())
    };
    out.push_str("| stage | standing |\n|---|---|\n");
    for s in &view.stages {
        let current = s.name == view.stage && !view.rollback;
        let name = if current { format!("**{}** (this plan)", s.name) } else { s.name.clone() };
        let _ = writeln!(out, "| {name} | {} |", super::plan::stage_status(s, current));
    }
    out.push('\n');
    if !view.members.is_empty() {
        let members: Vec<String> = view.members.iter().map(|(a, s)| format!("`{a}` → {s}")).collect();
        let _ = writeln!(out, "Stage of each change: {}.\n", members.join(", "));
    }
    if !view.held.is_empty() {
        let _ = writeln!(out, "<details><summary>Held for other stages ({})</summary>\n", view.held.len());
        for h in &view.held {
            let stage = h.stage.as_deref().map(|s| format!(", stage `{s}`")).unwrap_or_default();
            let _ = writeln!(out, "- `{}` ({}{stage})", h.address, super::json::action_name(h.action));
        }
        out.push_str("\n</details>\n\n");
    }
    out
}

/// Author-written text on one line, without markup a comment would interpret.
fn text(s: &str) -> String {
    s.replace('\n', " ").replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The check results as a list, failures first; empty without checks.
fn checks(plan: &Plan) -> String {
    if plan.checks.is_empty() {
        return String::new();
    }
    let mut results: Vec<&CheckResult> = plan.checks.iter().collect();
    results.sort_by_key(|c| {
        let rank = match c.status {
            CheckStatus::Fail => 0,
            CheckStatus::Unknown => 1,
            CheckStatus::Pass => 2,
        };
        (rank, c.address.clone(), c.kind)
    });
    let failed = results.iter().filter(|c| c.status == CheckStatus::Fail).count();
    let mut out = format!("\n#### Checks ({failed} failed of {})\n\n", results.len());
    for c in results {
        let name = super::plan::check_name(c).replace('`', "'");
        let _ = match c.status {
            CheckStatus::Fail => writeln!(out, "- :warning: **failed** `{name}`: {}", text(&c.messages.join("; "))),
            CheckStatus::Unknown => writeln!(out, "- :grey_question: known after apply: `{name}`"),
            CheckStatus::Pass => writeln!(out, "- :white_check_mark: passed: `{name}`"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::model::{Address, InstanceKey, Value};
    use crate::plan::{AttrChange, Shown};
    use crate::schema::Kind;

    fn change(i: usize, action: Action, impact: Impact) -> Change {
        let attrs = vec![AttrChange {
            name: "raw_policy".to_owned(),
            before: Shown::Value(Value::String(format!("package p{i}\nallow := false\n"))),
            after: Shown::Value(Value::String(format!("package p{i}\nallow := true\n"))),
            forces_replacement: false,
            impact,
            drift: false,
        }];
        Change {
            address: Address::managed("thoth_policy_bundle", "generated").with_key(Some(InstanceKey::Index(i))),
            kind: Kind::VersionedBundle,
            action,
            soft: false,
            prior_id: Some(format!("b-{i}")),
            attrs: if action == Action::Update { attrs } else { Vec::new() },
            identifying: vec![("name".to_owned(), Value::String(format!("bundle-{i}")))],
            note: None,
            drifted: false,
            id_after: Shown::Unknown,
            create_before_destroy: false,
            prevent_destroy: false,
            protective: action == Action::Delete,
            desired: crate::vecmap::VecMap::new(),
            sensitive: BTreeSet::new(),
            prior: None,
            deps: BTreeSet::new(),
            import: None,
            moved_from: None,
            outside: false,
        }
    }

    #[test]
    fn a_five_thousand_change_plan_stays_under_the_limit_with_every_destroy_and_loosening_listed() {
        let changes: Vec<Change> = (0..5000)
            .map(|i| match i % 25 {
                0 => change(i, Action::Delete, Impact::Loosens),
                1 => change(i, Action::Update, Impact::Loosens),
                2 => change(i, Action::Delete, Impact::Neutral),
                _ => change(i, Action::Update, Impact::Unknown),
            })
            .collect();
        let plan = Plan { tenant_id: "acme".to_owned(), changes, ..Plan::default() };
        let text = plan_markdown(&plan, MARKDOWN_LIMIT);
        assert!(text.len() <= MARKDOWN_LIMIT, "{} characters", text.len());
        for c in &plan.changes {
            let listed = format!("- `{}` ", c.address);
            if destructive(c) || c.impact() == Impact::Loosens {
                assert!(text.contains(&listed), "{} is not listed", c.address);
            }
        }
        assert!(text.contains("more, not listed here to stay under the size limit"));
        assert!(text.contains("are left out to keep this comment under 65000 characters"));
        assert!(text.contains("Plan: 0 to create, 4600 to update, 0 to replace, 400 to delete"));
    }

    #[test]
    fn thousands_of_destroys_are_grouped_and_all_named() {
        let changes: Vec<Change> = (0..5000).map(|i| change(i, Action::Delete, Impact::Loosens)).collect();
        let plan = Plan { tenant_id: "acme".to_owned(), changes, ..Plan::default() };
        let text = plan_markdown(&plan, MARKDOWN_LIMIT);
        assert!(text.len() <= MARKDOWN_LIMIT, "{} characters", text.len());
        assert!(
            text.contains("- 5000 × `thoth_policy_bundle` will be deleted — **loosens**: generated[0-4999]\n"),
            "{text}"
        );
    }

    #[test]
    fn a_small_plan_is_shown_whole() {
        let plan = Plan {
            tenant_id: "acme".to_owned(),
            changes: vec![change(7, Action::Update, Impact::Unknown)],
            ..Plan::default()
        };
        let text = plan_markdown(&plan, MARKDOWN_LIMIT);
        assert!(text.contains("<details>"), "{text}");
        assert!(text.contains("- allow := false\n") && text.contains("+ allow := true\n"), "{text}");
        assert!(!text.contains("left out"), "{text}");
    }
}
