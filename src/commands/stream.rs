//! `--json`: while it is on, standard output carries only the event stream, one JSON object
//! per line; the human text a command prints is left out and errors become `diagnostic`
//! events.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::SourceFile;
use crate::diag::Diagnostics;
use crate::render::stream::{self, Event};

static ON: AtomicBool = AtomicBool::new(false);

/// Turns the stream on and says which version writes it.
pub(super) fn start() {
    ON.store(true, Ordering::SeqCst);
    emit(&stream::version());
}

pub(super) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

pub(super) fn emit(event: &Event) {
    use std::io::Write;
    let line = event.line(&crate::state::now_rfc3339());
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(line.as_bytes());
    let _ = stdout.flush();
}

pub(super) fn emit_all(events: impl IntoIterator<Item = Event>) {
    for e in events {
        emit(&e);
    }
}

pub(super) fn diagnostics(files: &[SourceFile], diags: &Diagnostics) {
    for d in diags.sorted() {
        emit(&stream::diagnostic(files, d));
    }
}
