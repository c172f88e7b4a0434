//! Lowering a resource block to the typed values its descriptor asks for: type conversion,
//! allowed values, JSON text checks, spelling normalisation, defaults and derived values.

use std::collections::BTreeSet;

use super::{Evaluator, ResourceDecl};
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::{format_number, Address, Span, Value};
use crate::schema::{Attribute, Encoding, ResourceType, Schema, ValueType};
use crate::vecmap::VecMap;

/// The configured values of one resource after lowering.
#[derive(Debug, Clone)]
pub struct Desired {
    pub address: Address,
    /// Set attributes (null means unset and is left out), plus client defaults and derived
    /// values for unset ones.
    pub values: VecMap<String, Value>,
    /// Attributes whose value is secret: sensitive in the schema or derived from a secret.
    pub sensitive: BTreeSet<String>,
    /// Where each configured attribute is written.
    pub spans: VecMap<String, Span>,
}

/// Lowers one instance of a block (`key` is `None` for a block without `count` or
/// `for_each`); the evaluator's instance binding must be set for a repeated block.
pub fn lower_resource(
    ev: &Evaluator<'_>,
    decl: &ResourceDecl,
    key: Option<crate::model::InstanceKey>,
    diags: &mut Diagnostics,
) -> Option<Desired> {
    let rt = Schema::get().of(&decl.address)?;
    let mut desired = Desired {
        address: decl.address.in_module(&ev.scope).with_key(key),
        values: VecMap::new(),
        sensitive: BTreeSet::new(),
        spans: VecMap::new(),
    };
    let mut ok = true;
    let mut configured: Vec<&str> = Vec::new();
    for (name, expr) in &decl.attributes {
        let Some(attr) = rt.attribute(name) else { continue };
        desired.spans.insert(name.clone(), expr.span);
        let (value, tainted) = match ev.eval(expr) {
            Ok(v) => v,
            Err(d) => {
                diags.push(d);
                ok = false;
                continue;
            }
        };
        if attr.sensitive || tainted {
            desired.sensitive.insert(name.clone());
        }
        if value.is_null() {
            continue;
        }
        match lower_value(rt, name, attr, value, expr.span) {
            Ok((v, warnings)) => {
                warnings.into_iter().for_each(|w| diags.push(w));
                configured.push(name);
                desired.values.insert(name.clone(), v);
            }
            Err(d) => {
                ok = false;
                diags.push(d);
            }
        }
    }
    for d in composite_conflicts(rt, &desired) {
        diags.push(d);
    }
    for (d, keep) in lower_checks(rt, &decl.span, &mut desired, &configured) {
        if !keep {
            ok = false;
        }
        diags.push(d);
    }
    ok.then_some(desired)
}

/// A value set both by its own attribute and inside a JSON object attribute whose path holds
/// it (a pack assignment's `trust_floor` and `overrides_json`'s
/// `behavioral_controls.trust_floor`): the attribute wins, as the provider merges them, and two
/// different values are a warning naming both.
fn composite_conflicts(rt: &ResourceType, desired: &Desired) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (doc_name, doc_attr) in &rt.attributes {
        let Some(doc_path) = doc_attr.json.as_deref().filter(|_| doc_attr.encoding == Encoding::JsonObject) else {
            continue;
        };
        let Some(Value::String(text)) = desired.values.get(doc_name) else { continue };
        // Read once, only for a document that other attributes land inside.
        let mut doc: Option<Option<serde_json::Map<String, serde_json::Value>>> = None;
        for (name, attr) in &rt.attributes {
            if attr.encoding != Encoding::Plain {
                continue;
            }
            let Some(inner) = attr.json.as_deref().and_then(|p| p.strip_prefix(doc_path)?.strip_prefix('.')) else {
                continue;
            };
            let Some(value) = desired.values.get(name) else { continue };
            let parsed = doc.get_or_insert_with(|| match serde_json::from_str(text) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                _ => None,
            });
            let Some(other) = parsed.as_ref().and_then(|d| crate::remote::mapping::get_path(d, inner)) else {
                continue;
            };
            if Value::from_json(other) == *value {
                continue;
            }
            let mut d = Diagnostic::warning(format!(
                "`{}` sets `{name}` and `{doc_name}`'s `{inner}` to different values; `{name}` wins",
                desired.address
            ))
            .help(format!("set it in one place: remove `{inner}` from `{doc_name}`, or `{name}`"));
            if let Some(span) = desired.spans.get(name) {
                d = d.at(*span, "this value is sent");
            }
            if let Some(span) = desired.spans.get(doc_name) {
                d = d.related(*span, format!("this `{inner}` is overridden"));
            }
            out.push(d);
        }
    }
    out
}

