//! The built-in functions of the configuration language.
//!
//! Each function takes evaluated arguments with their spans and returns a value or a
//! diagnostic pointing at the offending argument. Unknown arguments give an unknown result.

mod collections;
mod files;
mod strings;

use std::path::Path;

use super::eval::type_error;
use crate::diag::{did_you_mean, Diagnostic};
use crate::model::{format_number, Span, Value};
use crate::vecmap::VecMap;

type Args<'a> = &'a [(Value, Span)];

const NAMES: &[&str] = &[
    "yamldecode",
    "sha256",
    "base64encode",
    "base64decode",
    "toset",
    "tolist",
    "distinct",
    "sort",
    "keys",
    "values",
    "contains",
    "file",
    "jsonencode",
    "jsondecode",
    "format",
    "lower",
    "upper",
    "concat",
    "merge",
    "length",
    "join",
    "split",
    "lookup",
    "coalesce",
    "tostring",
    "tonumber",
    "tobool",
    "trimspace",
    "flatten",
    "compact",
    "element",
    "min",
    "max",
    "startswith",
    "endswith",
    "trim",
];

/// The functions the evaluator calls itself, as their arguments are expressions rather than
/// values.
pub(super) const SPECIAL: &[&str] = &["try", "can", "templatefile", "sensitive", "nonsensitive", "issensitive"];

/// Whether a function's result depends on nothing but its arguments: it reads no file and
/// no mark of sensitivity.
pub(super) fn reads_only_arguments(name: &str) -> bool {
    (NAMES.contains(&name) && name != "file")
        || collections::NAMES.contains(&name)
        || strings::NAMES.contains(&name)
        || ["try", "can"].contains(&name)
}

/// Every function's name.
fn names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().chain(collections::NAMES).chain(strings::NAMES).chain(files::NAMES).chain(SPECIAL).copied()
}

