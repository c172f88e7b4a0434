//! The operations guide's verification checklist and evidence checks as data: each item
//! concluded from what the control plane answered, as pass, fail, skip (with why it did not
//! apply) or error (it could not be read). `thoth verify` gathers the answers and renders the
//! report; this module only decides.

use std::time::Duration;

use serde_json::Value as Json;

use crate::config::{CheckKind, CheckResult, CheckStatus};

/// The exit code of a verification with a failed item.
pub const FAILED: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// What the item needs could not be read.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Error => "error",
        }
    }
}

/// The groups `--only` and `skip` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Settings,
    Mdm,
    Endpoints,
    Health,
    Webhook,
    Evidence,
    Checks,
}

impl Group {
    pub const ALL: [Group; 7] =
        [Group::Settings, Group::Mdm, Group::Endpoints, Group::Health, Group::Webhook, Group::Evidence, Group::Checks];

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Settings => "settings",
            Group::Mdm => "mdm",
            Group::Endpoints => "endpoints",
            Group::Health => "health",
            Group::Webhook => "webhook",
            Group::Evidence => "evidence",
            Group::Checks => "checks",
        }
    }

    pub fn parse(text: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

/// One item of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// A stable name (`mdm`, `evidence_slos`, `check.rollout_within_policy`).
    pub name: String,
    pub group: Group,
    pub status: Status,
    /// One sentence: what passed, or what is wrong.
    pub reason: String,
    /// The objects behind a failure, one per line (at most `DETAIL_LIMIT`).
    pub details: Vec<String>,
}

/// Failures list this many objects; the reason gives the full count.
const DETAIL_LIMIT: usize = 20;

impl Item {
    fn new(name: &str, group: Group, status: Status, reason: impl Into<String>) -> Item {
        Item { name: name.to_owned(), group, status, reason: reason.into(), details: Vec::new() }
    }

    fn with_details(mut self, details: Vec<String>) -> Item {
        self.details = details.into_iter().take(DETAIL_LIMIT).collect();
        self
    }

    /// An item whose data could not be read.
    pub fn error(name: &str, group: Group, message: &str) -> Item {
        Item::new(name, group, Status::Error, format!("cannot read it: {message}"))
    }

    /// An item the run was told to leave out.
    pub fn skipped(name: &str, group: Group, why: &str) -> Item {
        Item::new(name, group, Status::Skip, why)
    }
}

/// The thresholds of the checklist, from the `verify {}` block and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// The trailing window of the evidence SLOs, in hours.
    pub window_hours: u32,
    /// The window the decision backfill dry run looks back over, in hours.
    pub decision_window_hours: u32,
    /// An endpoint not seen for longer is stale.
    pub stale_after: Duration,
    /// At least this many endpoints are enrolled.
    pub min_endpoints: usize,
    /// Every endpoint runs the newest runtime version the tenant knows.
    pub require_current_runtime: bool,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            window_hours: 24,
            decision_window_hours: 720,
            stale_after: Duration::from_secs(24 * 3600),
            min_endpoints: 1,
            require_current_runtime: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub tenant_id: String,
    pub thresholds: Thresholds,
    pub items: Vec<Item>,
}

impl Report {
    pub fn count(&self, status: Status) -> usize {
        self.items.iter().filter(|i| i.status == status).count()
    }

    /// 0 when nothing failed, 4 when an item failed, 1 when one could not be read.
    pub fn exit_code(&self) -> u8 {
        if self.count(Status::Error) > 0 {
            1
        } else if self.count(Status::Fail) > 0 {
            FAILED
        } else {
            0
        }
    }
}

fn text<'a>(row: &'a Json, key: &str) -> &'a str {
    row.get(key).and_then(Json::as_str).unwrap_or_default()
}

/// The settings sections and singletons the state manages against the tenant: `drifted`
/// lists each that changed outside thoth, with the attributes that did.
pub fn settings(managed: usize, drifted: &[(String, Vec<String>)]) -> Item {
    let name = "settings";
    if managed == 0 {
        return Item::new(name, Group::Settings, Status::Skip, "the state manages no settings yet");
    }
    if drifted.is_empty() {
        return Item::new(
            name,
            Group::Settings,
            Status::Pass,
            format!("the {managed} settings section(s) match the applied configuration"),
        );
    }
    Item::new(
        name,
        Group::Settings,
        Status::Fail,
        format!("{} settings section(s) changed outside thoth since the last apply", drifted.len()),
    )
    .with_details(drifted.iter().map(|(a, attrs)| format!("{a}: {}", attrs.join(", "))).collect())
}

