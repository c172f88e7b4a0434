//! The commands: each one computes a value (diagnostics, a plan, an apply report) with the
//! pipeline modules and hands it to `render`, then maps the outcome to an exit code.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::apply;
use crate::cli::{
    ApplyArgs, Cli, Command, ConnectionArgs, EmulatorArgs, Format, PlanArgs, ProviderValues, ShowArgs, VarArgs,
};
use crate::config::{
    self, Desired, Evaluator, Expansion, InstanceBinding, Module, Node, Repetition, ResourceDecl, ResourceValues,
    VarInputs,
};
use crate::diag::{Diagnostic, Diagnostics};
use crate::emulator::{Emulator, EmulatorConfig};
use crate::graph::{self, Graph};
use crate::model::{Address, InstanceKey, Mode, Value};
use crate::plan::{self, Action, Impact, Plan};
use crate::planfile::PlanFile;
use crate::remote::{self, snapshot::Needs, Auth, Client, Connection};
use crate::render;
use crate::schema::{AttrMode, Schema};
use crate::state::journal::Journal;
use crate::state::State;
use crate::vecmap::VecMap;

/// Exit codes.
pub const OK: u8 = 0;
pub const ERROR: u8 = 1;
pub const CHANGES: u8 = 2;
/// `--deny-loosening` and the plan loosens the tenant's security.
pub const LOOSENS: u8 = 3;

pub const DEFAULT_STATE: &str = "thoth.state.json";

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

fn fail(message: &str, hint: Option<&str>) -> u8 {
    err(&format!("error: {message}\n"));
    if let Some(h) = hint {
        err(&format!("hint: {h}\n"));
    }
    ERROR
}

pub fn run(cli: Cli) -> u8 {
    if let Some(dir) = &cli.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            return fail(&format!("cannot switch to `{}`: {e}", dir.display()), None);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}"), None),
    };
    match cli.command {
        Command::Validate(vars) => validate(&vars),
        Command::Plan(args) => runtime.block_on(plan_command(&args)),
        Command::Apply(args) => runtime.block_on(apply_command(&args)),
        Command::Show(args) => show_command(&args),
        Command::Emulator(args) => runtime.block_on(emulator_command(args)),
        Command::ForceUnlock(args) => {
            let path = args.state.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_STATE));
            match crate::state::lock::force_unlock(&path, &args.id) {
                Ok(info) => {
                    out(&format!("Removed the {info}.\n"));
                    OK
                }
                Err(e) => fail(&e, None),
            }
        }
    }
}

/// A loaded, checked configuration ready for evaluation.
struct Loaded {
    module: Module,
    graph: Graph,
    variables: BTreeMap<String, (Value, bool)>,
}

/// Loads, resolves variables, builds the graph and evaluates everything offline, printing
/// every diagnostic found on the way. `None` when there are errors.
fn load(vars: &VarArgs) -> Option<Loaded> {
    let (mut module, mut diags) = config::load(Path::new("."), "");
    let inputs = VarInputs { cli: vars.vars.clone(), files: vars.var_files.clone(), env: VarInputs::from_env() };
    let (variables, var_diags) = config::resolve_variables(&mut module, &inputs);
    diags.extend(var_diags);
    let (graph, graph_diags) = graph::build(&module);
    diags.extend(graph_diags);
    let loaded = Loaded { module, graph, variables };
    // A cycle leaves no order to evaluate in; anything else still gets evaluated so that its
    // problems are reported in the same run.
    if loaded.graph.complete {
        // Evaluation keeps the values of referenced resources only; the others need none.
        let ev = evaluate(&loaded, &mut diags, None, |ev, decl, desired, deps| {
            if loaded.graph.referenced.contains(&decl.address) {
                offline_values(ev, decl, desired, deps)
            } else {
                ResourceValues::default()
            }
        });
        evaluate_outputs(&ev, &mut diags);
    }
    if !diags.is_empty() {
        err(&render::diagnostics(&loaded.module.files, &diags));
    }
    (!diags.has_errors()).then_some(loaded)
}

