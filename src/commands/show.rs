//! `thoth show FILE`: print a saved plan.

use super::{fail, out, OK};
use crate::cli::{Format, ShowArgs};
use crate::planfile::PlanFile;

pub(super) fn run(args: &ShowArgs) -> u8 {
    match PlanFile::read(&args.file) {
        Ok(saved) => {
            out(&match args.format {
                Format::Human => saved.human,
                Format::Markdown => saved.markdown,
                Format::Json => {
                    let mut text = serde_json::to_string_pretty(&saved.plan).unwrap_or_default();
                    text.push('\n');
                    text
                }
            });
            OK
        }
        Err(e) => fail(&e, None),
    }
}