pub(super) fn call(name: &str, args: Args<'_>, span: Span, dir: &Path) -> Result<Value, Diagnostic> {
    if !names().any(|n| n == name) {
        let mut d = Diagnostic::error(format!("unknown function `{name}`")).at(span, "no such function");
        if ["timestamp", "plantimestamp", "uuid", "bcrypt"].contains(&name) {
            return Err(
                d.help("thoth plans are reproducible: functions whose result changes on every run are not available")
            );
        }
        let mut all: Vec<&str> = names().collect();
        all.sort_unstable();
        d = match did_you_mean(name, all.iter().copied()) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!("available functions: {}", all.join(", "))),
        };
        return Err(d);
    }
    if args.iter().any(|(v, _)| !v.is_known()) && name != "coalesce" {
        return Ok(Value::Unknown);
    }
    if collections::NAMES.contains(&name) {
        return collections::call(name, args, span);
    }
    if strings::NAMES.contains(&name) {
        return strings::call(name, args, span);
    }
    if files::NAMES.contains(&name) {
        return files::call(name, args, span, dir);
    }
    match name {
        "file" => {
            arity(name, args, 1, span)?;
            let rel = string_arg(name, &args[0])?;
            let path = dir.join(rel);
            crate::files::read_text(&path, crate::files::MAX_TEXT).map(Value::String).map_err(|e| {
                Diagnostic::error(format!("cannot read file `{rel}`: {e}"))
                    .at(args[0].1, "this file")
                    .help("paths are relative to the configuration directory; `path.module` refers to it")
            })
        }
        "jsonencode" => {
            arity(name, args, 1, span)?;
            Ok(Value::String(args[0].0.to_json().to_string()))
        }
        "jsondecode" => {
            arity(name, args, 1, span)?;
            let text = string_arg(name, &args[0])?;
            serde_json::from_str::<serde_json::Value>(text)
                .map(|j| Value::from_json(&j))
                .map_err(|e| Diagnostic::error(format!("invalid JSON: {e}")).at(args[0].1, "this text is not JSON"))
        }
        "format" => format(args, span),
        "lower" | "upper" | "trimspace" => {
            arity(name, args, 1, span)?;
            let s = string_arg(name, &args[0])?;
            Ok(Value::String(match name {
                "lower" => s.to_lowercase(),
                "upper" => s.to_uppercase(),
                _ => s.trim().to_owned(),
            }))
        }
        "concat" => {
            let mut out = Vec::new();
            for (v, s) in args {
                match v {
                    Value::List(items) => out.extend(items.iter().cloned()),
                    other => return Err(type_error(*s, "each argument of `concat`", "list", other)),
                }
            }
            Ok(Value::List(out))
        }
        "merge" => {
            let mut out = VecMap::new();
            for (v, s) in args {
                match v {
                    Value::Map(map) => out.extend(map.iter().map(|(k, v)| (k.clone(), v.clone()))),
                    Value::Null => {}
                    other => return Err(type_error(*s, "each argument of `merge`", "map or object", other)),
                }
            }
            Ok(Value::Map(out))
        }
        "length" => {
            arity(name, args, 1, span)?;
            #[allow(clippy::cast_precision_loss)]
            match &args[0].0 {
                Value::List(items) => Ok(Value::Number(items.len() as f64)),
                Value::Map(map) => Ok(Value::Number(map.len() as f64)),
                Value::String(s) => Ok(Value::Number(s.chars().count() as f64)),
                other => Err(type_error(args[0].1, "the argument of `length`", "list, map or string", other)),
            }
        }
        "join" => {
            arity(name, args, 2, span)?;
            let sep = string_arg(name, &args[0])?;
            let items = list_arg(name, &args[1])?;
            let parts: Result<Vec<String>, Diagnostic> = items
                .iter()
                .map(|v| scalar_string(v).ok_or_else(|| type_error(args[1].1, "each element", "string", v)))
                .collect();
            Ok(Value::String(parts?.join(sep)))
        }
        "split" => {
            arity(name, args, 2, span)?;
            let sep = string_arg(name, &args[0])?;
            let text = string_arg(name, &args[1])?;
            Ok(Value::List(text.split(sep).map(|s| Value::String(s.to_owned())).collect()))
        }
        "lookup" => {
            if !(2..=3).contains(&args.len()) {
                return Err(arity_error(name, "2 or 3", args.len(), span));
            }
            let Value::Map(map) = &args[0].0 else {
                return Err(type_error(args[0].1, "the first argument of `lookup`", "map", &args[0].0));
            };
            let key = string_arg(name, &args[1])?;
            match (map.get(key), args.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some((default, _))) => Ok(default.clone()),
                (None, None) => Err(Diagnostic::error(format!("the map has no key `{key}`"))
                    .at(args[1].1, "missing key")
                    .help("give `lookup` a third argument as the default")),
            }
        }
        "coalesce" => {
            for (v, _) in args {
                match v {
                    Value::Unknown => return Ok(Value::Unknown),
                    Value::Null => {}
                    Value::String(s) if s.is_empty() => {}
                    other => return Ok(other.clone()),
                }
            }
            Err(Diagnostic::error("no non-null, non-empty argument given to `coalesce`")
                .at(span, "every argument is null or empty"))
        }
        "tostring" => {
            arity(name, args, 1, span)?;
            scalar_string(&args[0].0).map(Value::String).ok_or_else(|| {
                type_error(args[0].1, "the argument of `tostring`", "string, number or bool", &args[0].0)
            })
        }
        "tonumber" => {
            arity(name, args, 1, span)?;
            match &args[0].0 {
                Value::Number(n) => Ok(Value::Number(*n)),
                Value::String(s) => s
                    .trim()
                    .parse()
                    .map(Value::Number)
                    .map_err(|_| Diagnostic::error(format!("`{s}` is not a number")).at(args[0].1, "not a number")),
                other => Err(type_error(args[0].1, "the argument of `tonumber`", "number or string", other)),
            }
        }
        "tobool" => {
            arity(name, args, 1, span)?;
            match &args[0].0 {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
                other => Err(type_error(args[0].1, "the argument of `tobool`", "bool", other)),
            }
        }
        "yamldecode" => {
            arity(name, args, 1, span)?;
            yaml_decode(string_arg(name, &args[0])?)
                .map_err(|e| Diagnostic::error(format!("invalid YAML: {e}")).at(args[0].1, "this text is not YAML"))
        }
        "sha256" => {
            use sha2::Digest as _;
            arity(name, args, 1, span)?;
            Ok(Value::String(crate::state::hex(&sha2::Sha256::digest(string_arg(name, &args[0])?.as_bytes()))))
        }
        "base64encode" => {
            use base64::Engine as _;
            arity(name, args, 1, span)?;
            Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(string_arg(name, &args[0])?)))
        }
        "base64decode" => {
            use base64::Engine as _;
            arity(name, args, 1, span)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(string_arg(name, &args[0])?)
                .map_err(|e| Diagnostic::error(format!("invalid base64: {e}")).at(args[0].1, "not base64"))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| Diagnostic::error("the decoded bytes are not UTF-8 text").at(args[0].1, "not text"))
        }
        "tolist" => {
            arity(name, args, 1, span)?;
            list_arg(name, &args[0]).map(|items| Value::List(items.to_vec()))
        }
        "toset" | "distinct" => {
            arity(name, args, 1, span)?;
            let mut out = collections::unique(list_arg(name, &args[0])?.iter());
            // Sets have no order; thoth keeps string sets sorted so that output is stable.
            if name == "toset" && out.iter().all(|v| v.as_str().is_some()) {
                out.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            Ok(Value::List(out))
        }
        "sort" => {
            arity(name, args, 1, span)?;
            let items = list_arg(name, &args[0])?;
            let mut strings = items
                .iter()
                .map(|v| scalar_string(v).ok_or_else(|| type_error(args[0].1, "each element of `sort`", "string", v)))
                .collect::<Result<Vec<_>, _>>()?;
            strings.sort();
            Ok(Value::List(strings.into_iter().map(Value::String).collect()))
        }
        "keys" | "values" => {
            arity(name, args, 1, span)?;
            match &args[0].0 {
                Value::Map(map) if name == "keys" => Ok(Value::List(map.keys().cloned().map(Value::String).collect())),
                Value::Map(map) => Ok(Value::List(map.values().cloned().collect())),
                other => Err(type_error(args[0].1, &format!("the argument of `{name}`"), "map", other)),
            }
        }
        "contains" => {
            arity(name, args, 2, span)?;
            Ok(Value::Bool(list_arg(name, &args[0])?.contains(&args[1].0)))
        }
        "flatten" => {
            arity(name, args, 1, span)?;
            fn flat(items: &[Value], out: &mut Vec<Value>) {
                for item in items {
                    match item {
                        Value::List(inner) => flat(inner, out),
                        other => out.push(other.clone()),
                    }
                }
            }
            let mut out = Vec::new();
            flat(list_arg(name, &args[0])?, &mut out);
            Ok(Value::List(out))
        }
        "compact" => {
            arity(name, args, 1, span)?;
            let items = list_arg(name, &args[0])?;
            Ok(Value::List(items.iter().filter(|v| !v.is_null() && v.as_str() != Some("")).cloned().collect()))
        }
        "element" => {
            arity(name, args, 2, span)?;
            let items = list_arg(name, &args[0])?;
            let index = match &args[1].0 {
                Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 => *n,
                other => return Err(type_error(args[1].1, "the index of `element`", "whole number", other)),
            };
            if items.is_empty() {
                return Err(Diagnostic::error("`element` cannot pick from an empty list").at(args[0].1, "empty"));
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = index as usize % items.len();
            Ok(items[i].clone())
        }
        "min" | "max" => {
            if args.is_empty() {
                return Err(arity_error(name, "at least 1", 0, span));
            }
            let mut best: Option<f64> = None;
            for (v, s) in args {
                let Value::Number(n) = v else {
                    return Err(type_error(*s, &format!("each argument of `{name}`"), "number", v));
                };
                best = Some(match best {
                    None => *n,
                    Some(b) if name == "min" => b.min(*n),
                    Some(b) => b.max(*n),
                });
            }
            Ok(Value::Number(best.unwrap_or_default()))
        }
        "startswith" | "endswith" => {
            arity(name, args, 2, span)?;
            let (text, part) = (string_arg(name, &args[0])?, string_arg(name, &args[1])?);
            Ok(Value::Bool(if name == "startswith" { text.starts_with(part) } else { text.ends_with(part) }))
        }
        "trim" => {
            arity(name, args, 2, span)?;
            let (text, chars) = (string_arg(name, &args[0])?, string_arg(name, &args[1])?);
            Ok(Value::String(text.trim_matches(|c| chars.contains(c)).to_owned()))
        }
        _ => Err(Diagnostic::error(format!("`{name}` cannot be called here")).at(span, "not callable")),
    }
}

