//! `thoth init`: prepare the configured backend (its schema, its bucket), and move the state
//! into it from the backend used before (`--migrate-state`), every workspace with its lineage,
//! serial and journal.

use super::session::{self, load_for_state};
use super::workdir::{self, Refusal};
use super::{fail, out, OK};
use crate::cli::InitArgs;
use crate::config::{BackendSettings, LocalSettings};
use crate::state::backend::{self, Backend, Target, DEFAULT_WORKSPACE};
use crate::state::Store;

pub(super) async fn run(args: &InitArgs) -> u8 {
    let (module, tenant) = match load_for_state(&args.state) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let configured = workdir::backend_settings(&module);
    let workspace = match workdir::workspace_for(&args.state.vars) {
        Ok(w) => w,
        Err(e) => return fail(&e, None),
    };
    let target = Target { tenant, workspace, local_path: args.state.target.state.clone() };
    let to = match prepared(&configured, &target).await {
        Ok(b) => b,
        Err(e) => return fail(&e, None),
    };
    out(&format!("Initialised {}.\n", to.describe()));
    let recorded = match workdir::recorded_backend() {
        Ok(r) => r,
        Err(e) => return fail(&e, None),
    };
    // Where the state was kept before: the backend of the last `init`, or a local state file
    // of a directory that never ran `init`.
    let previous = match recorded {
        Some(r) if r != configured => Some(r),
        Some(_) => None,
        None if !matches!(configured, BackendSettings::Local(_))
            && workdir::stray_local_state(&args.state.target).is_some() =>
        {
            Some(BackendSettings::Local(LocalSettings::default()))
        }
        None => None,
    };
    if let Some(previous) = previous {
        if args.reconfigure {
            out(&format!(
                "Using the `{}` backend from now on; the state in the `{}` backend was not moved.\n",
                configured.name(),
                previous.name()
            ));
        } else if args.migrate_state {
            if let Err(Refusal(message, hint)) = migrate(&previous, &configured, &target, args).await {
                return fail(&message, Some(&hint));
            }
        } else {
            return fail(
                &format!(
                    "the state is kept in the `{}` backend, and the configuration now keeps it in the `{}` backend",
                    previous.name(),
                    configured.name()
                ),
                Some("run `thoth init --migrate-state` to move it, or `thoth init --reconfigure` to start using the new backend without it"),
            );
        }
    } else if args.migrate_state {
        out("Nothing to migrate: the state is already kept in the configured backend.\n");
    }
    if let Err(e) = workdir::record_backend(&configured) {
        return fail(&format!("cannot record the backend in `.thoth/`: {e}"), None);
    }
    OK
}

async fn prepared(settings: &BackendSettings, target: &Target) -> Result<std::sync::Arc<dyn Backend>, String> {
    let backend = backend::open(settings, target).await.map_err(|e| e.to_string())?;
    backend::retrying("preparing the backend", async || backend.prepare().await)
        .await
        .map_err(|e| format!("{} cannot be used: {e}", backend.describe()))?;
    Ok(backend)
}

/// Moves every workspace's state and journal from `from` to `to`, keeping lineage and serial.
async fn migrate(
    from: &BackendSettings,
    to: &BackendSettings,
    target: &Target,
    args: &InitArgs,
) -> Result<(), Refusal> {
    let source = prepared(from, target).await.map_err(|e| Refusal(e, "check the old backend's settings".to_owned()))?;
    let mut workspaces = source
        .workspaces()
        .await
        .map_err(|e| Refusal(format!("cannot list the workspaces of {}: {e}", source.describe()), String::new()))?;
    workspaces.retain(|w| w != DEFAULT_WORKSPACE);
    workspaces.insert(0, DEFAULT_WORKSPACE.to_owned());
    for workspace in workspaces {
        let target = Target { workspace, ..target.clone() };
        let from_store = Store::new(prepared(from, &target).await.map_err(|e| Refusal(e, String::new()))?);
        let to_store = Store::new(prepared(to, &target).await.map_err(|e| Refusal(e, String::new()))?);
        move_one(&from_store, &to_store, &target.workspace, args).await?;
    }
    Ok(())
}

async fn move_one(from: &Store, to: &Store, workspace: &str, args: &InitArgs) -> Result<(), Refusal> {
    let lock_error =
        |code: u8| Refusal(format!("cannot migrate workspace `{workspace}` (exit {code})"), "see above".to_owned());
    let from_lock = session::take_lock(from, "init --migrate-state", &args.lock).await.map_err(lock_error)?;
    let to_lock = match session::take_lock(to, "init --migrate-state", &args.lock).await {
        Ok(lock) => lock,
        Err(code) => {
            if let Some(l) = from_lock {
                l.release().await;
            }
            return Err(lock_error(code));
        }
    };
    let result = copy(from, to, workspace, args.force_copy).await;
    for lock in [to_lock, from_lock].into_iter().flatten() {
        lock.release().await;
    }
    result
}

async fn copy(from: &Store, to: &Store, workspace: &str, force: bool) -> Result<(), Refusal> {
    let refuse = |m: String| Refusal(m, String::new());
    let state = from.load().await.map_err(|e| refuse(e.to_string()))?;
    let journal = from.backend().journal_read().await.map_err(|e| refuse(e.to_string()))?;
    if state.serial == 0 && state.resources.is_empty() && journal.trim().is_empty() {
        return Ok(());
    }
    let existing = to.load().await.map_err(|e| refuse(e.to_string()))?;
    if existing.serial > 0 {
        if existing.lineage != state.lineage && !force {
            return Err(Refusal(
                format!(
                    "{} already holds a state of another lineage ({}, serial {}) for workspace `{workspace}`",
                    to.describe(),
                    existing.lineage,
                    existing.serial
                ),
                "remove it, or pass `--force-copy` to overwrite it with the state being moved".to_owned(),
            ));
        }
        if existing.lineage == state.lineage {
            if existing.serial > state.serial {
                return Err(Refusal(
                    format!(
                        "{} already holds a newer state of this lineage (serial {} against {})",
                        to.describe(),
                        existing.serial,
                        state.serial
                    ),
                    "the state was moved before and has changed since: use `thoth init --reconfigure`".to_owned(),
                ));
            }
            if existing.serial == state.serial && existing.to_bytes(0) == state.to_bytes(0) {
                out(&format!("Workspace `{workspace}` is already in {}.\n", to.describe()));
                return Ok(());
            }
        }
    }
    to.write(&state, state.serial).await.map_err(|e| refuse(e.to_string()))?;
    to.backend().journal_replace(&journal).await.map_err(|e| refuse(e.to_string()))?;
    out(&format!(
        "Moved workspace `{workspace}` ({} resource(s), lineage {}, serial {}) from {} to {}; the old copy was left in place.\n",
        state.resources.len(),
        state.lineage,
        state.serial,
        from.describe(),
        to.describe()
    ));
    Ok(())
}
