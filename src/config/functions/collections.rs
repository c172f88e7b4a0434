//! Terraform's collection, set and number functions. Sets are lists without duplicates, in
//! the order their elements first appear (string sets sorted, as `toset` keeps them).

use super::{arity, arity_error, list_arg, number_arg, string_arg, Args};
use crate::config::eval::type_error;
use crate::diag::Diagnostic;
use crate::model::{Span, Value};
use crate::vecmap::VecMap;

/// Terraform refuses to build longer ranges, so that a typo cannot exhaust memory.
const RANGE_LIMIT: usize = 1024;

/// The most elements `setproduct` makes.
const PRODUCT_LIMIT: usize = 1_000_000;

pub(super) const NAMES: &[&str] = &[
    "zipmap",
    "range",
    "one",
    "setunion",
    "setintersection",
    "setsubtract",
    "setproduct",
    "alltrue",
    "anytrue",
    "chunklist",
    "slice",
    "reverse",
    "index",
    "coalescelist",
    "matchkeys",
    "sum",
    "transpose",
    "tomap",
    "abs",
    "ceil",
    "floor",
    "signum",
    "pow",
    "log",
    "parseint",
];

pub(super) fn call(name: &str, args: Args<'_>, span: Span) -> Result<Value, Diagnostic> {
    match name {
        "zipmap" => {
            arity(name, args, 2, span)?;
            let (keys, values) = (list_arg(name, &args[0])?, list_arg(name, &args[1])?);
            if keys.len() != values.len() {
                return Err(Diagnostic::error(format!(
                    "`zipmap` needs as many values as keys: {} key(s), {} value(s)",
                    keys.len(),
                    values.len()
                ))
                .at(span, "lengths differ"));
            }
            let mut out = VecMap::new();
            for (k, v) in keys.iter().zip(values) {
                let key = k.as_str().ok_or_else(|| type_error(args[0].1, "each key of `zipmap`", "string", k))?;
                out.insert(key.to_owned(), v.clone());
            }
            Ok(Value::Map(out))
        }
        "range" => range(args, span),
        "one" => {
            arity(name, args, 1, span)?;
            match list_arg(name, &args[0])? {
                [] => Ok(Value::Null),
                [only] => Ok(only.clone()),
                more => {
                    Err(Diagnostic::error(format!("`one` needs a list of at most one element, not {}", more.len()))
                        .at(args[0].1, "more than one element"))
                }
            }
        }
        "setunion" | "setintersection" | "setsubtract" => {
            if args.is_empty() || (name == "setsubtract" && args.len() != 2) {
                return Err(arity_error(
                    name,
                    if name == "setsubtract" { "2" } else { "at least 1" },
                    args.len(),
                    span,
                ));
            }
            let sets = args.iter().map(|a| list_arg(name, a)).collect::<Result<Vec<_>, _>>()?;
            let keyed: Vec<std::collections::HashSet<String>> =
                sets[1..].iter().map(|s| s.iter().map(key_of).collect()).collect();
            let out = match name {
                "setunion" => unique(sets.iter().flat_map(|s| s.iter())),
                "setintersection" => unique(sets[0].iter().filter(|i| keyed.iter().all(|k| k.contains(&key_of(i))))),
                _ => unique(sets[0].iter().filter(|i| !keyed[0].contains(&key_of(i)))),
            };
            Ok(Value::List(set_order(out)))
        }
        "setproduct" => {
            if args.len() < 2 {
                return Err(arity_error(name, "at least 2", args.len(), span));
            }
            let mut product: Vec<Vec<Value>> = vec![Vec::new()];
            let mut size: usize = 1;
            for arg in args {
                let items = list_arg(name, arg)?;
                size = size.saturating_mul(items.len());
                if size > PRODUCT_LIMIT {
                    return Err(Diagnostic::error(format!(
                        "`setproduct` would make more than {PRODUCT_LIMIT} elements"
                    ))
                    .at(span, "too many elements"));
                }
                product = product
                    .into_iter()
                    .flat_map(|prefix| {
                        items.iter().map(move |item| {
                            let mut next = prefix.clone();
                            next.push(item.clone());
                            next
                        })
                    })
                    .collect();
            }
            Ok(Value::List(product.into_iter().map(Value::List).collect()))
        }
        "alltrue" | "anytrue" => {
            arity(name, args, 1, span)?;
            let mut bools = Vec::new();
            for item in list_arg(name, &args[0])? {
                bools.push(match item {
                    Value::Bool(b) => *b,
                    Value::String(s) if s == "true" || s == "false" => s == "true",
                    other => return Err(type_error(args[0].1, &format!("each element of `{name}`"), "bool", other)),
                });
            }
            Ok(Value::Bool(if name == "alltrue" { bools.iter().all(|b| *b) } else { bools.iter().any(|b| *b) }))
        }
        "chunklist" => {
            arity(name, args, 2, span)?;
            let items = list_arg(name, &args[0])?;
            let size = whole(name, &args[1], "the chunk size")?;
            if size == 0 {
                return Ok(Value::List(vec![Value::List(items.to_vec())]));
            }
            Ok(Value::List(items.chunks(size).map(|c| Value::List(c.to_vec())).collect()))
        }
        "slice" => {
            arity(name, args, 3, span)?;
            let items = list_arg(name, &args[0])?;
            let (start, end) = (whole(name, &args[1], "the start index")?, whole(name, &args[2], "the end index")?);
            if start > end || end > items.len() {
                return Err(Diagnostic::error(format!(
                    "`slice` indices {start}..{end} do not fit a list of {} element(s)",
                    items.len()
                ))
                .at(span, "out of range")
                .help("the start index must not exceed the end index, nor the end index the length"));
            }
            Ok(Value::List(items[start..end].to_vec()))
        }
        "reverse" => {
            arity(name, args, 1, span)?;
            Ok(Value::List(list_arg(name, &args[0])?.iter().rev().cloned().collect()))
        }
        "index" => {
            arity(name, args, 2, span)?;
            let items = list_arg(name, &args[0])?;
            #[allow(clippy::cast_precision_loss)]
            match items.iter().position(|v| *v == args[1].0) {
                Some(i) => Ok(Value::Number(i as f64)),
                None => {
                    Err(Diagnostic::error("`index`: the list does not contain the value").at(args[1].1, "not found"))
                }
            }
        }
        "coalescelist" => {
            for arg in args {
                let items = list_arg(name, arg)?;
                if !items.is_empty() {
                    return Ok(Value::List(items.to_vec()));
                }
            }
            Ok(Value::List(Vec::new()))
        }
        "matchkeys" => {
            arity(name, args, 3, span)?;
            let (values, keys, search) =
                (list_arg(name, &args[0])?, list_arg(name, &args[1])?, list_arg(name, &args[2])?);
            if values.len() != keys.len() {
                return Err(Diagnostic::error("`matchkeys` needs as many keys as values").at(span, "lengths differ"));
            }
            Ok(Value::List(
                values.iter().zip(keys).filter(|(_, k)| search.contains(k)).map(|(v, _)| v.clone()).collect(),
            ))
        }
        "sum" => {
            arity(name, args, 1, span)?;
            let items = list_arg(name, &args[0])?;
            if items.is_empty() {
                return Err(Diagnostic::error("`sum` cannot add up an empty list").at(args[0].1, "empty"));
            }
            let mut total = 0.0;
            for item in items {
                match item {
                    Value::Number(n) => total += n,
                    other => return Err(type_error(args[0].1, "each element of `sum`", "number", other)),
                }
            }
            Ok(Value::Number(total))
        }
        "transpose" => {
            arity(name, args, 1, span)?;
            let Value::Map(map) = &args[0].0 else {
                return Err(type_error(
                    args[0].1,
                    "the argument of `transpose`",
                    "map of lists of strings",
                    &args[0].0,
                ));
            };
            let mut out: std::collections::BTreeMap<String, Vec<Value>> = std::collections::BTreeMap::new();
            for (key, list) in map {
                let Value::List(items) = list else {
                    return Err(type_error(args[0].1, "each value of `transpose`", "list of strings", list));
                };
                for item in items {
                    let s = item.as_str().ok_or_else(|| type_error(args[0].1, "each element", "string", item))?;
                    out.entry(s.to_owned()).or_default().push(Value::String(key.clone()));
                }
            }
            Ok(Value::Map(out.into_iter().map(|(k, v)| (k, Value::List(v))).collect()))
        }
        "tomap" => {
            arity(name, args, 1, span)?;
            match &args[0].0 {
                Value::Map(map) => Ok(Value::Map(map.clone())),
                other => Err(type_error(args[0].1, "the argument of `tomap`", "map or object", other)),
            }
        }
        "abs" | "ceil" | "floor" | "signum" => {
            arity(name, args, 1, span)?;
            let n = number_arg(name, &args[0])?;
            Ok(Value::Number(match name {
                "abs" => n.abs(),
                "ceil" => n.ceil(),
                "floor" => n.floor(),
                _ if n == 0.0 => 0.0,
                _ => n.signum(),
            }))
        }
        "pow" | "log" => {
            arity(name, args, 2, span)?;
            let (a, b) = (number_arg(name, &args[0])?, number_arg(name, &args[1])?);
            let n = if name == "pow" { a.powf(b) } else { a.log(b) };
            if n.is_finite() {
                Ok(Value::Number(n))
            } else {
                Err(Diagnostic::error(format!("`{name}` has no finite result for these arguments"))
                    .at(span, "not finite"))
            }
        }
        "parseint" => {
            arity(name, args, 2, span)?;
            let text = string_arg(name, &args[0])?;
            let base = whole(name, &args[1], "the base")?;
            if !(2..=36).contains(&base) {
                return Err(Diagnostic::error(format!("`parseint` needs a base from 2 to 36, not {base}"))
                    .at(args[1].1, "unsupported base"));
            }
            #[allow(clippy::cast_possible_truncation)]
            #[allow(clippy::cast_precision_loss)]
            i64::from_str_radix(text, base as u32).map(|n| Value::Number(n as f64)).map_err(|_| {
                Diagnostic::error(format!("`{text}` is not a whole number in base {base}"))
                    .at(args[0].1, "not a number")
            })
        }
        _ => Err(Diagnostic::error(format!("`{name}` cannot be called here")).at(span, "not callable")),
    }
}

