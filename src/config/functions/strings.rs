//! Terraform's string functions beyond the basic ones: substrings, regular expressions (RE2
//! syntax, as Terraform's), `formatlist`, and the encodings and digests of text.

use super::{arity, arity_error, format, number_arg, string_arg, Args};
use crate::config::eval::type_error;
use crate::diag::Diagnostic;
use crate::model::{Span, Value};
use crate::vecmap::VecMap;

pub(super) const NAMES: &[&str] = &[
    "substr",
    "title",
    "regex",
    "regexall",
    "replace",
    "formatlist",
    "strrev",
    "strcontains",
    "trimprefix",
    "trimsuffix",
    "chomp",
    "indent",
    "urlencode",
    "csvdecode",
    "sha512",
    "base64sha256",
    "base64sha512",
];

pub(super) fn call(name: &str, args: Args<'_>, span: Span) -> Result<Value, Diagnostic> {
    match name {
        "substr" => {
            arity(name, args, 3, span)?;
            let text: Vec<char> = string_arg(name, &args[0])?.chars().collect();
            let (offset, length) = (number_arg(name, &args[1])?, number_arg(name, &args[2])?);
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss, clippy::cast_sign_loss)]
            let start = if offset < 0.0 { (text.len() as f64 + offset).max(0.0) as usize } else { offset as usize };
            if start > text.len() {
                return Err(Diagnostic::error(format!("`substr` offset {offset} is past the end of the text"))
                    .at(args[1].1, "out of range"));
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let end = if length < 0.0 { text.len() } else { (start + length as usize).min(text.len()) };
            Ok(Value::String(text[start..end].iter().collect()))
        }
        "title" => {
            arity(name, args, 1, span)?;
            let mut out = String::new();
            let mut boundary = true;
            for c in string_arg(name, &args[0])?.chars() {
                if boundary {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                boundary = !(c.is_alphanumeric() || c == '_');
            }
            Ok(Value::String(out))
        }
        "regex" | "regexall" => {
            arity(name, args, 2, span)?;
            let re = compile(&args[0])?;
            let text = string_arg(name, &args[1])?;
            let mut found = re.captures_iter(text).map(|c| capture_value(&re, &c));
            if name == "regexall" {
                return Ok(Value::List(found.collect()));
            }
            found.next().ok_or_else(|| {
                Diagnostic::error("`regex`: the pattern does not match the text")
                    .at(args[1].1, "no match")
                    .help("use `regexall` or `can(regex(...))` when no match is expected")
            })
        }
        "replace" => {
            arity(name, args, 3, span)?;
            let (text, from, to) =
                (string_arg(name, &args[0])?, string_arg(name, &args[1])?, string_arg(name, &args[2])?);
            // As in Terraform, a substring in slashes is a regular expression, and `$1` or
            // `${name}` in the replacement refers to its captures.
            if from.len() >= 2 && from.starts_with('/') && from.ends_with('/') {
                let re = compile_text(&from[1..from.len() - 1], args[1].1)?;
                return Ok(Value::String(re.replace_all(text, to).into_owned()));
            }
            Ok(Value::String(text.replace(from, to)))
        }
        "formatlist" => {
            let Some((spec, rest)) = args.split_first() else {
                return Err(arity_error(name, "at least 1", 0, span));
            };
            let mut length: Option<usize> = None;
            for (v, s) in rest {
                if let Value::List(items) = v {
                    if length.is_some_and(|n| n != items.len()) {
                        return Err(Diagnostic::error("the lists given to `formatlist` differ in length")
                            .at(*s, "this list's length differs"));
                    }
                    length = Some(items.len());
                }
            }
            let mut out = Vec::new();
            for i in 0..length.unwrap_or(1) {
                let mut row = vec![spec.clone()];
                row.extend(rest.iter().map(|(v, s)| match v {
                    Value::List(items) => (items[i].clone(), *s),
                    other => (other.clone(), *s),
                }));
                out.push(format(&row, span)?);
            }
            Ok(Value::List(out))
        }
        "strrev" => {
            arity(name, args, 1, span)?;
            Ok(Value::String(string_arg(name, &args[0])?.chars().rev().collect()))
        }
        "strcontains" => {
            arity(name, args, 2, span)?;
            Ok(Value::Bool(string_arg(name, &args[0])?.contains(string_arg(name, &args[1])?)))
        }
        "trimprefix" | "trimsuffix" => {
            arity(name, args, 2, span)?;
            let (text, part) = (string_arg(name, &args[0])?, string_arg(name, &args[1])?);
            let trimmed = if name == "trimprefix" { text.strip_prefix(part) } else { text.strip_suffix(part) };
            Ok(Value::String(trimmed.unwrap_or(text).to_owned()))
        }
        "chomp" => {
            arity(name, args, 1, span)?;
            Ok(Value::String(string_arg(name, &args[0])?.trim_end_matches(['\n', '\r']).to_owned()))
        }
        "indent" => {
            arity(name, args, 2, span)?;
            let spaces = number_arg(name, &args[0])?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let pad = " ".repeat(spaces.max(0.0) as usize);
            Ok(Value::String(string_arg(name, &args[1])?.replace('\n', &format!("\n{pad}"))))
        }
        "urlencode" => {
            arity(name, args, 1, span)?;
            let mut out = String::new();
            for b in string_arg(name, &args[0])?.bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
                    b' ' => out.push('+'),
                    _ => out.push_str(&format!("%{b:02X}")),
                }
            }
            Ok(Value::String(out))
        }
        "csvdecode" => {
            arity(name, args, 1, span)?;
            csv_decode(string_arg(name, &args[0])?)
                .map_err(|e| Diagnostic::error(format!("invalid CSV: {e}")).at(args[0].1, "this text is not CSV"))
        }
        "sha512" | "base64sha256" | "base64sha512" => {
            use base64::Engine as _;
            use sha2::Digest as _;
            arity(name, args, 1, span)?;
            let text = string_arg(name, &args[0])?.as_bytes();
            Ok(Value::String(match name {
                "sha512" => crate::state::hex(&sha2::Sha512::digest(text)),
                "base64sha256" => base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text)),
                _ => base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(text)),
            }))
        }
        _ => Err(Diagnostic::error(format!("`{name}` cannot be called here")).at(span, "not callable")),
    }
}

