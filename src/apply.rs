//! Executing a `Plan`: creates and updates in dependency order, deletes after them in reverse
//! order, all settings-document changes in one read-modify-write, and the state saved after
//! every call that succeeded.
//!
//! Apply consumes only the plan: it never re-reads configuration. Values unknown at plan time
//! are filled in from the objects applied before them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use crate::model::{Address, Value};
use crate::plan::{resource_type, Action, Change, Plan};
use crate::remote::mapping::{read_row, to_wire, write_values};
use crate::remote::operation::{self, Placeholders};
use crate::remote::{bundle, settings, upsert, ApiError, Client};
use crate::schema::{Encoding, Kind, Refresh, ResourceType};
use crate::state::journal::{Done, Intent, Journal};
use crate::state::{ResourceState, State, Store};
use crate::vecmap::VecMap;

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
    /// How long the step took; zero for steps that did not run.
    pub elapsed: std::time::Duration,
}

/// What apply reports while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    Started { address: &'a Address, action: Action },
    Finished(&'a Step),
}

#[derive(Debug, Default)]
pub struct Report {
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
    /// The state could not be saved: the one failure that leaves work unrecorded.
    pub state_error: Option<String>,
    /// The state could not be saved because another run wrote it since this one read it (as
    /// opposed to the backend being out of reach).
    pub state_conflict: bool,
    /// Secret values the control plane returned once (a new API key's plaintext), by
    /// resource and attribute: kept in memory for sensitive outputs, never stored.
    pub revealed: BTreeMap<Address, VecMap<String, Value>>,
}

/// What a step leaves besides its state entry.
#[derive(Debug, Default)]
struct Extras {
    warnings: Vec<String>,
    revealed: VecMap<String, Value>,
    /// The create was refused because the object exists (409): its intent is dropped, since
    /// the object there is not one this run created.
    refused: bool,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.state_error.is_some() || self.steps.iter().any(|s| !matches!(s.outcome, Outcome::Done))
    }
}

/// One unit of work: a single change, or every settings-document change together, with the
/// units it waits for.
#[derive(Debug)]
struct Unit {
    members: Vec<usize>,
    settings: bool,
    deps: BTreeSet<usize>,
}

/// How apply runs: how many calls at once, and a flag that stops scheduling new work.
#[derive(Debug, Clone)]
pub struct Options {
    pub parallelism: usize,
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Where intents of creates that cannot be repeated are written before they are sent.
    pub journal: std::sync::Arc<Journal>,
}

type UnitResult = (usize, Vec<(usize, Result<Option<ResourceState>, String>)>, Extras, std::time::Duration);

