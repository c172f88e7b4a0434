//! The write-ahead journal kept with the state by its backend, one JSON line per entry, each
//! durable before the run goes on:
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

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::backend::{retrying, Backend, BackendError};

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
    /// The names of the inputs that were secret (and so are not in `values`): what the
    /// control plane computed from them stays secret when the object is adopted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
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

/// The journal of one state, kept by its backend.
pub struct Journal {
    backend: Arc<dyn Backend>,
    /// The intents this run appended, kept for the next compaction.
    intents: Mutex<Vec<Intent>>,
    /// Why an append failed, once one has: the run must stop scheduling.
    failed: Mutex<Option<String>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Journal({})", self.backend.describe())
    }
}

/// What a run finds in the journal when it starts.
#[derive(Debug, Default)]
pub struct Found {
    /// Intents of creates an earlier run sent without recording their result.
    pub intents: Vec<Intent>,
    /// Whether the journal held anything at all (it is cleared once the state records it).
    pub any: bool,
    /// A digest of everything it held, so that a saved plan can tell that it moved on.
    pub digest: String,
}

/// JSON lines of the entries.
fn lines_of<T: Serialize>(entries: &[T]) -> Result<String, BackendError> {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&serde_json::to_string(entry).map_err(|e| BackendError::other(e.to_string()))?);
        text.push('\n');
    }
    Ok(text)
}

impl Journal {
    pub fn new(backend: Arc<dyn Backend>) -> Journal {
        Journal { backend, intents: Mutex::default(), failed: Mutex::default() }
    }

    /// Where it is, for messages.
    pub fn describe(&self) -> String {
        format!("the journal of {}", self.backend.describe())
    }

    /// Why an append failed, if one has.
    pub fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Appends an intent and returns once it is durable.
    pub async fn intend(&self, intent: &Intent) -> Result<(), BackendError> {
        let text = lines_of(std::slice::from_ref(intent))?;
        if let Err(e) = retrying("appending to the journal", async || self.backend.journal_append(&text).await).await {
            *self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.message.clone());
            return Err(e);
        }
        self.intents.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(intent.clone());
        Ok(())
    }

    /// Appends finished changes, durable in one go.
    pub async fn finish(&self, done: &[Done]) -> Result<(), BackendError> {
        if done.is_empty() {
            return Ok(());
        }
        let text = lines_of(done)?;
        retrying("appending to the journal", async || self.backend.journal_append(&text).await).await
    }

    /// Reads the journal once: finished changes go into `state` (in the order written), and
    /// the intents are returned for the caller to look up. A line cut short by a kill is
    /// ignored; a line of a resource type this thoth does not know is an error.
    pub async fn replay(&self, state: &mut super::State) -> Result<Found, BackendError> {
        let text = retrying("reading the journal", async || self.backend.journal_read().await).await?;
        let mut found = Found { digest: crate::state::hex(&Sha256::digest(text.as_bytes())), ..Found::default() };
        for line in text.lines().filter_map(|l| serde_json::from_str::<Line>(l).ok()) {
            found.any = true;
            let address = match &line {
                Line::Intent(i) => &i.address,
                Line::Done(d) => &d.done,
            };
            let known = crate::model::Address::parse(address)
                .filter(|a| crate::schema::Schema::get().resource(&a.type_name).is_some());
            let Some(address) = known else {
                return Err(BackendError::other(format!(
                    "{} holds `{address}`, which is not a resource this version of thoth knows",
                    self.describe()
                )));
            };
            match line {
                Line::Intent(intent) => found.intents.push(intent),
                Line::Done(done) => {
                    match done.entry {
                        Some(entry) => state.resources.insert(address, entry),
                        None => state.resources.remove(&address),
                    };
                }
            }
        }
        if !found.any {
            found.digest.clear();
        }
        Ok(found)
    }

    /// Rewrites the journal once the state holds everything finished: only the intents this
    /// run appended for creates that did not finish stay (the next run looks them up). The
    /// journal is removed when nothing is left.
    pub async fn compact(&self, finished: &std::collections::BTreeSet<String>) -> Result<(), BackendError> {
        let keep: Vec<Intent> = self
            .intents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|i| !finished.contains(&i.address))
            .cloned()
            .collect();
        let text = lines_of(&keep)?;
        retrying("compacting the journal", async || self.backend.journal_replace(&text).await).await
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::state::backend::{Local, Target};

    #[tokio::test]
    async fn entries_survive_a_torn_line_replay_into_the_state_and_compact() {
        let dir = std::env::temp_dir().join(format!("thoth-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let target =
            Target { tenant: None, workspace: "default".to_owned(), local_path: Some(dir.join("thoth.state.json")) };
        let backend = || -> Arc<dyn Backend> { Arc::new(Local::new(&Default::default(), &target)) };
        let journal = Journal::new(backend());
        let intent = Intent {
            address: "thoth_fleet.a".to_owned(),
            values: [("name".to_owned(), serde_json::json!("a"))].into_iter().collect(),
            prior_id: None,
            sensitive: Vec::new(),
        };
        journal.intend(&intent).await.expect("append");
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.join("thoth.state.json.journal")).expect("open");
        f.write_all(b"{\"address\": \"thoth_fle").expect("torn write");
        let entry = super::super::ResourceState { id: "flt_1".to_owned(), ..Default::default() };
        let done = Done { done: "thoth_fleet.a".to_owned(), entry: Some(entry.clone()) };
        // The next run appends after the torn line, not into it.
        let next = Journal::new(backend());
        next.finish(std::slice::from_ref(&done)).await.expect("finish");
        let mut state = super::super::State::new();
        let found = next.replay(&mut state).await.expect("replay");
        assert!(found.any);
        assert_eq!(found.intents, vec![intent.clone()], "a torn line in between does not hide the rest");
        let address = crate::model::Address::parse("thoth_fleet.a").expect("address");
        assert_eq!(state.resources.get(&address), Some(&entry));
        // Compaction keeps the intents of this run's creates that did not finish.
        journal.compact(&std::collections::BTreeSet::new()).await.expect("compact");
        assert_eq!(next.replay(&mut state).await.expect("replay").intents, vec![intent.clone()]);
        journal.compact(&["thoth_fleet.a".to_owned()].into_iter().collect()).await.expect("compact");
        assert!(!dir.join("thoth.state.json.journal").exists());
        // An entry of a type this thoth does not know is refused, not skipped.
        std::fs::write(dir.join("thoth.state.json.journal"), "{\"done\":\"thoth_nonsense.a\",\"entry\":null}\n")
            .expect("write");
        let refused = next.replay(&mut state).await.expect_err("unknown type");
        assert!(refused.message.contains("thoth_nonsense.a"), "{refused}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
