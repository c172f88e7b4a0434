//! The write-ahead journal beside the state file, one JSON line per entry, each synced before
//! the run goes on:
//!
//! - an intent is appended before each create that cannot be repeated blindly (a
//!   server-assigned id, a new bundle version). When a run is killed between that create and
//!   the record of its result, the next run finds the intent and looks the object up instead
//!   of creating it a second time;
//! - a finished change (the resource's new state entry, or its removal) is appended as soon as
//!   it completes. The whole state file is rewritten only from time to time; the next run
//!   replays finished changes the state file does not have yet.
//!
//! Entries hold addresses, non-secret values and state entries (secrets only as digests). A
//! line cut short by a kill is ignored when reading.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::vecmap::VecMap;

/// One create about to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub address: String,
    /// The non-secret values sent, in their attribute form.
    pub values: VecMap<String, serde_json::Value>,
    /// The remote id recorded before the create (the version a new bundle version follows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_id: Option<String>,
}

/// A finished change: the resource's state entry, or `None` when it is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    pub done: String,
    pub entry: Option<super::ResourceState>,
}

/// One line of the journal.
#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Intent(Intent),
    Done(Done),
}

/// The journal of one state file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    /// The intents this run appended, kept for the next compaction.
    intents: Mutex<Vec<Intent>>,
}

/// What a run finds in the journal when it starts.
#[derive(Debug, Default)]
pub struct Found {
    /// Intents of creates an earlier run sent without recording their result.
    pub intents: Vec<Intent>,
    /// Whether the journal held anything at all (it is cleared once the state records it).
    pub any: bool,
}

/// JSON lines of the entries.
fn lines_of<T: Serialize>(entries: &[T]) -> std::io::Result<String> {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&serde_json::to_string(entry).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    Ok(text)
}

impl Journal {
    /// The journal of the state at `state_path`: `<state>.journal`.
    pub fn beside(state_path: &Path) -> Journal {
        let mut name = state_path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
        name.push(".journal");
        Journal { path: state_path.with_file_name(name), file: Mutex::new(None), intents: Mutex::default() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an intent and syncs it to disk before returning.
    pub fn intend(&self, intent: &Intent) -> std::io::Result<()> {
        self.append(&lines_of(std::slice::from_ref(intent))?)?;
        self.intents.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(intent.clone());
        Ok(())
    }

    /// Appends finished changes, synced to disk in one go.
    pub fn finish(&self, done: &[Done]) -> std::io::Result<()> {
        self.append(&lines_of(done)?)
    }

    fn append(&self, lines: &str) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&self.path)?;
            // A line cut short by a kill must not swallow the next entry.
            let torn = std::fs::read(&self.path).is_ok_and(|bytes| bytes.last().is_some_and(|b| *b != b'\n'));
            if torn {
                file.write_all(b"\n")?;
            }
            *guard = Some(file);
        }
        let file = guard.as_mut().ok_or_else(|| std::io::Error::other("journal not open"))?;
        file.write_all(lines.as_bytes())?;
        file.sync_data()
    }

    /// Reads the journal once: finished changes go into `state` (in the order written), and
    /// the intents are returned for the caller to look up.
    pub fn replay(&self, state: &mut super::State) -> Found {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let mut found = Found::default();
        for line in text.lines().filter_map(|l| serde_json::from_str::<Line>(l).ok()) {
            found.any = true;
            match line {
                Line::Intent(intent) => found.intents.push(intent),
                Line::Done(done) => {
                    let Some(address) = crate::model::Address::parse(&done.done) else { continue };
                    match done.entry {
                        Some(entry) => state.resources.insert(address, entry),
                        None => state.resources.remove(&address),
                    };
                }
            }
        }
        found
    }

    /// Rewrites the journal once the state file holds everything finished: only the intents
    /// this run appended for creates that did not finish stay (the next run looks them up).
    /// The journal is removed when nothing is left.
    pub fn compact(&self, finished: &std::collections::BTreeSet<String>) -> std::io::Result<()> {
        let keep: Vec<Intent> = self
            .intents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|i| !finished.contains(&i.address))
            .cloned()
            .collect();
        let mut guard = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = None;
        if keep.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        super::write_atomic(&self.path, lines_of(&keep)?.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_torn_line_replay_into_the_state_and_compact() {
        let dir = std::env::temp_dir().join(format!("thoth-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let journal = Journal::beside(&dir.join("thoth.state.json"));
        let intent = Intent {
            address: "thoth_fleet.a".to_owned(),
            values: [("name".to_owned(), serde_json::json!("a"))].into_iter().collect(),
            prior_id: None,
        };
        journal.intend(&intent).expect("append");
        let mut f = std::fs::OpenOptions::new().append(true).open(journal.path()).expect("open");
        f.write_all(b"{\"address\": \"thoth_fle").expect("torn write");
        let entry = super::super::ResourceState { id: "flt_1".to_owned(), ..Default::default() };
        let done = Done { done: "thoth_fleet.a".to_owned(), entry: Some(entry.clone()) };
        // The next run appends after the torn line, not into it.
        let next = Journal::beside(&dir.join("thoth.state.json"));
        next.finish(std::slice::from_ref(&done)).expect("finish");
        let mut state = super::super::State::new();
        let found = next.replay(&mut state);
        assert!(found.any);
        assert_eq!(found.intents, vec![intent.clone()], "a torn line in between does not hide the rest");
        let address = crate::model::Address::parse("thoth_fleet.a").expect("address");
        assert_eq!(state.resources.get(&address), Some(&entry));
        // Compaction keeps the intents of this run's creates that did not finish.
        journal.compact(&std::collections::BTreeSet::new()).expect("compact");
        assert_eq!(next.replay(&mut state).intents, vec![intent.clone()]);
        journal.compact(&["thoth_fleet.a".to_owned()].into_iter().collect()).expect("compact");
        assert!(!journal.path().exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
