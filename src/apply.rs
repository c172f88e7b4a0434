//! Executing a `Plan`: creates and updates in dependency order, deletes after them in reverse
//! order, all settings-document changes in one read-modify-write, and the state saved after
//! every call that succeeded.
//!
//! Apply consumes only the plan: it never re-reads configuration. Values unknown at plan time
//! are filled in from the objects applied before them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value as Json};

use crate::model::{Address, Value};
use crate::plan::{resource_type, Action, Change, Plan};
use crate::remote::mapping::{read_row, to_wire, write_values};
use crate::remote::{bundle, settings, upsert, Client};
use crate::schema::{Encoding, Kind, Refresh, ResourceType};
use crate::state::{ResourceState, State};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Not attempted because something it depends on failed.
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub address: Address,
    pub action: Action,
    pub soft: bool,
    pub outcome: Outcome,
}

#[derive(Debug, Default)]
pub struct Report {
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
    /// The state could not be saved: the one failure that leaves work unrecorded.
    pub state_error: Option<String>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.state_error.is_some() || self.steps.iter().any(|s| !matches!(s.outcome, Outcome::Done))
    }
}

/// One unit of work: a single change, or every settings-document change together.
#[derive(Debug)]
enum Unit {
    Single(usize),
    Settings(Vec<usize>),
}

pub async fn execute(
    plan: &Plan,
    client: &Client,
    state: &mut State,
    state_path: &Path,
    resolver: &dyn Resolver,
    mut progress: impl FnMut(&Step),
) -> Report {
    let mut report = Report::default();
    let mut failed: BTreeSet<Address> = BTreeSet::new();
    state.tenant_id = Some(plan.tenant_id.clone());

    for unit in schedule(plan) {
        let members: Vec<usize> = match &unit {
            Unit::Single(i) => vec![*i],
            Unit::Settings(is) => is.clone(),
        };
        let blocked: Vec<String> = members
            .iter()
            .flat_map(|i| plan.changes[*i].deps.iter())
            .filter(|d| failed.contains(*d))
            .map(ToString::to_string)
            .collect();
        if !blocked.is_empty() {
            for i in &members {
                let c = &plan.changes[*i];
                failed.insert(c.address.clone());
                let step = Step {
                    address: c.address.clone(),
                    action: c.action,
                    soft: c.soft,
                    outcome: Outcome::Skipped(format!("depends on `{}`, which failed", blocked.join("`, `"))),
                };
                progress(&step);
                report.steps.push(step);
            }
            continue;
        }
        let results: Vec<(usize, Result<Option<ResourceState>, String>)> = match unit {
            Unit::Single(i) => {
                vec![(i, apply_one(&plan.changes[i], client, state, resolver, &mut report.warnings).await)]
            }
            Unit::Settings(is) => apply_settings(plan, &is, client, state, resolver, &mut report.warnings).await,
        };
        for (i, result) in results {
            let c = &plan.changes[i];
            let outcome = match result {
                Ok(entry) => {
                    match entry {
                        Some(e) => {
                            state.resources.insert(c.address.clone(), e);
                        }
                        None => {
                            state.resources.remove(&c.address);
                        }
                    }
                    if let Err(e) = state.save(state_path) {
                        report.state_error = Some(e.to_string());
                    }
                    Outcome::Done
                }
                Err(message) => {
                    failed.insert(c.address.clone());
                    Outcome::Failed(message)
                }
            };
            let step = Step { address: c.address.clone(), action: c.action, soft: c.soft, outcome };
            progress(&step);
            report.steps.push(step);
            if report.state_error.is_some() {
                return report;
            }
        }
    }
    report
}

/// Orders the work: creates, updates and replaces in plan order (which is dependency order),
/// the settings changes as one unit placed after all their dependencies, then deletes and
/// forgets in reverse order.
fn schedule(plan: &Plan) -> Vec<Unit> {
    let mut units = Vec::new();
    let settings: Vec<usize> = plan
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.kind == Kind::SettingsSection && matches!(c.action, Action::Create | Action::Update | Action::Replace)
        })
        .map(|(i, _)| i)
        .collect();
    let settings_addrs: BTreeSet<&Address> = settings.iter().map(|i| &plan.changes[*i].address).collect();
    let settings_deps: BTreeSet<&Address> =
        settings.iter().flat_map(|i| plan.changes[*i].deps.iter()).filter(|d| !settings_addrs.contains(d)).collect();
    let mut done: BTreeSet<&Address> = BTreeSet::new();
    let mut settings_placed = settings.is_empty();
    let mut waiting: Vec<usize> = Vec::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if !matches!(c.action, Action::Create | Action::Update | Action::Replace) || settings_addrs.contains(&c.address)
        {
            continue;
        }
        if !settings_placed && settings_deps.iter().all(|d| done.contains(d)) {
            units.push(Unit::Settings(settings.clone()));
            done.extend(settings_addrs.iter().copied());
            settings_placed = true;
        }
        if c.deps.iter().any(|d| settings_addrs.contains(d)) && !settings_placed {
            waiting.push(i);
            continue;
        }
        units.push(Unit::Single(i));
        done.insert(&c.address);
    }
    if !settings_placed {
        units.push(Unit::Settings(settings.clone()));
    }
    units.extend(waiting.into_iter().map(Unit::Single));
    let removals: Vec<usize> = plan
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.action, Action::Delete | Action::Forget))
        .map(|(i, _)| i)
        .collect();
    units.extend(removals.into_iter().rev().map(Unit::Single));
    units
}

