//! Walking a configuration in dependency order: every resource, data source and local is
//! evaluated once its dependencies are, with what the caller says references see of each
//! resource (configured values offline, planned values while planning, recorded values during
//! apply and for outputs).
//!
//! This module never does IO: data sources are read through the `DataReader` a command
//! supplies, and the state is handed in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::config::{
    self, Desired, Evaluator, Expansion, InstanceBinding, Module, Node, Repetition, ResourceDecl, ResourceValues,
    VarInputs,
};
use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::{self, Graph};
use crate::model::{Address, InstanceKey, Mode, Value};
use crate::schema::{AttrMode, Schema};
use crate::state::{ResourceState, State};
use crate::vecmap::VecMap;

/// A loaded configuration with its graph and the values of its variables.
#[derive(Debug)]
pub struct Configuration {
    pub module: Module,
    pub graph: Graph,
    pub variables: BTreeMap<String, (Value, bool)>,
}

/// Reads data sources for a walk.
pub trait DataReader {
    /// Reads a data source now; `None` when its inputs are not known yet.
    fn read(&self, desired: &Desired) -> Option<Result<ResourceValues, String>>;
}

/// Reads no data source: everything a data source returns is unknown.
pub struct Offline;

impl DataReader for Offline {
    fn read(&self, _: &Desired) -> Option<Result<ResourceValues, String>> {
        None
    }
}

/// Loads the directory, resolves variables, builds the graph and evaluates everything
/// offline, collecting every diagnostic on the way.
pub fn load(dir: &Path, inputs: &VarInputs) -> (Configuration, Diagnostics) {
    let (mut module, mut diags) = config::load(dir, "");
    let (variables, var_diags) = config::resolve_variables(&mut module, inputs);
    diags.extend(var_diags);
    let (graph, graph_diags) = graph::build(&module);
    diags.extend(graph_diags);
    let conf = Configuration { module, graph, variables };
    // A cycle leaves no order to evaluate in; anything else still gets evaluated so that its
    // problems are reported in the same run.
    if conf.graph.complete {
        // Evaluation keeps the values of referenced resources only; the others need none.
        let ev = walk(&conf, &mut diags, None, |_, decl, desired, _| {
            if conf.graph.referenced.contains(&decl.address) {
                offline_values(desired)
            } else {
                ResourceValues::default()
            }
        });
        outputs(&ev, &mut diags);
    }
    (conf, diags)
}

/// What references see of a resource when nothing remote is known: its configured values,
/// everything else unknown.
pub fn offline_values(desired: &Desired) -> ResourceValues {
    let mut values = desired.values.clone();
    if let Some(rt) = Schema::get().of(&desired.address) {
        for (name, attr) in &rt.attributes {
            if attr.mode == AttrMode::Computed || attr.mode == AttrMode::OptionalComputed {
                values.entry(name.clone()).or_insert(Value::Unknown);
            }
        }
    }
    values.insert("id".to_owned(), Value::Unknown);
    values.insert("tenant_id".to_owned(), Value::Unknown);
    ResourceValues { values, sensitive: desired.sensitive.clone() }
}

/// Every attribute unknown: what dependents see of a resource that failed to lower.
pub fn unknown_values(address: &Address) -> ResourceValues {
    let mut values: VecMap<String, Value> = VecMap::new();
    if let Some(rt) = Schema::get().of(address) {
        for name in rt.attributes.keys().map(String::as_str).chain(["id", "tenant_id"]) {
            values.insert(name.to_owned(), Value::Unknown);
        }
    }
    ResourceValues { values, sensitive: BTreeSet::new() }
}

/// What references see of a resource recorded in state: the recorded attributes, the
/// configured values for what is not recorded (secrets), its id and tenant.
pub fn recorded_values(
    entry: &ResourceState,
    desired: &VecMap<String, Value>,
    sensitive: &BTreeSet<String>,
    tenant: &str,
) -> ResourceValues {
    let mut values: VecMap<String, Value> =
        entry.attributes.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect();
    for (name, v) in desired {
        values.entry(name.clone()).or_insert_with(|| v.clone());
    }
    values.insert("id".to_owned(), Value::String(entry.id.clone()));
    values.insert("tenant_id".to_owned(), Value::String(tenant.to_owned()));
    ResourceValues { values, sensitive: sensitive.clone() }
}

