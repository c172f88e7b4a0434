//! Staged rollouts: which stage an object belongs to, what a stage's plan holds back for later
//! stages, whether a stage may apply (every earlier stage current, the previous one's gate
//! passed after its soak), and the values a rollback returns a stage's objects to.
//!
//! Only decisions: the command reads the tenant, evaluates the gate's checks and writes the
//! stage history the state keeps.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Change};
use crate::config::{CheckKind, CheckResult, CheckStatus, Desired, Module, RolloutDecl, StageDecl};
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::{Address, Value};
use crate::state::{ResourceState, StageApply, State};

/// `--stage` (with `--rollout` when the configuration has several), and whether the plan is
/// the stage's rollback.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StageSelection {
    pub rollout: String,
    pub stage: String,
    pub rollback: bool,
}

/// A target as written: an instance, a block, or everything in a module (instance).
pub fn parse_target(text: &str) -> Option<Address> {
    if let Some(a) = Address::parse(text) {
        return Some(a);
    }
    let probe = Address::parse(&format!("{text}.t.n"))?;
    (!probe.module.is_empty()).then(|| Address { module: probe.module, ..Address::managed("", "") })
}

/// Whether `target` names `address`: the instance itself, its block, or a module it is in.
pub fn covers(target: &Address, address: &Address) -> bool {
    *target == *address
        || (target.key.is_none() && *target == address.block())
        || (target.type_name.is_empty() && address.module.starts_with(&target.module))
}

/// The parsed targets of a stage.
pub fn targets(stage: &StageDecl) -> Vec<Address> {
    stage.targets.iter().filter_map(|(t, _)| parse_target(t)).collect()
}

/// The stage of a rollout whose targets cover `address`.
pub fn stage_of<'r>(rollout: &'r RolloutDecl, address: &Address) -> Option<&'r StageDecl> {
    rollout.stages.iter().find(|s| targets(s).iter().any(|t| covers(t, address)))
}

/// The rollout and stage `--stage` (and `--rollout`) name.
pub fn find<'m>(module: &'m Module, rollout: Option<&str>, stage: &str) -> Result<(&'m RolloutDecl, usize), String> {
    let rollout = match rollout {
        Some(name) => module.rollouts.get(name).ok_or_else(|| format!("the configuration has no rollout `{name}`"))?,
        None => {
            let mut all = module.rollouts.values();
            match (all.next(), all.next()) {
                (Some(only), None) => only,
                (None, _) => return Err("the configuration declares no `rollout` block".to_owned()),
                (Some(_), Some(_)) => {
                    let names: Vec<&str> = module.rollouts.keys().map(String::as_str).collect();
                    return Err(format!(
                        "several rollouts are declared: name one with `--rollout` ({})",
                        names.join(", ")
                    ));
                }
            }
        }
    };
    let index = rollout.stages.iter().position(|s| s.name == stage).ok_or_else(|| {
        let names: Vec<&str> = rollout.stages.iter().map(|s| s.name.as_str()).collect();
        format!("rollout `{}` has no stage `{stage}` (its stages: {})", rollout.name, names.join(", "))
    })?;
    Ok((rollout, index))
}

/// What is wrong with the rollouts of a configuration: targets that name nothing, objects in
/// two stages, gates that name no check block.
pub fn check(module: &Module) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for rollout in module.rollouts.values() {
        let mut claimed: Vec<(Address, &str)> = Vec::new();
        for stage in &rollout.stages {
            for (text, span) in &stage.targets {
                let Some(target) = parse_target(text) else {
                    diags.push(
                        Diagnostic::error(format!("`{text}` is not a resource address or a module path"))
                            .at(*span, "not a target")
                            .help("write `thoth_fleet.canary`, `thoth_fleet.ring[\"canary\"]` or `module.ring[\"canary\"]`"),
                    );
                    continue;
                };
                let config = target.config_block();
                let declared = module
                    .resources
                    .keys()
                    .any(|a| *a == config || (config.type_name.is_empty() && a.module.starts_with(&config.module)));
                if !declared {
                    diags.push(
                        Diagnostic::error(format!(
                            "`{text}` in stage `{}` names no resource or module of the configuration",
                            stage.name
                        ))
                        .at(*span, "nothing declared here"),
                    );
                }
                if let Some((_, other)) =
                    claimed.iter().find(|(t, s)| *s != stage.name && (covers(t, &target) || covers(&target, t)))
                {
                    diags.push(
                        Diagnostic::error(format!(
                            "`{text}` is in both stage `{other}` and stage `{}` of rollout `{}`",
                            stage.name, rollout.name
                        ))
                        .at(*span, "in two stages")
                        .help("an object rolls out in one stage"),
                    );
                }
                claimed.push((target, &stage.name));
            }
            for gate in rollout.gate.iter().chain(&stage.gate) {
                for (text, span) in &gate.checks {
                    let name = text.trim_start_matches("check.");
                    if text.starts_with("check.") && !module.root().checks.contains_key(name) {
                        diags.push(
                            Diagnostic::error(format!("the gate names `{text}`, which is not declared"))
                                .at(*span, "no such check")
                                .help(format!("declare it with `check \"{name}\" {{ assert {{ ... }} }}`")),
                        );
                    }
                }
            }
        }
    }
    diags
}