/// Every MDM provider the state manages is enabled on the tenant and its last sync
/// succeeded.
pub fn mdm(managed: &[String], rows: &[Json]) -> Item {
    let name = "mdm";
    if managed.is_empty() {
        return Item::new(name, Group::Mdm, Status::Skip, "the configuration manages no MDM provider");
    }
    let mut problems = Vec::new();
    let mut running = Vec::new();
    for provider in managed {
        let Some(row) = rows.iter().find(|r| text(r, "provider") == provider) else {
            problems.push(format!("{provider}: not on the tenant"));
            continue;
        };
        if row.get("enabled").and_then(Json::as_bool) != Some(true) {
            problems.push(format!("{provider}: disabled"));
        }
        match text(row, "last_sync_status") {
            "succeeded" => {}
            "failed" => {
                let error = text(row, "last_error");
                problems.push(format!(
                    "{provider}: the last sync failed{}",
                    if error.is_empty() { String::new() } else { format!(": {error}") }
                ));
            }
            "" => problems.push(format!("{provider}: no sync has run (apply a `thoth_mdm_sync`)")),
            other => running.push(format!("{provider}: a sync is {other}")),
        }
    }
    if !problems.is_empty() {
        return Item::new(name, Group::Mdm, Status::Fail, format!("{} MDM provider problem(s)", problems.len()))
            .with_details(problems);
    }
    if !running.is_empty() {
        return Item::new(name, Group::Mdm, Status::Skip, "a sync is still running; verify again when it ends")
            .with_details(running);
    }
    Item::new(
        name,
        Group::Mdm,
        Status::Pass,
        format!("{} MDM provider(s) enabled, their last sync succeeded", managed.len()),
    )
}

/// Enough endpoints are enrolled, and every endpoint the configuration declares is.
pub fn endpoints(declared: &[String], rows: &[Json], min: usize) -> Item {
    let name = "endpoints";
    let missing: Vec<String> =
        declared.iter().filter(|id| !rows.iter().any(|r| text(r, "endpoint_id") == id.as_str())).cloned().collect();
    if !missing.is_empty() {
        return Item::new(
            name,
            Group::Endpoints,
            Status::Fail,
            format!("{} declared endpoint(s) are not enrolled", missing.len()),
        )
        .with_details(missing);
    }
    if rows.len() < min {
        return Item::new(
            name,
            Group::Endpoints,
            Status::Fail,
            format!("{} endpoint(s) enrolled, fewer than the {min} required", rows.len()),
        );
    }
    Item::new(
        name,
        Group::Endpoints,
        Status::Pass,
        format!("{} endpoint(s) enrolled, the {} declared among them", rows.len(), declared.len()),
    )
}

