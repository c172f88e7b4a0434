//! `thoth force-unlock ID`: remove a state lock left by a run that is gone, in any backend.

use super::{fail, out, session, OK};
use crate::cli::ForceUnlockArgs;

pub(super) async fn run(args: &ForceUnlockArgs) -> u8 {
    let store = match session::open_state(&args.state).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    match store.force_unlock(&args.id).await {
        Ok(info) => {
            out(&format!("Removed the {info}.\n"));
            OK
        }
        Err(e) => fail(&e.to_string(), None),
    }
}
