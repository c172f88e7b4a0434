//! Terraform's file-system functions, relative to the configuration directory. Each only
//! reads: nothing here writes, and nothing depends on the machine beyond the files read.

use std::path::{Path, PathBuf};

use super::{arity, string_arg, Args};
use crate::diag::Diagnostic;
use crate::model::{Span, Value};

pub(super) const NAMES: &[&str] = &["basename", "dirname", "fileexists", "fileset", "filebase64", "filesha256"];

/// A pattern of `fileset` may match this many files at most.
const FILESET_LIMIT: usize = 10_000;

pub(super) fn call(name: &str, args: Args<'_>, span: Span, dir: &Path) -> Result<Value, Diagnostic> {
    match name {
        "basename" | "dirname" => {
            arity(name, args, 1, span)?;
            let path = string_arg(name, &args[0])?;
            let trimmed = path.trim_end_matches('/');
            let (parent, base) = match trimmed.rfind('/') {
                Some(0) => ("/", &trimmed[1..]),
                Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
                None => (".", trimmed),
            };
            Ok(Value::String(if name == "basename" { base } else { parent }.to_owned()))
        }
        "fileexists" => {
            arity(name, args, 1, span)?;
            let path = dir.join(string_arg(name, &args[0])?);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => Ok(Value::Bool(true)),
                Ok(_) => {
                    Err(Diagnostic::error(format!("`{}` is not a file", path.display())).at(args[0].1, "a directory"))
                }
                Err(_) => Ok(Value::Bool(false)),
            }
        }
        "fileset" => {
            arity(name, args, 2, span)?;
            let base = dir.join(string_arg(name, &args[0])?);
            let pattern = string_arg(name, &args[1])?;
            let mut found = Vec::new();
            walk(&base, &base, pattern, &mut found).map_err(|e| {
                Diagnostic::error(format!("`fileset` cannot read `{}`: {e}", base.display()))
                    .at(args[0].1, "this directory")
            })?;
            if found.len() > FILESET_LIMIT {
                return Err(Diagnostic::error(format!("`fileset` matches more than {FILESET_LIMIT} files"))
                    .at(args[1].1, "too broad"));
            }
            found.sort();
            Ok(Value::List(found.into_iter().map(Value::String).collect()))
        }
        "filebase64" | "filesha256" => {
            use base64::Engine as _;
            use sha2::Digest as _;
            arity(name, args, 1, span)?;
            let rel = string_arg(name, &args[0])?;
            let bytes = crate::files::read_bytes(&dir.join(rel), crate::files::MAX_TEXT).map_err(|e| {
                Diagnostic::error(format!("cannot read file `{rel}`: {e}"))
                    .at(args[0].1, "this file")
                    .help("paths are relative to the configuration directory; `path.module` refers to it")
            })?;
            Ok(Value::String(if name == "filebase64" {
                base64::engine::general_purpose::STANDARD.encode(bytes)
            } else {
                crate::state::hex(&sha2::Sha256::digest(bytes))
            }))
        }
        _ => Err(Diagnostic::error(format!("`{name}` cannot be called here")).at(span, "not callable")),
    }
}

fn walk(base: &Path, dir: &Path, pattern: &str, found: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path: PathBuf = entry.path();
        let rel = path.strip_prefix(base).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        if entry.file_type()?.is_dir() {
            walk(base, &path, pattern, found)?;
        } else if glob(pattern.as_bytes(), rel.as_bytes()) {
            found.push(rel);
            if found.len() > FILESET_LIMIT {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Shell-style matching: `*` within one path segment, `**` across segments, `?` one
/// character, `[abc]` one of a set.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', b'/', rest @ ..] => {
            glob(rest, text) || (0..text.len()).any(|i| text[i] == b'/' && glob(rest, &text[i + 1..]))
        }
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        [b'*', rest @ ..] => {
            (0..=text.len()).take_while(|&i| i == 0 || text[i - 1] != b'/').any(|i| glob(rest, &text[i..]))
        }
        [b'?', rest @ ..] => text.first().is_some_and(|&c| c != b'/') && glob(rest, &text[1..]),
        [b'[', rest @ ..] => match rest.iter().position(|&c| c == b']') {
            Some(end) => text.first().is_some_and(|c| rest[..end].contains(c)) && glob(&rest[end + 1..], &text[1..]),
            None => text.first() == Some(&b'[') && glob(rest, &text[1..]),
        },
        [c, rest @ ..] => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_patterns() {
        use super::glob;
        assert!(glob(b"*.cedar", b"a.cedar"));
        assert!(!glob(b"*.cedar", b"p/a.cedar"));
        assert!(glob(b"**/*.cedar", b"a.cedar"));
        assert!(glob(b"**/*.cedar", b"p/q/a.cedar"));
        assert!(glob(b"p/?.json", b"p/a.json"));
        assert!(glob(b"[ab].tf", b"b.tf"));
        assert!(!glob(b"[ab].tf", b"c.tf"));
    }
}
