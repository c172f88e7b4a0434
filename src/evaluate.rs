//! Walking a configuration in dependency order: every resource, data source and local is
//! evaluated once its dependencies are, with what the caller says references see of each
//! resource (configured values offline, planned values while planning, recorded values during
//! apply and for outputs).
//!
//! This module never does IO: data sources are read through the `DataReader` a command
//! supplies, and the state is handed in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use crate::config::{
    self, CheckKind, CheckResult, CheckStatus, Condition, Desired, Evaluator, Expansion, InstanceBinding, Module,
    ModuleCall, Node, Repetition, ResourceDecl, ResourceValues, ScopeId, VarInputs, ROOT,
};
use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::{self, Graph};
use crate::model::{module_path_text, Address, InstanceKey, Mode, ModuleStep, NameMap, Span, Value};
use crate::schema::{AttrMode, Schema};
use crate::state::{ResourceState, State};
use crate::vecmap::VecMap;

/// A loaded configuration with its graph and the values of its variables.
#[derive(Debug)]
pub struct Configuration {
    pub module: Module,
    pub graph: Graph,
    /// The root module's variables, with whether each is sensitive.
    pub variables: BTreeMap<String, (Value, bool)>,
    /// The selected workspace, for `terraform.workspace`.
    pub workspace: String,
    /// Managed resource instances of the root module whose values depend on no resource or
    /// data source, as the offline check lowered them: they lower the same in every walk, so
    /// planning takes them from here instead of evaluating them again. Empty unless the
    /// configuration was loaded for a plan.
    pub settled: Mutex<NameMap<Address, Desired>>,
}

/// What a walk does with `Configuration::settled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Keep what it lowers there (the offline check of a configuration loaded for a plan).
    Keep,
    /// Take from there what is there instead of lowering it (planning).
    Take,
    /// Neither.
    Ignore,
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
/// A Terraform Stack is loaded for one deployment (`deployment`), whose inputs set the
/// stack's variables. `for_plan` keeps the settled resources for planning.
pub fn load(
    dir: &Path,
    inputs: &VarInputs,
    workspace: &str,
    deployment: Option<&str>,
    for_plan: bool,
) -> (Configuration, Diagnostics) {
    read(dir, inputs, workspace, deployment).check(for_plan)
}

/// A configuration read with its variables resolved, before its graph is built and it is
/// evaluated: enough to connect to the tenant and open the state, which can go on while it is
/// checked.
#[derive(Debug)]
pub struct Read {
    pub module: Module,
    /// The root module's variables, with whether each is sensitive.
    pub variables: BTreeMap<String, (Value, bool)>,
    /// The selected workspace.
    pub workspace: String,
    diags: Diagnostics,
    started: std::time::Instant,
}

/// The first half of `load`: reads the directory and resolves the variables.
pub fn read(dir: &Path, inputs: &VarInputs, workspace: &str, deployment: Option<&str>) -> Read {
    let started = std::time::Instant::now();
    let (mut module, mut diags, inputs) = match deployment {
        None => {
            let (module, diags) = config::load(dir, "");
            (module, diags, std::borrow::Cow::Borrowed(inputs))
        }
        Some(name) => {
            let (module, diags, values) = config::load_stack(dir, "", name);
            (module, diags, std::borrow::Cow::Owned(VarInputs { values, ..inputs.clone() }))
        }
    };
    crate::phase::done(started, "configuration read");
    let (variables, var_diags) = config::resolve_variables(&mut module, &inputs);
    diags.extend(var_diags);
    Read { module, variables, workspace: workspace.to_owned(), diags, started }
}

impl Read {
    /// Whether reading found errors already.
    pub fn has_errors(&self) -> bool {
        self.diags.has_errors()
    }