/// Runs the plan's changes, independent ones at the same time, saving the state after each
/// finished unit. A failure stops only what depends on it; after a stop request, calls in
/// flight finish and nothing new starts.
pub async fn execute(
    plan: &Plan,
    client: &Client,
    state: &mut State,
    store: &Store,
    resolver: &dyn Resolver,
    options: &Options,
    mut progress: impl FnMut(Event<'_>),
) -> Report {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    use futures_util::FutureExt;
    use std::sync::atomic::Ordering;

    let mut report = Report::default();
    state.tenant_id = Some(plan.tenant_id.clone());
    // An imported action is recorded with its inputs, without running.
    for c in plan.changes.iter().filter(|c| c.import.is_some() && c.action == Action::NoOp) {
        if let Some(entry) = &c.prior {
            state.resources.insert(c.address.clone(), entry.clone());
        }
    }
    // Imports and moves are in the journal before anything else, so that a kill cannot leave
    // an object under both its old and its new address.
    let mut adopted = Vec::new();
    for c in plan.changes.iter().filter(|c| c.import.is_some() || c.moved_from.is_some()) {
        if let Some(from) = &c.moved_from {
            adopted.push(Done { done: from.to_string(), entry: None });
        }
        if let Some(entry) = state.resources.get(&c.address) {
            adopted.push(Done { done: c.address.to_string(), entry: Some(entry.clone()) });
        }
    }
    if let Err(e) = options.journal.finish(&adopted).await {
        report.state_error = Some(format!("cannot write {}: {e}", options.journal.describe()));
    }
    let units = schedule(plan);
    let mut done: BTreeSet<usize> = BTreeSet::new();
    let mut failed: BTreeSet<usize> = BTreeSet::new();
    let mut started: BTreeSet<usize> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    // What running units see of the state: refreshed only when a unit about to start depends
    // on something finished since (copying a large state for every unit would be quadratic).
    let mut snapshot = std::sync::Arc::new(state.clone());
    let (mut generation, mut snapshot_generation) = (0usize, 0usize);
    let mut finished_in: Vec<usize> = vec![0; units.len()];
    let mut last_full_save = std::time::Instant::now();
    // Imports and moves change the state even when no call is made.
    let mut unsaved = plan.changes.iter().any(|c| c.import.is_some() || c.moved_from.is_some());
    let mut finished_ok: BTreeSet<String> = BTreeSet::new();
    let record_steps =
        |report: &mut Report, unit: &Unit, outcome: &dyn Fn() -> Outcome, progress: &mut dyn FnMut(Event<'_>)| {
            for i in &unit.members {
                let c = &plan.changes[*i];
                let step = Step {
                    address: c.address.clone(),
                    action: c.action,
                    soft: c.soft,
                    outcome: outcome(),
                    elapsed: std::time::Duration::ZERO,
                };
                progress(Event::Finished(&step));
                report.steps.push(step);
            }
        };
    loop {
        let stopping = options.stop.load(Ordering::SeqCst) || report.state_error.is_some();
        // Units that can no longer run: something they wait for failed or was skipped.
        for (u, unit) in units.iter().enumerate() {
            if started.contains(&u) || !unit.deps.iter().any(|d| failed.contains(d)) {
                continue;
            }
            started.insert(u);
            failed.insert(u);
            let blockers: Vec<String> = unit
                .deps
                .iter()
                .filter(|d| failed.contains(*d))
                .flat_map(|d| units[*d].members.iter().map(|i| plan.changes[*i].address.to_string()))
                .collect();
            let why = format!("depends on `{}`, which did not complete", blockers.join("`, `"));
            record_steps(&mut report, unit, &|| Outcome::Skipped(why.clone()), &mut progress);
        }
        if !stopping {
            for (u, unit) in units.iter().enumerate() {
                if running.len() >= options.parallelism.max(1) {
                    break;
                }
                if started.contains(&u) || !unit.deps.iter().all(|d| done.contains(d)) {
                    continue;
                }
                started.insert(u);
                for i in &unit.members {
                    progress(Event::Started { address: &plan.changes[*i].address, action: plan.changes[*i].action });
                }
                if unit.deps.iter().any(|d| finished_in[*d] > snapshot_generation) {
                    snapshot = std::sync::Arc::new(state.clone());
                    snapshot_generation = generation;
                }
                let view = snapshot.clone();
                let began = std::time::Instant::now();
                running.push(async move {
                    let mut extras = Extras::default();
                    let results = if unit.settings {
                        apply_settings(plan, &unit.members, client, &view, resolver, &mut extras.warnings).await
                    } else {
                        let i = unit.members[0];
                        let journal = &options.journal;
                        vec![(i, apply_one(&plan.changes[i], client, &view, resolver, journal, &mut extras).await)]
                    };
                    (u, results, extras, began.elapsed()) as UnitResult
                });
            }
        }
        let Some(first) = running.next().await else { break };
        // Everything else that has finished by now is recorded with it, in one journal write.
        let mut finished = vec![first];
        while let Some(Some(more)) = running.next().now_or_never() {
            finished.push(more);
        }
        generation += 1;
        let mut journaled = Vec::new();
        for (u, results, mut extras, elapsed) in finished {
            finished_in[u] = generation;
            report.warnings.append(&mut extras.warnings);
            let mut unit_ok = true;
            for (i, result) in results {
                let c = &plan.changes[i];
                let outcome = match result {
                    Ok(entry) => {
                        let entry = entry.map(|mut e| {
                            e.dependencies = c.deps.iter().map(ToString::to_string).collect();
                            e
                        });
                        match &entry {
                            Some(e) => {
                                state.resources.insert(c.address.clone(), e.clone());
                            }
                            None => {
                                state.resources.remove(&c.address);
                            }
                        }
                        journaled.push(Done { done: c.address.to_string(), entry });
                        finished_ok.insert(c.address.to_string());
                        if !extras.revealed.is_empty() {
                            report.revealed.insert(c.address.clone(), std::mem::take(&mut extras.revealed));
                        }
                        Outcome::Done
                    }
                    Err(message) => {
                        unit_ok = false;
                        if extras.refused {
                            // Nothing of this create is left to look up.
                            finished_ok.insert(c.address.to_string());
                        }
                        Outcome::Failed(message)
                    }
                };
                let step = Step { address: c.address.clone(), action: c.action, soft: c.soft, outcome, elapsed };
                match &step.outcome {
                    Outcome::Failed(e) => tracing::warn!("{}: {:?} failed: {e}", step.address, step.action),
                    _ => tracing::info!("{}: {:?} done in {} ms", step.address, step.action, elapsed.as_millis()),
                }
                progress(Event::Finished(&step));
                report.steps.push(step);
            }
            if unit_ok {
                done.insert(u);
            } else {
                failed.insert(u);
            }
        }
        // Finished changes are on disk before anything that depends on them starts, so a kill
        // loses at most the calls in flight: in the journal, and from time to time in the
        // whole state file.
        if let Err(e) = options.journal.finish(&journaled).await {
            report.state_error = Some(format!("cannot write {}: {e}", options.journal.describe()));
        } else if let Some(e) = options.journal.failure() {
            report.state_error = Some(format!("cannot write {}: {e}", options.journal.describe()));
        }
        unsaved = true;
        if report.state_error.is_none() && (last_full_save.elapsed() >= FULL_SAVE_EVERY || running.is_empty()) {
            save_all(state, store, &options.journal, &finished_ok, &mut report).await;
            last_full_save = std::time::Instant::now();
            unsaved = false;
        }
    }
    if unsaved && report.state_error.is_none() {
        save_all(state, store, &options.journal, &finished_ok, &mut report).await;
    }
    for (u, unit) in units.iter().enumerate() {
        if !started.contains(&u) {
            let why =
                if report.state_error.is_some() { "the state could not be saved" } else { "apply was interrupted" };
            record_steps(&mut report, unit, &|| Outcome::Skipped(why.to_owned()), &mut progress);
        }
    }
    report
}

/// The whole state file is rewritten at most this often during an apply; in between, finished
/// changes go to the journal.
const FULL_SAVE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Rewrites the whole state file, then drops from the journal what it now holds: finished
/// changes and the intents of creates that finished. Intents of creates that failed stay for
/// the next run to look up.
async fn save_all(
    state: &mut State,
    store: &Store,
    journal: &Journal,
    finished: &BTreeSet<String>,
    report: &mut Report,
) {
    if let Err(e) = store.save(state).await {
        report.state_conflict = e.is_conflict();
        report.state_error.get_or_insert(e.to_string());
        return;
    }
    if let Err(e) = journal.compact(finished).await {
        report.warnings.push(format!("cannot update {}: {e}", journal.describe()));
    }
}

/// The units of work and what each waits for: creates, updates, replacements and runs after
/// the changes they depend on, all settings changes as one unit, and deletes after everything
/// else, each after the deletes of what depended on it.
fn schedule(plan: &Plan) -> Vec<Unit> {
    let forward = |c: &Change| matches!(c.action, Action::Create | Action::Update | Action::Replace | Action::Run);
    let removal = |c: &Change| matches!(c.action, Action::Delete | Action::Forget);
    let mut units: Vec<Unit> = Vec::new();
    let mut unit_of: BTreeMap<&Address, usize> = BTreeMap::new();
    let settings: Vec<usize> = plan
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == Kind::SettingsSection && forward(c))
        .map(|(i, _)| i)
        .collect();
    if !settings.is_empty() {
        for i in &settings {
            unit_of.insert(&plan.changes[*i].address, 0);
        }
        units.push(Unit { members: settings, settings: true, deps: BTreeSet::new() });
    }
    for (i, c) in plan.changes.iter().enumerate() {
        if forward(c) && c.kind != Kind::SettingsSection {
            unit_of.insert(&c.address, units.len());
            units.push(Unit { members: vec![i], settings: false, deps: BTreeSet::new() });
        }
    }
    let forward_units: BTreeSet<usize> = (0..units.len()).collect();
    for (u, unit) in units.iter_mut().enumerate() {
        unit.deps = unit
            .members
            .iter()
            .flat_map(|i| plan.changes[*i].deps.iter())
            .filter_map(|d| unit_of.get(d).copied())
            .filter(|d| *d != u)
            .collect();
    }
    // Deletes wait for every forward unit, and for the deletes of what depended on them.
    let mut removal_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if removal(c) {
            removal_of.insert(c.address.to_string(), units.len());
            units.push(Unit { members: vec![i], settings: false, deps: forward_units.clone() });
        }
    }
    for c in &plan.changes {
        if !removal(c) {
            continue;
        }
        let Some(dependent) = removal_of.get(&c.address.to_string()).copied() else { continue };
        for dep in c.prior.iter().flat_map(|p| p.dependencies.iter()) {
            if let Some(target) = removal_of.get(dep).copied() {
                units[target].deps.insert(dependent);
            }
        }
    }
    units
}

