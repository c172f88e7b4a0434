//! What the commands that talk to a tenant share: loading the configuration with its
//! diagnostics printed, connecting (or starting the embedded control plane), taking the state
//! lock, reading the state with what the journal holds, refreshing and planning.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::workdir;
use super::{err, fail};
use crate::cli::{ConnectionArgs, LockArgs, ProviderValues, StateArgs, TargetArgs, VarArgs};
use crate::config::Module;
use crate::config::{Desired, Evaluator, ResourceValues, VarInputs};
use crate::diag::Diagnostics;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::evaluate::{Configuration, DataReader};
use crate::model::Address;
use crate::plan::{self, Plan};
use crate::remote::{self, snapshot::Needs, Auth, Client, Connection};
use crate::render;
use crate::schema::{ResourceType, Schema};
use crate::state::backend::{self, Target};
use crate::state::lock::LockError;
use crate::state::{Lock, State, StateError, Store};

/// Loads and checks the configuration of the working directory, printing every diagnostic.
/// `None` when there are errors.
pub(super) fn load(vars: &VarArgs) -> Option<Configuration> {
    load_with(vars, false)
}

/// Where variable values come from for a command.
fn inputs(vars: &VarArgs, unknown_when_missing: bool) -> VarInputs {
    VarInputs {
        cli: vars.vars.clone(),
        files: vars.var_files.clone(),
        env: VarInputs::from_env(),
        values: Vec::new(),
        unknown_when_missing,
    }
}

/// `load`; with `unknown_when_missing`, a variable without a value is unknown instead of an
/// error (`validate`).
pub(super) fn load_with(vars: &VarArgs, unknown_when_missing: bool) -> Option<Configuration> {
    // `validate` and `graph`, which make a variable without a value unknown, plan nothing.
    check(read_with(vars, unknown_when_missing)?, !unknown_when_missing)
}

/// Reads the configuration of the working directory and resolves its variables, keeping the
/// strings of sensitive ones out of the logs; `check` completes the load. `None` when the
/// workspace cannot be told.
pub(super) fn read(vars: &VarArgs) -> Option<crate::evaluate::Read> {
    read_with(vars, false)
}

fn read_with(vars: &VarArgs, unknown_when_missing: bool) -> Option<crate::evaluate::Read> {
    let inputs = inputs(vars, unknown_when_missing);
    let workspace = match workdir::workspace_for(vars) {
        Ok(w) => w,
        Err(e) => {
            fail(&e, None);
            return None;
        }
    };
    let read = crate::evaluate::read(Path::new("."), &inputs, &workspace, vars.deployment.as_deref());
    for (value, _) in read.variables.values().filter(|(_, sensitive)| *sensitive) {
        redact_value(value);
    }
    Some(read)
}

/// Builds the graph of a read configuration and evaluates it offline, printing every
/// diagnostic. `None` when there are errors.
pub(super) fn check(read: crate::evaluate::Read, for_plan: bool) -> Option<Configuration> {
    let (conf, diags) = read.check(for_plan);
    if !diags.is_empty() {
        super::diagnose(&conf.module.files, &diags);
    }
    (!diags.has_errors()).then_some(conf)
}

/// Keeps the strings of a sensitive value out of the logs.
fn redact_value(value: &crate::model::Value) {
    match value {
        crate::model::Value::String(s) => crate::redact::add(s),
        crate::model::Value::List(items) => items.iter().for_each(redact_value),
        crate::model::Value::Map(map) => map.values().for_each(redact_value),
        _ => {}
    }
}

/// The configuration of the working directory for its provider block, when it has one;
/// an empty configuration otherwise (the connection then comes from flags and environment).
pub(super) fn configuration_for_connection(vars: &VarArgs) -> Configuration {
    let inputs = inputs(vars, false);
    let (conf, diags) =
        crate::evaluate::load(Path::new("."), &inputs, crate::state::backend::DEFAULT_WORKSPACE, None, false);
    if diags.has_errors() {
        return Configuration {
            module: crate::config::Module::default(),
            graph: crate::graph::Graph::default(),
            variables: std::collections::BTreeMap::new(),
            workspace: crate::state::backend::DEFAULT_WORKSPACE.to_owned(),
            settled: std::sync::Mutex::default(),
        };
    }
    conf
}