/// A change that a stage's plan holds back, with the stage it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub address: Address,
    pub action: Action,
    pub stage: Option<String>,
}

/// How a stage stands, for plans and refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageView {
    pub name: String,
    /// Changes of the full plan that belong to it.
    pub pending: usize,
    /// When its last apply completed.
    pub applied_at: Option<String>,
    /// Its gate: `None` without one; else whether its checks pass now.
    pub gate_passes: Option<bool>,
    /// Seconds of soak left since its last apply (0 when over), for the refusal.
    pub soak_left: u64,
    /// When the soak ends, while it lasts (RFC 3339): what plans show, since it does not move
    /// between a plan and the apply of it.
    pub soak_until: Option<String>,
}

/// The rollout as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutView {
    pub name: String,
    pub stage: String,
    pub rollback: bool,
    pub stages: Vec<StageView>,
    pub held: Vec<Held>,
    /// The stage each change of the plan belongs to (a dependency may belong to none).
    pub members: BTreeMap<Address, String>,
}

/// Each stage's standing in a full plan: its pending changes and its last completed apply.
/// The gates are filled in by `gates`, once their checks are evaluated.
pub fn progress(rollout: &RolloutDecl, full: &[(Address, Action)], state: &State) -> Vec<StageView> {
    let history = state.rollouts.get(&rollout.name);
    rollout
        .stages
        .iter()
        .map(|stage| {
            let t = targets(stage);
            let pending = full.iter().filter(|(a, action)| action.writes() && t.iter().any(|x| covers(x, a))).count();
            let last =
                history.and_then(|h| h.get(&stage.name)).and_then(|applies| applies.iter().rev().find(|a| a.complete));
            StageView {
                name: stage.name.clone(),
                pending,
                applied_at: last.map(|a| a.applied_at.clone()),
                gate_passes: None,
                soak_left: 0,
                soak_until: None,
            }
        })
        .collect()
}

/// Each stage's gate: whether its checks pass (`checks`, evaluated with the values as
/// applied) and how much of its soak is left at `now`.
pub fn gates(view: &mut RolloutView, rollout: &RolloutDecl, checks: &[CheckResult], now: u64) {
    for (stage, standing) in rollout.stages.iter().zip(&mut view.stages) {
        let Some(gate) = rollout.gate_of(stage) else { continue };
        standing.gate_passes = Some(gate.checks.iter().all(|(text, _)| {
            checks.iter().any(|c| c.kind == CheckKind::Check && c.address == *text && c.status == CheckStatus::Pass)
        }));
        let applied = standing.applied_at.as_deref().and_then(crate::state::parse_rfc3339);
        standing.soak_left = applied.map_or(0, |at| gate.soak.as_secs().saturating_sub(now.saturating_sub(at)));
        standing.soak_until = applied
            .filter(|_| standing.soak_left > 0)
            .map(|at| crate::state::rfc3339(at.saturating_add(gate.soak.as_secs())));
    }
}

/// The desired values of a rollback: each configurable attribute as the stage's last apply
/// found it. A secret goes back only when it is the one the configuration holds now (thoth
/// keeps digests of secrets, never their values).
pub fn rolled_back(
    desired: &Desired,
    prior: &ResourceState,
    state: &State,
    diags: &mut Diagnostics,
    span: crate::model::Span,
) -> Desired {
    let rt = super::resource_type(&desired.address);
    let mut out = desired.clone();
    for (name, attr) in &rt.attributes {
        if !attr.is_settable() {
            continue;
        }
        if desired.sensitive.contains(name) {
            let now = desired.values.get(name).and_then(|v| v.as_str());
            let same = match (now, prior.secret_digests.get(name)) {
                (Some(v), Some(recorded)) => {
                    state.digest_matches(&desired.address.type_name, &prior.id, name, v, recorded) == Some(true)
                }
                (None, None) => true,
                _ => false,
            };
            if !same {
                diags.push(
                    Diagnostic::error(format!(
                        "`{}.{name}` cannot be rolled back: it is a secret, and thoth keeps no secret value",
                        desired.address
                    ))
                    .at(span, "a secret changed in this stage")
                    .help("set the previous secret in the configuration, then roll back"),
                );
            }
            continue;
        }
        match prior.attributes.get(name) {
            Some(json) => {
                out.values.insert(name.clone(), Value::from_json(json));
            }
            None => {
                out.values.remove(name);
            }
        }
    }
    out
}