/// What references see of a resource when nothing remote is known: its configured values,
/// everything else unknown.
fn offline_values(_: &Evaluator<'_>, _: &ResourceDecl, desired: &Desired, _: BTreeSet<Address>) -> ResourceValues {
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

/// Evaluates every node in dependency order. `on_resource` turns a lowered resource into the
/// values references see (and records whatever the caller needs).
fn evaluate<'m>(
    loaded: &'m Loaded,
    diags: &mut Diagnostics,
    only: Option<&BTreeSet<Address>>,
    mut on_resource: impl FnMut(&Evaluator<'_>, &ResourceDecl, &Desired, BTreeSet<Address>) -> ResourceValues,
) -> Evaluator<'m> {
    let mut ev = Evaluator::new(&loaded.module, loaded.variables.clone());
    for node in &loaded.graph.order {
        match node {
            Node::Variable(_) | Node::Output(_) => {}
            Node::Local(name) => {
                let expr = &loaded.module.locals[name];
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
                let decl = &loaded.module.resources[block];
                let instances = match ev.expand(decl) {
                    Ok(instances) => instances,
                    Err(d) => {
                        diags.push(d);
                        ev.expansions.insert(block.clone(), Expansion::Unknown);
                        continue;
                    }
                };
                let deps: BTreeSet<Address> = loaded
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
                    if loaded.graph.referenced.contains(block) {
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

/// Every attribute unknown: what dependents see of a resource that failed to lower.
fn unknown_values(address: &Address) -> ResourceValues {
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
fn recorded_values(
    entry: &crate::state::ResourceState,
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

/// Reads a data source now; `None` when its inputs are not known yet.
fn read_data(client: &Client, desired: &Desired) -> Option<Result<ResourceValues, String>> {
    if !desired.values.values().all(Value::is_known) {
        return None;
    }
    let rt = Schema::get().of(&desired.address)?;
    // Evaluation is synchronous; the read runs on this runtime without leaving it.
    let read = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(remote::data::read(client, rt, &desired.values))
    });
    Some(read.map_err(|e| e.to_string()).map(|values| ResourceValues { values, sensitive: desired.sensitive.clone() }))
}

/// Recomputes a resource's values during apply by evaluating the configuration again with
/// what has been applied so far.
struct Reevaluate<'a> {
    loaded: &'a Loaded,
    tenant: &'a str,
    client: &'a Client,
}

impl apply::Resolver for Reevaluate<'_> {
    fn resolve(&self, address: &Address, state: &State) -> Result<VecMap<String, Value>, String> {
        let mut diags = Diagnostics::default();
        let mut target = None;
        // Only the block and what it depends on, directly or not, are evaluated.
        let mut needed: BTreeSet<Address> = BTreeSet::new();
        let mut pending = vec![address.block()];
        while let Some(block) = pending.pop() {
            if needed.insert(block.clone()) {
                pending.extend(self.loaded.graph.resource_deps.get(&block).into_iter().flatten().cloned());
            }
        }
        evaluate(self.loaded, &mut diags, Some(&needed), |ev, decl, desired, deps| {
            if &desired.address == address {
                target = Some(desired.values.clone());
            }
            if desired.address.mode == Mode::Data {
                return match read_data(self.client, desired) {
                    Some(Ok(values)) => values,
                    _ => offline_values(ev, decl, desired, deps),
                };
            }
            match state.resources.get(&desired.address) {
                Some(entry) => recorded_values(entry, &desired.values, &desired.sensitive, self.tenant),
                None => offline_values(ev, decl, desired, deps),
            }
        });
        if let Some(d) = diags.errors_only().sorted().first() {
            return Err(d.message.clone());
        }
        target.ok_or_else(|| format!("`{address}` is no longer in the configuration"))
    }
}

/// Evaluates the outputs; each with its value and whether it is sensitive.
fn evaluate_outputs(ev: &Evaluator<'_>, diags: &mut Diagnostics) -> Vec<(String, Value, bool)> {
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

fn validate(vars: &VarArgs) -> u8 {
    let Some(loaded) = load(vars) else { return ERROR };
    out(&format!("The configuration is valid: {} resource(s).\n", loaded.module.resources.len()));
    // The process ends here: freeing a large syntax tree piece by piece would only cost time.
    std::mem::forget(loaded);
    OK
}

/// A connection to the control plane, and the embedded emulator when there is one.
struct Session {
    client: Client,
    emulator: Option<Emulator>,
    /// `--verbose`: say what reading the tenant cost.
    verbose: bool,
}

impl Session {
    async fn close(self) {
        if let Some(e) = self.emulator {
            e.shutdown().await;
        }
    }
}

async fn connect(args: &ConnectionArgs, loaded: &Loaded) -> Option<Session> {
    let mut diags = Diagnostics::default();
    let ev = Evaluator::new(&loaded.module, loaded.variables.clone());
    let provider = ProviderValues::evaluate(loaded.module.provider.as_ref(), &ev, &mut diags);
    let (connection, emulator) = if args.embedded {
        if diags.has_errors() {
            err(&render::diagnostics(&loaded.module.files, &diags));
            return None;
        }
        match embedded(args, &provider).await {
            Ok(pair) => pair,
            Err(e) => {
                fail(&e, None);
                return None;
            }
        }
    } else {
        let c = crate::cli::resolve_connection(args, &provider, &mut diags);
        if !diags.is_empty() {
            err(&render::diagnostics(&loaded.module.files, &diags));
        }
        (c?, None)
    };
    if diags.has_errors() {
        return None;
    }
    match Client::new(&connection) {
        Ok(client) => Some(Session { client, emulator, verbose: args.verbose }),
        Err(e) => {
            fail(&e, None);
            None
        }
    }
}

/// Starts the emulator in-process on a loopback port, with a throwaway key.
async fn embedded(args: &ConnectionArgs, provider: &ProviderValues) -> Result<(Connection, Option<Emulator>), String> {
    let data_dir = PathBuf::from(".thoth").join("embedded");
    let key = format!("thoth_embedded_{}", crate::state::hex(&crate::state::random_bytes::<16>()));
    let emulator = Emulator::start(
        EmulatorConfig { data_dir: data_dir.clone(), api_keys: vec![key.clone()], faults: Default::default() },
        "127.0.0.1:0",
    )
    .await
    .map_err(|e| format!("cannot start the embedded control plane: {e}"))?;
    let mut diags = Diagnostics::default();
    // The tenant id resolves as for a real tenant; an emulated tenant needs none, so it
    // falls back to `embedded`.
    let tenant = args
        .tenant_id
        .clone()
        .or_else(|| provider.string("tenant_id"))
        .or_else(|| std::env::var("THOTH_TENANT_ID").ok().filter(|t| !t.trim().is_empty()));
    let mut conn_args = args.clone();
    conn_args.tenant_id = Some(tenant.unwrap_or_else(|| "embedded".to_owned()));
    conn_args.api_base_url = Some(emulator.base_url());
    conn_args.api_key_file = None;
    conn_args.admin_token_file = None;
    let mut connection = crate::cli::resolve_connection(&conn_args, provider, &mut diags).unwrap_or(Connection {
        tenant_id: conn_args.tenant_id.clone().unwrap_or_default(),
        base_url: emulator.base_url(),
        auth: Auth::ApiKey(key.clone()),
        retry: remote::Retry::default(),
        timeout: std::time::Duration::from_secs(30),
        insecure_skip_tls_verify: false,
    });
    connection.auth = Auth::ApiKey(key);
    connection.base_url = emulator.base_url();
    err(&format!(
        "note: using the embedded control plane at {} with data in `{}`; this is not a real tenant\n",
        emulator.base_url(),
        data_dir.display()
    ));
    Ok((connection, Some(emulator)))
}

fn state_path(args: &ConnectionArgs) -> PathBuf {
    args.state.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_STATE))
}

/// The human plan, in colour on a terminal.
fn human(plan: &Plan) -> String {
    let text = render::plan_human(plan);
    if render::colour_wanted() {
        render::colour(&text)
    } else {
        text
    }
}

/// Takes the state lock for `operation`, or reports who holds it.
fn take_lock(path: &Path, operation: &str, timeout: std::time::Duration) -> Result<crate::state::lock::StateLock, u8> {
    match crate::state::lock::acquire(path, operation, timeout) {
        Ok(lock) => {
            if let Some(stale) = &lock.replaced {
                err(&format!("note: took over a stale {stale}\n"));
            }
            Ok(lock)
        }
        Err(e) => {
            let hint = match &e {
                crate::state::lock::LockError::Held(info) => format!(
                    "wait with `--lock-timeout 5m`, or if that run is gone for good: `thoth force-unlock {}`",
                    info.id
                ),
                crate::state::lock::LockError::Io(..) => "check the permissions of the state directory".to_owned(),
            };
            Err(fail(&e.to_string(), Some(&hint)))
        }
    }
}

/// Why the plan deletes too much of what is managed, when it does and that is not allowed.
fn mass_delete(plan: &Plan, state: &State, args: &ApplyArgs) -> Option<String> {
    let managed = state.resources.len();
    let deleted = plan.changes.iter().filter(|c| matches!(c.action, Action::Delete)).count();
    // Below a handful of objects, any delete would be "most of them".
    if args.allow_mass_delete || managed < 4 || deleted * 100 <= managed * usize::from(args.mass_delete_percent) {
        return None;
    }
    Some(format!(
        "the plan deletes {deleted} of the {managed} managed objects, more than {}%",
        args.mass_delete_percent
    ))
}

/// A computed plan with what apply and outputs need afterwards.
struct Planned {
    plan: Plan,
    state: State,
    /// The remote objects as read for this plan.
    snapshot: remote::Snapshot,
    /// The state includes what the journal held, which the state file does not yet.
    journaled: bool,
}

async fn make_plan(loaded: &Loaded, session: &Session, path: &Path) -> Option<Planned> {
    let state = match State::load(path) {
        Ok(s) => s,
        Err(e) => {
            fail(&e.to_string(), Some("restore it from the `.backup` file beside it, or move it away to start over"));
            return None;
        }
    };
    let tenant = session.client.tenant().to_owned();
    if let Some(recorded) = &state.tenant_id {
        if *recorded != tenant {
            fail(
                &format!("the state file `{}` belongs to tenant `{recorded}`, not `{tenant}`", path.display()),
                Some("use `--state` to keep one state file per tenant"),
            );
            return None;
        }
    }
    let mut state = state;
    // Changes an earlier run finished but had not yet written into the state file, and
    // creates it sent without recording their result.
    let journaled = Journal::beside(path).replay(&mut state);
    match apply::recover(&journaled.intents, &session.client, &mut state).await {
        Ok(notes) => {
            for note in notes {
                err(&format!("note: {note}\n"));
            }
        }
        Err(e) => {
            fail(&e, Some("run it again when the control plane answers"));
            return None;
        }
    }
    let schema = Schema::get();
    let mut needs = Needs::default();
    for address in loaded.module.resources.keys() {
        if let Some(rt) = schema.resource(&address.type_name) {
            needs.add(rt, None);
        }
    }
    for (address, entry) in &state.resources {
        if let Some(rt) = schema.resource(&address.type_name) {
            needs.add(rt, Some(entry));
        }
    }
    let (calls_before, started) = (session.client.calls(), std::time::Instant::now());
    let snapshot = match remote::snapshot::refresh(&session.client, &needs).await {
        Ok(s) => s,
        Err(e) => {
            fail(&format!("cannot read the tenant: {e}"), None);
            return None;
        }
    };
    let (refresh_calls, refresh_time) = (session.client.calls() - calls_before, started.elapsed());
    drop(needs);
    let mut diags = Diagnostics::default();
    let mut changes = Vec::with_capacity(loaded.module.resources.len());
    let mut plan_diags = Diagnostics::default();
    let ev = evaluate(loaded, &mut diags, None, |ev, decl, desired, deps| {
        if desired.address.mode == Mode::Data {
            return match read_data(&session.client, desired) {
                Some(Ok(values)) => values,
                Some(Err(e)) => {
                    plan_diags.push(
                        Diagnostic::error(format!("cannot read `{}`: {e}", desired.address))
                            .at(decl.span, "this data source"),
                    );
                    offline_values(ev, decl, desired, deps)
                }
                None => {
                    changes.push(plan::deferred_read(&desired.address, deps.clone()));
                    offline_values(ev, decl, desired, deps)
                }
            };
        }
        let lifecycle = plan::Lifecycle {
            prevent_destroy: decl.lifecycle.prevent_destroy,
            create_before_destroy: decl.lifecycle.create_before_destroy,
            ignore_changes: decl.lifecycle.ignore_changes.clone(),
            triggered_by: triggered(ev, decl, &changes, &mut plan_diags),
        };
        let (change, values) = plan::plan_resource(desired, &lifecycle, deps, &state, &snapshot, &tenant);
        if change.prevent_destroy && change.action == Action::Replace {
            plan_diags.push(protected(&change, Some(decl.span)));
        }
        changes.push(change);
        values
    });
    drop(ev);
    diags.extend(plan_diags);
    // Warnings were shown by the offline check; only errors that depend on remote values are new.
    if diags.has_errors() {
        err(&render::diagnostics(&loaded.module.files, &diags.errors_only()));
        return None;
    }
    let configured: BTreeSet<Address> = changes.iter().map(|c| c.address.clone()).collect();
    for (address, entry) in &state.resources {
        if !configured.contains(address) {
            let change = plan::plan_removal(address, entry, &snapshot);
            if change.prevent_destroy && change.action == Action::Delete {
                diags.push(protected(&change, None));
            }
            changes.push(change);
        }
    }
    if diags.has_errors() {
        err(&render::diagnostics(&loaded.module.files, &diags.errors_only()));
        return None;
    }
    let refresh = plan::RefreshCost {
        calls: refresh_calls,
        milliseconds: u64::try_from(refresh_time.as_millis()).unwrap_or(u64::MAX),
    };
    if session.verbose {
        err(&format!("Read the tenant with {} HTTP call(s) in {} ms.\n", refresh.calls, refresh.milliseconds));
    }
    let unmanaged = unmanaged(&changes, &state, &snapshot);
    Some(Planned {
        plan: Plan { tenant_id: tenant, changes, refresh, unmanaged },
        state,
        snapshot,
        journaled: journaled.any,
    })
}

/// The objects the lists read show that neither the state nor the plan knows, by type.
fn unmanaged(changes: &[plan::Change], state: &State, snapshot: &remote::Snapshot) -> BTreeMap<String, Vec<String>> {
    let known: BTreeSet<(&str, &str)> = state
        .resources
        .iter()
        .map(|(a, r)| (a.type_name.as_str(), r.id.as_str()))
        .chain(changes.iter().filter_map(|c| match &c.id_after {
            plan::Shown::Value(v) => v.as_str().map(|id| (c.address.type_name.as_str(), id)),
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
fn triggered(
    ev: &Evaluator<'_>,
    decl: &ResourceDecl,
    planned: &[plan::Change],
    diags: &mut Diagnostics,
) -> Vec<String> {
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

/// The error for a plan that would remove a protected object.
fn protected(change: &plan::Change, span: Option<crate::model::Span>) -> Diagnostic {
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

fn show_command(args: &ShowArgs) -> u8 {
    match PlanFile::read(&args.file) {
        Ok(saved) => {
            out(&match args.format {
                Format::Human => saved.human,
                Format::Markdown => saved.markdown,
                Format::Json => {
                    let mut text = serde_json::to_string_pretty(&saved.plan).unwrap_or_default();
                    text.push('\n');
                    text
                }
            });
            OK
        }
        Err(e) => fail(&e, None),
    }
}

async fn plan_command(args: &PlanArgs) -> u8 {
    let Some(loaded) = load(&args.vars) else { return ERROR };
    let Some(session) = connect(&args.connection, &loaded).await else { return ERROR };
    let path = state_path(&args.connection);
    // Saving a plan takes the lock, so that the plan is made from a state no apply is writing.
    let lock = match &args.out {
        Some(_) => match take_lock(&path, "plan", args.lock_timeout) {
            Ok(lock) => Some(lock),
            Err(code) => {
                session.close().await;
                return code;
            }
        },
        None => None,
    };
    let planned = make_plan(&loaded, &session, &path).await;
    session.close().await;
    let Some(planned) = planned else { return ERROR };
    if let Some(file) = &args.out {
        let saved = PlanFile::new(&planned.plan, &planned.state, &planned.snapshot, None);
        if let Err(e) = saved.write(file) {
            return fail(&e, None);
        }
        err(&format!(
            "The plan is saved in `{}`; `thoth apply {}` applies exactly it.\n",
            file.display(),
            file.display()
        ));
    }
    drop(lock);
    out(&match args.format {
        Format::Human => human(&planned.plan),
        Format::Markdown => render::plan_markdown(&planned.plan, render::MARKDOWN_LIMIT),
        Format::Json => render::plan_json(&planned.plan),
    });
    if args.deny_loosening && planned.plan.impact() == Impact::Loosens {
        err("error: the plan loosens the tenant's security, and `--deny-loosening` was given\n");
        LOOSENS
    } else if args.detailed_exitcode && planned.plan.has_changes() {
        CHANGES
    } else {
        OK
    }
}

async fn apply_command(args: &ApplyArgs) -> u8 {
    let Some(loaded) = load(&args.vars) else { return ERROR };
    let Some(session) = connect(&args.connection, &loaded).await else { return ERROR };
    let code = apply_with(args, &loaded, &session).await;
    session.close().await;
    code
}

async fn apply_with(args: &ApplyArgs, loaded: &Loaded, session: &Session) -> u8 {
    let path = state_path(&args.connection);
    let saved = match args.plan_file.as_deref().map(PlanFile::read).transpose() {
        Ok(saved) => saved,
        Err(e) => return fail(&e, None),
    };
    let _lock = match take_lock(&path, "apply", args.lock_timeout) {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let Some(Planned { plan, mut state, snapshot, journaled }) = make_plan(loaded, session, &path).await else {
        return ERROR;
    };
    if let Some(saved) = &saved {
        let fresh = PlanFile::new(&plan, &state, &snapshot, Some(&saved.digest_salt));
        if let Err(why) = saved.check(&fresh) {
            return fail(
                &format!("the saved plan cannot be applied: {why}"),
                Some("run `thoth plan --out FILE` again and review the new plan"),
            );
        }
    }
    if let Some(refusal) = mass_delete(&plan, &state, args) {
        out(&human(&plan));
        return fail(&refusal, Some("if this is intended, pass `--allow-mass-delete`"));
    }
    // What the journal held is recorded in the state file before anything else happens.
    let journal = std::sync::Arc::new(Journal::beside(&path));
    if journaled {
        if let Err(e) = state.save(&path) {
            return fail(&e.to_string(), None);
        }
        if let Err(e) = journal.compact(&BTreeSet::new()) {
            return fail(&format!("cannot clear the journal `{}`: {e}", journal.path().display()), None);
        }
    }
    out(&human(&plan));
    if !plan.has_changes() {
        return finish_outputs(loaded, &session.client, &plan, &mut state, &path, &BTreeMap::new());
    }
    // A saved plan was reviewed when it was made: applying it is the approval.
    if !args.auto_approve && saved.is_none() {
        if !std::io::stdin().is_terminal() {
            return fail(
                "apply needs confirmation, and standard input is not a terminal",
                Some("review the plan, then pass `--auto-approve`"),
            );
        }
        out(&format!(
            "\nDo you want to perform these actions on tenant `{}`?\nOnly `yes` will be accepted.\n\n  Enter a value: ",
            plan.tenant_id
        ));
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() || answer.trim() != "yes" {
            out("\nApply cancelled.\n");
            return ERROR;
        }
    }
    out("\n");
    let resolver = Reevaluate { loaded, tenant: &plan.tenant_id, client: &session.client };
    let options = apply::Options {
        parallelism: usize::from(args.parallelism),
        stop: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        journal,
    };
    let watcher = tokio::spawn(stop_on_signal(options.stop.clone()));
    let mut progress = Progress::new();
    let report =
        apply::execute(&plan, &session.client, &mut state, &path, &resolver, &options, |event| progress.event(&event))
            .await;
    progress.finish();
    watcher.abort();
    out("\n");
    out(&render::apply_report(&report));
    if report.failed() {
        return ERROR;
    }
    finish_outputs(loaded, &session.client, &plan, &mut state, &path, &report.revealed)
}

/// Apply progress: a spinner per call in flight on a terminal, plain lines otherwise.
struct Progress {
    bars: Option<(indicatif::MultiProgress, BTreeMap<Address, indicatif::ProgressBar>)>,
}

impl Progress {
    fn new() -> Progress {
        let terminal = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Progress { bars: terminal.then(|| (indicatif::MultiProgress::new(), BTreeMap::new())) }
    }

    fn event(&mut self, event: &apply::Event<'_>) {
        match (&mut self.bars, event) {
            (Some((multi, bars)), apply::Event::Started { address, action }) => {
                let bar = multi.add(indicatif::ProgressBar::new_spinner());
                if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                    bar.set_style(style);
                }
                bar.set_message(format!("{address}: {}…", render::running_text(*action)));
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bars.insert((*address).clone(), bar);
            }
            (Some((multi, bars)), apply::Event::Finished(step)) => {
                if let Some(bar) = bars.remove(&step.address) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(render::step_line(step));
            }
            (None, apply::Event::Finished(step)) => out(&format!("{}\n", render::step_line(step))),
            (None, apply::Event::Started { .. }) => {}
        }
    }

    fn finish(self) {
        if let Some((multi, bars)) = self.bars {
            for bar in bars.into_values() {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
        }
    }
}

/// Sets `stop` on SIGINT or SIGTERM: apply then lets the calls in flight finish, saves the
/// state and starts nothing new.
async fn stop_on_signal(stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = interrupt.await;
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            return;
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    err("\ninterrupted: letting the calls in flight finish and saving the state; nothing new starts\n");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Evaluates outputs from the state as applied, prints them, and records the non-sensitive
/// ones in the state.
fn finish_outputs(
    loaded: &Loaded,
    client: &Client,
    plan: &Plan,
    state: &mut State,
    path: &Path,
    revealed: &BTreeMap<Address, VecMap<String, Value>>,
) -> u8 {
    if loaded.module.outputs.is_empty() {
        return OK;
    }
    // Outputs show the tenant as the apply left it: data sources are read once more.
    client.forget_data_reads();
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
    let mut ev = evaluate(loaded, &mut diags, None, |_, _, desired, _| {
        if desired.address.mode == Mode::Data {
            if let Some(Ok(values)) = read_data(client, desired) {
                return values;
            }
        }
        applied.get(&desired.address).cloned().unwrap_or_else(|| unknown_values(&desired.address))
    });
    for (address, values) in &applied {
        ev.resources.insert(address.clone(), values.clone());
    }
    let outputs = evaluate_outputs(&ev, &mut diags);
    if !diags.is_empty() {
        err(&render::diagnostics(&loaded.module.files, &diags));
    }
    out(&render::outputs(&outputs));
    let recorded: BTreeMap<String, serde_json::Value> =
        outputs.iter().filter(|(_, v, s)| !s && v.is_known()).map(|(n, v, _)| (n.clone(), v.to_json())).collect();
    if recorded != state.outputs {
        state.outputs = recorded;
        if let Err(e) = state.save(path) {
            return fail(&e.to_string(), None);
        }
    }
    if diags.has_errors() {
        ERROR
    } else {
        OK
    }
}

async fn emulator_command(args: EmulatorArgs) -> u8 {
    let faults = crate::emulator::Faults {
        latency_ms: args.latency_ms,
        error_rate: args.error_rate,
        ambiguous_rate: args.ambiguous_rate,
        throttle_rps: args.throttle_rps,
        seed: args.seed,
    };
    let config_faults = faults.clone();
    let config = EmulatorConfig { data_dir: args.data_dir.clone(), api_keys: args.api_keys, faults };
    let emulator = match Emulator::start(config, &args.listen).await {
        Ok(e) => e,
        Err(e) => return fail(&format!("cannot start the emulator: {e}"), None),
    };
    err(&format!("thoth emulator listening on {} with data in `{}`\n", emulator.base_url(), args.data_dir.display()));
    if !config_faults.is_none() {
        err(&format!("injecting faults: {config_faults:?}\n"));
    }
    out(&format!("{}\n", emulator.base_url()));
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
    OK
}
