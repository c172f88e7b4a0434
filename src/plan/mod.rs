//! The diff: configuration against state and the refreshed remote snapshot, producing an inert
//! `Plan` that renderers print and apply executes.
//!
//! Planning never does IO: the snapshot and the state are handed in. The plan keeps the
//! desired values (secrets included) in memory for apply; what renderers see of a secret is
//! only whether it changes.

mod build;
pub mod impact;
pub mod import;
pub mod moves;
pub mod refresh;
pub mod rollout;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use crate::config::{CheckResult, CheckStatus, Desired, IgnoreChanges, ResourceValues};
use crate::model::{Address, Value};
use crate::remote::mapping::{read_attribute, same};
use crate::remote::Snapshot;
use crate::schema::{AttrMode, Kind, Location, Refresh, ResourceType, Schema};
use crate::state::{ResourceState, State};
use crate::vecmap::VecMap;
pub use build::{build, condition_failed, Remote};
pub use impact::Impact;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Destroy the old object and create a new one, because a replace-on-change attribute changed.
    Replace,
    /// Remove the object from the control plane (or disable it, for soft deletes).
    Delete,
    /// Stop tracking the object without any call: the API has no delete for it.
    Forget,
    Create,
    Update,
    /// Run a one-shot action (again): nothing lasting is created.
    Run,
    /// Read a data source during apply, because its inputs are known only then.
    Read,
    NoOp,
}

impl Action {
    /// Whether apply runs a step for it.
    pub fn writes(self) -> bool {
        !matches!(self, Action::Read | Action::NoOp)
    }
}

/// How one attribute appears in a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    Absent,
    Value(Value),
    /// A secret: only its presence is shown.
    Sensitive,
    /// Known only after apply.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttrChange {
    pub name: String,
    pub before: Shown,
    pub after: Shown,
    pub forces_replacement: bool,
    pub impact: Impact,
    /// The control plane's value differs from what the last apply recorded: the change undoes
    /// an edit made outside thoth.
    pub drift: bool,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub address: Address,
    pub kind: Kind,
    pub action: Action,
    /// True for a delete that only disables the object (the row stays on the control plane).
    pub soft: bool,
    /// The remote id before the change.
    pub prior_id: Option<String>,
    /// Changed attributes (all set ones for a create), in name order.
    pub attrs: Vec<AttrChange>,
    /// Identifying attributes shown even when unchanged.
    pub identifying: Vec<(String, Value)>,
    /// A sentence for the reviewer about what the action does on this API.
    pub note: Option<String>,
    /// True when the remote object differs from what the last apply recorded.
    pub drifted: bool,
    /// The object's id after the change.
    pub id_after: Shown,
    /// For a replacement: create the new object before removing the old one.
    pub create_before_destroy: bool,
    /// `lifecycle { prevent_destroy = true }`: deleting or replacing it is refused.
    pub prevent_destroy: bool,
    /// The type protects the tenant: deleting it loosens, creating it tightens.
    pub protective: bool,
    /// What apply sends: every desired value, secrets included. Never rendered.
    pub desired: VecMap<String, Value>,
    pub sensitive: BTreeSet<String>,
    /// The state entry before the change; `None` for a no-op, whose entry stays as it is.
    pub prior: Option<ResourceState>,
    /// Resources this one depends on.
    pub deps: BTreeSet<Address>,
    /// The import id, when the object is brought under management by this plan.
    pub import: Option<String>,
    /// The address the object had in the state before this plan (a `moved` block, or a
    /// rename the plan recognised).
    pub moved_from: Option<Address>,
    /// A change the tenant already made outside thoth, which a refresh-only plan records.
    pub outside: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub import: usize,
    pub moved: usize,
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub forget: usize,
    pub run: usize,
    pub unchanged: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub tenant_id: String,
    /// Every resource of configuration and state, in apply order for creates and updates;
    /// deletes run in reverse of this order.
    pub changes: Vec<Change>,
    /// What reading the tenant cost.
    pub refresh: RefreshCost,
    /// Objects of the types in use that the tenant holds and neither the configuration nor
    /// the state knows, by type.
    pub unmanaged: BTreeMap<String, Vec<String>>,
    /// A refresh-only plan: its changes happened on the tenant already, and applying it only
    /// records them in the state.
    pub refresh_only: bool,
    /// The results of check blocks and conditions with the planned values.
    pub checks: Vec<CheckResult>,
    /// The root module's outputs with the planned values: name, value (unknown until apply
    /// where it depends on what the control plane assigns) and whether it is sensitive.
    pub outputs: Vec<(String, Value, bool)>,
    /// For `--stage`: the rollout's progress, and the changes held for other stages.
    pub rollout: Option<rollout::RolloutView>,
}