/// Converts, checks and normalises one attribute value; warnings come with the value.
fn lower_value(
    rt: &ResourceType,
    name: &str,
    attr: &Attribute,
    value: Value,
    span: Span,
) -> Result<(Value, Vec<Diagnostic>), Diagnostic> {
    if !value.is_known() {
        return Ok((value, Vec::new()));
    }
    let value = convert(attr.value_type, value).map_err(|found| {
        Diagnostic::error(format!("wrong type for `{name}` of `{}`", rt.name))
            .at(span, format!("expected {}, found {found}", attr.value_type.describe()))
            .help(match attr.value_type {
                ValueType::String if attr.encoding != Encoding::Plain => {
                    "this attribute holds JSON text: wrap the value in `jsonencode(...)`".to_owned()
                }
                ValueType::List | ValueType::Set => "write a list such as `[\"a\", \"b\"]`".to_owned(),
                ValueType::Map => "write a map such as `{ key = \"value\" }`".to_owned(),
                other => format!("write a {} value", other.describe()),
            })
    })?;
    // Values are checked as they are sent.
    let value = as_sent(attr, value);
    let mut warnings = Vec::new();
    if let (Some(allowed), Value::String(s)) = (&attr.allowed, &value) {
        if !allowed.values.iter().any(|v| v == s) {
            let list = allowed.values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ");
            let suggestion = crate::diag::did_you_mean(s, allowed.values.iter().map(String::as_str));
            let help = match suggestion {
                Some(sug) => format!("did you mean `{sug}`? expected one of {list}"),
                None => format!("expected one of {list}"),
            };
            if allowed.validated {
                return Err(Diagnostic::error(format!("invalid value `{s}` for `{name}` of `{}`", rt.name))
                    .at(span, "not an allowed value")
                    .help(help));
            }
            warnings.push(
                Diagnostic::warning(format!("unexpected value `{s}` for `{name}` of `{}`", rt.name))
                    .at(span, "not a documented value")
                    .help(format!("{help}; the control plane may reject or ignore it")),
            );
        }
    }
    // A blank optional JSON attribute is left out of the request, as the provider leaves it
    // out, so there is nothing to parse; a blank required one is still an error.
    let omitted = attr.omits(&value) && attr.mode != crate::schema::AttrMode::Required;
    if let (Value::String(s), false) = (&value, omitted) {
        if let Err(msg) = check_encoding(attr.encoding, s) {
            return Err(Diagnostic::error(format!("invalid JSON in `{name}` of `{}`: {msg}", rt.name))
                .at(span, "not the expected JSON")
                .help(match attr.encoding {
                    Encoding::JsonArrayOfObjects => "give a JSON array of objects, e.g. `jsonencode([{ ... }])`",
                    _ => "give a JSON object, e.g. `jsonencode({ ... })` or `file(\"x.json\")`",
                }));
        }
    }
    Ok((normalise(attr, value), warnings))
}

/// A string as the provider sends it: trimmed where it trims, and a blank one as the default or
/// as the empty document where the descriptor says the provider sends those.
fn as_sent(attr: &Attribute, value: Value) -> Value {
    let Value::String(s) = value else { return value };
    if s.trim().is_empty() {
        if let (true, Some(default)) = (attr.blank_as_default, &attr.default) {
            return Value::from_json(default);
        }
        if attr.blank_as_empty {
            return Value::String(if attr.encoding == Encoding::JsonArrayOfObjects { "[]" } else { "{}" }.to_owned());
        }
    }
    if attr.trim && s.trim().len() != s.len() {
        Value::String(s.trim().to_owned())
    } else {
        Value::String(s)
    }
}