/// Computes a resource's values again, for values that were unknown at plan time, once
/// everything it depends on has been applied and recorded in `state`. The command that holds
/// the configuration supplies it; apply itself never reads configuration.
pub trait Resolver {
    fn resolve(&self, address: &Address, state: &State) -> Result<BTreeMap<String, Value>, String>;
}

/// The values to send: the planned ones, or recomputed ones when some were unknown.
fn resolve(change: &Change, state: &State, resolver: &dyn Resolver) -> Result<BTreeMap<String, Value>, String> {
    if change.desired.values().all(Value::is_known) {
        return Ok(change.desired.clone());
    }
    let values = resolver.resolve(&change.address, state)?;
    match values.iter().find(|(_, v)| !v.is_known()) {
        Some((name, _)) => Err(format!("`{name}` is still unknown after applying everything it depends on")),
        None => Ok(values),
    }
}

async fn apply_one(
    change: &Change,
    client: &Client,
    state: &State,
    resolver: &dyn Resolver,
    warnings: &mut Vec<String>,
) -> Result<Option<ResourceState>, String> {
    let rt = resource_type(&change.address);
    match change.action {
        Action::Forget => Ok(None),
        Action::NoOp => Ok(change.prior.clone()),
        Action::Delete => {
            remove(change, rt, client).await?;
            Ok(None)
        }
        Action::Create | Action::Update => write(change, rt, client, state, resolver).await.map(Some),
        Action::Replace if change.create_before_destroy => {
            let entry = write(change, rt, client, state, resolver).await?;
            // The new object exists and is recorded whatever happens to the old one.
            if let Err(e) = remove(change, rt, client).await {
                warnings.push(format!(
                    "{}: the replacement was created, but removing the old object failed: {e}",
                    change.address
                ));
            }
            Ok(Some(entry))
        }
        Action::Replace => {
            remove(change, rt, client).await?;
            write(change, rt, client, state, resolver).await.map(Some)
        }
    }
}

/// Removes the object recorded before the change: a soft delete for upsert rows, a delete of
/// the current version for bundles.
async fn remove(change: &Change, rt: &ResourceType, client: &Client) -> Result<(), String> {
    let Some(prior) = &change.prior else { return Ok(()) };
    match rt.kind {
        Kind::Upsert => upsert::upsert(client, rt, soft_delete_body(rt, prior)).await.map(drop),
        Kind::VersionedBundle => bundle::delete(client, rt, &prior.id).await,
        Kind::SettingsSection => Ok(()),
    }
    .map_err(|e| e.to_string())
}

/// Creates or updates the object and returns its state entry.
async fn write(
    change: &Change,
    rt: &ResourceType,
    client: &Client,
    state: &State,
    resolver: &dyn Resolver,
) -> Result<ResourceState, String> {
    let values = resolve(change, state, resolver)?;
    let mut body = Map::new();
    let (row, id) = match rt.kind {
        Kind::Upsert => {
            // An update of a row whose key the control plane chose must name that key.
            if change.action == Action::Update && rt.key_server_generated {
                if let (Some(path), Some(id)) = (rt.key_attribute().and_then(|k| k.json.as_ref()), &change.prior_id) {
                    body.insert(path.clone(), Json::String(id.clone()));
                }
            }
            write_values(rt, &values, &mut body);
            let row = upsert::upsert(client, rt, body).await.map_err(|e| e.to_string())?;
            let id =
                row.get(upsert::key_field(rt)).and_then(Json::as_str).map(str::to_owned).or_else(|| {
                    rt.key.as_ref().and_then(|k| values.get(k)).and_then(|v| v.as_str().map(str::to_owned))
                });
            (row, id.ok_or("the control plane did not return the object's key")?)
        }
        Kind::VersionedBundle => {
            write_values(rt, &values, &mut body);
            let row = bundle::create(client, rt, body).await.map_err(|e| e.to_string())?;
            let field = rt.id_field.as_deref().unwrap_or("id");
            let id = row.get(field).and_then(Json::as_str).map(str::to_owned);
            (row, id.ok_or("the control plane did not return the new version's id")?)
        }
        Kind::SettingsSection => {
            return Err("settings sections are written together with the whole document".to_owned())
        }
    };
    Ok(record(change, rt, id, &row, &values, state))
}