/// Computes a resource's values again, for values that were unknown at plan time, once
/// everything it depends on has been applied and recorded in `state`. The command that holds
/// the configuration supplies it; apply itself never reads configuration.
pub trait Resolver {
    fn resolve(&self, address: &Address, state: &State) -> Result<VecMap<String, Value>, String>;
}

/// The values to send: the planned ones, or recomputed ones when some were unknown.
fn resolve(change: &Change, state: &State, resolver: &dyn Resolver) -> Result<VecMap<String, Value>, String> {
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
    journal: &Journal,
    extras: &mut Extras,
) -> Result<Option<ResourceState>, String> {
    let rt = resource_type(&change.address);
    match change.action {
        Action::Forget => Ok(None),
        // An imported action brings its entry; any other no-op keeps the one in the state.
        Action::NoOp => Ok(change.prior.clone().or_else(|| state.resources.get(&change.address).cloned())),
        Action::Read => Ok(change.prior.clone()),
        Action::Delete => {
            remove(change, rt, client).await?;
            Ok(None)
        }
        Action::Create | Action::Update | Action::Run => {
            write(change, rt, client, state, resolver, journal, extras).await.map(Some)
        }
        Action::Replace if change.create_before_destroy => {
            let entry = write(change, rt, client, state, resolver, journal, extras).await?;
            // The new object exists and is recorded whatever happens to the old one.
            if let Err(e) = remove(change, rt, client).await {
                extras.warnings.push(format!(
                    "{}: the replacement was created, but removing the old object failed: {e}",
                    change.address
                ));
            }
            Ok(Some(entry))
        }
        Action::Replace => {
            remove(change, rt, client).await?;
            write(change, rt, client, state, resolver, journal, extras).await.map(Some)
        }
    }
}