fn check_encoding(encoding: Encoding, text: &str) -> Result<(), String> {
    let parse = || serde_json::from_str::<serde_json::Value>(text).map_err(|e| e.to_string());
    match encoding {
        Encoding::Plain | Encoding::JsonAny => Ok(()),
        Encoding::JsonObject | Encoding::JsonMergeTopLevel => match parse()? {
            serde_json::Value::Object(_) => Ok(()),
            other => Err(format!("expected an object, found {}", json_kind(&other))),
        },
        Encoding::JsonArrayOfObjects => match parse()? {
            serde_json::Value::Array(items) if items.iter().all(serde_json::Value::is_object) => Ok(()),
            serde_json::Value::Array(_) => Err("every element must be an object".to_owned()),
            other => Err(format!("expected an array, found {}", json_kind(&other))),
        },
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Converts to the attribute's type; the error is the found type's name.
pub(super) fn convert(ty: ValueType, value: Value) -> Result<Value, String> {
    let scalar = |v: Value| match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(format_number(n)),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(other.type_name().to_owned()),
    };
    match (ty, value) {
        (_, v @ Value::Unknown) => Ok(v),
        (ValueType::String, v) => scalar(v).map(Value::String),
        (ValueType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (ValueType::Bool, Value::String(s)) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
        (ValueType::Int, Value::Number(n)) if n.fract() == 0.0 => Ok(Value::Number(n)),
        (ValueType::Int, Value::String(s)) => match s.trim().parse::<i64>() {
            #[allow(clippy::cast_precision_loss)]
            Ok(n) => Ok(Value::Number(n as f64)),
            Err(_) => Err("string".to_owned()),
        },
        (ValueType::Float, Value::Number(n)) => Ok(Value::Number(n)),
        (ValueType::Float, Value::String(s)) => s.trim().parse().map(Value::Number).map_err(|_| "string".to_owned()),
        (ValueType::List | ValueType::Set, Value::List(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if !item.is_known() {
                    return Ok(Value::Unknown);
                }
                out.push(Value::String(scalar(item).map_err(|t| format!("a list containing a {t}"))?));
            }
            if ty == ValueType::Set {
                out.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                out.dedup();
            }
            Ok(Value::List(out))
        }
        (ValueType::Map, Value::Map(map)) => {
            let mut out = VecMap::new();
            for (k, v) in map {
                if !v.is_known() {
                    return Ok(Value::Unknown);
                }
                out.insert(k, Value::String(scalar(v).map_err(|t| format!("a map containing a {t}"))?));
            }
            Ok(Value::Map(out))
        }
        (ValueType::Int, Value::Number(_)) => Err("number with a fraction".to_owned()),
        (_, other) => Err(other.type_name().to_owned()),
    }
}

fn normalise(attr: &Attribute, value: Value) -> Value {
    match value {
        Value::String(mut s) => {
            if attr.uppercase {
                s = s.to_uppercase();
            }
            if let Some(canonical) = attr.aliases.get(&s) {
                s.clone_from(canonical);
            }
            Value::String(s)
        }
        other => other,
    }
}

/// Cross-attribute rules from the descriptor, then defaults and derived values. Returns each
/// diagnostic with whether lowering may go on.
fn lower_checks(
    rt: &ResourceType,
    block: &Span,
    desired: &mut Desired,
    configured: &[&str],
) -> Vec<(Diagnostic, bool)> {
    let mut out = Vec::new();
    for group in &rt.exactly_one_of {
        let set: Vec<&String> = group
            .iter()
            .filter(|a| desired.values.get(*a).is_some_and(|v| v.as_str().is_none_or(|s| !s.trim().is_empty())))
            .collect();
        if set.len() != 1 {
            let names = group.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
            let span = set.get(1).and_then(|a| desired.spans.get(*a)).copied().unwrap_or(*block);
            out.push((
                Diagnostic::error(format!("`{}` needs exactly one of {names}, found {}", desired.address, set.len()))
                    .at(span, if set.is_empty() { "none of them is set" } else { "more than one is set" })
                    .help("keep exactly one policy source"),
                false,
            ));
        }
    }
    for (name, attr) in &rt.attributes {
        let Some(derive) = &attr.derive else { continue };
        let from = desired.values.get(&derive.from).and_then(Value::as_str).map(str::to_owned);
        match (desired.values.get(name).and_then(Value::as_str).map(str::to_owned), from) {
            (Some(own), Some(other))
                if configured.contains(&name.as_str()) && configured.contains(&derive.from.as_str()) =>
            {
                if let Some(expected) = derive.map.get(&other) {
                    if *expected != own {
                        let span = desired.spans.get(name).copied().unwrap_or(*block);
                        out.push((
                            Diagnostic::error(format!(
                                "`{name} = \"{own}\"` contradicts `{} = \"{other}\"` in `{}`",
                                derive.from, desired.address
                            ))
                            .at(span, "conflicting value")
                            .help(format!(
                                "with `{} = \"{other}\"`, `{name}` must be `{expected}`; or set only one of them",
                                derive.from
                            )),
                            false,
                        ));
                    }
                }
            }
            (None, Some(other)) => {
                if let Some(v) = derive.map.get(&other) {
                    desired.values.insert(name.clone(), Value::String(v.clone()));
                }
            }
            _ => {}
        }
    }
    for (name, attr) in &rt.attributes {
        if let (Some(default), false) = (&attr.default, desired.values.contains_key(name)) {
            desired.values.insert(name.clone(), Value::from_json(default));
        }
        // Every value of a sensitive attribute is a secret, however it got there.
        if attr.sensitive && desired.values.contains_key(name) {
            desired.sensitive.insert(name.clone());
        }
    }
    // What the control plane computes from a secret is a secret too.
    let tainted: Vec<String> = rt
        .attributes
        .iter()
        .filter(|(_, attr)| attr.derived_from.iter().any(|from| desired.sensitive.contains(from)))
        .map(|(name, _)| name.clone())
        .collect();
    desired.sensitive.extend(tainted);
    out
}
