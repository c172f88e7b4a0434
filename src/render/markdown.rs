//! The plan as Markdown for a pull-request comment: counts by action and by security impact,
//! loosening and destructive changes first, every change's details in a collapsible section
//! with policy diffs in `diff` blocks, and never more than [`MARKDOWN_LIMIT`] characters.
//!
//! When the whole plan does not fit, lower-priority detail goes first: the details of
//! neutral changes, then of the others, then the one-line entries of non-destructive,
//! non-loosening changes. The comment says what it left out. A destroy, a replacement or a
//! loosening line is never dropped.

use std::fmt::Write as _;

use super::plan::{action_text, change_block, impact_counts, shown_changes, summary_line};
use crate::plan::{Action, Change, Impact, Plan};

/// GitHub refuses comments over 65,536 characters; this leaves room for a footer.
pub const MARKDOWN_LIMIT: usize = 65_000;

fn destructive(c: &Change) -> bool {
    matches!(c.action, Action::Delete | Action::Replace | Action::Forget)
}

fn line(c: &Change) -> String {
    let impact = match c.impact() {
        Impact::Neutral => String::new(),
        i => format!(" — **{}**", i.label()),
    };
    let forced: Vec<&str> = c.attrs.iter().filter(|a| a.forces_replacement).map(|a| a.name.as_str()).collect();
    let forced = if c.action == Action::Replace && !forced.is_empty() {
        format!(" (forced by `{}`)", forced.join("`, `"))
    } else {
        String::new()
    };
    format!("- `{}` {}{forced}{impact}\n", c.address, action_text(c))
}

fn details(c: &Change) -> String {
    let impact = match c.impact() {
        Impact::Neutral => String::new(),
        i => format!(" [{}]", i.label()),
    };
    format!(
        "<details><summary><code>{}</code> {}{impact}</summary>\n\n```diff\n{}```\n\n</details>\n",
        c.address,
        action_text(c),
        change_block(c)
    )
}

/// The plan as a Markdown comment, at most `limit` characters unless the lines that are never
/// dropped alone are longer.
pub fn plan_markdown(plan: &Plan, limit: usize) -> String {
    let changes = shown_changes(plan);
    let mut out = format!("### thoth plan for tenant `{}`\n\n", plan.tenant_id);
    if changes.is_empty() {
        out.push_str("No changes. The tenant matches the configuration.\n");
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
    if !loosening.is_empty() {
        let _ = writeln!(out, "#### Loosening changes ({})\n", loosening.len());
        loosening.iter().for_each(|c| out.push_str(&line(c)));
        out.push('\n');
    }
    if !destroying.is_empty() {
        let _ = writeln!(out, "#### Destroyed, replaced or forgotten ({})\n", destroying.len());
        destroying.iter().for_each(|c| out.push_str(&line(c)));
        out.push('\n');
    }
    // Room kept for the notes on what was left out and the closing line.
    let reserve = 400;
    let budget = limit.saturating_sub(reserve);
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
    let _ = writeln!(out, "{}", summary_line(plan));
    out
}