/// Runs a write that must not be repeated blindly. After an ambiguous failure (no answer
/// after sending, or a server error), `lookup` tells whether it took effect: if it did, its
/// result is used; if not, the write is tried again within the client's retry budget.
async fn guarded<T>(
    client: &Client,
    write: impl AsyncFn() -> Result<T, ApiError>,
    lookup: &impl Lookup<T>,
) -> Result<T, ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match write().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !error.is_transient() {
            return Err(error);
        }
        if error.is_ambiguous() {
            // A lookup that fails leaves the question open: report the write's own error.
            match lookup.find().await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(_) => return Err(error),
            }
        }
        if attempt >= client.retry_attempts() {
            return Err(error);
        }
        tokio::time::sleep(client.retry_delay(attempt)).await;
    }
}

/// How to tell whether an ambiguous write took effect.
trait Lookup<T> {
    async fn find(&self) -> Result<Option<T>, ApiError>;
}

/// An object created with a known id (client-chosen, or a template over its attributes) is
/// looked up by that id; one with a server-assigned id by the descriptor's `lookup` list.
struct ObjectLookup<'a> {
    client: &'a Client,
    rt: &'a ResourceType,
    values: &'a VecMap<String, Value>,
}

impl Lookup<Option<Json>> for ObjectLookup<'_> {
    async fn find(&self) -> Result<Option<Option<Json>>, ApiError> {
        let tenant = self.client.tenant();
        let known_id = self.rt.id.as_ref().and_then(|rule| {
            if let Some(attr) = &rule.attribute {
                self.values.get(attr).and_then(operation::plain_text)
            } else {
                let template = rule.template.as_ref().filter(|t| !t.contains("{now}") && !t.contains("{unix}"))?;
                operation::render_template(template, self.values, &Placeholders { id: None, tenant }, false).ok()
            }
        });
        let wanted: Vec<(String, Json)> = self
            .rt
            .lookup_match
            .iter()
            .filter_map(|name| {
                let attr = self.rt.attribute(name)?;
                Some((attr.json.clone()?, to_wire(attr, self.values.get(name)?)))
            })
            .collect();
        let matches = |row: &Map<String, Json>| {
            wanted.iter().all(|(key, v)| crate::remote::mapping::get_path(row, key) == Some(v))
        };
        if let (Some(id), Some(read)) = (known_id, &self.rt.read) {
            let at = Placeholders { id: Some(&id), tenant };
            return Ok(operation::read_object(self.client, self.rt, read, self.values, &at)
                .await?
                .filter(|row| matches(row))
                .map(|m| Some(Json::Object(m))));
        }
        // Without a way to find the object, the write is not tried again: the error stands.
        let Some(list) = &self.rt.lookup else { return Err(no_lookup(self.rt)) };
        let at = Placeholders { id: None, tenant };
        let answer = operation::call(self.client, self.rt, list, self.values, &at).await?;
        // A lookup without a list key reads the one object the write acts on.
        let rows = match &list.list_key {
            // A list that cannot be read is no proof that the write did nothing.
            Some(key) => crate::remote::list_rows(answer, key)
                .map_err(|m| self.client.bad_list(list.path.trim_start_matches('/'), m))?,
            None => answer.into_iter().filter(Json::is_object).collect(),
        };
        let mut matches = rows.into_iter().filter(|row| !wanted.is_empty() && row.as_object().is_some_and(&matches));
        // Adopt only an unambiguous match.
        match (matches.next(), matches.next()) {
            (Some(row), None) => Ok(Some(Some(row))),
            _ => Ok(None),
        }
    }
}