/// Patterns are limited in size, so that a configuration cannot make matching slow.
const PATTERN_LIMIT: usize = 1 << 20;

fn compile(arg: &(Value, Span)) -> Result<regex::Regex, Diagnostic> {
    let pattern = arg.0.as_str().ok_or_else(|| type_error(arg.1, "the pattern", "string", &arg.0))?;
    compile_text(pattern, arg.1)
}

fn compile_text(pattern: &str, span: Span) -> Result<regex::Regex, Diagnostic> {
    regex::RegexBuilder::new(pattern).size_limit(PATTERN_LIMIT).build().map_err(|e| {
        let detail = e.to_string();
        let last = detail.lines().last().unwrap_or("invalid pattern").trim().to_owned();
        Diagnostic::error(format!("invalid regular expression: {last}"))
            .at(span, "this pattern")
            .help("patterns use RE2 syntax, as Terraform's do")
    })
}

/// What one match is worth, as Terraform gives it: the matched text when the pattern has no
/// groups, a map when its groups are named, a list of the groups otherwise.
fn capture_value(re: &regex::Regex, caps: &regex::Captures<'_>) -> Value {
    let text = |m: Option<regex::Match<'_>>| m.map_or(Value::Null, |m| Value::String(m.as_str().to_owned()));
    if re.captures_len() == 1 {
        return text(caps.get(0));
    }
    if re.capture_names().flatten().next().is_some() {
        let mut out = VecMap::new();
        for name in re.capture_names().flatten() {
            out.insert(name.to_owned(), text(caps.name(name)));
        }
        return Value::Map(out);
    }
    Value::List((1..re.captures_len()).map(|i| text(caps.get(i))).collect())
}

/// RFC 4180 text with a header row: a list of maps from header to field, all strings.
fn csv_decode(text: &str) -> Result<Value, String> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            other => field.push(other),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".to_owned());
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    let Some((header, records)) = rows.split_first() else { return Ok(Value::List(Vec::new())) };
    let mut out = Vec::new();
    for (i, record) in records.iter().enumerate() {
        if record.len() != header.len() {
            return Err(format!("row {} has {} field(s), the header {}", i + 2, record.len(), header.len()));
        }
        out.push(Value::Map(header.iter().cloned().zip(record.iter().map(|f| Value::String(f.clone()))).collect()));
    }
    Ok(Value::List(out))
}
