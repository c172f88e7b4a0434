//! The `local` backend: the state file (`thoth.state.json`, or one per workspace under
//! `thoth.state.d/<workspace>/`), written atomically with mode 0600, its `.backup`, its
//! `.journal` of synced lines and its `.lock` file, created exclusively.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{Attempt, Backend, BackendError, Result, Target, DEFAULT_WORKSPACE};
use crate::config::LocalSettings;
use crate::files::{read_bytes, ReadError, MAX_DOCUMENT};
use crate::state::lock::LockInfo;
use crate::state::{backup_path, create_private, refuse_symlink, write_atomic};

pub const DEFAULT_PATH: &str = "thoth.state.json";
const WORKSPACE_DIR: &str = "thoth.state.d";

pub struct Local {
    path: PathBuf,
    workspace_dir: PathBuf,
    /// The lineage and serial last read or written, for the compare-and-swap.
    version: Mutex<Option<(String, u64)>>,
    journal: Mutex<Option<std::fs::File>>,
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> BackendError {
    BackendError::other(format!("cannot {what} `{}`: {e}", path.display()))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// The lineage and serial recorded in a state file's text, when it has them.
pub(super) fn version_of(bytes: &[u8]) -> Option<(String, u64)> {
    #[derive(serde::Deserialize)]
    struct Head {
        lineage: String,
        serial: u64,
    }
    serde_json::from_slice::<Head>(bytes).ok().map(|h| (h.lineage, h.serial))
}

impl Local {
    pub fn new(settings: &LocalSettings, target: &Target) -> Local {
        let default = target
            .local_path
            .clone()
            .or_else(|| settings.path.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
        let workspace_dir = settings.workspace_dir.as_ref().map_or_else(|| PathBuf::from(WORKSPACE_DIR), PathBuf::from);
        let path = if target.workspace == DEFAULT_WORKSPACE {
            default
        } else {
            let file = default.file_name().map_or_else(|| DEFAULT_PATH.into(), std::ffi::OsStr::to_os_string);
            workspace_dir.join(&target.workspace).join(file)
        };
        Local { path, workspace_dir, version: Mutex::new(None), journal: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn journal_path(&self) -> PathBuf {
        sibling(&self.path, ".journal")
    }

    fn lock_path(&self) -> PathBuf {
        sibling(&self.path, ".lock")
    }

    /// The state file's bytes; `None` only when there is nothing at its path. A symbolic link
    /// to nothing, a directory, a pipe or a file that cannot be read is an error, never "no
    /// state" (which would plan every object anew).
    fn current(&self) -> Result<Option<Vec<u8>>> {
        match read_bytes(&self.path, MAX_DOCUMENT) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.is_not_found() && std::fs::symlink_metadata(&self.path).is_err() => Ok(None),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(BackendError::other(format!(
                "the state file `{}` is a symbolic link to a file that does not exist",
                self.path.display()
            ))),
            Err(e) => Err(BackendError::other(format!("cannot read the state file `{}`: {e}", self.path.display()))),
        }
    }

    fn read_sync(&self) -> Result<Option<Vec<u8>>> {
        let Some(bytes) = self.current()? else {
            *lock(&self.version) = None;
            return Ok(None);
        };
        *lock(&self.version) = version_of(&bytes);
        Ok(Some(bytes))
    }

    fn write_sync(&self, bytes: &[u8], lineage: &str, serial: u64) -> Result<()> {
        let expected = lock(&self.version).clone();
        let current = self.current()?.and_then(|b| version_of(&b));
        if current != expected {
            return Err(BackendError::conflict(format!(
                "the state file `{}` was changed by another run since this one read it",
                self.path.display()
            )));
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("create the directory", dir, &e))?;
        }
        write_atomic(&self.path, bytes).map_err(|e| io("write the state file", &self.path, &e))?;
        *lock(&self.version) = Some((lineage.to_owned(), serial));
        Ok(())
    }

    fn append_sync(&self, lines: &str) -> std::io::Result<()> {
        let path = self.journal_path();
        let mut guard = lock(&self.journal);
        if guard.is_none() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            refuse_symlink(&path)?;
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path)?;
            // A line cut short by a kill must not swallow the next entry.
            let torn = std::fs::read(&path).is_ok_and(|bytes| bytes.last().is_some_and(|b| *b != b'\n'));
            if torn {
                file.write_all(b"\n")?;
            }
            *guard = Some(file);
        }
        let file = guard.as_mut().ok_or_else(|| std::io::Error::other("journal not open"))?;
        file.write_all(lines.as_bytes())?;
        file.sync_data()
    }

    fn replace_sync(&self, lines: &str) -> std::io::Result<()> {
        let path = self.journal_path();
        *lock(&self.journal) = None;
        if lines.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        write_atomic(&path, lines.as_bytes())
    }

    fn read_lock(&self) -> Option<LockInfo> {
        let path = self.lock_path();
        refuse_symlink(&path).ok()?;
        let bytes = read_bytes(&path, 1 << 20).ok()?;
        serde_json::from_slice::<LockInfo>(&bytes).ok().filter(|info| !info.id.is_empty())
    }

    fn try_lock_sync(&self, info: &LockInfo) -> Result<Attempt> {
        let path = self.lock_path();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("create the directory", dir, &e))?;
        }
        let text = serde_json::to_string_pretty(info).unwrap_or_default();
        // The lock is written whole beside its place and linked there, which fails when a lock
        // (or a symbolic link) is there already: a run killed at any moment leaves either no
        // lock or a complete one, never an empty file that says nothing of its holder.
        let (tmp, mut file) = crate::state::create_temporary(&path).map_err(|e| io("create the lock", &path, &e))?;
        let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
        drop(file);
        let linked = written.and_then(|()| std::fs::hard_link(&tmp, &path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Attempt::Acquired { replaced: None }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Attempt::Held(self.read_lock())),
            // A file system without hard links: created exclusively, then written.
            Err(_) => match create_private(&path) {
                Ok(mut file) => {
                    file.write_all(text.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| io("write the lock", &path, &e))?;
                    Ok(Attempt::Acquired { replaced: None })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Attempt::Held(self.read_lock())),
                Err(e) => Err(io("create the lock", &path, &e)),
            },
        }
    }

    fn force_unlock_sync(&self, id: &str) -> Result<LockInfo> {
        let path = self.lock_path();
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(BackendError::other(format!("the state `{}` is not locked", self.path.display())));
        }
        // A lock file that says nothing readable can only be removed by force: its id is
        // whatever the user read in it, and the file goes.
        let info = self.read_lock();
        match info {
            Some(info) if info.id != id => {
                Err(BackendError::other(format!("the lock id is `{}`, not `{id}` ({info})", info.id)))
            }
            _ => {
                std::fs::remove_file(&path).map_err(|e| io("remove", &path, &e))?;
                Ok(info.unwrap_or_else(|| LockInfo::unreadable(id)))
            }
        }
    }

    fn workspaces_sync(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let file = self.path.file_name().map_or_else(|| DEFAULT_PATH.into(), std::ffi::OsStr::to_os_string);
        match std::fs::read_dir(&self.workspace_dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    if let Some(name) = entry.file_name().to_str() {
                        if entry.path().join(&file).exists() {
                            out.push(name.to_owned());
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("read", &self.workspace_dir, &e)),
        }
        out.sort();
        Ok(out)
    }

    fn delete_sync(&self) -> Result<()> {
        for path in [self.path.clone(), backup_path(&self.path), self.journal_path(), self.lock_path()] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", &path, &e)),
                _ => {}
            }
        }
        if let Some(dir) = self.path.parent().filter(|d| d.starts_with(&self.workspace_dir)) {
            let _ = std::fs::remove_dir(dir);
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The local backend's operations are synchronous file operations, fast enough to run on the
/// calling task.
impl Backend for Local {
    fn describe(&self) -> String {
        format!("the state file `{}`", self.path.display())
    }

    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        async { Ok(()) }.boxed()
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>>> {
        async { self.read_sync() }.boxed()
    }

    fn write<'a>(&'a self, bytes: &'a [u8], lineage: &'a str, serial: u64) -> BoxFuture<'a, Result<()>> {
        async move { self.write_sync(bytes, lineage, serial) }.boxed()
    }

    fn write_backup<'a>(&'a self, bytes: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        async move {
            let path = backup_path(&self.path);
            write_atomic(&path, bytes).map_err(|e| io("write the backup", &path, &e))
        }
        .boxed()
    }

    fn journal_append<'a>(&'a self, lines: &'a str) -> BoxFuture<'a, Result<()>> {
        async move { self.append_sync(lines).map_err(|e| io("write the journal", &self.journal_path(), &e)) }.boxed()
    }

    fn journal_read(&self) -> BoxFuture<'_, Result<String>> {
        async {
            let path = self.journal_path();
            refuse_symlink(&path).map_err(|e| io("read the journal", &path, &e))?;
            match read_bytes(&path, MAX_DOCUMENT) {
                // A line cut short by a kill may end in the middle of a character.
                Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) if e.is_not_found() => Ok(String::new()),
                Err(e) => Err(BackendError::other(format!("cannot read the journal `{}`: {e}", path.display()))),
            }
        }
        .boxed()
    }

    fn journal_replace<'a>(&'a self, lines: &'a str) -> BoxFuture<'a, Result<()>> {
        async move { self.replace_sync(lines).map_err(|e| io("rewrite the journal", &self.journal_path(), &e)) }.boxed()
    }

    fn try_lock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<Attempt>> {
        async move { self.try_lock_sync(info) }.boxed()
    }

    fn break_lock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            if self.read_lock().is_some_and(|held| held.id == id) {
                let _ = std::fs::remove_file(self.lock_path());
            }
            Ok(())
        }
        .boxed()
    }

    fn unlock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<()>> {
        self.break_lock(&info.id)
    }

    fn force_unlock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<LockInfo>> {
        async move { self.force_unlock_sync(id) }.boxed()
    }

    fn workspaces(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        async { self.workspaces_sync() }.boxed()
    }

    fn delete(&self) -> BoxFuture<'_, Result<()>> {
        async { self.delete_sync() }.boxed()
    }
}
