//! `thoth fmt`: rewrite configuration files in Terraform's canonical layout, or with
//! `--check` report which ones would change (exit 3), as `terraform fmt` does.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{err, fail, out, ERROR, OK};
use crate::cli::FmtArgs;
use crate::config::{syntax_check, SourceFile, ROOT};
use crate::diag::Diagnostics;
use crate::render;

/// `--check` found a file that is not in canonical layout.
const UNFORMATTED: u8 = 3;

/// The file names `fmt` formats: native syntax only, as Terraform's does.
const EXTENSIONS: &[&str] = &[".tf", ".tfvars", ".tftest.hcl", ".tfcomponent.hcl", ".tfdeploy.hcl", ".tfstack.hcl"];

pub(super) fn run(args: &FmtArgs) -> u8 {
    if args.paths.iter().any(|p| p.as_os_str() == "-") {
        return stdin(args);
    }
    let roots = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    let mut files = Vec::new();
    for root in &roots {
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => {
                if let Err(e) = walk(root, args.recursive, &mut files) {
                    return fail(&format!("cannot read `{}`: {e}", root.display()), None);
                }
            }
            Ok(_) => files.push(root.clone()),
            Err(e) => return fail(&format!("cannot read `{}`: {e}", root.display()), None),
        }
    }
    let mut changed = false;
    let mut broken = false;
    for path in &files {
        let name = path.strip_prefix(".").unwrap_or(path).display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(&format!("cannot read `{name}`: {e}"), None),
        };
        let Some(formatted) = checked(&name, &text) else {
            broken = true;
            continue;
        };
        if formatted == text {
            continue;
        }
        changed = true;
        if args.list {
            out(&format!("{name}\n"));
        }
        if args.diff {
            out(&diff(&name, &text, &formatted));
        }
        if args.write && !args.check {
            if let Err(e) = replace(path, &formatted) {
                return fail(&format!("cannot write `{name}`: {e}"), None);
            }
        }
    }
    if broken {
        ERROR
    } else if changed && args.check {
        UNFORMATTED
    } else {
        OK
    }
}

/// `thoth fmt -`: standard input to standard output.
fn stdin(args: &FmtArgs) -> u8 {
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        return fail(&format!("cannot read standard input: {e}"), None);
    }
    let Some(formatted) = checked("<stdin>", &text) else { return ERROR };
    if args.diff {
        out(&diff("<stdin>", &text, &formatted));
    } else if !args.check {
        out(&formatted);
    }
    if args.check && formatted != text {
        UNFORMATTED
    } else {
        OK
    }
}

/// The formatted text, or `None` after printing the syntax error of a file that does not
/// parse: a file is never rewritten from a guess.
fn checked(name: &str, text: &str) -> Option<String> {
    if let Some(d) = syntax_check(0, text) {
        let files = [SourceFile { name: name.to_owned(), text: text.to_owned(), scope: ROOT }];
        let mut diags = Diagnostics::default();
        diags.push(d.help("`thoth fmt` only rewrites files that parse; fix this one first"));
        err(&render::diagnostics(&files, &diags));
        return None;
    }
    Some(crate::fmt::format(text))
}

fn walk(dir: &Path, recursive: bool, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden directories hold tools' own files (`.terraform`, `.thoth`, `.git`).
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if recursive {
                walk(&path, true, files)?;
            }
        } else if EXTENSIONS.iter().any(|ext| name.ends_with(ext)) {
            files.push(path);
        }
    }
    Ok(())
}

/// Replaces a file through a temporary sibling, so that an interrupted write never leaves
/// it half written.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".thoth-fmt");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::rename(&tmp, path)
}

fn diff(name: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("old/{name}"), &format!("new/{name}"))
        .to_string()
}
