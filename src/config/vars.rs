//! Input variables: type constraints and the values given on the command line, in variable
//! files, in the environment and as defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hcl_edit::expr::Expression;
use hcl_edit::structure::Structure;

use super::eval::Evaluator;
use super::load::span_of;
use super::{Expr, Module, SourceFile};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::model::{format_number, Value};
use crate::vecmap::VecMap;

/// A variable's declared type.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeConstraint {
    Any,
    String,
    Number,
    Bool,
    List(Box<TypeConstraint>),
    Set(Box<TypeConstraint>),
    Map(Box<TypeConstraint>),
    Object,
}

impl TypeConstraint {
    fn describe(&self) -> String {
        match self {
            TypeConstraint::Any => "any".to_owned(),
            TypeConstraint::String => "string".to_owned(),
            TypeConstraint::Number => "number".to_owned(),
            TypeConstraint::Bool => "bool".to_owned(),
            TypeConstraint::List(t) => format!("list({})", t.describe()),
            TypeConstraint::Set(t) => format!("set({})", t.describe()),
            TypeConstraint::Map(t) => format!("map({})", t.describe()),
            TypeConstraint::Object => "object".to_owned(),
        }
    }

    /// Converts a value to this type the way Terraform does for primitives.
    pub fn convert(&self, value: Value) -> Result<Value, String> {
        let fail = |v: &Value| Err(format!("expected {}, found {}", self.describe(), v.type_name()));
        match (self, value) {
            (_, v @ (Value::Null | Value::Unknown)) | (TypeConstraint::Any, v) => Ok(v),
            (TypeConstraint::String, Value::String(s)) => Ok(Value::String(s)),
            (TypeConstraint::String, Value::Number(n)) => Ok(Value::String(format_number(n))),
            (TypeConstraint::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
            (TypeConstraint::Number, Value::Number(n)) => Ok(Value::Number(n)),
            (TypeConstraint::Number, Value::String(s)) => {
                s.trim().parse().map(Value::Number).map_err(|_| format!("expected number, found the string `{s}`"))
            }
            (TypeConstraint::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
            (TypeConstraint::Bool, Value::String(s)) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            (TypeConstraint::List(t) | TypeConstraint::Set(t), Value::List(items)) => {
                items.into_iter().map(|v| t.convert(v)).collect::<Result<Vec<_>, _>>().map(Value::List)
            }
            (TypeConstraint::Map(t), Value::Map(map)) => map
                .into_iter()
                .map(|(k, v)| t.convert(v).map(|v| (k, v)))
                .collect::<Result<VecMap<_, _>, _>>()
                .map(Value::Map),
            (TypeConstraint::Object, Value::Map(map)) => Ok(Value::Map(map)),
            (_, v) => fail(&v),
        }
    }
}

pub(super) fn parse_type(expr: &Expression) -> Option<TypeConstraint> {
    match expr {
        Expression::Variable(v) => match v.as_str() {
            "any" => Some(TypeConstraint::Any),
            "string" => Some(TypeConstraint::String),
            "number" => Some(TypeConstraint::Number),
            "bool" => Some(TypeConstraint::Bool),
            _ => None,
        },
        Expression::FuncCall(call) => {
            let args: Vec<&Expression> = call.args.iter().collect();
            match (call.name.name.as_str(), args.as_slice()) {
                ("list", [inner]) => parse_type(inner).map(|t| TypeConstraint::List(Box::new(t))),
                ("set", [inner]) => parse_type(inner).map(|t| TypeConstraint::Set(Box::new(t))),
                ("map", [inner]) => parse_type(inner).map(|t| TypeConstraint::Map(Box::new(t))),
                ("object", [_]) => Some(TypeConstraint::Object),
                ("tuple", [_]) => Some(TypeConstraint::List(Box::new(TypeConstraint::Any))),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Where variable values come from, lowest precedence first within each list.
#[derive(Debug, Default, Clone)]
pub struct VarInputs {
    /// `--var NAME=VALUE`, in command-line order.
    pub cli: Vec<String>,
    /// `--var-file FILE`, in command-line order.
    pub files: Vec<PathBuf>,
    /// `THOTH_VAR_<name>` from the environment.
    pub env: Vec<(String, String)>,
    /// Values a Terraform Stacks deployment gives, above the defaults and below everything else.
    pub values: Vec<(String, Value)>,
    /// A variable without a value is unknown rather than an error (`validate`, as Terraform's).
    pub unknown_when_missing: bool,
}

impl VarInputs {
    /// `TF_VAR_<name>` and then `THOTH_VAR_<name>`, which wins: a pipeline written for
    /// Terraform keeps working, and thoth's own spelling takes precedence.
    pub fn from_env() -> Vec<(String, String)> {
        // Only variables that name a thoth variable are read: anything else in the
        // environment, UTF-8 or not, is none of thoth's business. A value that is not UTF-8
        // is kept as its lossy text, which then fails its variable's type or shows as such.
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                (k.starts_with("TF_VAR_") || k.starts_with("THOTH_VAR_")).then(|| (k, v.to_string_lossy().into_owned()))
            })
            .collect();
        ["TF_VAR_", "THOTH_VAR_"]
            .iter()
            .flat_map(|prefix| {
                vars.iter().filter_map(move |(k, v)| k.strip_prefix(prefix).map(|n| (n.to_owned(), v.clone())))
            })
            .collect()
    }
}

/// Resolves every declared variable to a value: the default, then the environment, then
/// variable files, then `--var`, each overriding the one before, as Terraform does.
///
/// Variable files are loaded as further source files of the module so that their
/// diagnostics point into them.
pub fn resolve_variables(module: &mut Module, inputs: &VarInputs) -> (BTreeMap<String, (Value, bool)>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut raw: VecMap<String, Value> = VecMap::new();

    {
        let empty = Evaluator::new(module, BTreeMap::new());
        for (name, decl) in &module.scopes[0].variables {
            if let Some(default) = &decl.default {
                match empty.eval(default) {
                    Ok((v, _)) => {
                        raw.insert(name.clone(), v);
                    }
                    Err(d) => diags.push(d.help("variable defaults must be literal values")),
                }
            }
        }
    }

    for (name, value) in &inputs.values {
        if module.scopes[0].variables.contains_key(name) {
            raw.insert(name.clone(), value.clone());
        } else {
            diags.push(
                Diagnostic::error(format!("the deployment sets undeclared variable `{name}`")).help(format!(
                    "declare it in a `*.tfcomponent.hcl` file with `variable \"{name}\" {{ type = ... }}`"
                )),
            );
        }
    }

    for (name, text) in &inputs.env {
        if module.scopes[0].variables.contains_key(name) {
            match parse_cli_value(module, name, text) {
                Ok(v) => {
                    raw.insert(name.clone(), v);
                }
                Err(msg) => diags.push(Diagnostic::error(format!(
                    "invalid value for variable `{name}` in THOTH_VAR_{name}: {}",
                    without_value(module, name, &msg)
                ))),
            }
        }
    }

    // As in Terraform: `terraform.tfvars`, then `*.auto.tfvars` in name order, then the files
    // given on the command line.
    for path in auto_var_files(&module.dir).iter().chain(&inputs.files) {
        load_var_file(module, path, &mut raw, &mut diags);
    }

    for item in &inputs.cli {
        let Some((name, text)) = item.split_once('=') else {
            diags.push(Diagnostic::error(format!("invalid `--var {item}`")).help("write `--var NAME=VALUE`"));
            continue;
        };
        if !module.scopes[0].variables.contains_key(name) {
            let mut d = Diagnostic::error(format!("`--var` sets undeclared variable `{name}`"));
            d = match did_you_mean(name, module.scopes[0].variables.keys().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("declare it with `variable \"{name}\" {{}}`")),
            };
            diags.push(d);
            continue;
        }
        match parse_cli_value(module, name, text) {
            Ok(v) => {
                raw.insert(name.to_owned(), v);
            }
            Err(msg) => diags.push(Diagnostic::error(format!(
                "invalid value for variable `{name}` in `--var`: {}",
                without_value(module, name, &msg)
            ))),
        }
    }

    let mut values = BTreeMap::new();
    for (name, decl) in &module.scopes[0].variables {
        let Some(value) = raw.remove(name) else {
            if inputs.unknown_when_missing {
                values.insert(name.clone(), (Value::Unknown, decl.sensitive));
                continue;
            }
            diags.push(
                Diagnostic::error(format!("variable `{name}` has no value"))
                    .at(decl.span, "declared without a default")
                    .help(format!("pass `--var {name}=VALUE`, put it in a `--var-file`, set `THOTH_VAR_{name}`, or give it a `default`")),
            );
            // Unknown keeps evaluation going so that further problems are reported too.
            values.insert(name.clone(), (Value::Unknown, decl.sensitive));
            continue;
        };
        let value = match &decl.type_constraint {
            Some(t) => match t.convert(value) {
                Ok(v) => v,
                Err(msg) => {
                    diags.push(
                        Diagnostic::error(format!(
                            "invalid value for variable `{name}`: {}",
                            without_value(module, name, &msg)
                        ))
                        .at(decl.span, "declared here"),
                    );
                    values.insert(name.clone(), (Value::Unknown, decl.sensitive));
                    continue;
                }
            },
            None => value,
        };
        values.insert(name.clone(), (value, decl.sensitive));
    }
    check_validations(module, &values, &mut diags);
    (values, diags)
}

/// Evaluates every `validation` block of the variables that have a known value.
/// The variable files loaded without being named: `terraform.tfvars` and `*.auto.tfvars`.
fn auto_var_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut auto: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".auto.tfvars")))
        .collect();
    auto.sort();
    let main = dir.join("terraform.tfvars");
    if main.is_file() {
        auto.insert(0, main);
    }
    auto
}

