//! `thoth workspace list|show|new|select|delete`: several states (several tenants, or
//! stages of one) from one configuration, each kept apart in the backend.

use super::session::{self, load_for_state};
use super::workdir;
use super::{fail, out, OK};
use crate::cli::{StateArgs, WorkspaceCommand};
use crate::config::Module;
use crate::state::backend::{self, valid_workspace, Backend, Target, DEFAULT_WORKSPACE};
use crate::state::{State, Store};

pub(super) async fn run(command: WorkspaceCommand) -> u8 {
    match command {
        WorkspaceCommand::Show => match workdir::workspace() {
            Ok(w) => {
                out(&format!("{w}\n"));
                OK
            }
            Err(e) => fail(&e, None),
        },
        WorkspaceCommand::List(args) => list(&args).await,
        WorkspaceCommand::New(args) => create(&args.state, &args.name, true).await,
        WorkspaceCommand::Select(args) => select(&args.state, &args.name, args.or_create).await,
        WorkspaceCommand::Delete(args) => delete(&args).await,
    }
}

/// The backend of one workspace.
async fn open(
    module: &Module,
    args: &StateArgs,
    tenant: Option<String>,
    workspace: &str,
) -> Result<std::sync::Arc<dyn Backend>, u8> {
    let settings = workdir::backend_settings(module);
    if let Err(workdir::Refusal(m, h)) = workdir::check_backend(&settings, &args.target) {
        return Err(fail(&m, Some(&h)));
    }
    let target = Target { tenant, workspace: workspace.to_owned(), local_path: args.target.state.clone() };
    let backend = backend::open(&settings, &target).await.map_err(|e| fail(&e.to_string(), None))?;
    backend::retrying("preparing the backend", async || backend.prepare().await)
        .await
        .map_err(|e| fail(&format!("{} cannot be used: {e}", backend.describe()), None))?;
    Ok(backend)
}

async fn names(args: &StateArgs) -> Result<Vec<String>, u8> {
    let (module, tenant) = load_for_state(args)?;
    let backend = open(&module, args, tenant, DEFAULT_WORKSPACE).await?;
    let mut names = backend.workspaces().await.map_err(|e| fail(&e.to_string(), None))?;
    names.retain(|n| n != DEFAULT_WORKSPACE);
    names.insert(0, DEFAULT_WORKSPACE.to_owned());
    Ok(names)
}

async fn list(args: &StateArgs) -> u8 {
    let current = match workdir::workspace() {
        Ok(w) => w,
        Err(e) => return fail(&e, None),
    };
    let names = match names(args).await {
        Ok(n) => n,
        Err(code) => return code,
    };
    let mut text = String::new();
    for name in &names {
        text.push_str(if *name == current { "* " } else { "  " });
        text.push_str(name);
        text.push('\n');
    }
    if !names.contains(&current) {
        text.push_str(&format!("* {current} (selected, no state yet)\n"));
    }
    out(&text);
    OK
}

async fn create(args: &StateArgs, name: &str, select_it: bool) -> u8 {
    if !valid_workspace(name) {
        return fail(&format!("`{name}` is not a valid workspace name"), Some("use letters, digits, `-`, `_` and `.`"));
    }
    let existing = match names(args).await {
        Ok(n) => n,
        Err(code) => return code,
    };
    if existing.iter().any(|n| n == name) {
        return fail(
            &format!("workspace `{name}` already exists"),
            Some(&format!("select it with `thoth workspace select {name}`")),
        );
    }
    let (module, tenant) = match load_for_state(args) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let backend = match open(&module, args, tenant, name).await {
        Ok(b) => b,
        Err(code) => return code,
    };
    // An empty state makes the workspace exist in the backend, as in Terraform.
    let store = Store::new(backend);
    let mut state = State::new();
    if let Err(e) = store.load().await.map(drop) {
        return fail(&e.to_string(), None);
    }
    if let Err(e) = store.save(&mut state).await {
        return fail(&e.to_string(), None);
    }
    if select_it {
        if let Err(e) = workdir::select_workspace(name) {
            return fail(&format!("cannot record the selected workspace: {e}"), None);
        }
    }
    out(&format!("Created and selected workspace `{name}` in {}.\n", store.describe()));
    OK
}

async fn select(args: &StateArgs, name: &str, or_create: bool) -> u8 {
    let existing = match names(args).await {
        Ok(n) => n,
        Err(code) => return code,
    };
    if !existing.iter().any(|n| n == name) {
        if or_create {
            return create(args, name, true).await;
        }
        return fail(
            &format!("workspace `{name}` does not exist"),
            Some(&format!("create it with `thoth workspace new {name}`, or pass `--or-create`")),
        );
    }
    if let Err(e) = workdir::select_workspace(name) {
        return fail(&format!("cannot record the selected workspace: {e}"), None);
    }
    out(&format!("Selected workspace `{name}`.\n"));
    OK
}

async fn delete(args: &crate::cli::DeleteWorkspaceArgs) -> u8 {
    let name = &args.name;
    if *name == DEFAULT_WORKSPACE {
        return fail("the `default` workspace cannot be deleted", None);
    }
    match workdir::workspace() {
        Ok(current) if current == *name => {
            return fail(
                &format!("workspace `{name}` is selected"),
                Some("select another one first: `thoth workspace select default`"),
            )
        }
        Ok(_) => {}
        Err(e) => return fail(&e, None),
    }
    let (module, tenant) = match load_for_state(&args.state) {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let backend = match open(&module, &args.state, tenant, name).await {
        Ok(b) => b,
        Err(code) => return code,
    };
    let store = Store::new(backend.clone());
    // Deleting removes the lock with everything else; releasing it then finds nothing.
    session::under_lock(&store, "workspace delete", &args.lock, async || match store.load().await {
        Ok(state) if !state.resources.is_empty() && !args.force => fail(
            &format!("workspace `{name}` still manages {} object(s)", state.resources.len()),
            Some("destroy them first, or pass `--force` to leave them on the tenant unmanaged"),
        ),
        Ok(_) => match backend.delete().await {
            Ok(()) => {
                out(&format!("Deleted workspace `{name}`.\n"));
                OK
            }
            Err(e) => fail(&e.to_string(), None),
        },
        Err(e) => fail(&e.to_string(), None),
    })
    .await
}
