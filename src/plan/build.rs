//! Building a whole plan: every configured resource planned in dependency order (with its
//! `replace_triggered_by` references and protections), every resource the state has and the
//! configuration no longer declares planned for removal, and the inventory of objects nobody
//! manages.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{
    deferred_read, plan_removal, plan_resource, Action, Adopted, Change, Lifecycle, Plan, RefreshCost, Selection, Shown,
};
use crate::config::{CheckKind, CheckResult, CheckStatus, Desired, Evaluator, ResourceDecl, ResourceValues};
use crate::diag::{Diagnostic, Diagnostics};
use crate::evaluate::{self, Configuration, DataReader};
use crate::model::{Address, Mode, Span, Value};
use crate::remote::Snapshot;
use crate::state::State;

/// What the control plane holds, as planning reads it.
pub struct Remote<'a> {
    /// The tenant's objects, refreshed.
    pub snapshot: &'a Snapshot,
    pub tenant: &'a str,
    /// Reads data sources.
    pub data: &'a dyn DataReader,
    /// What refreshing cost, recorded in the plan.
    pub refresh: RefreshCost,
}

/// Plans the configuration against the state and the refreshed snapshot. Fails with the
/// errors that only remote values reveal (the offline check has reported everything else).
pub fn build(
    conf: &Configuration,
    state: &State,
    remote: &Remote<'_>,
    adopted: &Adopted,
    selection: &Selection,
) -> Result<Plan, Diagnostics> {
    let Remote { snapshot, tenant, data, refresh } = *remote;
    let imported = &adopted.imported;
    let mut diags = Diagnostics::default();
    let mut changes = Vec::with_capacity(conf.module.resources.len());
    let mut plan_diags = Diagnostics::default();
    let mut configured: BTreeSet<Address> = BTreeSet::new();
    // A destroy plans every object of the state for removal: the configuration only orders it.
    let walked = !selection.destroy;
    let rollback = selection
        .stage
        .as_ref()
        .filter(|s| s.rollback)
        .map(|s| super::rollout::rollback_prior(state, s).cloned().unwrap_or_default());
    let rollback = rollback.as_ref();
    let mut unread: Vec<(String, String)> = Vec::new();
    // Each change's place in the walk, so that those worked out aside go back where they were.
    let mut places: Vec<usize> = Vec::with_capacity(conf.module.resources.len());
    let mut place = 0;
    let pending = AtomicUsize::new(0);
    let (mut ev, aside) = std::thread::scope(|scope| {
        // A resource that nothing refers to, that has no postcondition and that no rollback
        // plans is planned on another thread, since no value of its plan is read while the
        // walk goes on; while that thread has enough to do, this one plans them itself.
        let (jobs, queue) = std::sync::mpsc::channel::<(usize, Desired, Lifecycle, BTreeSet<Address>, Span)>();
        let pending = &pending;
        let worker = scope.spawn(move || {
            let mut done = Vec::new();
            for (place, desired, lifecycle, deps, span) in queue {
                let (mut change, _) = plan_resource(&desired, &lifecycle, deps, state, snapshot, tenant);
                let diags = settle(&mut change, span, state, snapshot, adopted);
                done.push((place, change, diags));
                pending.fetch_sub(1, Ordering::Relaxed);
            }
            done
        });
        let ev = evaluate::walk(conf, &mut diags, None, evaluate::Settled::Take, |ev, decl, desired, deps| {
            if !walked {
                return evaluate::offline_values(desired);
            }
            if desired.address.mode == Mode::Data {
                return match data.read(desired) {
                    Some(Ok(values)) => values,
                    // A check's data source failing fails the check, not the plan, as in
                    // Terraform.
                    Some(Err(e)) if decl.check.is_some() => {
                        let name = decl.check.clone().unwrap_or_default();
                        let at = if desired.address.module.is_empty() {
                            String::new()
                        } else {
                            format!("{}.", crate::model::module_path_text(&desired.address.module))
                        };
                        unread.push((format!("{at}check.{name}"), format!("cannot read `{}`: {e}", desired.address)));
                        evaluate::offline_values(desired)
                    }
                    Some(Err(e)) => {
                        plan_diags.push(
                            Diagnostic::error(format!("cannot read `{}`: {e}", desired.address))
                                .at(decl.span, "this data source"),
                        );
                        evaluate::offline_values(desired)
                    }
                    None => {
                        changes.push(deferred_read(&desired.address, deps.clone()));
                        places.push(place);
                        place += 1;
                        evaluate::offline_values(desired)
                    }
                };
            }
            let lifecycle = Lifecycle {
                prevent_destroy: decl.lifecycle.prevent_destroy,
                create_before_destroy: decl.lifecycle.create_before_destroy,
                ignore_changes: decl.lifecycle.ignore_changes.clone(),
                triggered_by: triggered(ev, decl, &changes, &mut plan_diags),
                forced: selection.replace.contains(&desired.address) && state.resources.contains_key(&desired.address),
            };
            let at = place;
            place += 1;
            if rollback.is_none()
                && decl.lifecycle.postconditions.is_empty()
                && !conf.graph.referenced.contains(&decl.address)
                && pending.load(Ordering::Relaxed) < BACKLOG
            {
                pending.fetch_add(1, Ordering::Relaxed);
                // The worker outlives the walk, so it is there to take every job.
                let _ = jobs.send((at, desired.clone(), lifecycle, deps, decl.span));
                return ResourceValues::default();
            }
            // A rollback plans a stage's objects towards what they were before its last apply.
            let rolled;
            let desired = match rollback.and_then(|prior| prior.get(&desired.address.to_string())) {
                Some(Some(entry)) => {
                    rolled = super::rollout::rolled_back(desired, entry, state, &mut plan_diags, decl.span);
                    &rolled
                }
                _ => desired,
            };
            let (mut change, values) = plan_resource(desired, &lifecycle, deps, state, snapshot, tenant);
            plan_diags.extend(settle(&mut change, decl.span, state, snapshot, adopted));
            changes.push(change);
            places.push(at);
            values
        });
        drop(jobs);
        (ev, worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    // The changes in the order of the walk.
    let mut placed: Vec<(usize, Change)> = places.into_iter().zip(std::mem::take(&mut changes)).collect();
    for (place, change, diags) in aside {
        placed.push((place, change));
        plan_diags.extend(diags);
    }
    placed.sort_unstable_by_key(|(place, _)| *place);
    changes.extend(placed.into_iter().map(|(_, change)| change));
    let (checks, outputs) = if walked { checked(&mut ev, unread, &mut plan_diags) } else { (Vec::new(), Vec::new()) };
    drop(ev);
    diags.extend(plan_diags);
    // Warnings were shown by the offline check; only errors that depend on remote values are new.
    if diags.has_errors() {
        return Err(diags.errors_only());
    }
    configured.extend(changes.iter().map(|c| c.address.clone()));
    for address in &selection.replace {
        if !configured.contains(address) || !state.resources.contains_key(address) {
            diags.push(
                Diagnostic::error(format!("`--replace {address}` names no object this configuration manages")).help(
                    "name an instance the state tracks, such as `thoth_fleet.claims` or `thoth_fleet.ring[\"eu\"]`",
                ),
            );
        }
    }
    for address in imported.keys().filter(|a| !configured.contains(*a)) {
        diags.push(
            Diagnostic::error(format!("`{address}` is imported but has no resource block"))
                .help("write its block, or let `thoth plan --generate-config-out FILE` write it"),
        );
    }
    for (address, entry) in &state.resources {
        // A rollback removes what the stage's last apply created, and nothing else.
        let created_by_stage = rollback.is_some_and(|prior| prior.get(&address.to_string()) == Some(&None));
        if (!configured.contains(address) && rollback.is_none()) || created_by_stage {
            changes.retain(|c| c.address != *address);
            let mut change = plan_removal(address, entry, snapshot);
            if adopted.declared.forgets(address) && change.action == Action::Delete {
                change.action = Action::Forget;
                change.soft = false;
                change.note = Some(
                    "a `removed` block with `destroy = false`: the object stays on the tenant, unmanaged".to_owned(),
                );
            }
            if change.prevent_destroy && change.action == Action::Delete {
                diags.push(protected(&change, None));
            }
            changes.push(change);
        }
    }
    if diags.has_errors() {
        return Err(diags.errors_only());
    }
    if let Some(prior) = rollback {
        changes.retain(|c| prior.contains_key(&c.address.to_string()));
    }
    let full: Vec<(Address, Action)> = changes.iter().map(|c| (c.address.clone(), c.action)).collect();
    if !selection.targets.is_empty() {
        changes = targeted(changes, selection);
    }
    // What a stage's objects depend on comes along, except what belongs to another stage:
    // references between instances are known by block, and each stage keeps to its own.
    if let Some(s) = &selection.stage {
        if let Some(decl) = conf.module.rollouts.get(&s.rollout) {
            changes.retain(|c| super::rollout::stage_of(decl, &c.address).is_none_or(|st| st.name == s.stage));
        }
    }
    let rollout = selection.stage.as_ref().and_then(|s| {
        let decl = conf.module.rollouts.get(&s.rollout)?;
        let kept: BTreeSet<Address> = changes.iter().map(|c| c.address.clone()).collect();
        Some(super::rollout::RolloutView {
            name: s.rollout.clone(),
            stage: s.stage.clone(),
            rollback: s.rollback,
            stages: super::rollout::progress(decl, &full, state),
            held: if s.rollback { Vec::new() } else { super::rollout::held(decl, &full, &kept) },
            members: kept
                .iter()
                .filter_map(|a| super::rollout::stage_of(decl, a).map(|st| (a.clone(), st.name.clone())))
                .collect(),
        })
    });
    let unmanaged = unmanaged(&changes, state, snapshot);
    Ok(Plan {
        tenant_id: tenant.to_owned(),
        changes,
        refresh,
        unmanaged,
        refresh_only: false,
        checks,
        outputs,
        rollout,
    })
}

/// The results of the checks and conditions of a walk, with the failures of check blocks'
/// data sources, and the outputs. A failed precondition or postcondition is an error, as in
/// Terraform; a failed check block only a result.
fn checked(
    ev: &mut Evaluator<'_>,
    unread: Vec<(String, String)>,
    diags: &mut Diagnostics,
) -> (Vec<CheckResult>, Vec<(String, Value, bool)>) {
    let mut checks = std::mem::take(&mut ev.checks);
    for (address, message) in unread {
        if let Some(check) = checks.iter_mut().find(|c| c.address == address && c.kind == CheckKind::Check) {
            check.status = CheckStatus::Fail;
            check.messages.insert(0, message);
        }
    }
    for c in checks.iter().filter(|c| c.status == CheckStatus::Fail && c.kind != CheckKind::Check) {
        diags.push(condition_failed(c));
    }
    // Outputs were checked offline; what planning adds is only their values.
    let outputs = evaluate::outputs(ev, &mut Diagnostics::default());
    (checks, outputs)
}

/// The error of a failed precondition or postcondition.
pub fn condition_failed(c: &CheckResult) -> Diagnostic {
    let mut d = Diagnostic::error(format!("{} of `{}` failed: {}", c.kind.as_str(), c.address, c.messages.join("; ")))
        .at(c.span, format!("{} declared here", c.kind.as_str()));
    if c.kind == CheckKind::Postcondition {
        d = d.help("the object as planned does not meet its postcondition; change the configuration so that it does");
    } else {
        d = d.help("the values this object is given do not meet its precondition");
    }
    d
}

/// The changes `--target` keeps: the targets and what they depend on, or, for removals
/// (a destroy), the targets and what depends on them.
fn targeted(changes: Vec<Change>, selection: &Selection) -> Vec<Change> {
    let mut keep: BTreeSet<Address> =
        changes.iter().filter(|c| selection.targets(&c.address)).map(|c| c.address.clone()).collect();
    let removal = |c: &Change| matches!(c.action, Action::Delete | Action::Forget);
    loop {
        let before = keep.len();
        for c in &changes {
            if !keep.contains(&c.address) {
                // What a removal is kept for depended on it.
                let dependent = removal(c)
                    && c.prior
                        .as_ref()
                        .is_some_and(|p| p.dependencies.iter().any(|d| keep.iter().any(|k| k.to_string() == *d)));
                if dependent {
                    keep.insert(c.address.clone());
                }
                continue;
            }
            if !removal(c) {
                keep.extend(c.deps.iter().cloned());
            }
        }
        if keep.len() == before {
            break;
        }
    }
    changes.into_iter().filter(|c| keep.contains(&c.address)).collect()
}

/// The objects the lists read show that neither the state nor the plan knows, by type.
fn unmanaged(changes: &[Change], state: &State, snapshot: &Snapshot) -> BTreeMap<String, Vec<String>> {
    let known: BTreeSet<(&str, &str)> = state
        .resources
        .iter()
        .map(|(a, r)| (a.type_name.as_str(), r.id.as_str()))
        .chain(changes.iter().filter_map(|c| match &c.id_after {
            Shown::Value(v) => v.as_str().map(|id| (c.address.type_name.as_str(), id)),
            _ => None,
        }))
        .collect();
    snapshot
        .listed_ids
        .iter()
        .map(|(t, ids)| {
            (t.clone(), ids.iter().filter(|id| !known.contains(&(t.as_str(), id.as_str()))).cloned().collect())
        })
        .filter(|(_, ids): &(String, Vec<String>)| !ids.is_empty())
        .collect()
}

/// The `replace_triggered_by` references of a resource that change in this plan.
fn triggered(ev: &Evaluator<'_>, decl: &ResourceDecl, planned: &[Change], diags: &mut Diagnostics) -> Vec<String> {
    let mut out = Vec::new();
    for expr in &decl.lifecycle.replace_triggered_by {
        let (targets, attr) = match ev.trigger_targets(expr) {
            Ok(t) => t,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        for target in targets {
            let Some(change) = planned.iter().find(|c| c.address == target) else { continue };
            let changes = match &attr {
                None => change.action != Action::NoOp,
                Some(a) => {
                    matches!(change.action, Action::Create | Action::Replace)
                        || change.attrs.iter().any(|x| &x.name == a)
                }
            };
            if changes {
                out.push(match &attr {
                    Some(a) => format!("`{target}.{a}`"),
                    None => format!("`{target}`"),
                });
            }
        }
    }
    out
}

/// How many resources the walk hands to the other thread to plan before it plans them itself
/// again.
const BACKLOG: usize = 4;

/// What a resource's change takes from how it was adopted (imported, moved), with the errors
/// it raises: a protected object replaced, a create colliding with an unmanaged object.
fn settle(change: &mut Change, span: Span, state: &State, snapshot: &Snapshot, adopted: &Adopted) -> Diagnostics {
    let mut diags = Diagnostics::default();
    if let Some(id) = adopted.imported.get(&change.address) {
        change.import = Some(id.clone());
        // Importing an action records it with its inputs; it does not run.
        if let Some(entry) = super::import::action_entry(change, state) {
            change.action = Action::NoOp;
            change.attrs.clear();
            change.note = None;
            change.prior = Some(entry);
        }
    }
    if let Some(from) = adopted.moved.get(&change.address) {
        change.moved_from = Some(from.clone());
        if adopted.implicit.contains(&change.address) {
            change.note = Some(format!(
                "the same object as `{from}` in the state (same type and id): the block was renamed, so it is moved, not created again and removed"
            ));
        }
    }
    if change.prevent_destroy && change.action == Action::Replace {
        diags.push(protected(change, Some(span)));
    }
    if let Some(d) = collision(change, snapshot, span).filter(|_| !adopted.allow_collisions) {
        diags.push(d);
    }
    diags
}

/// A create of an object whose id the configuration chooses, when the tenant has an object
/// with that id already: refused, since creating it would fail or take over an object thoth
/// does not manage.
fn collision(change: &Change, snapshot: &Snapshot, span: Span) -> Option<Diagnostic> {
    if change.action != Action::Create || change.kind != crate::schema::Kind::Object {
        return None;
    }
    let Shown::Value(id) = &change.id_after else { return None };
    let id = id.as_str()?;
    let listed = snapshot.listed_ids.get(&change.address.type_name)?;
    listed.contains(id).then(|| {
        Diagnostic::error(format!("`{}` would create `{id}`, which the tenant has already", change.address))
            .at(span, "the object exists, unmanaged")
            .help(format!(
                "bring it under management instead: `import {{ to = {}  id = \"{id}\" }}`, or `thoth import {} {id}`",
                change.address, change.address
            ))
    })
}

/// The error for a plan that would remove a protected object.
fn protected(change: &Change, span: Option<Span>) -> Diagnostic {
    let what = if change.action == Action::Replace { "replaces" } else { "deletes" };
    let mut d = Diagnostic::error(format!("`{}` has `prevent_destroy` set, and this plan {what} it", change.address));
    if let Some(s) = span {
        d = d.at(s, "protected by `lifecycle { prevent_destroy = true }`");
    }
    d.help(if change.action == Action::Replace {
        "change the configuration so that no replacement is needed, or remove `prevent_destroy` first"
    } else {
        "the protection was recorded in the state: put the block back, or apply it once with `prevent_destroy = false` before removing it"
    })
}

impl Plan {
    /// Why the plan deletes too much of what the state manages, when it deletes more than
    /// `percent` of it.
    pub fn mass_delete(&self, managed: usize, percent: u8) -> Option<String> {
        let deleted = self.changes.iter().filter(|c| matches!(c.action, Action::Delete)).count();
        // Below a handful of objects, any delete would be "most of them".
        if managed < 4 || deleted * 100 <= managed * usize::from(percent) {
            return None;
        }
        Some(format!("the plan deletes {deleted} of the {managed} managed objects, more than {percent}%"))
    }
}