fn check_validations(module: &Module, values: &BTreeMap<String, (Value, bool)>, diags: &mut Diagnostics) {
    let ev = Evaluator::new(module, values.clone());
    for (name, decl) in &module.scopes[0].variables {
        if values.get(name).is_some_and(|(v, _)| v.is_known()) {
            check_validation(&ev, decl, diags);
        }
    }
}

/// Evaluates every `validation` block of a variable whose value `ev` holds.
pub fn check_validation(ev: &Evaluator<'_>, decl: &super::VariableDecl, diags: &mut Diagnostics) {
    let name = &decl.name;
    for validation in &decl.validations {
        match ev.eval(&validation.condition) {
            Ok((Value::Bool(true) | Value::Unknown, _)) => {}
            Ok((Value::Bool(false), _)) => {
                let message = match ev.eval(&validation.error_message) {
                    Ok((Value::String(m), false)) => m,
                    Ok((_, true)) => "(the error message would show a sensitive value)".to_owned(),
                    Ok(_) | Err(_) => "the condition is false".to_owned(),
                };
                diags.push(
                    Diagnostic::error(format!("invalid value for variable `{name}`: {message}"))
                        .at(validation.condition.span, "this condition is false"),
                );
            }
            Ok((other, _)) => diags.push(
                Diagnostic::error(format!("the validation condition of variable `{name}` must be a bool"))
                    .at(validation.condition.span, format!("this is a {}", other.type_name())),
            ),
            Err(d) => diags.push(d),
        }
    }
}