fn arity(name: &str, args: Args<'_>, n: usize, span: Span) -> Result<(), Diagnostic> {
    if args.len() == n {
        Ok(())
    } else {
        Err(arity_error(name, &n.to_string(), args.len(), span))
    }
}

fn arity_error(name: &str, expected: &str, found: usize, span: Span) -> Diagnostic {
    Diagnostic::error(format!("`{name}` takes {expected} argument(s), found {found}"))
        .at(span, "wrong number of arguments")
}

fn string_arg<'a>(name: &str, arg: &'a (Value, Span)) -> Result<&'a str, Diagnostic> {
    arg.0.as_str().ok_or_else(|| type_error(arg.1, &format!("this argument of `{name}`"), "string", &arg.0))
}

fn number_arg(name: &str, arg: &(Value, Span)) -> Result<f64, Diagnostic> {
    match &arg.0 {
        Value::Number(n) => Ok(*n),
        other => Err(type_error(arg.1, &format!("this argument of `{name}`"), "number", other)),
    }
}

fn list_arg<'a>(name: &str, arg: &'a (Value, Span)) -> Result<&'a [Value], Diagnostic> {
    match &arg.0 {
        Value::List(items) => Ok(items),
        other => Err(type_error(arg.1, &format!("this argument of `{name}`"), "list", other)),
    }
}

fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(format_number(*n)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The widest `format` width or precision.
const MAX_FORMAT_WIDTH: usize = 10_000;

/// `format` with the verbs `%s`, `%d`, `%v`, `%q`, `%f` and `%%`, and the flags `-` (left
/// align), `0` (zero padding), a width and a precision (`%05.2f`, `%-10s`).
pub(super) fn format(args: Args<'_>, span: Span) -> Result<Value, Diagnostic> {
    let Some((fmt_arg, rest)) = args.split_first() else {
        return Err(arity_error("format", "at least 1", 0, span));
    };
    let spec = string_arg("format", fmt_arg)?;
    let mut out = String::new();
    let mut next = rest.iter();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero) = (false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            width.push(d);
        }
        let mut precision = None;
        if chars.next_if_eq(&'.').is_some() {
            let mut p = String::new();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                p.push(d);
            }
            precision = Some(p.parse::<usize>().unwrap_or(usize::MAX));
        }
        let width_n = width.parse::<usize>().unwrap_or(if width.is_empty() { 0 } else { usize::MAX });
        if width_n > MAX_FORMAT_WIDTH || precision.is_some_and(|p| p > MAX_FORMAT_WIDTH) {
            return Err(Diagnostic::error(format!("a `format` width or precision is larger than {MAX_FORMAT_WIDTH}"))
                .at(fmt_arg.1, "too wide")
                .help(format!("widths and precisions go up to {MAX_FORMAT_WIDTH}")));
        }
        let verb = chars.next().ok_or_else(|| {
            Diagnostic::error("`format` string ends with a lone `%`")
                .at(fmt_arg.1, "incomplete verb")
                .help("write `%%` for a percent sign")
        })?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let (value, vspan) = next
            .next()
            .ok_or_else(|| Diagnostic::error("`format` has more verbs than arguments").at(span, "missing argument"))?;
        let text = match verb {
            's' | 'v' => {
                let s = scalar_string(value).unwrap_or_else(|| value.to_json().to_string());
                match precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            'q' => serde_json::Value::String(scalar_string(value).unwrap_or_default()).to_string(),
            'd' => match value {
                #[allow(clippy::cast_possible_truncation)]
                Value::Number(n) if n.fract() == 0.0 => (*n as i64).to_string(),
                other => return Err(type_error(*vspan, "the argument for `%d`", "whole number", other)),
            },
            'f' => match value {
                Value::Number(n) => format!("{n:.prec$}", prec = precision.unwrap_or(6)),
                other => return Err(type_error(*vspan, "the argument for `%f`", "number", other)),
            },
            other => {
                return Err(Diagnostic::error(format!("unsupported `format` verb `%{other}`"))
                    .at(fmt_arg.1, "unsupported verb")
                    .help("use %s, %d, %f, %q, %v or %%, with optional flags, width and precision"))
            }
        };
        let width: usize = width.parse().unwrap_or(0);
        let pad = width.saturating_sub(text.chars().count());
        if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(pad));
        } else if zero && matches!(verb, 'd' | 'f') {
            let (sign, digits) = text.strip_prefix('-').map_or(("", text.as_str()), |d| ("-", d));
            out.push_str(sign);
            out.push_str(&"0".repeat(pad));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&text);
        }
    }
    if next.next().is_some() {
        return Err(Diagnostic::error("`format` has more arguments than verbs").at(span, "too many arguments"));
    }
    Ok(Value::String(out))
}