impl Plan {
    /// The check blocks that failed.
    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Fail)
    }
}

/// The HTTP calls made to read the tenant for a plan, and the time they took together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshCost {
    pub calls: usize,
    pub milliseconds: u64,
}

impl Change {
    /// The security impact of the whole change, rolled up from its attributes.
    pub fn impact(&self) -> Impact {
        let attrs = self.attrs.iter().map(|a| a.impact);
        match self.action {
            // A new object is judged by the rules it has; attributes without one add nothing.
            Action::Create | Action::Run => {
                let own = attrs.filter(|i| *i != Impact::Unknown).max().unwrap_or(Impact::Neutral);
                if self.protective {
                    own.max(Impact::Tightens)
                } else {
                    own
                }
            }
            Action::Update | Action::Replace => attrs.max().unwrap_or(Impact::Neutral),
            Action::Delete if self.protective => Impact::Loosens,
            Action::Delete | Action::Forget | Action::Read | Action::NoOp => Impact::Neutral,
        }
    }
}

impl Plan {
    /// The highest impact of any change.
    pub fn impact(&self) -> Impact {
        self.changes.iter().map(Change::impact).max().unwrap_or(Impact::Neutral)
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            s.import += usize::from(c.import.is_some());
            s.moved += usize::from(c.moved_from.is_some());
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.delete += 1,
                Action::Forget => s.forget += 1,
                Action::Run => s.run += 1,
                Action::Read | Action::NoOp => s.unchanged += 1,
            }
        }
        s
    }

    /// Whether applying the plan changes the tenant or the state.
    pub fn has_changes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| !matches!(c.action, Action::NoOp | Action::Read) || c.import.is_some() || c.moved_from.is_some())
    }
}

/// What the plan brings under management or renames without touching the tenant.
#[derive(Debug, Default)]
pub struct Adopted {
    /// Addresses imported by this plan, with their import ids.
    pub imported: BTreeMap<Address, String>,
    /// State entries renamed before planning: new address → old.
    pub moved: BTreeMap<Address, Address>,
    /// The moves the plan recognised itself (a renamed block), for the note it shows.
    pub implicit: BTreeSet<Address>,
    /// The `moved` and `removed` blocks.
    pub declared: moves::Declared,
    /// Let creates of objects the tenant has already through (`thoth import` plans to see one
    /// object; the rest of the plan waits for a reviewed apply).
    pub allow_collisions: bool,
}

/// What part of the configuration a plan is about: `--target` (these objects and what they
/// depend on; for a destroy, what depends on them), `--replace`, and `destroy` (every object
/// of the state removed).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub targets: Vec<Address>,
    pub replace: BTreeSet<Address>,
    pub destroy: bool,
    /// `--refresh=false`: plan against the state as recorded, reading nothing but data sources.
    pub no_refresh: bool,
    /// `--stage`: the stage's targets are the targets; the rest is held.
    pub stage: Option<rollout::StageSelection>,
}

impl Selection {
    /// Whether `address` is one of the targets: an instance, a block, or anything in a module.
    pub fn targets(&self, address: &Address) -> bool {
        self.targets.iter().any(|t| rollout::covers(t, address))
    }
}