/// A value given as text: taken as-is for string variables, parsed as an HCL literal
/// otherwise (`["a", "b"]`, `{ a = 1 }`, `true`, `42`).
fn parse_cli_value(module: &Module, name: &str, text: &str) -> Result<Value, String> {
    let is_string = matches!(
        module.scopes[0].variables.get(name).and_then(|d| d.type_constraint.as_ref()),
        None | Some(TypeConstraint::String)
    );
    if is_string {
        return Ok(Value::String(text.to_owned()));
    }
    if super::too_deep(text).is_some() {
        return Err(format!("the value nests brackets more than {} levels deep", super::MAX_NESTING));
    }
    let expr = hcl_edit::parser::parse_expr(text).map_err(|e| e.message().to_owned())?;
    let empty = Evaluator::new(module, BTreeMap::new());
    let wrapped = Expr::tree(expr, crate::model::Span::default(), crate::model::Span::default());
    empty.eval(&wrapped).map(|(v, _)| v).map_err(|d| d.message)
}

/// The message of a value that does not fit its variable, without the value when the
/// variable is sensitive.
fn without_value(module: &Module, name: &str, msg: &str) -> String {
    let sensitive = module.scopes[0].variables.get(name).is_some_and(|d| d.sensitive);
    if !sensitive {
        return msg.to_owned();
    }
    match msg.split_once(", found") {
        Some((expected, _)) => format!("{expected}, and the sensitive value given is not"),
        None => "the sensitive value given does not fit its type".to_owned(),
    }
}

