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

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One create about to be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub address: String,
    /// The non-secret values sent, in their attribute form.
    pub values: BTreeMap<String, serde_json::Value>,
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
}

impl Journal {
    /// The journal of the state at `state_path`: `<state>.journal`.
    pub fn beside(state_path: &Path) -> Journal {
        let mut name = state_path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
        name.push(".journal");
        Journal { path: state_path.with_file_name(name), file: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an intent and syncs it to disk before returning.
    pub fn intend(&self, intent: &Intent) -> std::io::Result<()> {
        let mut line = serde_json::to_string(intent).map_err(std::io::Error::other)?;
        line.push('\n');
        self.append(&line)
    }

    /// Appends finished changes, synced to disk in one go.
    pub fn finish(&self, done: &[Done]) -> std::io::Result<()> {
        let mut lines = String::new();
        for d in done {
            lines.push_str(&serde_json::to_string(d).map_err(std::io::Error::other)?);
            lines.push('\n');
        }
        self.append(&lines)
    }

    fn append(&self, line: &str) -> std::io::Result<()> {
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
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }

    fn lines(&self) -> Vec<Line> {
        std::fs::read_to_string(&self.path)
            .map(|text| text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
            .unwrap_or_default()
    }

    /// Every complete intent in the journal, in the order written; none when there is no
    /// journal.
    pub fn read(&self) -> Vec<Intent> {
        self.lines()
            .into_iter()
            .filter_map(|l| match l {
                Line::Intent(i) => Some(i),
                Line::Done(_) => None,
            })
            .collect()
    }

    /// Every complete finished change in the journal, in the order written.
    pub fn finished(&self) -> Vec<Done> {
        self.lines()
            .into_iter()
            .filter_map(|l| match l {
                Line::Done(d) => Some(d),
                Line::Intent(_) => None,
            })
            .collect()
    }

    /// Whether the journal holds anything at all.
    pub fn is_empty(&self) -> bool {
        self.lines().is_empty()
    }

    /// Keeps only the given intents (finished changes are in the saved state by then): the
    /// journal is rewritten atomically, or removed when nothing is left.
    pub fn replace(&self, keep: &[Intent]) -> std::io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = None;
        if keep.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let mut text = String::new();
        for intent in keep {
            text.push_str(&serde_json::to_string(intent).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        super::write_atomic(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_survive_a_torn_last_line_and_can_be_cleared() {
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
        assert_eq!(journal.read(), vec![intent.clone()]);
        let done = Done {
            done: "thoth_fleet.a".to_owned(),
            entry: Some(super::super::ResourceState { id: "flt_1".to_owned(), ..Default::default() }),
        };
        // The next run appends after the torn line, not into it.
        let journal = Journal::beside(&dir.join("thoth.state.json"));
        journal.finish(std::slice::from_ref(&done)).expect("finish");
        assert_eq!(journal.finished(), vec![done]);
        assert_eq!(journal.read(), vec![intent.clone()], "a torn line in between does not hide the rest");
        journal.replace(&[]).expect("clear");
        assert!(journal.read().is_empty());
        assert!(!journal.path().exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