/// The `lifecycle` settings of one resource, with the `replace_triggered_by` references that
/// change in this plan already worked out by the caller.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub prevent_destroy: bool,
    pub create_before_destroy: bool,
    pub ignore_changes: IgnoreChanges,
    /// The references of `replace_triggered_by` that change in this plan.
    pub triggered_by: Vec<String>,
    /// `--replace` names this object.
    pub forced: bool,
}

/// Plans one configured resource; returns the change and the values references see.
pub fn plan_resource(
    desired: &Desired,
    lifecycle: &Lifecycle,
    deps: BTreeSet<Address>,
    state: &State,
    snapshot: &Snapshot,
    tenant: &str,
) -> (Change, ResourceValues) {
    let rt = resource_type(&desired.address);
    let prior = state.resources.get(&desired.address);
    // A shared document is there even before thoth manages a part of it: its values are the
    // "before" of a first apply.
    let remote = match rt.kind {
        Kind::SettingsSection | Kind::Singleton => snapshot.object(rt, ""),
        _ => prior.and_then(|p| snapshot.object(rt, &p.id)),
    };
    let exists = match rt.kind {
        Kind::SettingsSection | Kind::Singleton | Kind::Action => prior.is_some(),
        Kind::Upsert | Kind::VersionedBundle | Kind::Object | Kind::DataSource => remote.is_some(),
    };
    // A row the tenant has under the key a new upsert writes: the create overwrites it, and
    // its values are the "before" of the change.
    let overwritten = match (rt.kind, &prior, &rt.key) {
        (Kind::Upsert, None, Some(key)) if !rt.key_server_generated => {
            desired.values.get(key).and_then(Value::as_str).and_then(|k| snapshot.object(rt, k))
        }
        _ => None,
    };
    let mut change = Change {
        address: desired.address.clone(),
        kind: rt.kind,
        action: Action::NoOp,
        soft: false,
        prior_id: prior.map(|p| p.id.clone()),
        attrs: Vec::new(),
        identifying: Vec::new(),
        note: None,
        drifted: false,
        id_after: Shown::Unknown,
        create_before_destroy: false,
        prevent_destroy: false,
        protective: rt.protective,
        desired: desired.values.clone(),
        sensitive: desired.sensitive.clone(),
        prior: None,
        deps,
        import: None,
        moved_from: None,
        outside: false,
    };
    let shown = |name: &str, v: &Value| {
        if desired.sensitive.contains(name) {
            Shown::Sensitive
        } else if v.is_known() {
            Shown::Value(v.clone())
        } else {
            Shown::Unknown
        }
    };

    let empty = ResourceState::default();
    let prior_values = match (prior, remote.as_deref()) {
        (Some(p), Some(row)) if exists => prior_view(rt, p, row),
        (Some(p), None) if exists => prior_view(rt, p, &Map::new()),
        (None, Some(row)) if matches!(rt.kind, Kind::SettingsSection | Kind::Singleton) => prior_view(rt, &empty, row),
        (None, None) => overwritten.as_deref().map(|row| prior_view(rt, &empty, row)).unwrap_or_default(),
        _ => VecMap::new(),
    };

    if exists {
        for (name, value) in &desired.values {
            let Some(attr) = rt.attribute(name) else { continue };
            // A JSON document that other attributes land inside is compared as it is sent.
            let merged = crate::remote::mapping::merged_document(rt, &desired.values, name);
            let value = merged.as_ref().unwrap_or(value);
            if lifecycle.ignore_changes.ignores(name) {
                // Keep what the control plane has: send the prior value, or nothing.
                match prior_values.get(name) {
                    Some(v) if !desired.sensitive.contains(name) => {
                        change.desired.insert(name.clone(), v.clone());
                    }
                    _ => {
                        change.desired.remove(name);
                    }
                }
                continue;
            }
            let before = prior_values.get(name);
            let unchanged = if desired.sensitive.contains(name) && before.is_none() {
                // No readable remote value: compare the salted digests.
                match (value.as_str(), prior.and_then(|p| p.secret_digests.get(name).map(|r| (p, r)))) {
                    (Some(s), Some((p, recorded))) => {
                        state.digest_matches(&desired.address.type_name, &p.id, name, s, recorded) == Some(true)
                    }
                    _ => prior.and_then(|p| p.attributes.get(name)).is_some_and(|j| value.equals_json(j)),
                }
            } else {
                let blank = |b: &Value| b.is_null() || b.as_str().is_some_and(|s| s.trim().is_empty());
                (value.is_known() && before.is_some_and(|b| same(attr, b, value)))
                    || (attr.omits(value) && before.is_none_or(blank))
            };
            if !unchanged {
                let before_shown = match before {
                    Some(_) if desired.sensitive.contains(name) => Shown::Sensitive,
                    Some(b) => Shown::Value(b.clone()),
                    None if desired.sensitive.contains(name)
                        && prior.is_some_and(|p| p.secret_digests.contains_key(name)) =>
                    {
                        Shown::Sensitive
                    }
                    None => Shown::Absent,
                };
                // Without an update call, any change of an object replaces it.
                let no_update = rt.kind == Kind::Object && rt.update.is_none();
                let secret = desired.sensitive.contains(name);
                let recorded = prior.and_then(|p| p.attributes.get(name)).map(Value::from_json);
                let drift = !secret && matches!((&recorded, before), (Some(r), Some(b)) if !same(attr, r, b));
                change.attrs.push(AttrChange {
                    name: name.clone(),
                    before: before_shown,
                    after: shown(name, value),
                    forces_replacement: attr.replace || no_update,
                    impact: impact::of_attribute(
                        attr.security.as_ref(),
                        before.filter(|_| !secret),
                        Some(value).filter(|_| !secret),
                    ),
                    drift,
                });
            }
        }
        change.drifted = prior.is_some_and(|p| drifted(rt, p, &prior_values));
        change.action = if rt.kind == Kind::Action {
            if change.attrs.is_empty() && lifecycle.triggered_by.is_empty() && !lifecycle.forced {
                Action::NoOp
            } else {
                Action::Run
            }
        } else if change.attrs.iter().any(|a| a.forces_replacement)
            || !lifecycle.triggered_by.is_empty()
            || lifecycle.forced
        {
            Action::Replace
        } else if change.attrs.is_empty() {
            Action::NoOp
        } else {
            Action::Update
        };
    } else {
        change.action = if rt.kind == Kind::Action { Action::Run } else { Action::Create };
        for (name, value) in &desired.values {
            let secret = desired.sensitive.contains(name);
            let before = prior_values.get(name);
            // An adopted part of a shared document that already has the value is no news.
            if before.is_some_and(|b| rt.attribute(name).is_some_and(|a| same(a, b, value))) && !secret {
                continue;
            }
            change.attrs.push(AttrChange {
                name: name.clone(),
                before: match before {
                    Some(_) if secret => Shown::Sensitive,
                    Some(b) => Shown::Value(b.clone()),
                    None => Shown::Absent,
                },
                after: shown(name, value),
                forces_replacement: false,
                impact: impact::of_attribute(
                    rt.attribute(name).and_then(|a| a.security.as_ref()),
                    before.filter(|_| !secret),
                    Some(value).filter(|_| !secret),
                ),
                drift: false,
            });
        }
        if prior.is_some() {
            change.drifted = true;
            change.note = Some("deleted outside thoth since the last apply; it will be created again".to_owned());
        } else if overwritten.is_some() {
            change.note = Some(
                "exists on the tenant, unmanaged: it will be overwritten with these values (import it to manage it as it is)"
                    .to_owned(),
            );
        }
    }

    for (name, attr) in &rt.attributes {
        if attr.identifying && !change.attrs.iter().any(|a| &a.name == name) {
            if let Some(v) = desired.values.get(name).or_else(|| prior_values.get(name)) {
                if !desired.sensitive.contains(name) {
                    change.identifying.push((name.clone(), v.clone()));
                }
            }
        }
    }
    if change.action == Action::Run {
        change.note = Some(if prior.is_some() {
            "an input changed, so the action runs again".to_owned()
        } else {
            "a one-shot action: it runs once now and again only when an input changes".to_owned()
        });
    }
    if change.action == Action::Update && rt.kind == Kind::VersionedBundle {
        change.note =
            Some("bundles are append-only: this appends a new version with a new id under the same name".to_owned());
    }
    if change.action == Action::Replace {
        let mut note = replace_note(rt);
        if lifecycle.forced {
            note = format!("replacement requested with `--replace`; {note}");
        } else if !lifecycle.triggered_by.is_empty() {
            note = format!("replace_triggered_by: {} changes; {note}", lifecycle.triggered_by.join(", "));
        }
        if lifecycle.create_before_destroy {
            if coexist(rt, prior, desired) {
                change.create_before_destroy = true;
                note.push_str("; the new object is created before the old one is removed");
            } else {
                note.push_str("; create_before_destroy is not possible here: the new object would have the same key as the old one");
            }
        }
        change.note = Some(note);
    }
    change.prevent_destroy = lifecycle.prevent_destroy;

    let values = planned_values(rt, &change, &prior_values, desired, tenant);
    if change.action == Action::NoOp {
        // Nothing is sent and the state entry stays as it is, so a no-op keeps of its desired
        // values only those the state does not record (secrets): saved plans digest them and
        // outputs read them. In a large tenant most changes are no-ops.
        if let Some(p) = prior {
            change.desired.retain(|name, _| !p.attributes.contains_key(name));
        }
    } else {
        change.prior = prior.cloned();
    }
    change.id_after = match values.values.get("id") {
        Some(v) if v.is_known() => Shown::Value(v.clone()),
        _ => Shown::Unknown,
    };
    (change, values)
}