    /// The second half of `load`: builds the graph and evaluates everything offline.
    pub fn check(self, for_plan: bool) -> (Configuration, Diagnostics) {
        let Read { module, variables, workspace, mut diags, started } = self;
        let (graph, graph_diags) = graph::build(&module);
        diags.extend(graph_diags);
        diags.extend(crate::plan::rollout::check(&module));
        crate::phase::done(started, "graph built");
        let conf = Configuration { module, graph, variables, workspace, settled: Mutex::default() };
        // A cycle leaves no order to evaluate in; anything else still gets evaluated so that
        // its problems are reported in the same run.
        if conf.graph.complete {
            // Evaluation keeps the values of referenced resources only; the others need none.
            let settled = if for_plan { Settled::Keep } else { Settled::Ignore };
            let ev = walk(&conf, &mut diags, None, settled, |_, decl, desired, _| {
                if conf.graph.referenced.contains(&decl.address) {
                    offline_values(desired)
                } else {
                    ResourceValues::default()
                }
            });
            outputs(&ev, &mut diags);
        }
        crate::phase::done(started, "configuration evaluated");
        (conf, diags)
    }
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

/// Evaluates every node in dependency order (only the blocks in `only`, when given), in
/// every instance of its module. `on_resource` turns a lowered resource instance into the
/// values references see (and records whatever the caller needs); it gets the instance's
/// resource dependencies.
pub fn walk<'m>(
    conf: &'m Configuration,
    diags: &mut Diagnostics,
    only: Option<&BTreeSet<Address>>,
    settled: Settled,
    mut on_resource: impl FnMut(&Evaluator<'_>, &ResourceDecl, &Desired, BTreeSet<Address>) -> ResourceValues,
) -> Evaluator<'m> {
    let module = &conf.module;
    let mut ev = Evaluator::new(module, conf.variables.clone());
    ev.workspace.clone_from(&conf.workspace);
    // The instances of each module: the root module has one; a called module gets its
    // instances when its call is evaluated.
    let mut instances: Vec<Vec<Vec<ModuleStep>>> = vec![Vec::new(); module.scopes.len()];
    instances[0] = vec![Vec::new()];
    // With only some blocks evaluated, a value may name one that was left out: it is
    // unknown, and only matters if a block evaluated uses it.
    let report = |diags: &mut Diagnostics, d: Diagnostic| {
        if only.is_none() {
            diags.push(d);
        }
    };
    // A partial walk (the values of some blocks during apply) concludes nothing about checks.
    let record = only.is_none();
    for node in &conf.graph.order {
        match node {
            Node::Output(scope, name) if *scope == ROOT => {
                let decl = &module.root().outputs[name];
                if record && !decl.preconditions.is_empty() {
                    ev.scope = Vec::new();
                    let result = conditions(
                        &ev,
                        &decl.preconditions,
                        CheckKind::Precondition,
                        format!("output.{name}"),
                        decl.span,
                    );
                    ev.checks.push(result);
                }
            }
            Node::Variable(scope, _) if *scope == ROOT => {}
            Node::Check(scope, name) => {
                if record {
                    let decl = &module.scope(*scope).checks[name];
                    for inst in instances[scope.0 as usize].clone() {
                        let address = format!("{}check.{name}", prefix(&inst));
                        ev.scope = inst;
                        let result = conditions(&ev, &decl.asserts, CheckKind::Check, address, decl.span);
                        ev.checks.push(result);
                    }
                }
            }
            Node::Variable(scope, name) => {
                let decl = &module.scope(*scope).variables[name];
                for inst in instances[scope.0 as usize].clone() {
                    ev.scope = inst;
                    let value = child_variable(&ev, *scope, decl, diags);
                    ev.variables.entry(ev.scope.clone()).or_default().insert(name.clone(), value);
                }
            }
            Node::Local(scope, name) => {
                let expr = &module.scope(*scope).locals[name];
                for inst in instances[scope.0 as usize].clone() {
                    ev.scope = inst;
                    let value = ev.eval(expr).unwrap_or_else(|d| {
                        report(diags, d);
                        (Value::Unknown, false)
                    });
                    ev.locals.entry(ev.scope.clone()).or_default().insert(name.clone(), value);
                }
            }
            Node::Output(scope, name) => {
                let decl = &module.scope(*scope).outputs[name];
                for inst in instances[scope.0 as usize].clone() {
                    if record && !decl.preconditions.is_empty() {
                        let address = format!("{}output.{name}", prefix(&inst));
                        ev.scope = inst.clone();
                        let result = conditions(&ev, &decl.preconditions, CheckKind::Precondition, address, decl.span);
                        ev.checks.push(result);
                    }
                    ev.scope = inst;
                    let value = match ev.eval(&decl.value) {
                        Ok((value, tainted)) => {
                            if tainted && !decl.sensitive {
                                report(
                                    diags,
                                    sensitive_output(module.scope(*scope).prefix().as_str(), name, decl.span),
                                );
                            }
                            (value, tainted || decl.sensitive)
                        }
                        Err(d) => {
                            report(diags, d);
                            (Value::Unknown, decl.sensitive)
                        }
                    };
                    ev.outputs.entry(ev.scope.clone()).or_default().insert(name.clone(), value);
                }
            }
            Node::Module(scope, name) => {
                let call = &module.scope(*scope).calls[name];
                let mut made = Vec::new();
                for inst in instances[scope.0 as usize].clone() {
                    ev.scope = inst;
                    made.extend(module_call(&mut ev, call, diags));
                }
                if let Some(child) = call.child {
                    instances[child.0 as usize] = made;
                }
            }
            Node::Resource(block) if only.is_some_and(|set| !set.contains(block)) => {}
            Node::Resource(block) => {
                let decl = &module.resources[block];
                for inst in instances[decl.scope.0 as usize].clone() {
                    ev.scope = inst;
                    resource(&mut ev, conf, &instances, decl, diags, (record, settled), &mut on_resource);
                }
            }
        }
    }
    ev.scope = Vec::new();
    ev.instance = None;
    ev
}

