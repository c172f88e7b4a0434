//! Diagnosis logs on standard error, or in the file `THOTH_LOG_PATH` names, at the level of
//! `THOTH_LOG` (`error`, `warn`, `info`, `debug`, `trace`; `warn` by default). Only thoth's
//! own events are logged (a library's trace could show a header), and every line is cleaned
//! of the run's secrets before it is written.

use std::io::Write;
use std::sync::Mutex;

use tracing_subscriber::fmt::MakeWriter;

pub(super) fn init() {
    let level = match std::env::var("THOTH_LOG").unwrap_or_default().trim().to_ascii_lowercase().as_str() {
        "error" => tracing::Level::ERROR,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    };
    let file = std::env::var_os("THOTH_LOG_PATH")
        .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
    let writer = Redacting { file: file.map(Mutex::new) };
    let filter = tracing_subscriber::filter::Targets::new().with_target("thoth", level);
    let layer = tracing_subscriber::fmt::layer().without_time().with_ansi(false).with_writer(writer);
    use tracing_subscriber::layer::SubscriberExt as _;
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer).with(filter));
}

/// Writes each formatted event, cleaned of secrets, to the log file or standard error.
struct Redacting {
    file: Option<Mutex<std::fs::File>>,
}

struct Line<'a>(&'a Redacting);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = crate::redact::clean(&String::from_utf8_lossy(buf));
        match &self.0.file {
            Some(file) => {
                file.lock().map_err(|_| std::io::Error::other("log file lock"))?.write_all(text.as_bytes())?;
            }
            None => std::io::stderr().lock().write_all(text.as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(self)
    }
}
