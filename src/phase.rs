//! The debug log's account of where a command's time and memory go: each phase logs the time
//! since the command started and the process's resident and peak memory.

use std::time::Instant;

/// Logs that `what` is done, `started` being when the command began.
pub fn done(started: Instant, what: &str) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let (resident, peak) = memory_mib();
    tracing::debug!(elapsed_ms = started.elapsed().as_millis(), resident_mib = resident, peak_mib = peak, "{what}");
}

/// The resident and peak resident memory of the process in MiB (`VmRSS`, `VmHWM`), 0 where the
/// system does not say.
fn memory_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
