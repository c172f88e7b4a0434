//! The state as a run keeps it: read from its backend, written back with the next serial over
//! the version it read (the state it started from kept as the backup first), with its journal
//! and its lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backend::{retrying, Attempt, Backend, BackendError, ErrorKind};
use super::journal::Journal;
use super::lock::{LockError, LockInfo};
use super::{State, StateError};

/// One workspace's state in its backend.
pub struct Store {
    backend: Arc<dyn Backend>,
    /// The bytes of the state as this run found it, until they are kept as the backup.
    found: Mutex<Option<Vec<u8>>>,
    backed_up: AtomicBool,
}

/// A held state lock. `release` gives it back; a lock dropped without it is released by the
/// backend when it can tell (the end of a `pg` connection) or left for `force-unlock`.
pub struct Lock {
    pub info: LockInfo,
    /// An earlier holder that was gone, for the caller to mention.
    pub replaced: Option<LockInfo>,
    backend: Arc<dyn Backend>,
}

impl Lock {
    pub async fn release(self) {
        if let Err(e) = self.backend.unlock(&self.info).await {
            tracing::warn!("cannot release the state lock {}: {e}", self.info.id);
        }
    }
}

impl Store {
    pub fn new(backend: Arc<dyn Backend>) -> Store {
        Store { backend, found: Mutex::new(None), backed_up: AtomicBool::new(false) }
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// A journal kept with this state.
    pub fn journal(&self) -> Journal {
        Journal::new(self.backend.clone())
    }

    /// Reads the state; a backend without one gives a new, empty state.
    pub async fn load(&self) -> Result<State, StateError> {
        let bytes =
            retrying("reading the state", async || self.backend.read().await).await.map_err(StateError::Backend)?;
        let Some(bytes) = bytes else {
            *self.found.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            return Ok(State::new());
        };
        let state = State::from_bytes(&bytes, &self.describe())?;
        tracing::debug!(
            "read the state from {}: serial {}, {} object(s)",
            self.describe(),
            state.serial,
            state.resources.len()
        );
        *self.found.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bytes);
        Ok(state)
    }

    /// Writes the state with the next serial over the version read. The first save of a run
    /// keeps the state the run started from as the backup.
    pub async fn save(&self, state: &mut State) -> Result<(), StateError> {
        let serial = state.serial.checked_add(1).ok_or_else(|| {
            StateError::Format(self.describe(), "the serial is at its maximum and cannot grow".to_owned())
        })?;
        self.write(state, serial).await?;
        state.serial = serial;
        Ok(())
    }

    /// Writes the state exactly as it is, serial included (a migration or a push).
    pub async fn write(&self, state: &State, serial: u64) -> Result<(), StateError> {
        if !self.backed_up.swap(true, Ordering::SeqCst) {
            let found = self.found.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            if let Some(found) = found {
                retrying("keeping the backup", async || self.backend.write_backup(&found).await)
                    .await
                    .map_err(StateError::Backend)?;
            }
        }
        let bytes = state.to_bytes(serial);
        retrying("writing the state", async || self.backend.write(&bytes, &state.lineage, serial).await)
            .await
            .map_err(StateError::Backend)?;
        tracing::debug!("wrote the state to {}: serial {serial}, {} object(s)", self.describe(), state.resources.len());
        Ok(())
    }

    /// Takes the lock for `operation`, waiting up to `timeout` for another holder. A lock of a
    /// process that no longer runs on this host is taken over.
    pub async fn lock(&self, operation: &str, timeout: Duration) -> Result<Lock, LockError> {
        let info = LockInfo::new(operation);
        let deadline = Instant::now() + timeout;
        let mut replaced = None;
        loop {
            let attempt = retrying("taking the state lock", async || self.backend.try_lock(&info).await)
                .await
                .map_err(LockError::Backend)?;
            match attempt {
                Attempt::Acquired { replaced: earlier } => {
                    tracing::info!("took the state lock {} for {operation} in {}", info.id, self.describe());
                    return Ok(Lock { info, replaced: replaced.or(earlier), backend: self.backend.clone() });
                }
                Attempt::Held(Some(holder)) if holder.is_stale() => {
                    self.backend.break_lock(&holder.id).await.map_err(LockError::Backend)?;
                    replaced = Some(holder);
                }
                Attempt::Held(holder) => {
                    if Instant::now() >= deadline {
                        return Err(LockError::Held(holder));
                    }
                    tokio::time::sleep(
                        Duration::from_millis(250).min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
            }
        }
    }

    /// Removes the lock if its id is `id`.
    pub async fn force_unlock(&self, id: &str) -> Result<LockInfo, BackendError> {
        self.backend.force_unlock(id).await
    }
}

impl StateError {
    /// Whether the state could not be saved because the backend is out of reach (as opposed
    /// to refusing the write).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StateError::Backend(e) if e.kind == ErrorKind::Unavailable)
    }

    /// Whether the state could not be written because another run wrote it first.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StateError::Backend(e) if e.kind == ErrorKind::Conflict)
    }
}