/// One read-modify-write of the whole settings document for every settings change, with the
/// values of the unchanged settings resources written again so that their secrets are sent
/// with the document too.
async fn apply_settings(
    plan: &Plan,
    members: &[usize],
    client: &Client,
    state: &State,
    resolver: &dyn Resolver,
    warnings: &mut Vec<String>,
) -> Vec<(usize, Result<Option<ResourceState>, String>)> {
    let fail_all = |message: String| members.iter().map(|i| (*i, Err(message.clone()))).collect::<Vec<_>>();
    let mut doc = match settings::read(client).await {
        Ok(d) => d,
        Err(e) => return fail_all(e.to_string()),
    };
    let mut resolved: BTreeMap<usize, BTreeMap<String, Value>> = BTreeMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if c.kind != Kind::SettingsSection || matches!(c.action, Action::Delete | Action::Forget) {
            continue;
        }
        match resolve(c, state, resolver) {
            Ok(values) => {
                write_values(resource_type(&c.address), &values, &mut doc);
                resolved.insert(i, values);
            }
            Err(e) if members.contains(&i) => return fail_all(format!("`{}`: {e}", c.address)),
            Err(_) => {}
        }
    }
    let written = match settings::write(client, &doc).await {
        Ok(d) => d,
        Err(e) => return fail_all(e.to_string()),
    };
    let mut out = Vec::new();
    for i in members {
        let c = &plan.changes[*i];
        let rt = resource_type(&c.address);
        let values = resolved.remove(i).unwrap_or_default();
        if let Some(f) = &rt.follow_up {
            if values.get(&f.when_attribute) == Some(&Value::Bool(true)) {
                if let Some(w) = settings::follow_up(client, f).await {
                    warnings.push(format!("{}: {w}", c.address));
                }
            }
        }
        out.push((*i, Ok(Some(record(c, rt, plan.tenant_id.clone(), &written, &values, state)))));
    }
    out
}

/// The state entry after a write: what the control plane answered for attributes it reports,
/// the sent values for the rest, and digests instead of secrets.
fn record(
    change: &Change,
    rt: &ResourceType,
    id: String,
    row: &Map<String, Json>,
    sent: &BTreeMap<String, Value>,
    state: &State,
) -> ResourceState {
    let answered = read_row(rt, row);
    let mut attributes = BTreeMap::new();
    let mut secret_digests = BTreeMap::new();
    for (name, attr) in &rt.attributes {
        if change.sensitive.contains(name) || attr.sensitive {
            if let Some(Value::String(s)) = sent.get(name) {
                secret_digests.insert(name.clone(), state.digest(s));
            } else if let Some(v) = sent.get(name) {
                secret_digests.insert(name.clone(), state.digest(&v.to_json().to_string()));
            }
            continue;
        }
        let from_row = answered.get(name).filter(|_| attr.refresh != Refresh::Never && attr.json.is_some());
        let value = match (attr.refresh, from_row, sent.get(name)) {
            (Refresh::WhenPresent, Some(Value::String(s)), Some(v)) if s.is_empty() => Some(v.clone()),
            (_, Some(v), _) => Some(v.clone()),
            (_, None, Some(v)) => Some(v.clone()),
            _ => None,
        };
        if let Some(v) = value {
            attributes.insert(name.clone(), v.to_json());
        }
    }
    ResourceState { id, attributes, secret_digests, prevent_destroy: change.prevent_destroy }
}

/// The upsert that "deletes" an object: its key, the recorded values of its required
/// attributes (the API validates them on every upsert), and the disabling patch.
fn soft_delete_body(rt: &ResourceType, prior: &ResourceState) -> Map<String, Json> {
    let mut body = Map::new();
    let recorded: BTreeMap<String, Value> = rt
        .attributes
        .iter()
        .filter(|(_, a)| a.mode == crate::schema::AttrMode::Required && a.encoding != Encoding::JsonMergeTopLevel)
        .filter_map(|(n, _)| prior.attributes.get(n).map(|j| (n.clone(), Value::from_json(j))))
        .collect();
    write_values(rt, &recorded, &mut body);
    if let Some(key) = rt.key_attribute() {
        if let Some(path) = &key.json {
            body.insert(path.clone(), to_wire(key, &Value::String(prior.id.clone())));
        }
    }
    if let Some(patch) = &rt.soft_delete {
        for (k, v) in patch {
            body.insert(k.clone(), v.clone());
        }
    }
    body
}