/// The attribute values before the change, as far as they can be known: remote values where
/// the descriptor says they are read back, recorded values otherwise.
fn prior_view(rt: &ResourceType, prior: &ResourceState, row: &Map<String, Json>) -> VecMap<String, Value> {
    let mut out = VecMap::new();
    for (name, attr) in &rt.attributes {
        let recorded = || prior.attributes.get(name).map(Value::from_json);
        let from_remote = || read_attribute(attr, row);
        let v = match attr.refresh {
            // Actions are never read back: what the last run recorded is all there is.
            _ if rt.kind == Kind::Action => recorded(),
            Refresh::Always if attr.json.is_some() && attr.location == Location::Body => from_remote(),
            Refresh::WhenPresent => from_remote().filter(|v| v.as_str() != Some("")).or_else(recorded),
            _ => recorded(),
        };
        if let Some(v) = v {
            out.insert(name.clone(), v);
        }
    }
    out
}

/// Whether a configurable value on the control plane differs from what the last apply wrote.
fn drifted(rt: &ResourceType, prior: &ResourceState, now: &VecMap<String, Value>) -> bool {
    rt.attributes.iter().any(|(name, attr)| {
        attr.is_settable()
            && attr.refresh == Refresh::Always
            && !attr.sensitive
            && match (prior.attributes.get(name), now.get(name)) {
                (Some(recorded), Some(current)) => {
                    !current.equals_json(recorded) && !same(attr, &Value::from_json(recorded), current)
                }
                _ => false,
            }
    })
}