fn range(args: Args<'_>, span: Span) -> Result<Value, Diagnostic> {
    let numbers = args.iter().map(|a| number_arg("range", a)).collect::<Result<Vec<_>, _>>()?;
    let (start, limit, step) = match numbers.as_slice() {
        [limit] => (0.0, *limit, 1.0),
        [start, limit] => (*start, *limit, if limit >= start { 1.0 } else { -1.0 }),
        [start, limit, step] => (*start, *limit, *step),
        _ => return Err(arity_error("range", "1 to 3", args.len(), span)),
    };
    if step == 0.0 || (step > 0.0 && limit < start) || (step < 0.0 && limit > start) {
        if step == 0.0 {
            return Err(Diagnostic::error("`range` needs a step other than zero").at(span, "zero step"));
        }
        return Ok(Value::List(Vec::new()));
    }
    let mut out = Vec::new();
    let mut n = start;
    while (step > 0.0 && n < limit) || (step < 0.0 && n > limit) {
        if out.len() == RANGE_LIMIT {
            return Err(Diagnostic::error(format!("`range` would make more than {RANGE_LIMIT} elements"))
                .at(span, "too many elements"));
        }
        out.push(Value::Number(n));
        n += step;
    }
    Ok(Value::List(out))
}

/// A whole, non-negative number argument.
fn whole(name: &str, arg: &(Value, Span), what: &str) -> Result<usize, Diagnostic> {
    match &arg.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 => Ok(*n as usize),
        other => Err(type_error(arg.1, &format!("{what} of `{name}`"), "whole number, 0 or more", other)),
    }
}

/// The items without repeats, in first-seen order, in time linear in their number.
pub(super) fn unique<'a>(items: impl Iterator<Item = &'a Value>) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    items.filter(|item| seen.insert(key_of(item))).cloned().collect()
}

/// A key that equal values share.
fn key_of(value: &Value) -> String {
    value.to_json().to_string()
}

fn set_order(mut items: Vec<Value>) -> Vec<Value> {
    if items.iter().all(|v| v.as_str().is_some()) {
        items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    }
    items
}