/// The answer of a lookup for a type that has no way to be looked up: the write that failed
/// ambiguously is then reported rather than tried again.
fn no_lookup(rt: &ResourceType) -> ApiError {
    ApiError::Decode { method: "GET".to_owned(), path: rt.name.clone(), message: "no way to look it up".to_owned() }
}

/// A row whose key the control plane chooses is found by the values of its `lookup_match`
/// attributes, when exactly one row has them.
struct UpsertLookup<'a> {
    client: &'a Client,
    rt: &'a ResourceType,
    body: &'a Map<String, Json>,
}

impl Lookup<Map<String, Json>> for UpsertLookup<'_> {
    async fn find(&self) -> Result<Option<Map<String, Json>>, ApiError> {
        let keys: Vec<&str> =
            self.rt.lookup_match.iter().filter_map(|n| self.rt.attribute(n)?.json.as_deref()).collect();
        if keys.is_empty() {
            return Err(no_lookup(self.rt));
        }
        let rows = upsert::list(self.client, self.rt).await?;
        let same = |row: &&Map<String, Json>| {
            keys.iter()
                .all(|k| crate::remote::mapping::get_path(row, k) == crate::remote::mapping::get_path(self.body, k))
        };
        let mut matches = rows.iter().filter(same);
        match (matches.next(), matches.next()) {
            (Some(row), None) => Ok(Some(row.clone())),
            _ => Ok(None),
        }
    }
}

/// A delete took effect when the object is gone.
struct Gone<F> {
    check: F,
}

impl<F: AsyncFn() -> Result<bool, ApiError>> Lookup<()> for Gone<F> {
    async fn find(&self) -> Result<Option<()>, ApiError> {
        Ok((self.check)().await?.then_some(()))
    }
}

/// A new bundle version is found as the newest version of its name with the sent content,
/// newer than the one recorded.
struct BundleLookup<'a> {
    client: &'a Client,
    rt: &'a ResourceType,
    body: &'a Map<String, Json>,
    prior_id: Option<&'a str>,
}

impl Lookup<Map<String, Json>> for BundleLookup<'_> {
    async fn find(&self) -> Result<Option<Map<String, Json>>, ApiError> {
        let path = self.rt.path.as_deref().unwrap_or_default();
        let rows = crate::remote::list_rows(self.client.get(path, &[]).await?, "data")
            .map_err(|m| self.client.bad_list(path, m))?;
        let content = ["name", "framework", "raw_policy", "source_uri", "s3_uri"];
        let text = |v: Option<&Json>| v.and_then(Json::as_str).unwrap_or_default().trim().to_owned();
        let newest = rows
            .into_iter()
            .filter_map(|r| match r {
                Json::Object(m) => Some(m),
                _ => None,
            })
            .filter(|m| content.iter().all(|k| text(self.body.get(*k)) == text(m.get(*k))))
            .filter(|m| m.get("id").and_then(Json::as_str) != self.prior_id)
            .max_by_key(|m| m.get("version").and_then(Json::as_i64).unwrap_or(0));
        Ok(newest)
    }
}