/// Whether the new object of a replacement can exist next to the old one: it must not take
/// the old one's key.
fn coexist(rt: &ResourceType, prior: Option<&ResourceState>, desired: &Desired) -> bool {
    match (rt.kind, prior) {
        (Kind::Upsert, Some(p)) if !rt.key_server_generated => {
            rt.key.as_ref().and_then(|k| desired.values.get(k)).and_then(Value::as_str) != Some(p.id.as_str())
        }
        (Kind::SettingsSection | Kind::Singleton, _) => false,
        (Kind::Object, Some(p)) => match object_id(rt, desired, "") {
            Value::String(new) => new != p.id,
            _ => true,
        },
        _ => true,
    }
}

fn replace_note(rt: &ResourceType) -> String {
    match rt.kind {
        Kind::Upsert => "the old object is disabled, where it stays listed, and a new one is created".to_owned(),
        _ => "the old object is deleted and a new one is created".to_owned(),
    }
}

/// What references to this resource see after the plan: configured values, recorded values
/// where nothing changes, unknown where the control plane decides during apply.
fn planned_values(
    rt: &ResourceType,
    change: &Change,
    prior: &VecMap<String, Value>,
    desired: &Desired,
    tenant: &str,
) -> ResourceValues {
    let mut values = VecMap::with_capacity(rt.attributes.len() + 2);
    let stable = change.action == Action::NoOp;
    // The field the control plane identifies the object by: an update is addressed by it, so
    // it cannot change, and what refers to it need not wait for the update.
    let identity = rt.id.as_ref().and_then(|r| r.response.as_deref()).filter(|_| rt.kind == Kind::Object);
    for (name, attr) in &rt.attributes {
        let v = if let Some(v) = desired.values.get(name) {
            v.clone()
        } else if stable
            || (change.action == Action::Update
                && attr.mode == AttrMode::OptionalComputed
                && rt.kind != Kind::VersionedBundle)
            || (change.action == Action::Update && identity.is_some() && attr.json.as_deref() == identity)
        {
            prior.get(name).cloned().unwrap_or(Value::Null)
        } else if attr.mode == AttrMode::Computed || attr.mode == AttrMode::OptionalComputed {
            Value::Unknown
        } else {
            Value::Null
        };
        values.insert(name.clone(), v);
    }
    let id = match rt.kind {
        Kind::SettingsSection => Value::String(tenant.to_owned()),
        Kind::Upsert if !rt.key_server_generated => {
            rt.key.as_ref().and_then(|k| desired.values.get(k)).cloned().unwrap_or(Value::Unknown)
        }
        Kind::Upsert => match (&change.prior_id, change.action) {
            (Some(id), Action::NoOp | Action::Update) => Value::String(id.clone()),
            _ => rt.key.as_ref().and_then(|k| desired.values.get(k)).cloned().unwrap_or(Value::Unknown),
        },
        Kind::Singleton => Value::String(tenant.to_owned()),
        Kind::Object | Kind::Action => match (&change.prior_id, change.action) {
            (Some(id), Action::NoOp | Action::Update) => Value::String(id.clone()),
            _ => object_id(rt, desired, tenant),
        },
        Kind::VersionedBundle | Kind::DataSource => match (&change.prior_id, change.action) {
            (Some(id), Action::NoOp) => Value::String(id.clone()),
            _ => Value::Unknown,
        },
    };
    if let (Some(key), Value::String(_)) = (&rt.key, &id) {
        if rt.kind == Kind::Upsert {
            values.insert(key.clone(), id.clone());
        }
    }
    values.insert("id".to_owned(), id);
    values.insert("tenant_id".to_owned(), Value::String(tenant.to_owned()));
    ResourceValues { values, sensitive: desired.sensitive.clone() }
}