/// Evaluates every node in dependency order (only the blocks in `only`, when given).
/// `on_resource` turns a lowered resource instance into the values references see (and
/// records whatever the caller needs); it gets the instance's resource dependencies.
pub fn walk<'m>(
    conf: &'m Configuration,
    diags: &mut Diagnostics,
    only: Option<&BTreeSet<Address>>,
    mut on_resource: impl FnMut(&Evaluator<'_>, &ResourceDecl, &Desired, BTreeSet<Address>) -> ResourceValues,
) -> Evaluator<'m> {
    let mut ev = Evaluator::new(&conf.module, conf.variables.clone());
    for node in &conf.graph.order {
        match node {
            Node::Variable(_) | Node::Output(_) => {}
            Node::Local(name) => {
                let expr = &conf.module.locals[name];
                match ev.eval(expr) {
                    Ok(v) => {
                        ev.locals.insert(name.clone(), v);
                    }
                    Err(d) => {
                        // With only some blocks evaluated, a local may name one that was left
                        // out: it is unknown, and only matters if a block evaluated uses it.
                        if only.is_none() {
                            diags.push(d);
                        }
                        ev.locals.insert(name.clone(), (Value::Unknown, false));
                    }
                }
            }
            Node::Resource(block) if only.is_some_and(|set| !set.contains(block)) => {}
            Node::Resource(block) => {
                let decl = &conf.module.resources[block];
                let instances = match ev.expand(decl) {
                    Ok(instances) => instances,
                    Err(d) => {
                        diags.push(d);
                        ev.expansions.insert(block.clone(), Expansion::Unknown);
                        continue;
                    }
                };
                let deps: BTreeSet<Address> = conf
                    .graph
                    .resource_deps
                    .get(block)
                    .into_iter()
                    .flatten()
                    .flat_map(|dep| ev.instances_of(dep))
                    .collect();
                let bindings: Vec<Option<InstanceBinding>> =
                    if decl.repetition.is_none() { vec![None] } else { instances.into_iter().map(Some).collect() };
                let expansion = match &decl.repetition {
                    None => Expansion::Single,
                    Some(Repetition::Count(_)) => Expansion::Count(bindings.len()),
                    Some(Repetition::ForEach(_)) => Expansion::ForEach(
                        bindings
                            .iter()
                            .flatten()
                            .filter_map(|b| match &b.key {
                                InstanceKey::Name(k) => Some(k.clone()),
                                InstanceKey::Index(_) => None,
                            })
                            .collect(),
                    ),
                };
                for binding in bindings {
                    let key = binding.as_ref().map(|b| b.key.clone());
                    ev.instance = binding;
                    let address = block.with_key(key.clone());
                    let values = match config::lower_resource(&ev, decl, key, diags) {
                        Some(desired) => on_resource(&ev, decl, &desired, deps.clone()),
                        None => unknown_values(&address),
                    };
                    if conf.graph.referenced.contains(block) {
                        ev.resources.insert(address, values);
                    }
                }
                ev.instance = None;
                ev.expansions.insert(block.clone(), expansion);
            }
        }
    }
    ev
}

/// Evaluates the outputs; each with its value and whether it is sensitive.
pub fn outputs(ev: &Evaluator<'_>, diags: &mut Diagnostics) -> Vec<(String, Value, bool)> {
    let mut out = Vec::new();
    for (name, decl) in &ev.module.outputs {
        match ev.eval(&decl.value) {
            Ok((value, tainted)) => {
                if tainted && !decl.sensitive {
                    diags.push(
                        Diagnostic::error(format!("output `{name}` shows a sensitive value"))
                            .at(decl.span, "derived from a secret")
                            .help("add `sensitive = true` to the output"),
                    );
                }
                out.push((name.clone(), value, decl.sensitive || tainted));
            }
            Err(d) => diags.push(d),
        }
    }
    out
}

/// Recomputes a resource's values during apply by evaluating the configuration again with
/// what has been applied so far.
pub struct Reevaluate<'a> {
    pub conf: &'a Configuration,
    pub tenant: &'a str,
    pub data: &'a dyn DataReader,
}

impl crate::apply::Resolver for Reevaluate<'_> {
    fn resolve(&self, address: &Address, state: &State) -> Result<VecMap<String, Value>, String> {
        let mut diags = Diagnostics::default();
        let mut target = None;
        // Only the block and what it depends on, directly or not, are evaluated.
        let mut needed: BTreeSet<Address> = BTreeSet::new();
        let mut pending = vec![address.block()];
        while let Some(block) = pending.pop() {
            if needed.insert(block.clone()) {
                pending.extend(self.conf.graph.resource_deps.get(&block).into_iter().flatten().cloned());
            }
        }
        walk(self.conf, &mut diags, Some(&needed), |_, _, desired, _| {
            if &desired.address == address {
                target = Some(desired.values.clone());
            }
            if desired.address.mode == Mode::Data {
                return match self.data.read(desired) {
                    Some(Ok(values)) => values,
                    _ => offline_values(desired),
                };
            }
            match state.resources.get(&desired.address) {
                Some(entry) => recorded_values(entry, &desired.values, &desired.sensitive, self.tenant),
                None => offline_values(desired),
            }
        });
        if let Some(d) = diags.errors_only().sorted().first() {
            return Err(d.message.clone());
        }
        target.ok_or_else(|| format!("`{address}` is no longer in the configuration"))
    }
}

/// The outputs as an apply left the tenant: resources from their state entries (with the
/// secrets the control plane revealed during the apply) and data sources read again.
pub fn applied_outputs(
    conf: &Configuration,
    plan: &crate::plan::Plan,
    state: &State,
    revealed: &BTreeMap<Address, VecMap<String, Value>>,
    data: &dyn DataReader,
) -> (Vec<(String, Value, bool)>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let applied: BTreeMap<Address, ResourceValues> = plan
        .changes
        .iter()
        .filter_map(|c| {
            let entry = state.resources.get(&c.address)?;
            let mut values = recorded_values(entry, &c.desired, &c.sensitive, &plan.tenant_id);
            for (name, secret) in revealed.get(&c.address).into_iter().flatten() {
                values.values.insert(name.clone(), secret.clone());
                values.sensitive.insert(name.clone());
            }
            Some((c.address.clone(), values))
        })
        .collect();
    let mut ev = walk(conf, &mut diags, None, |_, _, desired, _| {
        if desired.address.mode == Mode::Data {
            if let Some(Ok(values)) = data.read(desired) {
                return values;
            }
        }
        applied.get(&desired.address).cloned().unwrap_or_else(|| unknown_values(&desired.address))
    });
    for (address, values) in &applied {
        ev.resources.insert(address.clone(), values.clone());
    }
    let outputs = outputs(&ev, &mut diags);
    (outputs, diags)
}
