//! What the commands that talk to a tenant share: loading the configuration with its
//! diagnostics printed, connecting (or starting the embedded control plane), taking the state
//! lock, reading the state with what the journal holds, refreshing and planning.

use std::path::{Path, PathBuf};

use super::{err, fail};
use crate::cli::{ConnectionArgs, LockArgs, ProviderValues, VarArgs};
use crate::config::{Desired, Evaluator, ResourceValues, VarInputs};
use crate::diag::Diagnostics;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::evaluate::{Configuration, DataReader};
use crate::plan::{self, Plan};
use crate::remote::{self, snapshot::Needs, Auth, Client, Connection};
use crate::render;
use crate::schema::Schema;
use crate::state::journal::Journal;
use crate::state::lock::{LockError, StateLock};
use crate::state::State;

/// Loads and checks the configuration of the working directory, printing every diagnostic.
/// `None` when there are errors.
pub(super) fn load(vars: &VarArgs) -> Option<Configuration> {
    let inputs = VarInputs { cli: vars.vars.clone(), files: vars.var_files.clone(), env: VarInputs::from_env() };
    let (conf, diags) = crate::evaluate::load(Path::new("."), &inputs);
    if !diags.is_empty() {
        err(&render::diagnostics(&conf.module.files, &diags));
    }
    (!diags.has_errors()).then_some(conf)
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

pub(super) async fn connect(args: &ConnectionArgs, conf: &Configuration) -> Option<Session> {
    let mut diags = Diagnostics::default();
    let ev = Evaluator::new(&conf.module, conf.variables.clone());
    let provider = ProviderValues::evaluate(conf.module.provider.as_ref(), &ev, &mut diags);
    let (connection, emulator) = if args.embedded {
        if diags.has_errors() {
            err(&render::diagnostics(&conf.module.files, &diags));
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
            err(&render::diagnostics(&conf.module.files, &diags));
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

pub(super) fn state_path(args: &ConnectionArgs) -> PathBuf {
    args.state.clone().unwrap_or_else(|| PathBuf::from(super::DEFAULT_STATE))
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

/// Takes the state lock for `operation` (none with `--lock=false`), or reports who holds it.
pub(super) fn take_lock(path: &Path, operation: &str, args: &LockArgs) -> Result<Option<StateLock>, u8> {
    if !args.lock {
        return Ok(None);
    }
    match crate::state::lock::acquire(path, operation, args.lock_timeout) {
        Ok(lock) => {
            if let Some(stale) = &lock.replaced {
                err(&format!("note: took over a stale {stale}\n"));
            }
            Ok(Some(lock))
        }
        Err(e) => {
            let hint = match &e {
                LockError::Held(info) => format!(
                    "wait with `--lock-timeout 5m`, or if that run is gone for good: `thoth force-unlock {}`",
                    info.id
                ),
                LockError::Io(..) => "check the permissions of the state directory".to_owned(),
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
    /// The state includes what the journal held, which the state file does not yet.
    pub journaled: bool,
}

/// Reads the state with what the journal holds (adopting the objects of interrupted creates),
/// refreshes what the configuration and the state are about, and plans.
pub(super) async fn make_plan(conf: &Configuration, session: &Session, path: &Path) -> Option<Planned> {
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
    let schema = Schema::get();
    let mut needs = Needs::default();
    for address in conf.module.resources.keys() {
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
    let refresh = plan::RefreshCost {
        calls: session.client.calls() - calls_before,
        milliseconds: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    drop(needs);
    if session.verbose {
        err(&format!("Read the tenant with {} HTTP call(s) in {} ms.\n", refresh.calls, refresh.milliseconds));
    }
    match plan::build(conf, &state, &snapshot, &tenant, &ClientReader(&session.client), refresh) {
        Ok(plan) => Some(Planned { plan, state, snapshot, journaled: journaled.any }),
        Err(diags) => {
            err(&render::diagnostics(&conf.module.files, &diags));
            None
        }
    }
}