/// The most nodes a YAML document may stand for, aliases expanded.
const MAX_YAML_NODES: u64 = 1_000_000;

/// The deepest YAML (and so value) nesting decoded.
const MAX_YAML_DEPTH: usize = 128;

/// Counts what a YAML document expands to, aliases included, before it is built: a document
/// of a few lines can stand for billions of nodes through nested aliases.
#[derive(Default)]
struct YamlBudget {
    /// The size of each anchored node.
    anchors: std::collections::HashMap<usize, u64>,
    /// The collections being read: their anchor and size so far.
    open: Vec<(usize, u64)>,
    total: u64,
    deepest: usize,
}

impl YamlBudget {
    fn add(&mut self, n: u64, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, n);
        }
        match self.open.last_mut() {
            Some(top) => top.1 = top.1.saturating_add(n),
            None => self.total = self.total.saturating_add(n),
        }
    }
}

impl yaml_rust2::parser::EventReceiver for YamlBudget {
    fn on_event(&mut self, ev: yaml_rust2::parser::Event) {
        use yaml_rust2::parser::Event;
        match ev {
            Event::Scalar(_, _, anchor, _) => self.add(1, anchor),
            Event::Alias(id) => self.add(self.anchors.get(&id).copied().unwrap_or(1), 0),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.open.push((anchor, 1));
                self.deepest = self.deepest.max(self.open.len());
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, n)) = self.open.pop() {
                    self.add(n, anchor);
                }
            }
            _ => {}
        }
    }
}

fn yaml_decode(text: &str) -> Result<Value, String> {
    let mut budget = YamlBudget::default();
    yaml_rust2::parser::Parser::new_from_str(text).load(&mut budget, true).map_err(|e| e.to_string())?;
    if budget.deepest > MAX_YAML_DEPTH {
        return Err(format!("the document nests more than {MAX_YAML_DEPTH} levels deep"));
    }
    if budget.total > MAX_YAML_NODES {
        return Err(format!("the document stands for more than {MAX_YAML_NODES} values once its aliases are expanded"));
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    match docs.as_slice() {
        [] => Ok(Value::Null),
        [doc] => yaml_value(doc),
        _ => Err("the text holds more than one YAML document".to_owned()),
    }
}

fn yaml_value(y: &yaml_rust2::Yaml) -> Result<Value, String> {
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        #[allow(clippy::cast_precision_loss)]
        Yaml::Integer(i) => Value::Number(*i as f64),
        Yaml::Real(r) => Value::Number(r.parse().map_err(|_| format!("`{r}` is not a number"))?),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::List(items.iter().map(yaml_value).collect::<Result<_, _>>()?),
        Yaml::Hash(map) => {
            let mut out = VecMap::new();
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Real(r) => r.clone(),
                    _ => return Err("mapping keys must be scalars".to_owned()),
                };
                out.insert(key, yaml_value(v)?);
            }
            Value::Map(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err("aliases are not supported".to_owned()),
    })
}