/// The id a new object will have, when configuration alone decides it.
fn object_id(rt: &ResourceType, desired: &Desired, tenant: &str) -> Value {
    let Some(rule) = &rt.id else { return Value::Unknown };
    if let Some(attr) = &rule.attribute {
        return desired.values.get(attr).cloned().unwrap_or(Value::Unknown);
    }
    match &rule.template {
        Some(t) if !t.contains("{now}") && !t.contains("{unix}") => {
            let at = crate::remote::operation::Placeholders { id: None, tenant };
            crate::remote::operation::render_template(t, &desired.values, &at, false)
                .map_or(Value::Unknown, Value::String)
        }
        _ => Value::Unknown,
    }
}

/// A data source whose inputs are known only during apply.
pub fn deferred_read(address: &Address, deps: BTreeSet<Address>) -> Change {
    Change {
        address: address.clone(),
        kind: Kind::DataSource,
        action: Action::Read,
        soft: false,
        prior_id: None,
        attrs: Vec::new(),
        identifying: Vec::new(),
        note: Some("its inputs depend on values assigned during apply".to_owned()),
        drifted: false,
        id_after: Shown::Absent,
        create_before_destroy: false,
        prevent_destroy: false,
        protective: false,
        desired: VecMap::new(),
        sensitive: BTreeSet::new(),
        prior: None,
        deps,
        import: None,
        moved_from: None,
        outside: false,
    }
}

