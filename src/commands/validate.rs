//! `thoth validate`: load, evaluate and graph the configuration, offline.

use super::{out, session, ERROR, OK};
use crate::cli::VarArgs;

pub(super) fn run(vars: &VarArgs) -> u8 {
    let Some(conf) = session::load(vars) else { return ERROR };
    out(&format!("The configuration is valid: {} resource(s).\n", conf.module.resources.len()));
    // The process ends here: freeing a large syntax tree piece by piece would only cost time.
    std::mem::forget(conf);
    OK
}