/// A connection to the control plane, and the embedded emulator when there is one.
pub(super) struct Session {
    pub client: Client,
    emulator: Option<Emulator>,
    /// `--verbose`: say what reading the tenant cost.
    verbose: bool,
}

impl Session {
    pub(super) async fn close(self) {
        if let Some(e) = self.emulator {
            e.shutdown().await;
        }
    }
}

/// Reads data sources through the client, from the synchronous evaluation.
pub(super) struct ClientReader<'a>(pub &'a Client);

impl DataReader for ClientReader<'_> {
    fn read(&self, desired: &Desired) -> Option<Result<ResourceValues, String>> {
        if !desired.values.values().all(crate::model::Value::is_known) {
            return None;
        }
        let rt = Schema::get().of(&desired.address)?;
        // Evaluation is synchronous; the read runs on this runtime without leaving it.
        let read = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(remote::data::read(self.0, rt, &desired.values))
        });
        Some(
            read.map_err(|e| e.to_string())
                .map(|values| ResourceValues { values, sensitive: desired.sensitive.clone() }),
        )
    }
}

/// Connects to the control plane that the flags, the environment and the provider block of
/// `module` (evaluated with `variables`) name.
pub(super) async fn connect(
    args: &ConnectionArgs,
    module: &Module,
    variables: &BTreeMap<String, (crate::model::Value, bool)>,
) -> Option<Session> {
    let mut diags = Diagnostics::default();
    let ev = Evaluator::new(module, variables.clone());
    let provider = ProviderValues::evaluate(module.provider.as_ref(), &ev, &mut diags);
    let (connection, emulator) = if args.target.embedded {
        if diags.has_errors() {
            super::diagnose(&module.files, &diags);
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
            super::diagnose(&module.files, &diags);
        }
        (c?, None)
    };
    if diags.has_errors() {
        return None;
    }
    match &connection.auth {
        Auth::ApiKey(secret) | Auth::Bearer(secret) => crate::redact::add(secret),
    }
    if let Err(e) = crate::state::digest::check_key() {
        fail(&e, Some("set THOTH_DIGEST_KEY to a random value kept as a CI secret, or remove the key file"));
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
    let data_dir =
        workdir::private_dir().map_err(|e| format!("cannot create `{}`: {e}", workdir::DIR))?.join("embedded");
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
    let mut conn_args = args.clone();
    conn_args.target.tenant_id = crate::cli::resolve_tenant(&args.target, provider);
    conn_args.api_base_url = Some(emulator.base_url());
    conn_args.api_key_file = None;
    conn_args.admin_token_file = None;
    let mut connection = crate::cli::resolve_connection(&conn_args, provider, &mut diags).unwrap_or(Connection {
        tenant_id: conn_args.target.tenant_id.clone().unwrap_or_default(),
        base_url: emulator.base_url(),
        auth: Auth::ApiKey(key.clone()),
        retry: remote::Retry::default(),
        timeout: std::time::Duration::from_secs(30),
        insecure_skip_tls_verify: false,
        ca_file: None,
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

/// `--target`, `--replace`, `--stage` and destroy as the planning selection; a bad address
/// or an unknown stage is an error.
pub(super) fn selection(
    conf: &Configuration,
    args: &crate::cli::TargetingArgs,
    stages: &crate::cli::RolloutArgs,
    destroy: bool,
    rollback: bool,
) -> Result<plan::Selection, u8> {
    let parse = |text: &String| -> Result<Address, u8> {
        plan::rollout::parse_target(text).ok_or_else(|| {
            fail(
                &format!("`{text}` is not a resource address"),
                Some("write it as `thoth_fleet.claims`, `thoth_fleet.ring[\"eu\"]` or `module.tenant`"),
            )
        })
    };
    let mut targets: Vec<Address> = args.target.iter().map(parse).collect::<Result<_, _>>()?;
    let stage = match &stages.stage {
        None if rollback => return Err(fail("a rollback needs `--stage`", Some("name the stage to roll back"))),
        None => None,
        Some(stage) => {
            let (rollout, index) =
                plan::rollout::find(&conf.module, stages.rollout.as_deref(), stage).map_err(|e| fail(&e, None))?;
            targets = plan::rollout::targets(&rollout.stages[index]);
            Some(plan::rollout::StageSelection { rollout: rollout.name.clone(), stage: stage.clone(), rollback })
        }
    };
    Ok(plan::Selection {
        targets,
        replace: args.replace.iter().map(parse).collect::<Result<_, _>>()?,
        destroy,
        no_refresh: !args.refresh,
        stage,
    })
}

/// The human plan, in colour on a terminal.
pub(super) fn human(plan: &Plan) -> String {
    let text = render::plan_human(plan);
    if render::colour_wanted() {
        render::colour(&text)
    } else {
        text
    }
}

/// Opens the state for commands that do not contact the control plane: the configuration's
/// backend, and the tenant from flags, the provider block (with the variables that have a
/// value) or the environment.
pub(super) async fn open_state(args: &StateArgs) -> Result<Store, u8> {
    let (module, tenant) = load_for_state(args)?;
    let workspace = workdir::workspace_for(&args.vars).map_err(|e| fail(&e, None))?;
    open_store(&module, &args.target, tenant, &workspace).await
}

/// The configuration and the tenant, for commands that only touch the state.
pub(super) fn load_for_state(args: &StateArgs) -> Result<(Module, Option<String>), u8> {
    let (mut module, diags, values) = match &args.vars.deployment {
        Some(name) => crate::config::load_stack(Path::new("."), "", name),
        None => {
            let (module, diags) = crate::config::load(Path::new("."), "");
            (module, diags, Vec::new())
        }
    };
    if diags.has_errors() {
        super::diagnose(&module.files, &diags.errors_only());
        return Err(super::ERROR);
    }
    let inputs = VarInputs { values, ..inputs(&args.vars, true) };
    // A variable without a value is not needed to find the state.
    let (variables, _) = crate::config::resolve_variables(&mut module, &inputs);
    let ev = Evaluator::new(&module, variables);
    let provider = ProviderValues::evaluate(module.provider.as_ref(), &ev, &mut Diagnostics::default());
    let tenant = crate::cli::resolve_tenant(&args.target, &provider);
    drop(ev);
    Ok((module, tenant))
}

/// Opens the configured backend for the selected workspace and prepares it (creating the
/// `pg` schema when allowed), after checking that no state is left behind elsewhere.
pub(super) async fn open_store(
    module: &Module,
    target: &TargetArgs,
    tenant: Option<String>,
    workspace: &str,
) -> Result<Store, u8> {
    let settings = workdir::backend_settings(module);
    if let Err(e) = workdir::check_backend(&settings, target) {
        return Err(fail(&e.0, Some(&e.1)));
    }
    let target = Target { tenant, workspace: workspace.to_owned(), local_path: target.state.clone() };
    let backend = match backend::open(&settings, &target).await {
        Ok(b) => b,
        Err(e) => return Err(fail(&e.to_string(), None)),
    };
    if let Err(e) = backend::retrying("preparing the backend", async || backend.prepare().await).await {
        return Err(fail(&format!("{} cannot be used: {e}", backend.describe()), None));
    }
    if let crate::config::BackendSettings::S3(s3) = &settings {
        if !s3.use_lockfile {
            err(&format!(
                "warning: `use_lockfile = false`: runs on {} are not locked against each other\n",
                backend.describe()
            ));
        }
    }
    Ok(Store::new(backend))
}

/// Takes the state lock for `operation` (none with `--lock=false`), or reports who holds it.
/// Runs `work` on the connected tenant's state with its lock held for `operation` (unless
/// `--lock=false`), then closes the session; the exit code of `work`, or of what failed first.
pub(super) async fn locked(
    conf: &Configuration,
    session: Session,
    target: &TargetArgs,
    operation: &str,
    lock: &LockArgs,
    work: impl AsyncFnOnce(&Session, &Store) -> u8,
) -> u8 {
    let tenant = session.client.tenant().to_owned();
    let code = match open_store(&conf.module, target, Some(tenant), &conf.workspace).await {
        Ok(store) => under_lock(&store, operation, lock, async || work(&session, &store).await).await,
        Err(code) => code,
    };
    session.close().await;
    code
}

/// Runs `work` with the state's lock held for `operation` (unless `--lock=false`), and gives
/// the lock back whatever `work` returns.
pub(super) async fn under_lock(store: &Store, operation: &str, lock: &LockArgs, work: impl AsyncFnOnce() -> u8) -> u8 {
    match take_lock(store, operation, lock).await {
        Ok(held) => {
            let code = work().await;
            if let Some(held) = held {
                held.release().await;
            }
            code
        }
        Err(code) => code,
    }
}

pub(super) async fn take_lock(store: &Store, operation: &str, args: &LockArgs) -> Result<Option<Lock>, u8> {
    if !args.lock {
        return Ok(None);
    }
    match store.lock(operation, args.lock_timeout).await {
        Ok(lock) => {
            if let Some(stale) = &lock.replaced {
                err(&format!("note: took over a stale {stale}\n"));
            }
            Ok(Some(lock))
        }
        Err(e) => {
            let hint = match &e {
                LockError::Held(Some(info)) => format!(
                    "wait with `--lock-timeout 5m`, or if that run is gone for good: `thoth force-unlock {}`",
                    info.id
                ),
                // An empty or unreadable lock names no id: any id removes it.
                LockError::Held(None) => "the lock cannot be read (empty or damaged); if no run holds it, remove it with `thoth force-unlock unreadable`".to_owned(),
                LockError::Backend(_) => format!("check that {} can be reached and written", store.describe()),
            };
            Err(fail(&e.to_string(), Some(&hint)))
        }
    }
}

/// A computed plan with what apply and outputs need afterwards.
pub(super) struct Planned {
    pub plan: Plan,
    pub state: State,
    /// The remote objects as read for this plan.
    pub snapshot: remote::Snapshot,
    /// The state includes what the journal held, which the stored state does not yet.
    pub journaled: bool,
    /// A digest of what the journal held (empty when nothing).
    pub journal_digest: String,
}

/// A refresh-only plan: the state with what its journal holds, against the tenant; with the
/// state before and after.
pub(super) async fn make_refresh_plan(
    conf: &Configuration,
    session: &Session,
    store: &Store,
) -> Option<(Plan, State, State)> {
    let mut state = match store.load().await {
        Ok(s) => s,
        Err(e) => {
            fail(&e.to_string(), None);
            return None;
        }
    };
    if let Err(e) = store.journal().replay(&mut state).await {
        fail(&format!("cannot read the journal of {}: {e}", store.describe()), None);
        return None;
    }
    let (snapshot, refresh) = read_tenant(conf, session, &state, &[]).await?;
    let (plan, refreshed) = plan::refresh::build(&state, &snapshot, session.client.tenant(), refresh);
    Some((plan, state, refreshed))
}

/// Reads what the configuration, the state and the import targets are about from the tenant,
/// with what it cost.
pub(super) async fn read_tenant(
    conf: &Configuration,
    session: &Session,
    state: &State,
    targets: &[plan::import::Target],
) -> Option<(remote::Snapshot, plan::RefreshCost)> {
    let needs = tenant_needs(conf, session, state, targets)?;
    read_needs(session, &needs).await
}

/// The resource types `module` declares resources of, each once.
pub(super) fn configured_types(module: &Module) -> Vec<&'static ResourceType> {
    let schema = Schema::get();
    let names: BTreeSet<&str> = module.resources.keys().map(|a| a.type_name.as_str()).collect();
    names.into_iter().filter_map(|name| schema.resource(name)).collect()
}

/// What to read of the tenant for resources of `types` and the objects `state` tracks.
fn needs_of(types: &[&ResourceType], state: &State) -> Needs {
    let schema = Schema::get();
    let mut needs = Needs::default();
    for rt in types {
        needs.add(rt, None);
    }
    for (address, entry) in &state.resources {
        if let Some(rt) = schema.resource(&address.type_name) {
            needs.add(rt, Some(entry));
        }
    }
    needs
}

/// `needs_of` the configuration and the state, with what the import targets add; `None`
/// (with the problems printed) when a target cannot be read.
fn tenant_needs(
    conf: &Configuration,
    session: &Session,
    state: &State,
    targets: &[plan::import::Target],
) -> Option<Needs> {
    let mut needs = needs_of(&configured_types(&conf.module), state);
    let diags = plan::import::add_needs(targets, state, session.client.tenant(), &mut needs);
    if diags.has_errors() {
        super::diagnose(&conf.module.files, &diags);
        return None;
    }
    Some(needs)
}

/// Reads `needs` from the tenant, printing why when it cannot.
async fn read_needs(session: &Session, needs: &Needs) -> Option<(remote::Snapshot, plan::RefreshCost)> {
    reported(session, refresh(session, needs).await)
}

/// What was read of the tenant, with its cost when `--verbose` asks; `None` with why it could
/// not be read printed.
fn reported(session: &Session, read: TenantRead) -> Option<(remote::Snapshot, plan::RefreshCost)> {
    match read {
        Ok(read) => {
            if session.verbose {
                let cost = &read.1;
                err(&format!("Read the tenant with {} HTTP call(s) in {} ms.\n", cost.calls, cost.milliseconds));
            }
            Some(read)
        }
        Err(e) => {
            fail(&format!("cannot read the tenant: {e}"), None);
            None
        }
    }
}

async fn refresh(session: &Session, needs: &Needs) -> TenantRead {
    let (calls_before, started) = (session.client.calls(), std::time::Instant::now());
    let snapshot = remote::snapshot::refresh(&session.client, needs).await?;
    let refresh = plan::RefreshCost {
        calls: session.client.calls() - calls_before,
        milliseconds: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    Ok((snapshot, refresh))
}

/// The stored state and what the tenant holds of it and of the configured resource types,
/// read while the configuration is still being checked.
pub(super) struct Prefetched {
    state: Result<State, StateError>,
    /// What was read of the tenant; `None` when the state could not be read.
    tenant: Option<TenantRead>,
}

type TenantRead = Result<(remote::Snapshot, plan::RefreshCost), remote::ApiError>;

/// Reads the stored state, then what the tenant holds of it and of resources of `types`, for
/// a plan to take up. Failures are kept for the plan to report.
pub(super) async fn prefetch(types: &[&ResourceType], session: &Session, store: &Store) -> Prefetched {
    let state = store.load().await;
    let tenant = match &state {
        Ok(state) => Some(refresh(session, &needs_of(types, state)).await),
        Err(_) => None,
    };
    Prefetched { state, tenant }
}

/// Reads the state with what the journal holds (adopting the objects of interrupted creates),
/// refreshes what the configuration and the state are about, and plans.
pub(super) async fn make_plan(
    conf: &Configuration,
    session: &Session,
    store: &Store,
    selection: &plan::Selection,
    prefetched: Option<Prefetched>,
) -> Option<Planned> {
    make_plan_importing(conf, session, store, None, selection, prefetched).await
}

/// `make_plan`, importing `targets` instead of what the `import` blocks say when given.
pub(super) async fn make_plan_importing(
    conf: &Configuration,
    session: &Session,
    store: &Store,
    targets: Option<Vec<plan::import::Target>>,
    selection: &plan::Selection,
    prefetched: Option<Prefetched>,
) -> Option<Planned> {
    let started = std::time::Instant::now();
    let (loaded, mut ahead) = match prefetched {
        Some(p) => (p.state, p.tenant),
        None => (store.load().await, None),
    };
    let mut state = match loaded {
        Ok(s) => s,
        Err(e) => {
            fail(&e.to_string(), Some("restore it from its backup, or move it away to start over"));
            return None;
        }
    };
    let tenant = session.client.tenant().to_owned();
    if let Some(recorded) = &state.tenant_id {
        if *recorded != tenant {
            fail(
                &format!("the state in {} belongs to tenant `{recorded}`, not `{tenant}`", store.describe()),
                Some("keep one state per tenant: a workspace (`thoth workspace new`) or `--state` for each"),
            );
            return None;
        }
    }
    // Changes an earlier run finished but had not yet written into the state, and creates it
    // sent without recording their result.
    let journaled = match store.journal().replay(&mut state).await {
        Ok(found) => found,
        Err(e) => {
            fail(&format!("cannot read the journal of {}: {e}", store.describe()), None);
            return None;
        }
    };
    // What was read ahead predates the recovery of an interrupted run, which can change the
    // tenant.
    if journaled.any {
        ahead = None;
    }
    match crate::apply::recover(&journaled.intents, &session.client, &mut state).await {
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
    // `moved` blocks rename state entries before anything is read.
    let (declared, move_diags) = plan::moves::declared(conf);
    if move_diags.has_errors() {
        super::diagnose(&conf.module.files, &move_diags);
        return None;
    }
    let moved = match plan::moves::apply(&declared, &mut state) {
        Ok(moved) => moved,
        Err(diags) => {
            super::diagnose(&conf.module.files, &diags);
            return None;
        }
    };
    // Objects the configuration imports, found in what the refresh reads.
    let importing_one = targets.is_some();
    let targets = match targets {
        Some(t) => t,
        None => {
            let (targets, import_diags) = plan::import::targets(conf);
            if import_diags.has_errors() {
                super::diagnose(&conf.module.files, &import_diags);
                return None;
            }
            targets
        }
    };
    crate::phase::done(started, "state read");
    let (mut snapshot, refresh) = if selection.no_refresh {
        // Imports read the object they adopt; state-only planning has nothing to adopt it from.
        if let Some(t) = targets.first() {
            fail(
                &format!("`{}` is imported, and `--refresh=false` reads nothing from the tenant", t.address),
                Some("plan without `--refresh=false` until the import is applied"),
            );
            return None;
        }
        (remote::Snapshot::from_state(&state), plan::RefreshCost::default())
    } else {
        match ahead {
            // What was read ahead is what is needed when nothing is imported: since it was
            // read, the state has changed only by `moved` blocks, which rename entries but keep
            // their types and ids.
            Some(read) if targets.is_empty() => reported(session, read)?,
            _ => read_needs(session, &tenant_needs(conf, session, &state, &targets)?).await?,
        }
    };
    crate::phase::done(started, "tenant read");
    let imported = match plan::import::adopt(&targets, &mut state, &mut snapshot, &tenant) {
        Ok(imported) => imported,
        Err(diags) => {
            super::diagnose(&conf.module.files, &diags);
            return None;
        }
    };
    let mut adopted =
        plan::Adopted { imported, moved, declared, implicit: Default::default(), allow_collisions: importing_one };
    let reader = ClientReader(&session.client);
    let remote = plan::Remote { snapshot: &snapshot, tenant: &tenant, data: &reader, refresh };
    let build = |state: &State, adopted: &plan::Adopted| {
        plan::build(conf, state, &remote, adopted, selection).map_err(|diags| {
            super::diagnose(&conf.module.files, &diags);
        })
    };
    let mut plan = build(&state, &adopted).ok()?;
    // A block renamed without a `moved` block: planned again as the move it is.
    let implicit = plan::moves::implicit(&plan.changes);
    if !implicit.is_empty() {
        for (new, old) in implicit {
            if let Some(entry) = state.resources.remove(&old) {
                state.resources.insert(new.clone(), entry);
                adopted.moved.insert(new.clone(), old);
                adopted.implicit.insert(new);
            }
        }
        plan = build(&state, &adopted).ok()?;
    }
    // A stage's gates: their checks with the values as applied, their soak against the clock.
    if let (Some(view), Some(stage)) = (plan.rollout.as_mut(), selection.stage.as_ref()) {
        if let Some(decl) = conf.module.rollouts.get(&stage.rollout) {
            let checks = crate::evaluate::recorded_checks(conf, &state, &tenant, &reader);
            plan::rollout::gates(view, decl, &checks, crate::state::now_unix());
        }
    }
    crate::phase::done(started, "changes planned");
    Some(Planned { plan, state, snapshot, journaled: journaled.any, journal_digest: journaled.digest })
}