/// Why stage `index` may not apply yet: an earlier stage has changes left, or the previous
/// stage's gate fails or is still soaking. Empty when it may.
pub fn refusals(rollout: &RolloutDecl, index: usize, stages: &[StageView]) -> Vec<String> {
    let mut why = Vec::new();
    for earlier in &stages[..index] {
        if earlier.pending > 0 {
            why.push(format!(
                "stage `{}` has {} change(s) not applied: apply `--stage {}` first",
                earlier.name, earlier.pending, earlier.name
            ));
        }
    }
    if let Some(previous) = index.checked_sub(1).map(|i| &stages[i]) {
        let gate = rollout.gate_of(&rollout.stages[index - 1]);
        if previous.gate_passes == Some(false) {
            let names: Vec<&str> = gate.map(|g| g.checks.iter().map(|(t, _)| t.as_str()).collect()).unwrap_or_default();
            why.push(format!("the gate of stage `{}` fails: {} must pass", previous.name, names.join(", ")));
        }
        if previous.soak_left > 0 {
            why.push(format!(
                "stage `{}` is soaking: {}s left of its {}s",
                previous.name,
                previous.soak_left,
                gate.map_or(0, |g| g.soak.as_secs())
            ));
        }
    }
    why
}

/// Records an apply of a stage before it runs: what its changes' objects are now. An apply
/// that did not complete is continued by the next one, which keeps the earliest prior values.
pub fn record_start(state: &mut State, selection: &StageSelection, changes: &[Change], now: &str) {
    let applies =
        state.rollouts.entry(selection.rollout.clone()).or_default().entry(selection.stage.clone()).or_default();
    let prior: BTreeMap<String, Option<ResourceState>> = changes
        .iter()
        .filter(|c| c.action.writes())
        .map(|c| (c.address.to_string(), state.resources.get(&c.address).cloned()))
        .collect();
    match applies.last_mut() {
        Some(last) if !last.complete => {
            for (address, entry) in prior {
                last.prior.entry(address).or_insert(entry);
            }
            now.clone_into(&mut last.applied_at);
        }
        _ => applies.push(StageApply { applied_at: now.to_owned(), complete: false, prior }),
    }
    if applies.len() > crate::state::STAGE_HISTORY {
        applies.remove(0);
    }
}

/// Marks the stage's last apply complete, at `now`.
pub fn record_complete(state: &mut State, selection: &StageSelection, now: &str) {
    let last =
        state.rollouts.get_mut(&selection.rollout).and_then(|r| r.get_mut(&selection.stage)).and_then(|a| a.last_mut());
    if let Some(last) = last {
        last.complete = true;
        now.clone_into(&mut last.applied_at);
    }
}

/// What a rollback of the stage returns its objects to: the prior values of its last apply.
pub fn rollback_prior<'s>(
    state: &'s State,
    selection: &StageSelection,
) -> Option<&'s BTreeMap<String, Option<ResourceState>>> {
    state.rollouts.get(&selection.rollout)?.get(&selection.stage)?.last().map(|a| &a.prior)
}

/// The addresses of a plan's writes that belong to some stage of a rollout, with the stage.
pub fn staged_writes<'c>(module: &Module, changes: &'c [Change]) -> Vec<(&'c Address, String, String)> {
    let mut out = Vec::new();
    for c in changes.iter().filter(|c| c.action.writes()) {
        for rollout in module.rollouts.values() {
            if let Some(stage) = stage_of(rollout, &c.address) {
                out.push((&c.address, rollout.name.clone(), stage.name.clone()));
            }
        }
    }
    out
}

/// The held changes of a full plan once a stage's changes are kept.
pub fn held(rollout: &RolloutDecl, full: &[(Address, Action)], kept: &BTreeSet<Address>) -> Vec<Held> {
    full.iter()
        .filter(|(a, action)| action.writes() && !kept.contains(a))
        .map(|(a, action)| Held {
            address: a.clone(),
            action: *action,
            stage: stage_of(rollout, a).map(|s| s.name.clone()),
        })
        .collect()
}