/// Evaluates one resource block in the module instance `ev.scope`: its instances, each
/// lowered and handed to `on_resource`.
fn resource(
    ev: &mut Evaluator<'_>,
    conf: &Configuration,
    instances: &[Vec<Vec<ModuleStep>>],
    decl: &ResourceDecl,
    diags: &mut Diagnostics,
    (record, settled): (bool, Settled),
    on_resource: &mut impl FnMut(&Evaluator<'_>, &ResourceDecl, &Desired, BTreeSet<Address>) -> ResourceValues,
) {
    let block = decl.address.in_module(&ev.scope);
    let bindings = match ev.expand(decl) {
        Ok(instances) => instances,
        Err(d) => {
            diags.push(d);
            ev.expansions.insert(block, Expansion::Unknown);
            return;
        }
    };
    let deps: BTreeSet<Address> = conf
        .graph
        .resource_deps
        .get(&decl.address)
        .into_iter()
        .flatten()
        .flat_map(|dep| dep_blocks(conf, instances, dep, &ev.scope))
        .flat_map(|dep| ev.instances_of(&dep))
        .collect();
    let bindings: Vec<Option<InstanceBinding>> =
        if decl.repetition.is_none() { vec![None] } else { bindings.into_iter().map(Some).collect() };
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
    let referenced = conf.graph.referenced.contains(&decl.address);
    // Values that depend on nothing remote are the same in every walk.
    let settles = settled != Settled::Ignore
        && decl.scope == ROOT
        && decl.address.mode == Mode::Managed
        && conf.graph.resource_deps.get(&decl.address).is_none_or(BTreeSet::is_empty);
    let mut cache = conf.settled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for binding in bindings {
        let key = binding.as_ref().map(|b| b.key.clone());
        ev.instance = binding;
        let address = block.with_key(key.clone());
        let lowered = match settled {
            Settled::Take if settles => cache.remove(&address),
            _ => None,
        };
        let values = match lowered.or_else(|| config::lower_resource(ev, decl, key, diags)) {
            Some(desired) => {
                let values = on_resource(ev, decl, &desired, deps.clone());
                if settles && settled == Settled::Keep {
                    cache.insert(address.clone(), desired);
                }
                values
            }
            None => unknown_values(&address),
        };
        let lifecycle = &decl.lifecycle;
        if record && !lifecycle.preconditions.is_empty() {
            let result =
                conditions(ev, &lifecycle.preconditions, CheckKind::Precondition, address.to_string(), decl.span);
            ev.checks.push(result);
        }
        if record && !lifecycle.postconditions.is_empty() {
            ev.this = Some((address.clone(), values.clone()));
            let result =
                conditions(ev, &lifecycle.postconditions, CheckKind::Postcondition, address.to_string(), decl.span);
            ev.this = None;
            ev.checks.push(result);
        }
        if referenced {
            ev.resources.insert(address, values);
        }
    }
    ev.instance = None;
    ev.expansions.insert(block, expansion);
}

/// The blocks a dependency names from the module instance `from`: the same module instance
/// (or the enclosing one) when the dependency is in it, every instance of its module otherwise.
fn dep_blocks(
    conf: &Configuration,
    instances: &[Vec<Vec<ModuleStep>>],
    dep: &Address,
    from: &[ModuleStep],
) -> Vec<Address> {
    let names = |path: &[ModuleStep]| path.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let dep_names = names(&dep.module);
    if dep_names.len() <= from.len() && names(&from[..dep_names.len()]) == dep_names {
        return vec![dep.in_module(&from[..dep_names.len()])];
    }
    let Some(decl) = conf.module.resources.get(dep) else { return Vec::new() };
    instances[decl.scope.0 as usize].iter().map(|inst| dep.in_module(inst)).collect()
}

/// Evaluates a module call in the module instance `ev.scope`: its instances and, for each,
/// the inputs that set the called module's variables. Returns the instances it made.
fn module_call(ev: &mut Evaluator<'_>, call: &ModuleCall, diags: &mut Diagnostics) -> Vec<Vec<ModuleStep>> {
    let module = ev.module;
    let path = module_path_text(&ev.scope);
    let what = if path.is_empty() { format!("module.{}", call.name) } else { format!("{path}.module.{}", call.name) };
    let key = (ev.scope.clone(), call.name.clone());
    let bindings = match ev.expand_repetition(call.repetition.as_ref(), &what) {
        Ok(b) => b,
        Err(d) => {
            diags.push(d);
            ev.module_expansions.insert(key, Expansion::Unknown);
            return Vec::new();
        }
    };
    let bindings: Vec<Option<InstanceBinding>> =
        if call.repetition.is_none() { vec![None] } else { bindings.into_iter().map(Some).collect() };
    let expansion = match &call.repetition {
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
    ev.module_expansions.insert(key, expansion);
    let Some(child) = call.child else { return Vec::new() };
    let declared = &module.scope(child).variables;
    for (input, expr) in &call.inputs {
        if !declared.contains_key(input) {
            let mut d = Diagnostic::error(format!("module `{}` has no variable `{input}`", call.name))
                .at(expr.key_span, "not a variable of the module");
            if let Some(s) = crate::diag::did_you_mean(input, declared.keys().map(String::as_str)) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            diags.push(d);
        }
    }
    for (name, decl) in declared {
        if decl.default.is_none() && !call.inputs.contains_key(name) {
            diags.push(
                Diagnostic::error(format!("module `{}` needs a value for its variable `{name}`", call.name))
                    .at(call.span, format!("`{name}` is not set"))
                    .related(decl.span, "declared without a default here")
                    .help(format!("add `{name} = ...` to the module block")),
            );
        }
    }
    let mut made = Vec::new();
    for binding in bindings {
        let mut inst = ev.scope.clone();
        inst.push(ModuleStep { name: call.name.clone(), key: binding.as_ref().map(|b| b.key.clone()) });
        ev.instance = binding;
        let mut inputs = BTreeMap::new();
        for (input, expr) in &call.inputs {
            if !declared.contains_key(input) {
                continue;
            }
            match ev.eval(expr) {
                Ok(value) => {
                    inputs.insert(input.clone(), value);
                }
                Err(d) => {
                    diags.push(d);
                    inputs.insert(input.clone(), (Value::Unknown, false));
                }
            }
        }
        ev.instance = None;
        ev.variables.insert(inst.clone(), inputs);
        made.push(inst);
    }
    made
}

/// The value of a called module's variable in the instance `ev.scope`: the input its call set
/// (already in `ev.variables`), else its default; converted to its type and validated.
fn child_variable(
    ev: &Evaluator<'_>,
    scope: ScopeId,
    decl: &crate::config::VariableDecl,
    diags: &mut Diagnostics,
) -> (Value, bool) {
    let given = ev.variables.get(&ev.scope).and_then(|v| v.get(&decl.name)).cloned();
    let (value, tainted) = match (given, &decl.default) {
        (Some(v), _) => v,
        (None, Some(default)) => ev.eval(default).unwrap_or_else(|d| {
            diags.push(d);
            (Value::Unknown, false)
        }),
        // Reported at the call.
        (None, None) => (Value::Unknown, false),
    };
    let value = match &decl.type_constraint {
        Some(t) => t.convert(value).unwrap_or_else(|msg| {
            diags.push(
                Diagnostic::error(format!(
                    "invalid value for variable `{}{}`: {msg}",
                    ev.module.scope(scope).prefix(),
                    decl.name
                ))
                .at(decl.span, "declared here"),
            );
            Value::Unknown
        }),
        None => value,
    };
    let sensitive = tainted || decl.sensitive;
    if value.is_known() && !decl.validations.is_empty() {
        let mut check = Evaluator::new(ev.module, BTreeMap::new());
        check.scope.clone_from(&ev.scope);
        check
            .variables
            .insert(ev.scope.clone(), [(decl.name.clone(), (value.clone(), sensitive))].into_iter().collect());
        crate::config::check_validation(&check, decl, diags);
    }
    (value, sensitive)
}

/// `module.NAME[KEY].` for a module instance, empty for the root module.
fn prefix(inst: &[ModuleStep]) -> String {
    if inst.is_empty() {
        String::new()
    } else {
        format!("{}.", module_path_text(inst))
    }
}

/// Evaluates conditions in the evaluator's module instance (with `self`, when set) into one
/// result: failed when one fails, unknown when one depends on values known after apply.
fn conditions(ev: &Evaluator<'_>, conds: &[Condition], kind: CheckKind, address: String, span: Span) -> CheckResult {
    let mut status = CheckStatus::Pass;
    let mut messages = Vec::new();
    // The result points at the first condition that failed, or at the block.
    let mut span = span;
    for c in conds {
        if status != CheckStatus::Fail {
            span = c.span;
        }
        let failed = match ev.eval(&c.condition) {
            Ok((Value::Bool(true), _)) => false,
            Ok((Value::Bool(false), _)) => true,
            Ok((Value::Unknown, _)) => {
                if status == CheckStatus::Pass {
                    status = CheckStatus::Unknown;
                }
                false
            }
            Ok((other, _)) => {
                messages.push(format!("the condition is a {}, not a bool", other.type_name()));
                status = CheckStatus::Fail;
                continue;
            }
            Err(d) => {
                messages.push(format!("the condition cannot be evaluated: {}", d.message));
                status = CheckStatus::Fail;
                continue;
            }
        };
        if failed {
            status = CheckStatus::Fail;
            messages.push(match ev.eval(&c.error_message) {
                Ok((_, true)) => "(the error message uses a sensitive value)".to_owned(),
                Ok((Value::String(m), false)) => m,
                Ok((Value::Unknown, false)) => "(the error message is known after apply)".to_owned(),
                Ok((other, false)) => other.to_json().to_string(),
                Err(d) => format!("(the error message cannot be evaluated: {})", d.message),
            });
        }
    }
    CheckResult { address, kind, status, messages, span }
}

fn sensitive_output(prefix: &str, name: &str, span: crate::model::Span) -> Diagnostic {
    Diagnostic::error(format!("output `{prefix}{name}` shows a sensitive value"))
        .at(span, "derived from a secret")
        .help("add `sensitive = true` to the output")
}

/// Evaluates the outputs; each with its value and whether it is sensitive.
pub fn outputs(ev: &Evaluator<'_>, diags: &mut Diagnostics) -> Vec<(String, Value, bool)> {
    let mut out = Vec::new();
    for (name, decl) in &ev.module.root().outputs {
        match ev.eval(&decl.value) {
            Ok((value, tainted)) => {
                if tainted && !decl.sensitive {
                    diags.push(sensitive_output("", name, decl.span));
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
        walk(self.conf, &mut diags, Some(&needed), Settled::Ignore, |_, _, desired, _| {
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

/// The outputs and the results of checks and conditions as an apply left the tenant: resources from their state entries (with the
/// secrets the control plane revealed during the apply) and data sources read again.
pub fn applied_outputs(
    conf: &Configuration,
    plan: &crate::plan::Plan,
    state: &State,
    revealed: &BTreeMap<Address, VecMap<String, Value>>,
    data: &dyn DataReader,
) -> (Vec<(String, Value, bool)>, Vec<CheckResult>, Diagnostics) {
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
    let mut ev = walk(conf, &mut diags, None, Settled::Ignore, |_, _, desired, _| {
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
    (outputs, std::mem::take(&mut ev.checks), diags)
}

/// The results of checks and conditions with the values the state recorded (as the last
/// apply left them) and data sources read now: what `thoth verify` reports.
pub fn recorded_checks(conf: &Configuration, state: &State, tenant: &str, data: &dyn DataReader) -> Vec<CheckResult> {
    let mut diags = Diagnostics::default();
    let mut ev = walk(conf, &mut diags, None, Settled::Ignore, |_, _, desired, _| {
        if desired.address.mode == Mode::Data {
            if let Some(Ok(values)) = data.read(desired) {
                return values;
            }
        }
        match state.resources.get(&desired.address) {
            Some(entry) => recorded_values(entry, &desired.values, &desired.sensitive, tenant),
            None => unknown_values(&desired.address),
        }
    });
    std::mem::take(&mut ev.checks)
}

#[cfg(test)]
mod tests {
    use super::{load, walk, Settled};
    use crate::config::VarInputs;
    use crate::diag::Diagnostics;
    use crate::model::{Address, Value};
    use crate::vecmap::VecMap;

    const CONFIG: &str = r#"
variable "region" {
  default = "eu-west-1"
}

locals {
  status = "active"
}

resource "thoth_fleet" "eu" {
  name          = "EU laptops"
  region        = var.region
  status        = local.status
  provider_name = "jamf"
}

resource "thoth_endpoint" "laptop" {
  count         = 2
  endpoint_id   = "ep-laptop-${count.index}"
  hostname      = "laptop-${count.index}.example.com"
  environment   = "prod"
  enrollment    = "jamf"
  fleet_id      = thoth_fleet.eu.fleet_id
}

resource "thoth_endpoint" "kiosk" {
  for_each    = toset(["a", "b"])
  endpoint_id = "ep-kiosk-${each.key}"
  hostname    = "kiosk-${each.key}.example.com"
  environment = var.region
  enrollment  = "jamf"
}
"#;

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("thoth-settled-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("main.tf"), CONFIG).expect("write the configuration");
        dir
    }

    /// What a walk hands each resource instance, by address.
    fn lowered(conf: &super::Configuration, settled: Settled) -> Vec<(Address, VecMap<String, Value>)> {
        let mut seen = Vec::new();
        let mut diags = Diagnostics::default();
        walk(conf, &mut diags, None, settled, |_, _, desired, _| {
            seen.push((desired.address.clone(), desired.values.clone()));
            super::offline_values(desired)
        });
        assert!(!diags.has_errors(), "{diags:?}");
        seen
    }

    #[test]
    fn resources_that_depend_on_nothing_remote_are_lowered_once_for_a_plan() {
        let dir = dir();
        let (conf, diags) = load(&dir, &VarInputs::default(), "default", None, true);
        assert!(!diags.has_errors(), "{diags:?}");
        let mut kept: Vec<String> = conf.settled.lock().expect("settled").keys().map(ToString::to_string).collect();
        kept.sort();
        // The laptops refer to the fleet's id, which only the tenant knows.
        assert_eq!(kept, ["thoth_endpoint.kiosk[\"a\"]", "thoth_endpoint.kiosk[\"b\"]", "thoth_fleet.eu"]);
        // Taken instead of lowered, they are what lowering them again gives.
        let taken = lowered(&conf, Settled::Take);
        assert!(conf.settled.lock().expect("settled").is_empty());
        assert_eq!(taken, lowered(&conf, Settled::Ignore));
        assert_eq!(taken.len(), 5);

        let (conf, _) = load(&dir, &VarInputs::default(), "default", None, false);
        assert!(conf.settled.lock().expect("settled").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