/// Removes the object recorded before the change: a soft delete for upsert rows, a delete of
/// the current version for bundles.
async fn remove(change: &Change, rt: &ResourceType, client: &Client) -> Result<(), String> {
    let Some(prior) = &change.prior else { return Ok(()) };
    match (rt.kind, &rt.delete) {
        (Kind::Upsert, _) => upsert::upsert(client, rt, soft_delete_body(rt, prior)).await.map(drop),
        (Kind::VersionedBundle, _) => {
            let gone = Gone { check: async || bundle::get(client, rt, &prior.id).await.map(|r| r.is_none()) };
            guarded(client, async || bundle::delete(client, rt, &prior.id).await, &gone).await
        }
        (Kind::Object, Some(op)) => {
            let values = prior.attributes.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect();
            let at = Placeholders { id: Some(&prior.id), tenant: client.tenant() };
            let delete = async || match operation::call(client, rt, op, &values, &at).await {
                Err(e) if e.is_not_found() => Ok(()),
                other => other.map(drop),
            };
            match &rt.read {
                Some(read) => {
                    let gone = Gone {
                        check: async || {
                            operation::read_object(client, rt, read, &values, &at).await.map(|r| r.is_none())
                        },
                    };
                    guarded(client, delete, &gone).await
                }
                None => delete().await,
            }
        }
        _ => Ok(()),
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
    journal: &Journal,
    extras: &mut Extras,
) -> Result<ResourceState, String> {
    let values = resolve(change, state, resolver)?;
    let intend = || {
        let intent = Intent {
            address: change.address.to_string(),
            values: values
                .iter()
                // Lowering marks every secret value, sensitive attributes included.
                .filter(|(name, _)| !change.sensitive.contains(*name))
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
            prior_id: change.prior_id.clone(),
            sensitive: change.sensitive.iter().cloned().collect(),
        };
        async move { journal.intend(&intent).await.map_err(|e| format!("cannot write {}: {e}", journal.describe())) }
    };
    if matches!(rt.kind, Kind::Object | Kind::Singleton | Kind::Action) {
        let creating = rt.kind == Kind::Object && !(change.action == Action::Update && rt.update.is_some());
        // A create that cannot be repeated blindly, or one whose id the configuration
        // chooses: killed before its result is recorded, the next run would otherwise find
        // an object it cannot tell from one it did not create.
        let chosen_id = matches!(change.id_after, crate::plan::Shown::Value(_));
        if creating && (chosen_id || rt.create.as_ref().is_some_and(|op| !op.idempotent)) {
            intend().await?;
        }
        return write_described(change, rt, client, state, values, extras).await;
    }
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
            let row = if body.contains_key(upsert::key_field(rt)) {
                upsert::upsert(client, rt, body).await
            } else {
                intend().await?;
                let lookup = UpsertLookup { client, rt, body: &body };
                guarded(client, async || upsert::upsert(client, rt, body.clone()).await, &lookup).await
            }
            .map_err(|e| e.to_string())?;
            let id = operation::remote_id(rt, &row, &values, client.tenant());
            (row, id.ok_or("the control plane did not return the object's key")?)
        }
        Kind::VersionedBundle => {
            intend().await?;
            write_values(rt, &values, &mut body);
            let lookup = BundleLookup { client, rt, body: &body, prior_id: change.prior_id.as_deref() };
            let row = guarded(client, async || bundle::create(client, rt, body.clone()).await, &lookup)
                .await
                .map_err(|e| e.to_string())?;
            let id = operation::remote_id(rt, &row, &values, client.tenant());
            (row, id.ok_or("the control plane did not return the new version's id")?)
        }
        _ => return Err("settings sections are written together with the whole document".to_owned()),
    };
    Ok(record(change, rt, id, &row, &values, state))
}

/// The message of a failed write; a create the control plane refuses because the object
/// exists (409) says how to bring that object under management instead.
fn create_error(change: &Change, e: &ApiError) -> String {
    match e {
        ApiError::Status { status: 409, .. } if matches!(change.action, Action::Create | Action::Replace) => format!(
            "{e}: `{}` exists on the tenant already, and thoth never takes over an object it did not create; import it (an `import` block, or `thoth import {} ID`)",
            change.address, change.address
        ),
        _ => e.to_string(),
    }
}

/// Writes an object, singleton or action through its descriptor's operations.
async fn write_described(
    change: &Change,
    rt: &ResourceType,
    client: &Client,
    state: &State,
    values: VecMap<String, Value>,
    extras: &mut Extras,
) -> Result<ResourceState, String> {
    let err = |e: crate::remote::ApiError| create_error(change, &e);
    let updating = change.action == Action::Update;
    let op = match (rt.kind, updating, &rt.update) {
        (Kind::Object, true, Some(update)) => update,
        _ => rt.create.as_ref().ok_or("the descriptor has no create operation")?,
    };
    let prior_id = change.prior_id.as_deref().filter(|_| updating);
    let at = Placeholders { id: prior_id, tenant: client.tenant() };
    let sent = if op.idempotent {
        Some(operation::call(client, rt, op, &values, &at).await)
    } else if rt.kind == Kind::Object {
        let lookup = ObjectLookup { client, rt, values: &values };
        Some(guarded(client, async || operation::call(client, rt, op, &values, &at).await, &lookup).await)
    } else {
        None
    };
    let answer = if let Some(sent) = sent {
        sent.map_err(|e| {
            extras.refused = matches!(e, ApiError::Status { status: 409, .. }) && !updating;
            err(e)
        })?
    } else {
        // An action that failed ambiguously may or may not have run: it is reported, and the
        // next apply runs it again.
        operation::call(client, rt, op, &values, &at).await.map_err(|e| {
            if e.is_ambiguous() {
                format!("{e} (it may or may not have run; the next apply runs it again)")
            } else {
                e.to_string()
            }
        })?
    };
    let mut row = match answer {
        Some(Json::Object(map)) => map,
        _ => Map::new(),
    };
    let id = operation::object_id(rt, &row, &values, client.tenant())?;
    // Reads back what the write answered incompletely: a singleton's profile, an object
    // created without echoing itself.
    if rt.kind != Kind::Action && (rt.kind == Kind::Singleton || row.is_empty()) {
        if let Some(read) = &rt.read {
            let at = Placeholders { id: Some(&id), tenant: client.tenant() };
            if let Some(fresh) = operation::read_object(client, rt, read, &values, &at).await.map_err(err)? {
                row = fresh;
            }
        }
    }
    if let Some(poll) = &rt.poll {
        row = wait(client, rt, poll, &id, &values, row, &mut extras.warnings, &change.address).await;
    }
    for (name, attr) in &rt.attributes {
        if attr.sensitive && attr.mode == crate::schema::AttrMode::Computed {
            if let Some(v) = read_row(rt, &row).remove(name) {
                extras.revealed.insert(name.clone(), v);
            }
        }
    }
    Ok(record(change, rt, id, &row, &values, state))
}

