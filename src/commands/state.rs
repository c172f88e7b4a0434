//! `thoth state pull` and `thoth state push FILE`: the stored state as a file, and back.

use super::session::{self, open_state};
use super::{err, fail, out, ERROR, OK};
use crate::cli::{PushArgs, StateArgs, StateCommand};
use crate::state::{State, Store};

pub(super) async fn run(command: StateCommand) -> u8 {
    match command {
        StateCommand::Pull(args) => pull(&args).await,
        StateCommand::Push(args) => push(&args).await,
    }
}

async fn pull(args: &StateArgs) -> u8 {
    let store = match open_state(args).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    let mut state = match store.load().await {
        Ok(state) => state,
        Err(e) => return fail(&e.to_string(), None),
    };
    match store.journal().replay(&mut state).await {
        Ok(found) if found.any => err(&format!(
            "note: the journal of {} holds changes of an interrupted run; they are included\n",
            store.describe()
        )),
        Ok(_) => {}
        Err(e) => return fail(&e.to_string(), None),
    }
    if state.serial == 0 && state.resources.is_empty() {
        err(&format!("note: {} holds no state yet\n", store.describe()));
        return OK;
    }
    out(&String::from_utf8_lossy(&state.to_bytes(state.serial)));
    OK
}

async fn push(args: &PushArgs) -> u8 {
    let source = format!("`{}`", args.file.display());
    let pushed = match std::fs::read(&args.file) {
        Ok(bytes) => match State::from_bytes(&bytes, &source) {
            Ok(state) => state,
            Err(e) => {
                return fail(
                    &e.to_string(),
                    Some("push a file written by thoth (`state pull`, `errored.thoth.state.json`)"),
                )
            }
        },
        Err(e) => return fail(&format!("cannot read {source}: {e}"), None),
    };
    let store = match open_state(&args.state).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    let lock = match session::take_lock(&store, "state push", &args.lock).await {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let code = push_into(args, &pushed, &store).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    code
}

async fn push_into(args: &PushArgs, pushed: &State, store: &Store) -> u8 {
    let current = match store.load().await {
        Ok(state) => state,
        Err(e) => return fail(&e.to_string(), None),
    };
    let file = args.file.display();
    let force = "if you are sure, pass `--force`";
    // A state that was never saved has no lineage to keep.
    let stored = current.serial > 0;
    if stored && !args.force {
        if current.lineage != pushed.lineage {
            return fail(
                &format!(
                    "`{file}` has lineage {}, but {} holds lineage {}: it is another state",
                    pushed.lineage,
                    store.describe(),
                    current.lineage
                ),
                Some(force),
            );
        }
        if pushed.serial < current.serial {
            return fail(
                &format!(
                    "`{file}` has serial {}, older than the serial {} in {}",
                    pushed.serial,
                    current.serial,
                    store.describe()
                ),
                Some(force),
            );
        }
        if pushed.serial == current.serial {
            if pushed.to_bytes(0) == current.to_bytes(0) {
                out(&format!("{} already holds this state (serial {}).\n", store.describe(), current.serial));
                return OK;
            }
            return fail(
                &format!("`{file}` and {} have the same serial {} but differ", store.describe(), current.serial),
                Some(force),
            );
        }
    }
    if let (Some(a), Some(b)) = (&current.tenant_id, &pushed.tenant_id) {
        if a != b && !args.force {
            return fail(
                &format!("`{file}` is the state of tenant `{b}`, and {} holds tenant `{a}`", store.describe()),
                Some(force),
            );
        }
    }
    // Serials only grow, even when forcing an older state in.
    let serial = if stored { pushed.serial.max(current.serial.saturating_add(1)) } else { pushed.serial };
    match store.write(pushed, serial).await {
        Ok(()) => {
            out(&format!(
                "Pushed `{file}` into {} (lineage {}, serial {serial}, {} resource(s)).\n",
                store.describe(),
                pushed.lineage,
                pushed.resources.len()
            ));
            OK
        }
        Err(e) => {
            fail(&e.to_string(), None);
            ERROR
        }
    }
}
