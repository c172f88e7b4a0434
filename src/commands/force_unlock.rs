//! `thoth force-unlock ID`: remove a state lock left by a run that is gone.

use std::path::PathBuf;

use super::{fail, out, OK};
use crate::cli::ForceUnlockArgs;

pub(super) fn run(args: &ForceUnlockArgs) -> u8 {
    let path = args.state.clone().unwrap_or_else(|| PathBuf::from(super::DEFAULT_STATE));
    match crate::state::lock::force_unlock(&path, &args.id) {
        Ok(info) => {
            out(&format!("Removed the {info}.\n"));
            OK
        }
        Err(e) => fail(&e, None),
    }
}