/// Replaces digests of an earlier scheme (or another digest key) by current ones where the
/// configured secret is known to match them; returns how many were replaced.
pub fn upgrade_digests(plan: &Plan, state: &mut State) -> usize {
    let mut upgraded = Vec::new();
    for change in &plan.changes {
        let Some(entry) = state.resources.get(&change.address) else { continue };
        for (name, recorded) in &entry.secret_digests {
            if crate::state::digest::is_current(recorded) {
                continue;
            }
            let Some(value) = change.desired.get(name) else { continue };
            let text = value.as_str().map_or_else(|| value.to_json().to_string(), str::to_owned);
            let type_name = &change.address.type_name;
            if state.digest_matches(type_name, &entry.id, name, &text, recorded) == Some(true) {
                upgraded.push((change.address.clone(), name.clone(), state.digest(type_name, &entry.id, name, &text)));
            }
        }
    }
    let count = upgraded.len();
    for (address, name, digest) in upgraded {
        if let Some(entry) = state.resources.get_mut(&address) {
            entry.secret_digests.insert(name, digest);
        }
    }
    count
}

/// Finds the objects of the journal's intents on the control plane and records the ones that
/// exist in `state`: a run killed between a create and the state write that follows leaves
/// an intent, and the object is adopted instead of being created again. Returns a note per
/// adopted object; fails when a lookup cannot be done.
pub async fn recover(intents: &[Intent], client: &Client, state: &mut State) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    for intent in intents {
        let Some(address) = Address::parse(&intent.address) else { continue };
        let Some(rt) = crate::schema::Schema::get().resource(&address.type_name) else { continue };
        let values: VecMap<String, Value> =
            intent.values.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect();
        let mut body = Map::new();
        write_values(rt, &values, &mut body);
        let fail = |e: ApiError| format!("cannot look up `{address}`, whose creation was interrupted: {e}");
        let found = match rt.kind {
            Kind::Object => {
                ObjectLookup { client, rt, values: &values }.find().await.map_err(fail)?.flatten().and_then(|row| {
                    match row {
                        Json::Object(map) => Some(map),
                        _ => None,
                    }
                })
            }
            Kind::Upsert => UpsertLookup { client, rt, body: &body }.find().await.map_err(fail)?,
            Kind::VersionedBundle => BundleLookup { client, rt, body: &body, prior_id: intent.prior_id.as_deref() }
                .find()
                .await
                .map_err(fail)?,
            _ => None,
        };
        let Some(row) = found else { continue };
        let Some(id) = operation::remote_id(rt, &row, &values, client.tenant()) else { continue };
        if state.resources.get(&address).is_some_and(|r| r.id == id) {
            continue;
        }
        let mut attributes: VecMap<String, Json> = intent.values.clone();
        for (name, value) in read_row(rt, &row) {
            let secret = |a: &crate::schema::Attribute| {
                a.sensitive
                    || intent.sensitive.contains(&name)
                    || a.derived_from.iter().any(|f| intent.sensitive.contains(f))
            };
            if rt.attribute(&name).is_some_and(|a| !secret(a) && a.refresh != Refresh::Never) {
                attributes.insert(name, value.to_json());
            }
        }
        notes.push(format!("`{address}` was created by an interrupted run; adopted `{id}`"));
        state.resources.insert(address, ResourceState { id, attributes, ..ResourceState::default() });
    }
    Ok(notes)
}

