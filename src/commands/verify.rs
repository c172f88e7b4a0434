//! `thoth verify`: the operations guide's verification checklist and evidence checks against
//! the live tenant. The answers are gathered here; `verify` decides each item and `render`
//! prints the report. Exit 0 when every item passes (or is skipped), 4 when one fails, 1
//! when one could not be read.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value as Json};

use super::session::{self, ClientReader, Session};
use super::{fail, out, ERROR};
use crate::cli::{Format, VerifyArgs};
use crate::config::Evaluator;
use crate::diag::{Diagnostic, Diagnostics};
use crate::evaluate::{self, Configuration};
use crate::model::Value;
use crate::remote::{ApiError, Idempotent, Root};
use crate::render;
use crate::schema::{Kind, Schema};
use crate::state::State;
use crate::verify::{self, Group, Item, Report, Thresholds};

pub(super) async fn run(args: &VerifyArgs) -> u8 {
    let Some(conf) = session::load(&args.vars) else { return ERROR };
    let (thresholds, skipped) = match settings(&conf, args) {
        Ok(t) => t,
        Err(diags) => {
            super::diagnose(&conf.module.files, &diags);
            return ERROR;
        }
    };
    let mut groups: BTreeSet<Group> = Group::ALL.into_iter().collect();
    if !args.only.is_empty() {
        groups.retain(|g| args.only.iter().any(|o| o == g.as_str()));
        if let Some(unknown) = args.only.iter().find(|o| Group::parse(o).is_none()) {
            return unknown_group(unknown);
        }
    }
    let Some(session) = session::connect(&args.connection, &conf.module, &conf.variables).await else { return ERROR };
    let tenant = session.client.tenant().to_owned();
    let code =
        match session::open_store(&conf.module, &args.connection.target, Some(tenant.clone()), &conf.workspace).await {
            Ok(store) => match gather(&conf, &session, &store, &groups, &skipped, &thresholds).await {
                Some(items) => {
                    let report = Report { tenant_id: tenant, thresholds, items };
                    out(&match args.format {
                        Format::Human => render::verify_human(&report),
                        Format::Markdown => render::verify_markdown(&report),
                        Format::Json => render::verify_json(&report),
                    });
                    report.exit_code()
                }
                None => ERROR,
            },
            Err(code) => code,
        };
    session.close().await;
    code
}

fn unknown_group(name: &str) -> u8 {
    let names: Vec<&str> = Group::ALL.iter().map(|g| g.as_str()).collect();
    fail(&format!("`{name}` is not a group of the checklist"), Some(&format!("name one of {}", names.join(", "))))
}

