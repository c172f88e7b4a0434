//! `thoth validate`: load, evaluate and graph the configuration offline, as Terraform's
//! does: without credentials, variables without a value being unknown, and the provider
//! block checked as `plan` would check it.

use super::{out, session, ERROR, OK};
use crate::cli::{ProviderValues, VarArgs};
use crate::config::Evaluator;
use crate::diag::Diagnostics;

pub(super) fn run(vars: &VarArgs) -> u8 {
    let Some(conf) = session::load_with(vars, true) else { return ERROR };
    let mut diags = Diagnostics::default();
    let ev = Evaluator::new(&conf.module, conf.variables.clone());
    let provider = ProviderValues::evaluate(conf.module.provider.as_ref(), &ev, &mut diags);
    provider.tuning(&mut diags);
    drop(ev);
    if !diags.is_empty() {
        super::diagnose(&conf.module.files, &diags);
    }
    if diags.has_errors() {
        return ERROR;
    }
    out(&format!("The configuration is valid: {} resource(s).\n", conf.module.resources.len()));
    // The process ends here: freeing a large syntax tree piece by piece would only cost time.
    std::mem::forget(conf);
    OK
}