/// Polls a started job until it reaches a terminal status, when the configuration asks to
/// wait. A poll error or a timeout is a warning: the job was started either way.
#[allow(clippy::too_many_arguments)]
async fn wait(
    client: &Client,
    rt: &ResourceType,
    poll: &crate::schema::Poll,
    id: &str,
    values: &VecMap<String, Value>,
    mut row: Map<String, Json>,
    warnings: &mut Vec<String>,
    address: &Address,
) -> Map<String, Json> {
    let number = |name: &str, default: u64| match values.get(name) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(Value::Number(n)) if *n > 0.0 => *n as u64,
        _ => default,
    };
    if values.get(&poll.wait_attribute) == Some(&Value::Bool(false)) {
        return row;
    }
    let interval = std::time::Duration::from_secs(number(&poll.interval_attribute, poll.default_interval_seconds));
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(number(&poll.timeout_attribute, poll.default_timeout_seconds));
    let op = crate::schema::Operation {
        method: "GET".to_owned(),
        path: poll.path.clone(),
        root: poll.root,
        idempotent: true,
        body: crate::schema::BodyMode::None,
        list_key: None,
        match_field: None,
        escape: false,
        fallback: None,
    };
    let terminal = |r: &Map<String, Json>| {
        r.get(&poll.status_field).and_then(Json::as_str).is_some_and(|s| poll.terminal.iter().any(|t| t == s))
    };
    while !terminal(&row) {
        if std::time::Instant::now() + interval > deadline {
            warnings
                .push(format!("{address}: stopped waiting after the timeout; the job goes on on the control plane"));
            break;
        }
        tokio::time::sleep(interval).await;
        let at = Placeholders { id: Some(id), tenant: client.tenant() };
        match operation::read_object(client, rt, &op, values, &at).await {
            Ok(Some(fresh)) => row = fresh,
            Ok(None) => {
                warnings.push(format!("{address}: the job is no longer found; its last known state is recorded"));
                break;
            }
            Err(e) => {
                warnings.push(format!("{address}: polling failed: {e}"));
                break;
            }
        }
    }
    row
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
    let mut resolved: BTreeMap<usize, VecMap<String, Value>> = BTreeMap::new();
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
    sent: &VecMap<String, Value>,
    state: &State,
) -> ResourceState {
    let answered = read_row(rt, row);
    let mut attributes = VecMap::new();
    let mut secret_digests = BTreeMap::new();
    for (name, attr) in &rt.attributes {
        if change.sensitive.contains(name) || attr.sensitive {
            let text = match sent.get(name) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(v) => Some(v.to_json().to_string()),
                None => None,
            };
            if let Some(text) = text {
                secret_digests.insert(name.clone(), state.digest(&change.address.type_name, &id, name, &text));
            }
            continue;
        }
        // Inputs sent outside the body are not in the answer, and an action's inputs are
        // compared with what was sent (the answer may normalise them): keep what was sent.
        let readable = attr.refresh != Refresh::Never
            && attr.json.is_some()
            && (attr.mode == crate::schema::AttrMode::Computed
                || (attr.location == crate::schema::Location::Body && rt.kind != Kind::Action));
        let from_row = answered.get(name).filter(|_| readable);
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
    ResourceState { id, attributes, secret_digests, prevent_destroy: change.prevent_destroy, dependencies: Vec::new() }
}

/// The upsert that "deletes" an object: its key, the recorded values of what it was
/// configured with (the API validates the required ones on every upsert, and the provider
/// re-sends the others, so that disabling an object changes nothing else of it), and the
/// disabling patch. Secrets are not recorded, so they are not re-sent.
fn soft_delete_body(rt: &ResourceType, prior: &ResourceState) -> Map<String, Json> {
    let mut body = Map::new();
    let recorded: VecMap<String, Value> = rt
        .attributes
        .iter()
        .filter(|(_, a)| {
            a.is_settable()
                && !a.sensitive
                && a.location == crate::schema::Location::Body
                && a.each.is_none()
                && a.encoding != Encoding::JsonMergeTopLevel
        })
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

#[cfg(test)]
mod tests {
    use super::soft_delete_body;
    use crate::schema::Schema;
    use crate::state::ResourceState;
    use serde_json::json;

    /// A soft delete re-sends what the object was configured with, as the provider does, so
    /// that a server which replaces what an upsert leaves out changes nothing else of it.
    #[test]
    fn a_soft_delete_re_sends_the_recorded_configuration() {
        let rt = Schema::get().resource("thoth_browser_policy").expect("the browser policy type");
        let prior = ResourceState {
            id: "pol_1".to_owned(),
            attributes: [
                ("name", json!("p")),
                ("provider_name", json!("chrome")),
                ("enforcement_mode", json!("monitor")),
                ("policy_json", json!("{\"block_uploads\":true}")),
                ("metadata_json", json!("{\"owner\":\"secops\"}")),
                ("compiled_policy_json", json!("{\"compiled\":1}")),
                ("created_at", json!("2026-12-01T00:00:00Z")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            ..ResourceState::default()
        };
        let body = serde_json::Value::Object(soft_delete_body(rt, &prior));
        assert_eq!(
            body,
            json!({
                "policy_id": "pol_1",
                "name": "p",
                "provider": "chrome",
                "enforcement_mode": "monitor",
                "policy": { "block_uploads": true },
                "metadata": { "owner": "secops" },
                "active": false,
            })
        );
    }
}
