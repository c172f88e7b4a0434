//! `thoth state pull` and `thoth state push FILE`: the stored state as a file, and back.

use super::session::{self, open_state};
use super::{err, fail, out, ERROR, OK};
use crate::cli::{OutputArgs, PushArgs, StateArgs, StateCommand, StateListArgs, StateShowArgs};
use crate::model::Address;
use crate::state::{State, Store};

pub(super) async fn run(command: StateCommand) -> u8 {
    match command {
        StateCommand::Pull(args) => pull(&args).await,
        StateCommand::Push(args) => push(&args).await,
        StateCommand::List(args) => list(&args).await,
        StateCommand::Show(args) => show(&args).await,
        StateCommand::Mv(args) => {
            edit(&args.state, &args.lock, "state mv", |state| mv(state, &args.source, &args.destination)).await
        }
        StateCommand::Rm(args) => edit(&args.state, &args.lock, "state rm", |state| rm(state, &args.addresses)).await,
    }
}

/// The state with what its journal holds, as a command that only reads it sees it.
async fn current(args: &StateArgs) -> Result<(Store, State), u8> {
    let store = open_state(args).await?;
    let mut state = store.load().await.map_err(|e| fail(&e.to_string(), None))?;
    store.journal().replay(&mut state).await.map_err(|e| fail(&e.to_string(), None))?;
    Ok((store, state))
}

/// Whether `address` is `filter` or lies under it (an instance of a block, a block of a module).
fn under(address: &Address, filter: &str) -> bool {
    let text = address.to_string();
    text == filter || text.starts_with(&format!("{filter}[")) || text.starts_with(&format!("{filter}."))
}

async fn list(args: &StateListArgs) -> u8 {
    let (_, state) = match current(&args.state).await {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let mut text = String::new();
    for address in state.resources.keys() {
        if args.addresses.is_empty() || args.addresses.iter().any(|f| under(address, f)) {
            text.push_str(&format!("{address}\n"));
        }
    }
    out(&text);
    OK
}

async fn show(args: &StateShowArgs) -> u8 {
    let (_, state) = match current(&args.state).await {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let Some((address, entry)) = Address::parse(&args.address).and_then(|a| state.resources.get_key_value(&a)) else {
        return fail(&format!("the state has no `{}`", args.address), Some("list what it has with `thoth state list`"));
    };
    out(&crate::render::state_entry(address, entry));
    OK
}

/// Runs an edit of the state under its lock, saving it (the backend keeps the state it
/// replaces as the backup).
async fn edit(
    args: &StateArgs,
    lock: &crate::cli::LockArgs,
    operation: &str,
    change: impl FnOnce(&mut State) -> Result<String, String>,
) -> u8 {
    let store = match open_state(args).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    session::under_lock(&store, operation, lock, async || {
        let edited = async {
            let mut state = store.load().await.map_err(|e| fail(&e.to_string(), None))?;
            let journal = store.journal();
            journal.replay(&mut state).await.map_err(|e| fail(&e.to_string(), None))?;
            let done = change(&mut state).map_err(|e| fail(&e, None))?;
            store.save(&mut state).await.map_err(|e| fail(&e.to_string(), None))?;
            journal.compact(&std::collections::BTreeSet::new()).await.map_err(|e| fail(&e.to_string(), None))?;
            out(&done);
            Ok::<u8, u8>(OK)
        };
        edited.await.unwrap_or_else(|c| c)
    })
    .await
}

fn parse(text: &str) -> Result<Address, String> {
    Address::parse(text).ok_or_else(|| format!("`{text}` is not a resource address"))
}

fn mv(state: &mut State, source: &str, destination: &str) -> Result<String, String> {
    let (from, to) = (parse(source)?, parse(destination)?);
    if from.type_name != to.type_name || from.mode != to.mode {
        return Err(format!("`{from}` cannot become `{to}`: a move keeps the resource type"));
    }
    let sources: Vec<Address> = if state.resources.contains_key(&from) {
        vec![from.clone()]
    } else if from.key.is_none() {
        state.resources.keys().filter(|a| a.block() == from).cloned().collect()
    } else {
        Vec::new()
    };
    if sources.is_empty() {
        return Err(format!("the state has no `{from}`"));
    }
    let mut text = String::new();
    for source in sources {
        let target = if source == from { to.clone() } else { to.with_key(source.key.clone()) };
        if state.resources.contains_key(&target) {
            return Err(format!("the state has `{target}` already"));
        }
        if let Some(entry) = state.resources.remove(&source) {
            state.resources.insert(target.clone(), entry);
            text.push_str(&format!("Moved `{source}` to `{target}`.\n"));
        }
    }
    Ok(text)
}

fn rm(state: &mut State, addresses: &[String]) -> Result<String, String> {
    let mut text = String::new();
    for given in addresses {
        let address = parse(given)?;
        let gone: Vec<Address> = state
            .resources
            .keys()
            .filter(|a| **a == address || (address.key.is_none() && a.block() == address))
            .cloned()
            .collect();
        if gone.is_empty() {
            return Err(format!("the state has no `{address}`"));
        }
        for a in gone {
            state.resources.remove(&a);
            text.push_str(&format!("Removed `{a}` from the state; the object stays on the tenant as it is.\n"));
        }
    }
    Ok(text)
}

/// `thoth output`: the outputs the last apply recorded.
pub(super) async fn output(args: &OutputArgs) -> u8 {
    let (_, state) = match current(&args.state).await {
        Ok(pair) => pair,
        Err(code) => return code,
    };
    let outputs: Vec<(&String, &serde_json::Value)> =
        state.outputs.iter().filter(|(n, _)| args.name.as_ref().is_none_or(|want| want == *n)).collect();
    if let Some(name) = &args.name {
        if outputs.is_empty() {
            return fail(
                &format!("no output `{name}` is recorded"),
                Some("outputs are recorded by apply; sensitive ones never are"),
            );
        }
    }
    if args.raw {
        let [(_, value)] = outputs.as_slice() else {
            return fail("`--raw` prints one output", Some("name it: `thoth output --raw NAME`"));
        };
        return match value {
            serde_json::Value::String(s) => {
                out(s);
                OK
            }
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                out(&value.to_string());
                OK
            }
            _ => fail("`--raw` prints strings, numbers and booleans only", Some("use `--json` for structures")),
        };
    }
    if args.json {
        let doc: serde_json::Map<String, serde_json::Value> =
            outputs.iter().map(|(n, v)| ((*n).clone(), serde_json::json!({"sensitive": false, "value": v}))).collect();
        let value = match &args.name {
            Some(_) => outputs.first().map(|(_, v)| (*v).clone()).unwrap_or_default(),
            None => serde_json::Value::Object(doc),
        };
        out(&format!("{}\n", serde_json::to_string_pretty(&value).unwrap_or_default()));
        return OK;
    }
    let values: Vec<(String, crate::model::Value, bool)> =
        outputs.iter().map(|(n, v)| ((*n).clone(), crate::model::Value::from_json(v), false)).collect();
    out(&crate::render::output_lines(&values));
    OK
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
    let pushed = match crate::files::read_bytes(&args.file, crate::files::MAX_DOCUMENT) {
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
    session::under_lock(&store, "state push", &args.lock, async || push_into(args, &pushed, &store).await).await
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
