//! `thoth version`, `thoth completions` and `thoth man`: what thoth says about itself, the
//! last two generated from the command-line definitions so that they never drift from them.

use clap::CommandFactory;

use super::{fail, out, OK};
use crate::cli::{Cli, CompletionsArgs, ManArgs, VersionArgs};

pub(super) fn version(args: &VersionArgs) -> u8 {
    let version = env!("CARGO_PKG_VERSION");
    let platform = format!("{}_{}", std::env::consts::OS, go_arch(std::env::consts::ARCH));
    if args.json {
        let value = serde_json::json!({
            "thoth_version": version,
            "platform": platform,
            "provider": "registry.terraform.io/atensecurity/thoth",
            "plan_format_version": crate::render::PLAN_FORMAT_VERSION,
            "state_format_version": crate::state::FORMAT_VERSION,
        });
        out(&format!("{}\n", serde_json::to_string_pretty(&value).unwrap_or_default()));
    } else {
        out(&format!("thoth v{version}\non {platform}\n"));
    }
    OK
}

/// Terraform names platforms as Go does.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub(super) fn completions(args: &CompletionsArgs) -> u8 {
    let mut text = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "thoth", &mut text);
    out(&String::from_utf8_lossy(&text));
    OK
}

pub(super) fn man(args: &ManArgs) -> u8 {
    let command = Cli::command();
    match &args.out {
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(command, dir)) {
                return fail(&format!("cannot write the manual pages into `{}`: {e}", dir.display()), None);
            }
            OK
        }
        None => {
            let mut page = Vec::new();
            if let Err(e) = clap_mangen::Man::new(command).render(&mut page) {
                return fail(&format!("cannot render the manual page: {e}"), None);
            }
            out(&String::from_utf8_lossy(&page));
            OK
        }
    }
}