/// Plans a resource that is in state but no longer in configuration.
pub fn plan_removal(address: &Address, prior: &ResourceState, snapshot: &Snapshot) -> Change {
    let rt = resource_type(address);
    let gone = match rt.kind {
        Kind::SettingsSection | Kind::Singleton | Kind::Action | Kind::DataSource => false,
        Kind::Upsert | Kind::VersionedBundle | Kind::Object => snapshot.object(rt, &prior.id).is_none(),
    };
    let (action, soft, note) = match rt.kind {
        Kind::SettingsSection | Kind::Singleton => (
            Action::Forget,
            false,
            "the API has no delete for it: the values stay as they are and thoth stops managing them".to_owned(),
        ),
        Kind::Action | Kind::DataSource => {
            (Action::Forget, false, "an action leaves nothing to delete; only the state entry is removed".to_owned())
        }
        _ if gone => {
            (Action::Forget, false, "already gone from the control plane; only the state entry is removed".to_owned())
        }
        Kind::Upsert => {
            let patch = rt
                .soft_delete
                .as_ref()
                .map(|p| p.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            (
                Action::Delete,
                true,
                format!("soft delete: the API has no delete, so thoth upserts {patch}; the row stays listed"),
            )
        }
        Kind::VersionedBundle => (
            Action::Delete,
            false,
            "deletes the current version; earlier versions are kept by the control plane".to_owned(),
        ),
        Kind::Object if rt.delete.is_none() => (
            Action::Forget,
            false,
            "the API has no delete for it: the object stays on the control plane and thoth stops managing it"
                .to_owned(),
        ),
        Kind::Object => (Action::Delete, false, String::new()),
    };
    let note = Some(note).filter(|n| !n.is_empty());
    let identifying = rt
        .attributes
        .iter()
        .filter(|(_, a)| a.identifying)
        .filter_map(|(n, _)| prior.attributes.get(n).map(|j| (n.clone(), Value::from_json(j))))
        .collect();
    Change {
        address: address.clone(),
        kind: rt.kind,
        action,
        soft,
        prior_id: Some(prior.id.clone()),
        attrs: Vec::new(),
        identifying,
        note,
        drifted: false,
        id_after: Shown::Absent,
        create_before_destroy: false,
        prevent_destroy: prior.prevent_destroy,
        protective: rt.protective,
        desired: VecMap::new(),
        sensitive: BTreeSet::new(),
        prior: Some(prior.clone()),
        deps: BTreeSet::new(),
        import: None,
        moved_from: None,
        outside: false,
    }
}

/// The descriptor of an address that configuration or state holds. Both were checked against
/// the schema on the way in, so a miss is a defect.
pub fn resource_type(address: &Address) -> &'static ResourceType {
    match Schema::get().of(address) {
        Some(rt) => rt,
        None => panic!("`{address}` has a type unknown to the schema (checked at load time)"),
    }
}
