//! `thoth emulator`: serve the GovAPI contract locally until interrupted.

use super::{err, fail, out, OK};
use crate::cli::EmulatorArgs;
use crate::emulator::{Emulator, EmulatorConfig, Faults};

pub(super) async fn run(args: EmulatorArgs) -> u8 {
    let faults = Faults {
        latency_ms: args.latency_ms,
        error_rate: args.error_rate,
        ambiguous_rate: args.ambiguous_rate,
        throttle_rps: args.throttle_rps,
        seed: args.seed,
        guesses: args.guesses,
    };
    let shown = (!faults.is_none()).then(|| format!("{faults:?}"));
    let config = EmulatorConfig { data_dir: args.data_dir.clone(), api_keys: args.api_keys, faults };
    let emulator = match Emulator::start(config, &args.listen).await {
        Ok(e) => e,
        Err(e) => return fail(&format!("cannot start the emulator: {e}"), None),
    };
    err(&format!("thoth emulator listening on {} with data in `{}`\n", emulator.base_url(), args.data_dir.display()));
    if let Some(faults) = shown {
        err(&format!("injecting faults: {faults}\n"));
    }
    out(&format!("{}\n", emulator.base_url()));
    let _ = tokio::signal::ctrl_c().await;
    emulator.shutdown().await;
    OK
}