/// Every enrolled endpoint is online: seen within the threshold, not quarantined, and (when
/// required) on the newest runtime the tenant knows.
pub fn health(rows: &[Json], stats: &Json, now: u64, t: &Thresholds) -> Item {
    let name = "endpoint_health";
    if rows.is_empty() {
        return Item::new(name, Group::Health, Status::Skip, "no endpoint is enrolled");
    }
    let latest = text(stats, "latest_version");
    let stale_after = t.stale_after.as_secs();
    let mut problems = Vec::new();
    for row in rows {
        let id = text(row, "endpoint_id");
        let status = text(row, "status");
        if matches!(status, "quarantined" | "offline") {
            problems.push(format!("{id}: {status}"));
            continue;
        }
        match crate::state::parse_rfc3339(text(row, "last_seen")) {
            Some(seen) if now.saturating_sub(seen) <= stale_after => {}
            Some(_) => problems.push(format!(
                "{id}: last seen {}, more than {} ago",
                text(row, "last_seen"),
                human_duration(stale_after)
            )),
            None => problems.push(format!("{id}: never seen")),
        }
        let version = text(row, "proxy_version");
        if t.require_current_runtime && !latest.is_empty() && !version.is_empty() && version != latest {
            problems.push(format!("{id}: runtime {version}, not {latest}"));
        }
    }
    if !problems.is_empty() {
        return Item::new(name, Group::Health, Status::Fail, format!("{} endpoint health problem(s)", problems.len()))
            .with_details(problems);
    }
    Item::new(
        name,
        Group::Health,
        Status::Pass,
        format!(
            "{} endpoint(s) seen within {}{}",
            rows.len(),
            human_duration(stale_after),
            if latest.is_empty() { String::new() } else { format!(", all on runtime {latest}") }
        ),
    )
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The answer to a webhook test delivery; `None` when the tenant has no webhook configured.
pub fn webhook(answer: Option<&Json>) -> Item {
    let name = "webhook";
    let Some(answer) = answer else {
        return Item::new(name, Group::Webhook, Status::Skip, "no webhook is configured");
    };
    match text(answer, "status") {
        "delivered" => Item::new(name, Group::Webhook, Status::Pass, "the test event was delivered"),
        _ => {
            let code =
                answer.get("http_status").and_then(Json::as_u64).map(|c| format!(" (HTTP {c})")).unwrap_or_default();
            let error = text(answer, "error");
            Item::new(
                name,
                Group::Webhook,
                Status::Fail,
                format!(
                    "the test event was not delivered{code}{}",
                    if error.is_empty() { String::new() } else { format!(": {error}") }
                ),
            )
        }
    }
}

/// The evidence SLOs over the window.
pub fn evidence_slos(answer: &Json, window_hours: u32) -> Item {
    let name = "evidence_slos";
    let failures: Vec<String> = answer
        .get("failures")
        .and_then(Json::as_array)
        .map(|f| f.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    match answer.get("passed").and_then(Json::as_bool) {
        Some(true) if failures.is_empty() => {
            Item::new(name, Group::Evidence, Status::Pass, format!("every evidence SLO is met over {window_hours} h"))
        }
        Some(_) => {
            let metrics = answer.get("metrics");
            let details = failures
                .iter()
                .map(|f| match metrics.and_then(|m| m.get(f)) {
                    Some(v) => format!("{f}: {v}"),
                    None => f.clone(),
                })
                .collect();
            Item::new(
                name,
                Group::Evidence,
                Status::Fail,
                format!("{} evidence SLO(s) breached over {window_hours} h", failures.len().max(1)),
            )
            .with_details(details)
        }
        None => Item::new(name, Group::Evidence, Status::Error, "the answer says neither passed nor failed"),
    }
}

/// The decision backfill dry run: how many records lack their decision fields.
pub fn decision_backfill(answer: &Json, window_hours: u32) -> Item {
    let name = "decision_backfill";
    let missing = answer.get("would_update").and_then(Json::as_u64).unwrap_or_default();
    let examined = answer.get("examined").and_then(Json::as_u64).unwrap_or_default();
    if missing == 0 {
        return Item::new(
            name,
            Group::Evidence,
            Status::Pass,
            format!("{examined} record(s) examined over {window_hours} h, none missing decision fields"),
        );
    }
    Item::new(
        name,
        Group::Evidence,
        Status::Fail,
        format!(
            "{missing} of {examined} record(s) over {window_hours} h miss decision fields; a `thoth_decision_field_backfill` materialises them"
        ),
    )
}

/// The configuration's check blocks, and its conditions, with the values as applied.
pub fn checks(results: &[CheckResult]) -> Vec<Item> {
    results
        .iter()
        .map(|c| {
            let name = match c.kind {
                CheckKind::Check => c.address.clone(),
                kind => format!("{} {}", c.address, kind.as_str()),
            };
            let (status, reason) = match c.status {
                CheckStatus::Pass => (Status::Pass, "the assertions hold".to_owned()),
                CheckStatus::Fail => (Status::Fail, c.messages.join("; ")),
                CheckStatus::Unknown => (Status::Skip, "it depends on values not applied yet".to_owned()),
            };
            Item::new(&name, Group::Checks, status, reason)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn health_finds_stale_quarantined_and_outdated_endpoints() {
        let now = crate::state::parse_rfc3339("2026-12-01T12:00:00Z").unwrap_or_default();
        let rows = [
            json!({"endpoint_id": "a", "last_seen": "2026-12-01T11:00:00Z", "proxy_version": "0.3.4"}),
            json!({"endpoint_id": "b", "last_seen": "2026-11-28T11:00:00Z", "proxy_version": "0.3.4"}),
            json!({"endpoint_id": "c", "last_seen": "2026-12-01T11:59:00Z", "proxy_version": "0.3.1"}),
            json!({"endpoint_id": "d", "status": "quarantined"}),
        ];
        let item = health(&rows, &json!({"latest_version": "0.3.4"}), now, &Thresholds::default());
        assert_eq!(item.status, Status::Fail);
        assert_eq!(
            item.details,
            ["b: last seen 2026-11-28T11:00:00Z, more than 1d ago", "c: runtime 0.3.1, not 0.3.4", "d: quarantined"]
        );
        let fine = health(&rows[..1], &json!({"latest_version": "0.3.4"}), now, &Thresholds::default());
        assert_eq!(fine.status, Status::Pass, "{fine:?}");
    }

    #[test]
    fn mdm_needs_enabled_providers_whose_last_sync_succeeded() {
        let rows = [
            json!({"provider": "jamf", "enabled": true, "last_sync_status": "succeeded"}),
            json!({"provider": "intune", "enabled": false, "last_sync_status": "failed", "last_error": "disabled"}),
        ];
        assert_eq!(mdm(&["jamf".to_owned()], &rows).status, Status::Pass);
        let item = mdm(&["jamf".to_owned(), "intune".to_owned(), "kandji".to_owned()], &rows);
        assert_eq!(
            item.details,
            ["intune: disabled", "intune: the last sync failed: disabled", "kandji: not on the tenant"]
        );
    }
}