fn load_var_file(
    module: &mut Module,
    path: &std::path::Path,
    raw: &mut VecMap<String, Value>,
    diags: &mut Diagnostics,
) {
    let display = path.display().to_string();
    let text = match crate::files::read_text(path, crate::files::MAX_TEXT) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::error(format!("cannot read variable file `{display}`: {e}")));
            return;
        }
    };
    if display.ends_with(".json") {
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(map)) => {
                for (k, v) in map {
                    raw.insert(k, Value::from_json(&v));
                }
            }
            Ok(_) => diags.push(Diagnostic::error(format!("variable file `{display}` must hold a JSON object"))),
            Err(e) => diags.push(Diagnostic::error(format!("variable file `{display}` is not valid JSON: {e}"))),
        }
        return;
    }
    let file = module.files.len();
    module.files.push(SourceFile { name: display.clone(), text: text.clone(), scope: super::ROOT });
    if let Some(offset) = super::too_deep(&text) {
        diags.push(super::load::nested_too_deep(file, offset));
        return;
    }
    let body = match hcl_edit::parser::parse_body(&text) {
        Ok(b) => b,
        Err(e) => {
            diags.push(super::load::syntax_error(file, &text, &e));
            return;
        }
    };
    // Diagnostics show the file as kept here: the values of sensitive variables are blanked
    // out (line breaks kept, so that every place still points where it did).
    let mut shown = text.clone().into_bytes();
    for structure in &body {
        let Structure::Attribute(attr) = structure else { continue };
        let sensitive = module.scopes[0].variables.get(attr.key.as_str()).is_some_and(|d| d.sensitive);
        if let (true, Some(range)) = (sensitive, hcl_edit::Span::span(&attr.value)) {
            for b in shown.get_mut(range).into_iter().flatten() {
                if *b != b'\n' {
                    *b = b'*';
                }
            }
        }
    }
    module.files[file].text = String::from_utf8(shown).unwrap_or_default();
    let empty = Evaluator::new(module, BTreeMap::new());
    for structure in &body {
        match structure {
            Structure::Attribute(attr) => {
                let name = attr.key.as_str();
                let expr = Expr::tree(attr.value.clone(), span_of(file, &attr.value), span_of(file, &attr.key));
                if !module.scopes[0].variables.contains_key(name) {
                    let mut d = Diagnostic::warning(format!("variable file sets undeclared variable `{name}`"))
                        .at(expr.key_span, "not declared");
                    if let Some(s) = did_you_mean(name, module.scopes[0].variables.keys().map(String::as_str)) {
                        d = d.help(format!("did you mean `{s}`?"));
                    }
                    diags.push(d);
                    continue;
                }
                match empty.eval(&expr) {
                    Ok((v, _)) => {
                        raw.insert(name.to_owned(), v);
                    }
                    Err(d) => diags.push(d.help("variable files hold literal values only")),
                }
            }
            Structure::Block(b) => diags.push(
                Diagnostic::error(format!("unexpected block `{}` in a variable file", b.ident.as_str()))
                    .at(span_of(file, &b.ident), "not allowed here")
                    .help("a variable file holds `name = value` lines only"),
            ),
        }
    }
}