/// The thresholds from the `verify {}` block, then the flags; and the groups it skips.
fn settings(conf: &Configuration, args: &VerifyArgs) -> Result<(Thresholds, BTreeSet<Group>), Diagnostics> {
    let mut t = Thresholds::default();
    let mut skipped = BTreeSet::new();
    let mut diags = Diagnostics::default();
    if let Some(decl) = &conf.module.verify {
        let ev = Evaluator::new(&conf.module, conf.variables.clone());
        for (name, expr) in &decl.attributes {
            let value = match ev.eval(expr) {
                Ok((v, _)) => v,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            let wrong = |expected: &str| {
                Diagnostic::error(format!("`{name}` of `verify` must be {expected}")).at(expr.span, "here")
            };
            let whole = |v: &Value| match v {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Value::Number(n) if *n >= 1.0 && n.fract() == 0.0 && *n <= f64::from(u32::MAX) => Some(*n as u32),
                _ => None,
            };
            match name.as_str() {
                "window_hours" => match whole(&value) {
                    Some(n) => t.window_hours = n,
                    None => diags.push(wrong("a whole number of hours, 1 or more")),
                },
                "decision_window_hours" => match whole(&value) {
                    Some(n) => t.decision_window_hours = n,
                    None => diags.push(wrong("a whole number of hours, 1 or more")),
                },
                "min_endpoints" => match &value {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 => t.min_endpoints = *n as usize,
                    _ => diags.push(wrong("a whole number")),
                },
                "require_current_runtime" => match value {
                    Value::Bool(b) => t.require_current_runtime = b,
                    _ => diags.push(wrong("true or false")),
                },
                "stale_after" => match value.as_str().map(crate::state::lock::parse_duration) {
                    Some(Ok(d)) => t.stale_after = d,
                    _ => diags.push(wrong("a duration such as \"24h\"")),
                },
                "skip" => match &value {
                    Value::List(items) => {
                        for item in items {
                            match item.as_str().and_then(Group::parse) {
                                Some(g) => {
                                    skipped.insert(g);
                                }
                                None => diags.push(wrong("a list of checklist groups (settings, mdm, endpoints, health, webhook, evidence, checks)")),
                            }
                        }
                    }
                    _ => diags.push(wrong("a list of checklist groups")),
                },
                _ => {}
            }
        }
    }
    if let Some(n) = args.window_hours {
        t.window_hours = n;
    }
    if let Some(n) = args.decision_window_hours {
        t.decision_window_hours = n;
    }
    if let Some(d) = args.stale_after {
        t.stale_after = d;
    }
    if let Some(n) = args.min_endpoints {
        t.min_endpoints = n;
    }
    for name in &args.skip {
        match Group::parse(name) {
            Some(g) => {
                skipped.insert(g);
            }
            None => diags.push(Diagnostic::error(format!("`--skip {name}` names no group of the checklist"))),
        }
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok((t, skipped))
    }
}

/// Reads what each selected item needs and concludes it.
async fn gather(
    conf: &Configuration,
    session: &Session,
    store: &crate::state::Store,
    groups: &BTreeSet<Group>,
    skipped: &BTreeSet<Group>,
    t: &Thresholds,
) -> Option<Vec<Item>> {
    let client = &session.client;
    // The state as applied, and the settings as the tenant holds them.
    let (plan, state, _) = session::make_refresh_plan(conf, session, store).await?;
    let mut items = Vec::new();
    let wanted = |g: Group| groups.contains(&g) && !skipped.contains(&g);
    let skip = |items: &mut Vec<Item>, name: &str, g: Group| {
        if groups.contains(&g) && skipped.contains(&g) {
            items.push(Item::skipped(name, g, "skipped by the `verify` block or `--skip`"));
        }
    };
    if wanted(Group::Settings) {
        let schema = Schema::get();
        let is_settings = |type_name: &str| {
            schema.resource(type_name).is_some_and(|rt| matches!(rt.kind, Kind::SettingsSection | Kind::Singleton))
        };
        let managed = state.resources.keys().filter(|a| is_settings(&a.type_name)).count();
        let drifted: Vec<(String, Vec<String>)> = plan
            .changes
            .iter()
            .filter(|c| is_settings(&c.address.type_name) && !c.attrs.is_empty())
            .map(|c| (c.address.to_string(), c.attrs.iter().map(|a| a.name.clone()).collect()))
            .collect();
        items.push(verify::settings(managed, &drifted));
    }
    skip(&mut items, "settings", Group::Settings);
    if wanted(Group::Mdm) {
        let managed = attribute_values(&state, "thoth_mdm_provider", "provider_name");
        items.push(match rows(client, "mdm/providers", &[]).await {
            Ok(rows) => verify::mdm(&managed, &rows),
            Err(e) => Item::error("mdm", Group::Mdm, &e),
        });
    }
    skip(&mut items, "mdm", Group::Mdm);
    let need_endpoints = wanted(Group::Endpoints) || wanted(Group::Health);
    let endpoints = if need_endpoints { Some(rows(client, "endpoints", &[]).await) } else { None };
    if wanted(Group::Endpoints) {
        let declared = attribute_values(&state, "thoth_endpoint", "endpoint_id");
        items.push(match &endpoints {
            Some(Ok(rows)) => verify::endpoints(&declared, rows, t.min_endpoints),
            Some(Err(e)) => Item::error("endpoints", Group::Endpoints, e),
            None => Item::error("endpoints", Group::Endpoints, "not read"),
        });
    }
    skip(&mut items, "endpoints", Group::Endpoints);
    if wanted(Group::Health) {
        let stats = client.get("endpoints/stats", &[]).await.map_err(|e| e.to_string());
        items.push(match (&endpoints, &stats) {
            (Some(Ok(rows)), Ok(stats)) => {
                verify::health(rows, stats.as_ref().unwrap_or(&Json::Null), crate::state::now_unix(), t)
            }
            (Some(Err(e)), _) | (_, Err(e)) => Item::error("endpoint_health", Group::Health, e),
            (None, _) => Item::error("endpoint_health", Group::Health, "not read"),
        });
    }
    skip(&mut items, "endpoint_health", Group::Health);
    if wanted(Group::Webhook) {
        let answer = client
            .call(Method::POST, Root::Thoth, "settings/webhook/test", &[], Some(&json!({})), Idempotent::No)
            .await;
        items.push(match answer {
            Ok(body) => verify::webhook(Some(&body.unwrap_or(Json::Null))),
            Err(ApiError::Status { code: Some(code), .. }) if code == "webhook_not_configured" => verify::webhook(None),
            Err(e) => Item::error("webhook", Group::Webhook, &e.to_string()),
        });
    }
    skip(&mut items, "webhook", Group::Webhook);
    if wanted(Group::Evidence) {
        let window = t.window_hours.to_string();
        items.push(match client.get("governance/evidence-slos", &[("window_hours", &window)]).await {
            Ok(body) => verify::evidence_slos(&body.unwrap_or(Json::Null), t.window_hours),
            Err(e) => Item::error("evidence_slos", Group::Evidence, &e.to_string()),
        });
        let decision_window = t.decision_window_hours.to_string();
        // The dry run is the safe variant of the backfill: it reports and persists nothing.
        let query = [("dry_run", "true"), ("window_hours", decision_window.as_str())];
        let answer = client
            .call(Method::POST, Root::Thoth, "governance/backfill-decision-fields", &query, None, Idempotent::No)
            .await;
        items.push(match answer {
            Ok(body) => verify::decision_backfill(&body.unwrap_or(Json::Null), t.decision_window_hours),
            Err(e) => Item::error("decision_backfill", Group::Evidence, &e.to_string()),
        });
    }
    skip(&mut items, "evidence", Group::Evidence);
    if wanted(Group::Checks) {
        let results = evaluate::recorded_checks(conf, &state, client.tenant(), &ClientReader(client));
        items.extend(verify::checks(&results));
    }
    skip(&mut items, "checks", Group::Checks);
    Some(items)
}

/// The values of one attribute over the state's objects of a type.
fn attribute_values(state: &State, type_name: &str, attribute: &str) -> Vec<String> {
    state
        .resources
        .iter()
        .filter(|(a, _)| a.type_name == type_name)
        .filter_map(|(_, e)| e.attributes.get(attribute).and_then(Json::as_str).map(str::to_owned))
        .collect()
}

/// The `data` rows of a list.
async fn rows(client: &crate::remote::Client, path: &str, query: &[(&str, &str)]) -> Result<Vec<Json>, String> {
    let body = client.get(path, query).await.map_err(|e| e.to_string())?;
    crate::remote::list_rows(body, "data")
}
