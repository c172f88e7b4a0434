//! The expression evaluator.
//!
//! It works on the `hcl-edit` tree so that every error points at source text, and on our own
//! `Value`, which has an unknown value for what the control plane assigns during apply. While
//! evaluating, it notes whether a sensitive value (a sensitive variable or attribute) was read,
//! so that a value derived from a secret is masked wherever it is shown.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use hcl_edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl_edit::template::{Directive, Element, Template};

use super::{functions, Expr, Form, Module, Node, Repetition, ResourceDecl, ScopeId};
use crate::diag::{did_you_mean, Diagnostic};
use crate::model::{format_number, Address, InstanceKey, ModuleStep, NameMap, Span, Value};
use crate::schema::Schema;
use crate::vecmap::VecMap;

/// The values of one resource's attributes as seen by references, with the names of the
/// sensitive ones.
#[derive(Debug, Clone, Default)]
pub struct ResourceValues {
    pub values: VecMap<String, Value>,
    pub sensitive: BTreeSet<String>,
}

/// How many instances a resource block has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expansion {
    /// `count` or `for_each` could not be evaluated; references to it are unknown.
    Unknown,
    Single,
    Count(usize),
    ForEach(Vec<String>),
}

/// The instance being evaluated: `count.index`, or `each.key` and `each.value`.
#[derive(Debug, Clone)]
pub struct InstanceBinding {
    pub key: InstanceKey,
    pub each_value: Option<Value>,
}

/// Values by module instance and name; the root module's under the empty path.
pub type Scoped<V> = BTreeMap<Vec<ModuleStep>, BTreeMap<String, V>>;

/// Holds everything an expression may refer to.
#[derive(Debug)]
pub struct Evaluator<'m> {
    pub module: &'m Module,
    /// Variable values with whether they are sensitive, by module instance.
    pub variables: Scoped<(Value, bool)>,
    pub locals: Scoped<(Value, bool)>,
    /// The outputs of module instances other than the root, which their callers read.
    pub outputs: Scoped<(Value, bool)>,
    /// The instances of each module call, by the calling module instance and the call's name.
    pub module_expansions: BTreeMap<(Vec<ModuleStep>, String), Expansion>,
    /// The module instance being evaluated (empty for the root module).
    pub scope: Vec<ModuleStep>,
    /// `terraform.workspace`.
    pub workspace: String,
    /// Values of resource instances, by instance address. Hashed, as these two maps are only
    /// looked up, tens of thousands of times in a large configuration.
    pub resources: NameMap<Address, ResourceValues>,
    /// The instances of each evaluated resource block, by block address.
    pub expansions: NameMap<Address, Expansion>,
    /// Set while a block with `count` or `for_each` is lowered.
    pub instance: Option<InstanceBinding>,
    /// What `self` is: set while the postconditions of a resource instance are evaluated.
    pub this: Option<(Address, ResourceValues)>,
    /// The results of check blocks and conditions, as a walk evaluated them.
    pub checks: Vec<super::CheckResult>,
}

/// The state of one evaluation: the file for spans, names bound by `for`, and whether a
/// sensitive value was read.
struct Ctx<'a> {
    file: usize,
    bound: Vec<(String, Value)>,
    sensitive: &'a Cell<bool>,
    /// How many templates are being rendered around this expression.
    templates: usize,
}

/// The most instances one `count` or `for_each` makes.
const MAX_INSTANCES: usize = 100_000;

/// The deepest `templatefile` calls nest (a template that renders itself stops there).
const MAX_TEMPLATE_DEPTH: usize = 16;

type EvalResult = Result<Value, Diagnostic>;

fn too_many(span: Span, block: &str, n: &str) -> Diagnostic {
    Diagnostic::error(format!("`{block}` would have {n} instances, more than the {MAX_INSTANCES} thoth allows"))
        .at(span, "too many instances")
        .help(format!("one block makes at most {MAX_INSTANCES} instances; split the collection"))
}

const ROOTS: &[&str] = &["var", "local", "path", "data"];

impl<'m> Evaluator<'m> {
    pub fn new(module: &'m Module, variables: BTreeMap<String, (Value, bool)>) -> Evaluator<'m> {
        Evaluator {
            module,
            variables: [(Vec::new(), variables)].into_iter().collect(),
            locals: BTreeMap::new(),
            outputs: BTreeMap::new(),
            module_expansions: BTreeMap::new(),
            scope: Vec::new(),
            workspace: crate::state::backend::DEFAULT_WORKSPACE.to_owned(),
            resources: NameMap::default(),
            expansions: NameMap::default(),
            instance: None,
            this: None,
            checks: Vec::new(),
        }
    }

    /// The instances of a block: its keys and, for `for_each`, each value. `count` and
    /// `for_each` must be known before apply, as in Terraform.
    pub fn expand(&self, decl: &ResourceDecl) -> Result<Vec<InstanceBinding>, Diagnostic> {
        self.expand_repetition(decl.repetition.as_ref(), &decl.address.to_string())
    }

    /// The instances `count` or `for_each` of a block (a resource, a module call) make;
    /// `what` names the block in messages.
    pub fn expand_repetition(
        &self,
        repetition: Option<&Repetition>,
        what_block: &str,
    ) -> Result<Vec<InstanceBinding>, Diagnostic> {
        let Some(repetition) = repetition else { return Ok(Vec::new()) };
        let (expr, what) = match repetition {
            Repetition::Count(e) => (e, "count"),
            Repetition::ForEach(e) => (e, "for_each"),
        };
        let (value, sensitive) = self.eval(expr)?;
        // Only the instance keys must be known: a map's values may still be unknown, as when
        // `for_each` iterates over another repeated resource.
        let keys_known = match &value {
            Value::Map(_) => true,
            other => other.is_known(),
        };
        if !keys_known {
            return Err(Diagnostic::error(format!("`{what}` of `{what_block}` is not known until apply"))
                .at(expr.span, "depends on values the control plane assigns")
                .help(format!("`{what}` must come from configuration values, such as variables or locals")));
        }
        if sensitive {
            return Err(Diagnostic::error(format!("`{what}` of `{what_block}` uses a sensitive value"))
                .at(expr.span, "derived from a secret")
                .help("instance keys appear in plans and state; use non-secret values"));
        }
        match (repetition, value) {
            #[allow(clippy::cast_precision_loss)]
            (Repetition::Count(_), Value::Number(n)) if n > MAX_INSTANCES as f64 && n.fract() == 0.0 => {
                Err(too_many(expr.span, what_block, &format!("{n}")))
            }
            (Repetition::ForEach(_), Value::Map(map)) if map.len() > MAX_INSTANCES => {
                Err(too_many(expr.span, what_block, &map.len().to_string()))
            }
            (Repetition::ForEach(_), Value::List(items)) if items.len() > MAX_INSTANCES => {
                Err(too_many(expr.span, what_block, &items.len().to_string()))
            }
            (Repetition::Count(_), Value::Number(n)) if n >= 0.0 && n.fract() == 0.0 => {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let n = n as usize;
                Ok((0..n).map(|i| InstanceBinding { key: InstanceKey::Index(i), each_value: None }).collect())
            }
            (Repetition::Count(_), other) => {
                Err(type_error(expr.span, "`count`", "whole number of zero or more", &other))
            }
            (Repetition::ForEach(_), Value::Map(map)) => Ok(map
                .into_iter()
                .map(|(k, v)| InstanceBinding { key: InstanceKey::Name(k), each_value: Some(v) })
                .collect()),
            (Repetition::ForEach(_), Value::List(items)) => {
                let mut keys = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) => keys.push(s),
                        other => {
                            return Err(type_error(expr.span, "each element of a `for_each` set", "string", &other)
                                .help("use a map to iterate over structured values"))
                        }
                    }
                }
                keys.sort();
                keys.dedup();
                Ok(keys
                    .into_iter()
                    .map(|k| InstanceBinding { each_value: Some(Value::String(k.clone())), key: InstanceKey::Name(k) })
                    .collect())
            }
            (Repetition::ForEach(_), other) => {
                Err(type_error(expr.span, "`for_each`", "map or set of strings", &other))
            }
        }
    }

    /// What a `replace_triggered_by` entry points at: the instances it names and, when it
    /// names one, the attribute.
    pub fn trigger_targets(&self, expr: &Expr) -> Result<(Vec<Address>, Option<String>), Diagnostic> {
        let invalid = || {
            Diagnostic::error("`replace_triggered_by` entries must reference a resource or one of its attributes")
                .at(expr.span, "not a resource reference")
                .help("write `thoth_fleet.prod`, `thoth_fleet.prod.name` or `thoth_fleet.all[each.key]`")
        };
        let Some(Expression::Traversal(t)) = expr.syntax() else { return Err(invalid()) };
        let (Expression::Variable(root), Some(TraversalOperator::GetAttr(name))) =
            (&t.expr, t.operators.first().map(hcl_edit::Decorated::value))
        else {
            return Err(invalid());
        };
        let declared = Address::managed(root.as_str(), name.as_str())
            .in_module(&self.module.scope(self.module.scope_of(expr)).steps());
        if !self.module.resources.contains_key(&declared) {
            return Err(invalid());
        }
        let block = Address::managed(root.as_str(), name.as_str()).in_module(&self.scope);
        let mut rest = &t.operators[1..];
        let mut instances = self.instances_of(&block);
        if let Some(TraversalOperator::Index(index)) = rest.first().map(hcl_edit::Decorated::value) {
            let sensitive = Cell::new(false);
            let mut ctx = Ctx { file: expr.span.file, bound: Vec::new(), sensitive: &sensitive, templates: 0 };
            let key = match self.expr(&mut ctx, index)? {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Value::Number(n) => InstanceKey::Index(n as usize),
                Value::String(k) => InstanceKey::Name(k),
                _ => return Err(invalid()),
            };
            instances = vec![block.with_key(Some(key))];
            rest = &rest[1..];
        }
        let attr = match rest {
            [] => None,
            [op] => match op.value() {
                TraversalOperator::GetAttr(a) => Some(a.as_str().to_owned()),
                _ => return Err(invalid()),
            },
            _ => return Err(invalid()),
        };
        Ok((instances, attr))
    }

    /// The resource instance an address expression names (`to` of an `import`, `from` and
    /// `to` of a `moved`): `[module.NAME[KEY].]...[data.]TYPE.NAME[KEY]`, keys evaluated.
    pub fn address_of(&self, expr: &Expr) -> Result<Address, Diagnostic> {
        let invalid = || {
            Diagnostic::error("this must be the address of a resource")
                .at(expr.span, "not a resource address")
                .help("write it without quotes, such as `thoth_fleet.claims`, `thoth_fleet.ring[\"eu\"]` or `module.tenant.thoth_fleet.ring`")
        };
        let Some(Expression::Traversal(t)) = expr.syntax() else { return Err(invalid()) };
        let Expression::Variable(root) = &t.expr else { return Err(invalid()) };
        let sensitive = Cell::new(false);
        let mut ctx = Ctx { file: expr.span.file, bound: Vec::new(), sensitive: &sensitive, templates: 0 };
        // The names of the traversal, each with the key that follows it.
        let mut steps: Vec<(String, Option<InstanceKey>)> = vec![(root.as_str().to_owned(), None)];
        for op in &t.operators {
            match op.value() {
                TraversalOperator::GetAttr(name) => steps.push((name.as_str().to_owned(), None)),
                TraversalOperator::Index(index) => {
                    let key = match self.expr(&mut ctx, index)? {
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => InstanceKey::Index(n as usize),
                        Value::String(k) => InstanceKey::Name(k),
                        other => {
                            return Err(type_error(
                                Self::span(&ctx, index),
                                "an instance key",
                                "number or string",
                                &other,
                            ))
                        }
                    };
                    let named = steps.len() > 1;
                    match steps.last_mut() {
                        Some((_, slot @ None)) if named => *slot = Some(key),
                        _ => return Err(invalid()),
                    }
                }
                #[allow(clippy::cast_possible_truncation)]
                TraversalOperator::LegacyIndex(i) => match steps.last_mut() {
                    Some((_, slot @ None)) => *slot = Some(InstanceKey::Index(*i.value() as usize)),
                    _ => return Err(invalid()),
                },
                _ => return Err(invalid()),
            }
        }
        let mut rest = steps.as_slice();
        let mut module = Vec::new();
        while let [(word, None), (name, key), tail @ ..] = rest {
            if word != "module" {
                break;
            }
            module.push(ModuleStep { name: name.clone(), key: key.clone() });
            rest = tail;
        }
        let (mode, rest) = match rest {
            [(word, None), tail @ ..] if word == "data" => (crate::model::Mode::Data, tail),
            other => (crate::model::Mode::Managed, other),
        };
        match rest {
            [(type_name, None), (name, key)] => {
                Ok(Address { module, mode, type_name: type_name.clone(), name: name.clone(), key: key.clone() })
            }
            _ => Err(invalid()),
        }
    }

    /// The instance addresses of an evaluated block.
    pub fn instances_of(&self, block: &Address) -> Vec<Address> {
        match self.expansions.get(block) {
            None | Some(Expansion::Single | Expansion::Unknown) => vec![block.clone()],
            Some(Expansion::Count(n)) => (0..*n).map(|i| block.with_key(Some(InstanceKey::Index(i)))).collect(),
            Some(Expansion::ForEach(keys)) => {
                keys.iter().map(|k| block.with_key(Some(InstanceKey::Name(k.clone())))).collect()
            }
        }
    }

    /// Evaluates an expression; the flag tells whether the value derives from a secret.
    pub fn eval(&self, expr: &Expr) -> Result<(Value, bool), Diagnostic> {
        let tree = match &expr.form {
            Form::Tree(tree) => tree,
            Form::Value(value) => return Ok((value.clone(), false)),
        };
        let sensitive = Cell::new(false);
        let mut ctx = Ctx { file: expr.span.file, bound: Vec::new(), sensitive: &sensitive, templates: 0 };
        let value = self.expr(&mut ctx, tree)?;
        Ok((value, sensitive.get()))
    }

    fn span(ctx: &Ctx<'_>, node: &impl hcl_edit::Span) -> Span {
        node.span().map_or(Span { file: ctx.file, start: 0, end: 0 }, |r| Span::new(ctx.file, r))
    }

    fn expr(&self, ctx: &mut Ctx<'_>, expr: &Expression) -> EvalResult {
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => Ok(Value::Number(n.value().as_f64().unwrap_or(0.0))),
            Expression::String(s) => Ok(Value::String(s.value().clone())),
            Expression::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.expr(ctx, item)?);
                }
                Ok(Value::List(out))
            }
            Expression::Object(object) => {
                let mut out = VecMap::new();
                for (key, value) in object {
                    let key = match key {
                        ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                        ObjectKey::Expression(e) => match self.expr(ctx, e)? {
                            Value::String(s) => s,
                            Value::Number(n) => format_number(n),
                            Value::Bool(b) => b.to_string(),
                            Value::Unknown => return Ok(Value::Unknown),
                            other => {
                                return Err(Diagnostic::error("object keys must be strings")
                                    .at(Self::span(ctx, e), format!("this is a {}", other.type_name())))
                            }
                        },
                    };
                    out.insert(key, self.expr(ctx, value.expr())?);
                }
                Ok(Value::Map(out))
            }
            Expression::StringTemplate(t) => {
                let mut out = String::new();
                let mut unknown = false;
                self.template_elements(ctx, t.iter(), &mut out, &mut unknown)?;
                Ok(if unknown { Value::Unknown } else { Value::String(out) })
            }
            Expression::HeredocTemplate(h) => self.template(ctx, &h.template),
            Expression::Parenthesis(p) => self.expr(ctx, p.inner()),
            Expression::Variable(v) => self.variable(ctx, v.as_str(), Self::span(ctx, v)),
            Expression::Conditional(c) => match self.expr(ctx, &c.cond_expr)? {
                Value::Bool(true) => self.expr(ctx, &c.true_expr),
                Value::Bool(false) => self.expr(ctx, &c.false_expr),
                Value::Unknown => Ok(Value::Unknown),
                other => Err(type_error(Self::span(ctx, &c.cond_expr), "the condition", "bool", &other)),
            },
            Expression::FuncCall(call) => {
                let name = call.name.name.as_str();
                let span = Self::span(ctx, &**call);
                if name == "try" {
                    return self.try_call(ctx, call.args.iter(), span);
                }
                if name == "can" {
                    let args: Vec<&Expression> = call.args.iter().collect();
                    let [arg] = args.as_slice() else {
                        return Err(Diagnostic::error(format!("`can` takes 1 argument, found {}", args.len()))
                            .at(span, "wrong number of arguments"));
                    };
                    return Ok(Value::Bool(self.expr(ctx, arg).is_ok()));
                }
                if name == "templatefile" {
                    return self.templatefile(ctx, call, span);
                }
                if matches!(name, "sensitive" | "nonsensitive" | "issensitive") {
                    return self.sensitivity(ctx, name, call, span);
                }
                let mut args = Vec::new();
                // The texts of sensitive arguments, so that no error message shows them.
                let mut secrets = Vec::new();
                for arg in &call.args {
                    let outer = ctx.sensitive.replace(false);
                    let value = self.expr(ctx, arg)?;
                    if ctx.sensitive.get() {
                        secret_texts(&value, &mut secrets);
                    }
                    ctx.sensitive.set(outer || ctx.sensitive.get());
                    args.push((value, Self::span(ctx, arg)));
                }
                if call.args.expand_final() {
                    if let Some((Value::List(items), s)) = args.pop() {
                        args.extend(items.into_iter().map(|v| (v, s)));
                    }
                }
                functions::call(name, &args, span, &self.module.dir).map_err(|mut d| {
                    secrets.sort_by_key(|s: &String| std::cmp::Reverse(s.len()));
                    for s in secrets.iter().filter(|s| !s.is_empty()) {
                        d.message = d.message.replace(s.as_str(), "(sensitive value)");
                        d.label = d.label.replace(s.as_str(), "(sensitive value)");
                        d.help = d.help.map(|h| h.replace(s.as_str(), "(sensitive value)"));
                    }
                    d
                })
            }
            Expression::Traversal(t) => self.traversal(ctx, &t.expr, &t.operators),
            Expression::UnaryOp(op) => {
                let value = self.expr(ctx, &op.expr)?;
                let span = Self::span(ctx, &op.expr);
                match (op.operator.value(), value) {
                    (_, Value::Unknown) => Ok(Value::Unknown),
                    (UnaryOperator::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                    (UnaryOperator::Neg, Value::Number(n)) => Ok(Value::Number(-n)),
                    (UnaryOperator::Not, other) => Err(type_error(span, "the operand of `!`", "bool", &other)),
                    (UnaryOperator::Neg, other) => Err(type_error(span, "the operand of `-`", "number", &other)),
                }
            }
            Expression::BinaryOp(op) => self.binary(ctx, op),
            Expression::ForExpr(f) => self.for_expr(ctx, f),
        }
    }

    /// `sensitive(x)` marks what reads it as sensitive; `nonsensitive(x)` is the author's
    /// declaration that a value derived from a secret may be shown (a digest, a length), as
    /// in Terraform; `issensitive(x)` says whether `x` reads a sensitive value. Attributes
    /// the schema holds secret stay redacted whatever these say.
    fn sensitivity(&self, ctx: &mut Ctx<'_>, name: &str, call: &hcl_edit::expr::FuncCall, span: Span) -> EvalResult {
        let args: Vec<&Expression> = call.args.iter().collect();
        let [arg] = args.as_slice() else {
            return Err(Diagnostic::error(format!("`{name}` takes 1 argument, found {}", args.len()))
                .at(span, "wrong number of arguments"));
        };
        let read = Cell::new(false);
        let mut inner = Ctx { file: ctx.file, bound: ctx.bound.clone(), sensitive: &read, templates: ctx.templates };
        let value = self.expr(&mut inner, arg)?;
        match name {
            "sensitive" => {
                ctx.sensitive.set(true);
                Ok(value)
            }
            "nonsensitive" => Ok(value),
            _ => {
                if !value.is_known() {
                    return Ok(Value::Unknown);
                }
                Ok(Value::Bool(read.get()))
            }
        }
    }

    fn try_call<'e>(&self, ctx: &mut Ctx<'_>, args: impl Iterator<Item = &'e Expression>, span: Span) -> EvalResult {
        let mut last = None;
        for arg in args {
            match self.expr(ctx, arg) {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(Diagnostic::error("no argument of `try` could be evaluated").at(span, "every argument failed").help(
            last.map_or_else(
                || "give `try` at least one argument".to_owned(),
                |e| format!("the last one failed with: {}", e.message),
            ),
        ))
    }

    /// `templatefile(path, vars)`: the file is a template that sees only the given names.
    fn templatefile(&self, ctx: &mut Ctx<'_>, call: &hcl_edit::expr::FuncCall, span: Span) -> EvalResult {
        let args: Vec<&Expression> = call.args.iter().collect();
        let [path_expr, vars_expr] = args.as_slice() else {
            return Err(Diagnostic::error(format!("`templatefile` takes 2 arguments, found {}", args.len()))
                .at(span, "wrong number of arguments"));
        };
        let path_span = Self::span(ctx, *path_expr);
        if ctx.templates >= MAX_TEMPLATE_DEPTH {
            return Err(Diagnostic::error(format!("templates nest more than {MAX_TEMPLATE_DEPTH} deep"))
                .at(span, "one template too many")
                .help("a template that renders itself (directly or through others) never ends"));
        }
        let (path, vars) = match (self.expr(ctx, path_expr)?, self.expr(ctx, vars_expr)?) {
            (Value::String(p), Value::Map(v)) => (p, v),
            (Value::Unknown, _) | (_, Value::Unknown) => return Ok(Value::Unknown),
            (Value::String(_), other) => {
                return Err(type_error(
                    Self::span(ctx, *vars_expr),
                    "the second argument of `templatefile`",
                    "map",
                    &other,
                ))
            }
            (other, _) => return Err(type_error(path_span, "the first argument of `templatefile`", "string", &other)),
        };
        let text = crate::files::read_text(&self.module.dir.join(&path), crate::files::MAX_TEXT)
            .map_err(|e| Diagnostic::error(format!("cannot read template `{path}`: {e}")).at(path_span, "this file"))?;
        if super::too_deep(&text).is_some() {
            return Err(Diagnostic::error(format!(
                "template `{path}` nests brackets more than {} levels deep",
                super::MAX_NESTING
            ))
            .at(path_span, "this file"));
        }
        let template = hcl_edit::parser::parse_template(&text).map_err(|e| {
            Diagnostic::error(format!("template `{path}` is invalid: {}", e.message())).at(
                path_span,
                format!("line {}, column {} of the template", e.location().line(), e.location().column()),
            )
        })?;
        // The template's own spans point into another file; errors inside it are reported at
        // the call.
        let mut inner = Ctx {
            file: ctx.file,
            bound: vars.into_iter().collect(),
            sensitive: ctx.sensitive,
            templates: ctx.templates + 1,
        };
        self.template(&mut inner, &template).map_err(|d| {
            // A template failing inside another is reported once, at the outermost call.
            let message = if d.message.starts_with("in template") || d.message.starts_with("templates nest") {
                d.message
            } else {
                format!("in template `{path}`: {}", d.message)
            };
            Diagnostic::error(message).at(span, "while rendering this template")
        })
    }

    fn template(&self, ctx: &mut Ctx<'_>, template: &Template) -> EvalResult {
        let mut out = String::new();
        let mut unknown = false;
        self.template_elements(ctx, template.iter(), &mut out, &mut unknown)?;
        Ok(if unknown { Value::Unknown } else { Value::String(out) })
    }

    fn template_elements<'e>(
        &self,
        ctx: &mut Ctx<'_>,
        elements: impl Iterator<Item = &'e Element>,
        out: &mut String,
        unknown: &mut bool,
    ) -> Result<(), Diagnostic> {
        let mut strip_next = false;
        for element in elements {
            match element {
                Element::Literal(lit) => {
                    let text: &str = lit.value();
                    out.push_str(if strip_next { text.trim_start() } else { text });
                    strip_next = false;
                }
                Element::Interpolation(interp) => {
                    if interp.strip.strip_start() {
                        let trimmed = out.trim_end().len();
                        out.truncate(trimmed);
                    }
                    let value = self.expr(ctx, &interp.expr)?;
                    match to_template_string(&value) {
                        Some(s) => out.push_str(&s),
                        None if !value.is_known() => *unknown = true,
                        None => {
                            return Err(Diagnostic::error("cannot insert this value into a string")
                                .at(Self::span(ctx, &interp.expr), format!("this is a {}", value.type_name()))
                                .help("only strings, numbers and booleans can be interpolated; use `jsonencode` for structures"))
                        }
                    }
                    strip_next = interp.strip.strip_end();
                }
                Element::Directive(directive) => match &**directive {
                    Directive::If(d) => {
                        let cond = self.expr(ctx, &d.if_expr.cond_expr)?;
                        match cond {
                            Value::Bool(true) => {
                                self.template_elements(ctx, d.if_expr.template.iter(), out, unknown)?;
                            }
                            Value::Bool(false) => {
                                if let Some(e) = &d.else_expr {
                                    self.template_elements(ctx, e.template.iter(), out, unknown)?;
                                }
                            }
                            Value::Unknown => *unknown = true,
                            other => {
                                return Err(type_error(
                                    Self::span(ctx, &d.if_expr.cond_expr),
                                    "the condition",
                                    "bool",
                                    &other,
                                ))
                            }
                        }
                    }
                    Directive::For(d) => {
                        let collection = self.expr(ctx, &d.for_expr.collection_expr)?;
                        let key_var = d.for_expr.key_var.as_ref().map(|k| k.as_str().to_owned());
                        let value_var = d.for_expr.value_var.as_str().to_owned();
                        for (k, v) in iterate(&collection, Self::span(ctx, &d.for_expr.collection_expr))? {
                            let pushed = bind(ctx, key_var.as_deref(), &value_var, k, v);
                            let r = self.template_elements(ctx, d.for_expr.template.iter(), out, unknown);
                            ctx.bound.truncate(ctx.bound.len() - pushed);
                            r?;
                        }
                    }
                },
            }
        }
        Ok(())
    }

    fn variable(&self, ctx: &Ctx<'_>, name: &str, span: Span) -> EvalResult {
        if let Some((_, v)) = ctx.bound.iter().rev().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        let hint = if ROOTS.contains(&name) || Schema::get().resource(name).is_some() {
            format!("`{name}` must be followed by an attribute name, such as `{name}.example`")
        } else {
            "references start with `var.`, `local.`, `path.` or a resource type".to_owned()
        };
        Err(Diagnostic::error(format!("unknown name `{name}`")).at(span, "cannot be resolved").help(hint))
    }

    fn traversal(
        &self,
        ctx: &mut Ctx<'_>,
        root: &Expression,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
    ) -> EvalResult {
        let (value, rest) = match (root, ops.first().map(hcl_edit::Decorated::value)) {
            (Expression::Variable(v), Some(TraversalOperator::GetAttr(attr)))
                if !ctx.bound.iter().any(|(n, _)| n == v.as_str()) =>
            {
                let span = Span { file: ctx.file, start: Self::span(ctx, v).start, end: Self::span(ctx, &ops[0]).end };
                match v.as_str() {
                    "var" => (self.var(ctx, attr.as_str(), span)?, &ops[1..]),
                    "local" => match self.locals.get(&self.scope).and_then(|l| l.get(attr.as_str())) {
                        Some((value, sensitive)) => {
                            if *sensitive {
                                ctx.sensitive.set(true);
                            }
                            (value.clone(), &ops[1..])
                        }
                        None => {
                            let scope = self.module.scope(self.file_scope(ctx));
                            let prefix = scope.prefix();
                            let names: Vec<String> =
                                scope.locals.keys().map(|n| format!("{prefix}local.{n}")).collect();
                            return Err(undeclared(
                                "local value",
                                &format!("{prefix}local.{}", attr.as_str()),
                                span,
                                names.iter().map(String::as_str),
                            ));
                        }
                    },
                    "path" => match attr.as_str() {
                        "module" => (Value::String(self.module_path(ctx)), &ops[1..]),
                        "root" | "cwd" => (Value::String(".".to_owned()), &ops[1..]),
                        other => {
                            return Err(Diagnostic::error(format!("unknown path value `path.{other}`"))
                                .at(span, "not a known path")
                                .help("use `path.module`"))
                        }
                    },
                    "count" | "each" => (self.instance_value(v.as_str(), attr.as_str(), span)?, &ops[1..]),
                    "self" => (self.self_value(ctx, attr.as_str(), span)?, &ops[1..]),
                    "terraform" => match attr.as_str() {
                        "workspace" => (Value::String(self.workspace.clone()), &ops[1..]),
                        other => {
                            return Err(Diagnostic::error(format!("unknown value `terraform.{other}`"))
                                .at(span, "not a known value")
                                .help("use `terraform.workspace`"))
                        }
                    },
                    // A stack's `component.NAME` is its module call.
                    "module" | "component" => self.module_ref(ctx, attr.as_str(), &ops[1..], span)?,
                    "data" => {
                        let Some(TraversalOperator::GetAttr(name)) = ops.get(1).map(hcl_edit::Decorated::value) else {
                            return Err(Diagnostic::error("a data source reference needs a type and a name")
                                .at(span, "incomplete reference")
                                .help("write `data.thoth_fleets.all.total`, for example"));
                        };
                        let full = Span { end: Self::span(ctx, &ops[1]).end, ..span };
                        let mut block = Address::managed(attr.as_str(), name.as_str());
                        block.mode = crate::model::Mode::Data;
                        self.block_ref(ctx, &block, &ops[1..], full)?
                    }
                    type_name => self.block_ref(ctx, &Address::managed(type_name, attr.as_str()), ops, span)?,
                }
            }
            _ => (self.expr(ctx, root)?, ops),
        };
        self.apply_ops(ctx, value, rest)
    }

    /// An attribute of `self`, in a postcondition.
    fn self_value(&self, ctx: &Ctx<'_>, attr: &str, span: Span) -> EvalResult {
        let Some((address, values)) = &self.this else {
            return Err(Diagnostic::error("`self` is only known in a `postcondition`")
                .at(span, "no `self` here")
                .help("refer to the resource by its address instead"));
        };
        let rt = Schema::get().of(address);
        if !rt.is_some_and(|rt| rt.readable(attr)) {
            return Err(Diagnostic::error(format!("`{}` has no attribute `{attr}`", address.type_name))
                .at(span, "unsupported attribute"));
        }
        if values.sensitive.contains(attr) || rt.and_then(|rt| rt.attribute(attr)).is_some_and(|a| a.sensitive) {
            ctx.sensitive.set(true);
        }
        Ok(values.values.get(attr).cloned().unwrap_or(Value::Null))
    }

    /// Applies attribute, index and splat operators to a value.
    fn apply_ops(
        &self,
        ctx: &mut Ctx<'_>,
        mut value: Value,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
    ) -> EvalResult {
        for (i, op) in ops.iter().enumerate() {
            let span = Self::span(ctx, op);
            value = match (op.value(), value) {
                (_, Value::Unknown) => Value::Unknown,
                (TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_), collection) => {
                    // A splat applies the rest to each element; a single value counts as a
                    // list of one and null as an empty list.
                    let items = match collection {
                        Value::List(items) => items,
                        Value::Null => Vec::new(),
                        other => vec![other],
                    };
                    let tail = &ops[i + 1..];
                    let mapped =
                        items.into_iter().map(|item| self.apply_ops(ctx, item, tail)).collect::<Result<_, _>>()?;
                    return Ok(Value::List(mapped));
                }
                (TraversalOperator::GetAttr(name), Value::Map(mut map)) => match map.remove(name.as_str()) {
                    Some(v) => v,
                    None => {
                        return Err(Diagnostic::error(format!("this object has no attribute `{}`", name.as_str()))
                            .at(span, "missing attribute")
                            .help(match did_you_mean(name.as_str(), map.keys().map(String::as_str)) {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => format!("it has: {}", map.keys().cloned().collect::<Vec<_>>().join(", ")),
                            }))
                    }
                },
                (TraversalOperator::Index(index), collection) => {
                    let key = self.expr(ctx, index)?;
                    index_value(collection, &key, span)?
                }
                #[allow(clippy::cast_precision_loss)]
                (TraversalOperator::LegacyIndex(i), collection) => {
                    index_value(collection, &Value::Number(*i.value() as f64), span)?
                }
                (TraversalOperator::GetAttr(_), other) => {
                    return Err(Diagnostic::error(format!("cannot read an attribute of a {}", other.type_name()))
                        .at(span, "not an object"))
                }
            };
        }
        Ok(value)
    }

    fn var(&self, ctx: &Ctx<'_>, name: &str, span: Span) -> EvalResult {
        match self.variables.get(&self.scope).and_then(|v| v.get(name)) {
            Some((value, sensitive)) => {
                if *sensitive {
                    ctx.sensitive.set(true);
                }
                Ok(value.clone())
            }
            None => {
                let scope = self.module.scope(self.file_scope(ctx));
                let prefix = scope.prefix();
                let names: Vec<String> = scope.variables.keys().map(|n| format!("{prefix}var.{n}")).collect();
                Err(undeclared("variable", &format!("{prefix}var.{name}"), span, names.iter().map(String::as_str)))
            }
        }
    }

    /// The module an expression of this evaluation is written in.
    fn file_scope(&self, ctx: &Ctx<'_>) -> ScopeId {
        self.module.files.get(ctx.file).map_or(crate::config::ROOT, |f| f.scope)
    }

    /// `path.module`: the directory of the module the expression is in, as written from the
    /// root (`.` for the root module).
    fn module_path(&self, ctx: &Ctx<'_>) -> String {
        let scope = self.module.scope(self.file_scope(ctx));
        if scope.parent.is_none() {
            return ".".to_owned();
        }
        scope.dir.to_string_lossy().replace('\\', "/")
    }

    /// `module.NAME` followed by `ops`: one output of the called module's instance
    /// (`module.NAME.OUTPUT`, `module.NAME[KEY].OUTPUT`), or its outputs as an object (a list
    /// or map of objects for `count` or `for_each`).
    fn module_ref<'o>(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        ops: &'o [hcl_edit::Decorated<TraversalOperator>],
        span: Span,
    ) -> Result<(Value, &'o [hcl_edit::Decorated<TraversalOperator>]), Diagnostic> {
        let scope = self.file_scope(ctx);
        let Some(call) = self.module.scope(scope).calls.get(name) else {
            let calls = self.module.scope(scope).calls.keys().map(String::as_str);
            return Err(undeclared("module", &format!("module.{name}"), span, calls)
                .help(format!("declare it with `module \"{name}\" {{ source = \"./modules/{name}\" }}`")));
        };
        let Some(child) = call.child else { return Ok((Value::Unknown, ops)) };
        let outputs = &self.module.scope(child).outputs;
        let instance_path = |key: Option<InstanceKey>| {
            let mut path = self.scope.clone();
            path.push(ModuleStep { name: name.to_owned(), key });
            path
        };
        // One output of one instance.
        let output = |path: &Vec<ModuleStep>, output: &str, at: Span| -> EvalResult {
            if !outputs.contains_key(output) {
                let mut d =
                    Diagnostic::error(format!("module `{name}` has no output `{output}`")).at(at, "no such output");
                if let Some(s) = did_you_mean(output, outputs.keys().map(String::as_str)) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                return Err(d);
            }
            match self.outputs.get(path).and_then(|o| o.get(output)) {
                Some((v, sensitive)) => {
                    if *sensitive {
                        ctx.sensitive.set(true);
                    }
                    Ok(v.clone())
                }
                None => Ok(Value::Unknown),
            }
        };
        // Every output of one instance, as an object.
        let object = |path: &Vec<ModuleStep>| -> Value {
            let Some(values) = self.outputs.get(path) else { return Value::Unknown };
            if values.values().any(|(_, s)| *s) {
                ctx.sensitive.set(true);
            }
            Value::Map(values.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect())
        };
        let expansion = self.module_expansions.get(&(self.scope.clone(), name.to_owned()));
        match expansion {
            None | Some(Expansion::Unknown) => Ok((Value::Unknown, ops)),
            Some(Expansion::Single) => match ops.first().map(hcl_edit::Decorated::value) {
                Some(TraversalOperator::GetAttr(o)) => {
                    let at = Span { end: Self::span(ctx, &ops[0]).end, ..span };
                    Ok((output(&instance_path(None), o.as_str(), at)?, &ops[1..]))
                }
                _ => Ok((object(&instance_path(None)), ops)),
            },
            Some(repeated) => {
                let keys: Vec<InstanceKey> = match repeated {
                    Expansion::Count(n) => (0..*n).map(InstanceKey::Index).collect(),
                    Expansion::ForEach(keys) => keys.iter().cloned().map(InstanceKey::Name).collect(),
                    Expansion::Single | Expansion::Unknown => Vec::new(),
                };
                if let (Some(TraversalOperator::Index(index)), Some(TraversalOperator::GetAttr(o))) =
                    (ops.first().map(hcl_edit::Decorated::value), ops.get(1).map(hcl_edit::Decorated::value))
                {
                    let sensitive = Cell::new(false);
                    let mut inner =
                        Ctx { file: ctx.file, bound: ctx.bound.clone(), sensitive: &sensitive, templates: 0 };
                    let key = match self.expr(&mut inner, index)? {
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => InstanceKey::Index(n as usize),
                        Value::String(k) => InstanceKey::Name(k),
                        Value::Unknown => return Ok((Value::Unknown, &ops[2..])),
                        other => {
                            return Err(type_error(
                                Self::span(ctx, index),
                                "a module instance key",
                                "number or string",
                                &other,
                            ))
                        }
                    };
                    if sensitive.get() {
                        ctx.sensitive.set(true);
                    }
                    if !keys.contains(&key) {
                        return Err(Diagnostic::error(format!("module `{name}` has no instance {key:?}"))
                            .at(Self::span(ctx, &ops[0]), "no such instance"));
                    }
                    let at = Span { end: Self::span(ctx, &ops[1]).end, ..span };
                    return Ok((output(&instance_path(Some(key)), o.as_str(), at)?, &ops[2..]));
                }
                let value = match repeated {
                    Expansion::ForEach(_) => Value::Map(
                        keys.into_iter()
                            .map(|k| {
                                let name = match &k {
                                    InstanceKey::Name(n) => n.clone(),
                                    InstanceKey::Index(i) => i.to_string(),
                                };
                                (name, object(&instance_path(Some(k))))
                            })
                            .collect(),
                    ),
                    _ => Value::List(keys.into_iter().map(|k| object(&instance_path(Some(k)))).collect()),
                };
                Ok((value, ops))
            }
        }
    }

    fn instance_value(&self, root: &str, attr: &str, span: Span) -> EvalResult {
        let binding = self.instance.as_ref();
        #[allow(clippy::cast_precision_loss)]
        match (root, attr, binding) {
            ("count", "index", Some(InstanceBinding { key: InstanceKey::Index(i), .. })) => {
                Ok(Value::Number(*i as f64))
            }
            ("each", "key", Some(InstanceBinding { key: InstanceKey::Name(k), .. })) => Ok(Value::String(k.clone())),
            ("each", "value", Some(InstanceBinding { each_value: Some(v), .. })) => Ok(v.clone()),
            ("count", "index", _) => Err(Diagnostic::error("`count.index` is only available in a block with `count`")
                .at(span, "no `count` here")),
            ("each", "key" | "value", _) => {
                Err(Diagnostic::error(format!("`each.{attr}` is only available in a block with `for_each`"))
                    .at(span, "no `for_each` here"))
            }
            _ => Err(Diagnostic::error(format!("unknown attribute `{root}.{attr}`"))
                .at(span, "not a known value")
                .help(if root == "count" { "use `count.index`" } else { "use `each.key` or `each.value`" })),
        }
    }

    /// Resolves a resource or data source reference (`ops[0]` is the name): an attribute of a
    /// single instance, or the list (`count`) or map (`for_each`) of instance objects,
    /// followed by the remaining operators.
    fn block_ref<'o>(
        &self,
        ctx: &Ctx<'_>,
        block: &Address,
        ops: &'o [hcl_edit::Decorated<TraversalOperator>],
        span: Span,
    ) -> Result<(Value, &'o [hcl_edit::Decorated<TraversalOperator>]), Diagnostic> {
        let (type_name, name) = (block.type_name.as_str(), block.name.as_str());
        let Some(rt) = Schema::get().of(block) else {
            return Err(Diagnostic::error(format!("unknown name `{type_name}`"))
                .at(span, "not a resource type or known root")
                .help(match did_you_mean(type_name, Schema::get().resource_names().chain(ROOTS.iter().copied())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "references start with `var.`, `local.`, `path.` or a resource type".to_owned(),
                }));
        };
        let declared = block.in_module(&self.module.scope(self.file_scope(ctx)).steps());
        let block = &block.in_module(&self.scope);
        if !self.module.resources.contains_key(&declared) {
            let same_type = self
                .module
                .resources
                .keys()
                .filter(|a| a.type_name == type_name && a.module == declared.module)
                .map(|a| a.name.as_str());
            return Err(undeclared("resource", &block.to_string(), span, std::iter::empty()).help(match did_you_mean(
                name, same_type,
            ) {
                Some(s) => format!("did you mean `{type_name}.{s}`?"),
                None => format!("declare it with `resource \"{type_name}\" \"{name}\" {{ ... }}`"),
            }));
        }
        let check_attr = |attr: &str, span: Span| {
            if rt.readable(attr) {
                return Ok(());
            }
            let mut d =
                Diagnostic::error(format!("`{type_name}` has no attribute `{attr}`")).at(span, "unsupported attribute");
            if let Some(s) = did_you_mean(attr, rt.attributes.keys().map(String::as_str).chain(["id", "tenant_id"])) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            Err(d)
        };
        let expansion = self.expansions.get(block);
        if expansion == Some(&Expansion::Unknown) {
            return Ok((Value::Unknown, &ops[1..]));
        }
        if matches!(expansion, None | Some(Expansion::Single)) {
            let Some(TraversalOperator::GetAttr(attr)) = ops.get(1).map(hcl_edit::Decorated::value) else {
                return Err(Diagnostic::error(format!("a reference to `{block}` must name an attribute"))
                    .at(span, "incomplete reference")
                    .help(format!("write `{block}.id`, for example")));
            };
            let full = Span { end: Self::span(ctx, &ops[1]).end, ..span };
            check_attr(attr.as_str(), full)?;
            let Some(values) = self.resources.get(block) else {
                // Not evaluated yet: a reference checked before its target is planned.
                return Ok((Value::Unknown, &ops[2..]));
            };
            if values.sensitive.contains(attr.as_str()) || rt.attribute(attr.as_str()).is_some_and(|a| a.sensitive) {
                ctx.sensitive.set(true);
            }
            return Ok((values.values.get(attr.as_str()).cloned().unwrap_or(Value::Null), &ops[2..]));
        }
        // A repeated block: the instances as objects. Reading an attribute that is secret in
        // any instance marks the result sensitive.
        let rest = &ops[1..];
        let instances = self.instances_of(block);
        for op in rest {
            if let TraversalOperator::GetAttr(attr) = op.value() {
                check_attr(attr.as_str(), Self::span(ctx, op))?;
                if instances.iter().any(|a| self.resources.get(a).is_some_and(|v| v.sensitive.contains(attr.as_str())))
                {
                    ctx.sensitive.set(true);
                }
            }
        }
        let object = |a: &Address| self.resources.get(a).map_or(Value::Unknown, |v| Value::Map(v.values.clone()));
        let value = match expansion {
            Some(Expansion::ForEach(_)) => Value::Map(
                instances
                    .iter()
                    .map(|a| match &a.key {
                        Some(InstanceKey::Name(k)) => (k.clone(), object(a)),
                        _ => (String::new(), object(a)),
                    })
                    .collect(),
            ),
            _ => Value::List(instances.iter().map(object).collect()),
        };
        Ok((value, rest))
    }

    fn binary(&self, ctx: &mut Ctx<'_>, op: &hcl_edit::expr::BinaryOp) -> EvalResult {
        let operator = *op.operator.value();
        let lhs = self.expr(ctx, &op.lhs_expr)?;
        // `&&` and `||` short-circuit on a known left side.
        match (operator, &lhs) {
            (BinaryOperator::And, Value::Bool(false)) => return Ok(Value::Bool(false)),
            (BinaryOperator::Or, Value::Bool(true)) => return Ok(Value::Bool(true)),
            _ => {}
        }
        let rhs = self.expr(ctx, &op.rhs_expr)?;
        if !lhs.is_known() || !rhs.is_known() {
            return Ok(Value::Unknown);
        }
        let (ls, rs) = (Self::span(ctx, &op.lhs_expr), Self::span(ctx, &op.rhs_expr));
        let num = |v: &Value, s: Span| match v {
            Value::Number(n) => Ok(*n),
            Value::String(t) => t.trim().parse::<f64>().map_err(|_| type_error(s, "this operand", "number", v)),
            other => Err(type_error(s, "this operand", "number", other)),
        };
        let boolean = |v: &Value, s: Span| match v {
            Value::Bool(b) => Ok(*b),
            other => Err(type_error(s, "this operand", "bool", other)),
        };
        Ok(match operator {
            BinaryOperator::Eq => Value::Bool(lhs == rhs),
            BinaryOperator::NotEq => Value::Bool(lhs != rhs),
            BinaryOperator::And => Value::Bool(boolean(&lhs, ls)? && boolean(&rhs, rs)?),
            BinaryOperator::Or => Value::Bool(boolean(&lhs, ls)? || boolean(&rhs, rs)?),
            BinaryOperator::Less => Value::Bool(num(&lhs, ls)? < num(&rhs, rs)?),
            BinaryOperator::LessEq => Value::Bool(num(&lhs, ls)? <= num(&rhs, rs)?),
            BinaryOperator::Greater => Value::Bool(num(&lhs, ls)? > num(&rhs, rs)?),
            BinaryOperator::GreaterEq => Value::Bool(num(&lhs, ls)? >= num(&rhs, rs)?),
            BinaryOperator::Plus => Value::Number(num(&lhs, ls)? + num(&rhs, rs)?),
            BinaryOperator::Minus => Value::Number(num(&lhs, ls)? - num(&rhs, rs)?),
            BinaryOperator::Mul => Value::Number(num(&lhs, ls)? * num(&rhs, rs)?),
            BinaryOperator::Div | BinaryOperator::Mod => {
                let (a, b) = (num(&lhs, ls)?, num(&rhs, rs)?);
                if b == 0.0 {
                    return Err(Diagnostic::error("division by zero").at(rs, "this is zero"));
                }
                Value::Number(if operator == BinaryOperator::Div { a / b } else { a % b })
            }
        })
    }

    fn for_expr(&self, ctx: &mut Ctx<'_>, f: &hcl_edit::expr::ForExpr) -> EvalResult {
        let collection = self.expr(ctx, &f.intro.collection_expr)?;
        if !collection.is_known() {
            return Ok(Value::Unknown);
        }
        let key_var = f.intro.key_var.as_ref().map(|k| k.as_str().to_owned());
        let value_var = f.intro.value_var.as_str().to_owned();
        let mut list = Vec::new();
        let mut map: VecMap<String, Value> = VecMap::new();
        let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (k, v) in iterate(&collection, Self::span(ctx, &f.intro.collection_expr))? {
            let pushed = bind(ctx, key_var.as_deref(), &value_var, k, v);
            let result = (|| -> Result<(), Diagnostic> {
                if let Some(cond) = &f.cond {
                    match self.expr(ctx, &cond.expr)? {
                        Value::Bool(true) => {}
                        Value::Bool(false) => return Ok(()),
                        other => {
                            return Err(type_error(Self::span(ctx, &cond.expr), "the `if` condition", "bool", &other))
                        }
                    }
                }
                let value = self.expr(ctx, &f.value_expr)?;
                match &f.key_expr {
                    Some(key_expr) => {
                        let key = match self.expr(ctx, key_expr)? {
                            Value::String(s) => s,
                            Value::Number(n) => format_number(n),
                            other => return Err(type_error(Self::span(ctx, key_expr), "the key", "string", &other)),
                        };
                        if f.grouping {
                            grouped.entry(key).or_default().push(value);
                        } else if map.insert(key.clone(), value).is_some() {
                            return Err(Diagnostic::error(format!("duplicate key `{key}` in `for` expression"))
                                .at(Self::span(ctx, key_expr), "produces the same key twice")
                                .help("add `...` after the value to group values by key"));
                        }
                    }
                    None => list.push(value),
                }
                Ok(())
            })();
            ctx.bound.truncate(ctx.bound.len() - pushed);
            result?;
        }
        Ok(if f.key_expr.is_none() {
            Value::List(list)
        } else if f.grouping {
            Value::Map(grouped.into_iter().map(|(k, v)| (k, Value::List(v))).collect())
        } else {
            Value::Map(map)
        })
    }
}

fn bind(ctx: &mut Ctx<'_>, key_var: Option<&str>, value_var: &str, key: Value, value: Value) -> usize {
    let mut pushed = 1;
    if let Some(k) = key_var {
        ctx.bound.push((k.to_owned(), key));
        pushed += 1;
    }
    ctx.bound.push((value_var.to_owned(), value));
    pushed
}

/// The (key, value) pairs a `for` iterates over: indexes for lists, keys for maps.
fn iterate(collection: &Value, span: Span) -> Result<Vec<(Value, Value)>, Diagnostic> {
    match collection {
        #[allow(clippy::cast_precision_loss)]
        Value::List(items) => Ok(items.iter().enumerate().map(|(i, v)| (Value::Number(i as f64), v.clone())).collect()),
        Value::Map(map) => Ok(map.iter().map(|(k, v)| (Value::String(k.clone()), v.clone())).collect()),
        other => Err(type_error(span, "a `for` collection", "list or map", other)),
    }
}

fn index_value(collection: Value, key: &Value, span: Span) -> EvalResult {
    match (collection, key) {
        (_, Value::Unknown) => Ok(Value::Unknown),
        (Value::List(items), Value::Number(n)) => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = *n as usize;
            let len = items.len();
            items.into_iter().nth(i).filter(|_| n.fract() == 0.0 && *n >= 0.0).ok_or_else(|| {
                Diagnostic::error(format!("index {} is out of range", format_number(*n)))
                    .at(span, format!("the list has {len} element(s)"))
            })
        }
        (Value::Map(mut map), Value::String(k)) => map.remove(k).ok_or_else(|| {
            Diagnostic::error(format!("the map has no key `{k}`"))
                .at(span, "missing key")
                .help("use `lookup(map, key, default)` for optional keys")
        }),
        (other, _) => {
            Err(Diagnostic::error(format!("cannot index a {} with a {}", other.type_name(), key.type_name()))
                .at(span, "invalid index"))
        }
    }
}

fn to_template_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(format_number(*n)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The scalar texts a value holds (at most a few hundred), for scrubbing messages.
fn secret_texts(value: &Value, out: &mut Vec<String>) {
    if out.len() > 256 {
        return;
    }
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(crate::model::format_number(*n)),
        Value::List(items) => items.iter().for_each(|v| secret_texts(v, out)),
        Value::Map(map) => map.values().for_each(|v| secret_texts(v, out)),
        _ => {}
    }
}

pub(super) fn type_error(span: Span, what: &str, expected: &str, found: &Value) -> Diagnostic {
    Diagnostic::error(format!("{what} must be a {expected}")).at(span, format!("this is a {}", found.type_name()))
}

fn undeclared<'a>(kind: &str, name: &str, span: Span, candidates: impl Iterator<Item = &'a str>) -> Diagnostic {
    let mut d = Diagnostic::error(format!("reference to undeclared {kind} `{name}`")).at(span, "not declared");
    if let Some(s) = did_you_mean(name, candidates) {
        d = d.help(format!("did you mean `{s}`?"));
    }
    d
}

/// The value of an expression that refers to nothing and reads nothing, when it evaluates
/// without error; `None` for anything else, which is then evaluated where it is used (and
/// reports its errors there).
pub(super) fn constant(expr: &Expression, file: usize) -> Option<Value> {
    static EMPTY: std::sync::LazyLock<Module> = std::sync::LazyLock::new(Module::default);
    static NOTHING: std::sync::LazyLock<Evaluator<'static>> =
        std::sync::LazyLock::new(|| Evaluator::new(&EMPTY, BTreeMap::new()));
    if !closed(expr) {
        return None;
    }
    let sensitive = Cell::new(false);
    let mut ctx = Ctx { file, bound: Vec::new(), sensitive: &sensitive, templates: 0 };
    let value = NOTHING.expr(&mut ctx, expr).ok()?;
    (!sensitive.get() && value.is_known()).then_some(value)
}

/// Whether an expression names no variable (no reference, no name a `for` binds) and calls
/// only functions that read nothing but their arguments.
fn closed(expr: &Expression) -> bool {
    match expr {
        Expression::Null(_) | Expression::Bool(_) | Expression::Number(_) | Expression::String(_) => true,
        Expression::Variable(_) | Expression::ForExpr(_) => false,
        Expression::Array(items) => items.iter().all(closed),
        Expression::Object(object) => object.iter().all(|(k, v)| {
            let key = match k {
                ObjectKey::Ident(_) => true,
                ObjectKey::Expression(e) => closed(e),
            };
            key && closed(v.expr())
        }),
        Expression::StringTemplate(t) => closed_elements(t.iter()),
        Expression::HeredocTemplate(h) => closed_elements(h.template.iter()),
        Expression::Parenthesis(p) => closed(p.inner()),
        Expression::Conditional(c) => closed(&c.cond_expr) && closed(&c.true_expr) && closed(&c.false_expr),
        Expression::FuncCall(call) => {
            call.name.namespace.is_empty()
                && functions::reads_only_arguments(call.name.name.as_str())
                && call.args.iter().all(closed)
        }
        Expression::Traversal(t) => {
            closed(&t.expr)
                && t.operators.iter().all(|op| match op.value() {
                    TraversalOperator::Index(e) => closed(e),
                    _ => true,
                })
        }
        Expression::UnaryOp(op) => closed(&op.expr),
        Expression::BinaryOp(op) => closed(&op.lhs_expr) && closed(&op.rhs_expr),
    }
}

fn closed_elements<'e>(mut elements: impl Iterator<Item = &'e Element>) -> bool {
    elements.all(|element| match element {
        Element::Literal(_) => true,
        Element::Interpolation(i) => closed(&i.expr),
        Element::Directive(d) => match &**d {
            Directive::If(d) => {
                closed(&d.if_expr.cond_expr)
                    && closed_elements(d.if_expr.template.iter())
                    && d.else_expr.as_ref().is_none_or(|e| closed_elements(e.template.iter()))
            }
            Directive::For(_) => false,
        },
    })
}

/// The nodes an expression refers to, each with the span of the reference, in the module it
/// is written in. Names bound by `for` expressions are not references.
pub fn references(module: &Module, expr: &Expr) -> Vec<(Node, Span)> {
    let scope = module.scope_of(expr);
    let steps = module.scope(scope).steps();
    let at = RefsAt { module, scope, steps: &steps, file: expr.span.file };
    let mut out = Vec::new();
    let mut bound = Vec::new();
    if let Some(tree) = expr.syntax() {
        walk(&at, tree, &mut bound, &mut out);
    }
    out
}

/// Where references are looked for: the module (for its calls) and the expression's file.
struct RefsAt<'a> {
    module: &'a Module,
    scope: ScopeId,
    steps: &'a [ModuleStep],
    file: usize,
}

fn walk(at: &RefsAt<'_>, expr: &Expression, bound: &mut Vec<String>, out: &mut Vec<(Node, Span)>) {
    let file = at.file;
    let span = |n: &dyn hcl_edit::Span| n.span().map_or(Span { file, start: 0, end: 0 }, |r| Span::new(file, r));
    match expr {
        Expression::Null(_)
        | Expression::Bool(_)
        | Expression::Number(_)
        | Expression::String(_)
        | Expression::Variable(_) => {}
        Expression::Array(items) => items.iter().for_each(|e| walk(at, e, bound, out)),
        Expression::Object(object) => {
            for (k, v) in object {
                if let ObjectKey::Expression(e) = k {
                    walk(at, e, bound, out);
                }
                walk(at, v.expr(), bound, out);
            }
        }
        Expression::StringTemplate(t) => walk_elements(at, t.iter(), bound, out),
        Expression::HeredocTemplate(h) => walk_elements(at, h.template.iter(), bound, out),
        Expression::Parenthesis(p) => walk(at, p.inner(), bound, out),
        Expression::Conditional(c) => {
            walk(at, &c.cond_expr, bound, out);
            walk(at, &c.true_expr, bound, out);
            walk(at, &c.false_expr, bound, out);
        }
        Expression::FuncCall(call) => call.args.iter().for_each(|e| walk(at, e, bound, out)),
        Expression::Traversal(t) => {
            if let (Expression::Variable(root), Some(TraversalOperator::GetAttr(first))) =
                (&t.expr, t.operators.first().map(hcl_edit::Decorated::value))
            {
                if !bound.iter().any(|b| b == root.as_str()) {
                    let start = span(root).start;
                    let end_of = |i: usize| t.operators.get(i).map_or(start, |o| span(o).end);
                    let first = first.as_str().to_owned();
                    match root.as_str() {
                        "var" => out.push((Node::Variable(at.scope, first), Span { file, start, end: end_of(0) })),
                        "local" => out.push((Node::Local(at.scope, first), Span { file, start, end: end_of(0) })),
                        "module" | "component" => {
                            // `module.NAME.OUTPUT`, `module.NAME[KEY].OUTPUT`, or the whole module
                            // (`component.NAME...` in a stack).
                            let rest = &t.operators[1..];
                            let skip = usize::from(matches!(
                                rest.first().map(hcl_edit::Decorated::value),
                                Some(TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_))
                            ));
                            let output = match rest.get(skip).map(hcl_edit::Decorated::value) {
                                Some(TraversalOperator::GetAttr(o)) => Some(o.as_str().to_owned()),
                                _ => None,
                            };
                            let child = at.module.child(at.scope, &first);
                            match (child, output) {
                                (Some(c), Some(o)) => {
                                    out.push((Node::Output(c, o), Span { file, start, end: end_of(1 + skip) }));
                                }
                                _ => out.push((Node::Module(at.scope, first), Span { file, start, end: end_of(0) })),
                            }
                        }
                        "data" => {
                            if let Some(TraversalOperator::GetAttr(name)) =
                                t.operators.get(1).map(hcl_edit::Decorated::value)
                            {
                                let mut address = Address::managed(&first, name.as_str()).in_module(at.steps);
                                address.mode = crate::model::Mode::Data;
                                out.push((Node::Resource(address), Span { file, start, end: end_of(1) }));
                            }
                        }
                        "path" | "count" | "each" | "self" | "terraform" => {}
                        type_name => {
                            out.push((
                                Node::Resource(Address::managed(type_name, &first).in_module(at.steps)),
                                Span { file, start, end: end_of(0) },
                            ));
                        }
                    }
                }
            } else {
                walk(at, &t.expr, bound, out);
            }
            for op in &t.operators {
                if let TraversalOperator::Index(e) = op.value() {
                    walk(at, e, bound, out);
                }
            }
        }
        Expression::UnaryOp(op) => walk(at, &op.expr, bound, out),
        Expression::BinaryOp(op) => {
            walk(at, &op.lhs_expr, bound, out);
            walk(at, &op.rhs_expr, bound, out);
        }
        Expression::ForExpr(f) => {
            walk(at, &f.intro.collection_expr, bound, out);
            let before = bound.len();
            if let Some(k) = &f.intro.key_var {
                bound.push(k.as_str().to_owned());
            }
            bound.push(f.intro.value_var.as_str().to_owned());
            if let Some(k) = &f.key_expr {
                walk(at, k, bound, out);
            }
            walk(at, &f.value_expr, bound, out);
            if let Some(c) = &f.cond {
                walk(at, &c.expr, bound, out);
            }
            bound.truncate(before);
        }
    }
}

fn walk_elements<'e>(
    at: &RefsAt<'_>,
    elements: impl Iterator<Item = &'e Element>,
    bound: &mut Vec<String>,
    out: &mut Vec<(Node, Span)>,
) {
    for element in elements {
        match element {
            Element::Literal(_) => {}
            Element::Interpolation(i) => walk(at, &i.expr, bound, out),
            Element::Directive(d) => match &**d {
                Directive::If(d) => {
                    walk(at, &d.if_expr.cond_expr, bound, out);
                    walk_elements(at, d.if_expr.template.iter(), bound, out);
                    if let Some(e) = &d.else_expr {
                        walk_elements(at, e.template.iter(), bound, out);
                    }
                }
                Directive::For(d) => {
                    walk(at, &d.for_expr.collection_expr, bound, out);
                    let before = bound.len();
                    if let Some(k) = &d.for_expr.key_var {
                        bound.push(k.as_str().to_owned());
                    }
                    bound.push(d.for_expr.value_var.as_str().to_owned());
                    walk_elements(at, d.for_expr.template.iter(), bound, out);
                    bound.truncate(before);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::Evaluator;
    use crate::config::{Expr, Form, Module};
    use crate::model::{Span, Value};

    /// Evaluates one expression with `var.secret` (sensitive) and `var.hosts` declared, and
    /// renders the value, or the error message, with `(sensitive)` when a secret was read.
    fn check(src: &str) -> String {
        let folded = evaluate(src, true);
        // Kept as its value or as written, an expression evaluates the same.
        assert_eq!(folded, evaluate(src, false), "{src}");
        folded
    }

    fn evaluate(src: &str, fold: bool) -> String {
        let module = Module { dir: std::env::temp_dir(), ..Module::default() };
        let vars: BTreeMap<String, (Value, bool)> = [
            ("secret".to_owned(), (Value::String("s3cr3t".to_owned()), true)),
            (
                "hosts".to_owned(),
                (Value::List(vec![Value::String("a.com".into()), Value::String("b.com".into())]), false),
            ),
            ("pending".to_owned(), (Value::Unknown, false)),
        ]
        .into_iter()
        .collect();
        let mut ev = Evaluator::new(&module, vars);
        ev.locals
            .entry(Vec::new())
            .or_default()
            .insert("profile".to_owned(), (Value::String("soc2".to_owned()), false));
        let expr = hcl_edit::parser::parse_expr(src).expect("test expression parses");
        let expr = if fold {
            Expr::folded(&expr, Span::default(), Span::default())
        } else {
            Expr::tree(expr, Span::default(), Span::default())
        };
        match ev.eval(&expr) {
            Ok((v, tainted)) => format!("{}{}", v.to_json(), if tainted { " (sensitive)" } else { "" }),
            Err(d) => format!("error: {}", d.message),
        }
    }

    #[test]
    fn expressions() {
        let cases = [
            (r#""${local.profile}-${length(var.hosts)}""#, r#""soc2-2""#),
            (r#"upper(format("%s/%d", "x", 3))"#, r#""X/3""#),
            (r#"format("%03d|%-4s|%5.1f|%.2s", 7, "ab", 3.14159, "xyz")"#, r#""007|ab  |  3.1|xy""#),
            (r#"[for h in var.hosts : "api.${h}" if h != "b.com"]"#, r#"["api.a.com"]"#),
            (r#"{ for i, h in var.hosts : h => i }"#, r#"{"a.com":0,"b.com":1}"#),
            (r#"length(var.hosts) > 1 ? "many" : "one""#, r#""many""#),
            (r#"merge({ a = 1 }, { b = 2 }, { a = 3 })"#, r#"{"a":3,"b":2}"#),
            (r#"concat(var.hosts, ["c.com"])[2]"#, r#""c.com""#),
            (r#"jsondecode(jsonencode({ k = [true, null] })).k"#, "[true,null]"),
            (r#"join(",", split(":", "a:b"))"#, r#""a,b""#),
            (r#"lookup({ a = "x" }, "b", "fallback")"#, r#""fallback""#),
            (r#"coalesce("", null, "first")"#, r#""first""#),
            (r#"try(var.hosts[5], "none")"#, r#""none""#),
            ("\"%{ for h in var.hosts ~}${h};%{ endfor ~}\"", r#""a.com;b.com;""#),
            ("<<-EOT\n    indented\n      more\n    EOT", "\"indented\\n  more\\n\""),
            ("format(\"Bearer %s\", var.secret)", r#""Bearer s3cr3t" (sensitive)"#),
            (r#""${var.pending}-x""#, "null"),
            ("var.pending == null", "null"),
            ("var.secrets", "error: reference to undeclared variable `var.secrets`"),
            ("lenght(var.hosts)", "error: unknown function `lenght`"),
            ("var.hosts[7]", "error: index 7 is out of range"),
            (r#"format("%d", "x")"#, "error: the argument for `%d` must be a whole number"),
            (r#"1 + true"#, "error: this operand must be a number"),
            (r#"sha256("abc")"#, r#""ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad""#),
            (r#"base64decode(base64encode("héllo"))"#, r#""héllo""#),
            (r#"toset(["b", "a", "b"])"#, r#"["a","b"]"#),
            (r#"distinct(["b", "a", "b"])"#, r#"["b","a"]"#),
            (r#"sort(["b", "c", "a"])"#, r#"["a","b","c"]"#),
            (r#"tolist(var.hosts)"#, r#"["a.com","b.com"]"#),
            (r#"yamldecode("a: 1\nb: [x, true]\n")"#, r#"{"a":1,"b":["x",true]}"#),
            (r#"keys({ b = 1, a = 2 })"#, r#"["a","b"]"#),
            (r#"contains(var.hosts, "a.com")"#, "true"),
            (r#"replace("a-b-c", "-", "_")"#, r#""a_b_c""#),
            (r#"replace("v1.2.3", "/v(\\d+)\\..*/", "major $1")"#, r#""major 1""#),
            (r#"zipmap(["a", "b"], [1, 2])"#, r#"{"a":1,"b":2}"#),
            (r#"zipmap(["a"], [1, 2])"#, "error: `zipmap` needs as many values as keys: 1 key(s), 2 value(s)"),
            ("range(3)", "[0,1,2]"),
            ("range(1, 10, 4)", "[1,5,9]"),
            ("range(3, 0)", "[3,2,1]"),
            ("length(range(1025))", "error: `range` would make more than 1024 elements"),
            ("one([])", "null"),
            (r#"one(["x"])"#, r#""x""#),
            ("one([1, 2])", "error: `one` needs a list of at most one element, not 2"),
            (r#"setunion(["b", "a"], ["c", "a"])"#, r#"["a","b","c"]"#),
            (r#"setintersection(["a", "b", "c"], ["b", "c", "d"], ["c", "b"])"#, r#"["b","c"]"#),
            (r#"setsubtract(["a", "b", "c"], ["b"])"#, r#"["a","c"]"#),
            (r#"setproduct(["a", "b"], [1])"#, r#"[["a",1],["b",1]]"#),
            (r#"regex("^(\\w+)@(\\w+)", "ana@acme.com")"#, r#"["ana","acme"]"#),
            (r#"regex("(?P<user>\\w+)@", "ana@acme.com").user"#, r#""ana""#),
            (r#"regex("[0-9]+", "v42")"#, r#""42""#),
            (r#"regexall("[a-z]\\.com", join(" ", var.hosts))"#, r#"["a.com","b.com"]"#),
            (r#"regex("x", "abc")"#, "error: `regex`: the pattern does not match the text"),
            (r#"can(regex("(", "abc"))"#, "false"),
            (r#"substr("hello world", 1, 4)"#, r#""ello""#),
            (r#"substr("hello", -3, -1)"#, r#""llo""#),
            (r#"title("claims team-eu")"#, r#""Claims Team-Eu""#),
            ("alltrue([true, \"true\"])", "true"),
            ("anytrue([])", "false"),
            (r#"formatlist("https://%s/%s", var.hosts, "v1")"#, r#"["https://a.com/v1","https://b.com/v1"]"#),
            ("chunklist([1, 2, 3, 4, 5], 2)", "[[1,2],[3,4],[5]]"),
            ("slice([1, 2, 3, 4], 1, 3)", "[2,3]"),
            ("slice([1], 1, 3)", "error: `slice` indices 1..3 do not fit a list of 1 element(s)"),
            ("reverse(var.hosts)", r#"["b.com","a.com"]"#),
            (r#"index(var.hosts, "b.com")"#, "1"),
            ("[abs(-2), ceil(1.2), floor(1.8), signum(-3), pow(2, 10)]", "[2,2,1,-1,1024]"),
            (r#"parseint("ff", 16)"#, "255"),
            (r#"parseint("zz", 10)"#, "error: `zz` is not a whole number in base 10"),
            (r#"jsonencode({ a = [1, "x", { b = null }] })"#, r#""{\"a\":[1,\"x\",{\"b\":null}]}""#),
            ("sensitive(\"x\")", r#""x" (sensitive)"#),
            ("nonsensitive(length(var.secret))", "6"),
            ("[issensitive(var.secret), issensitive(var.hosts)]", "[true,false]"),
            (r#"startswith("thoth", "th")"#, "true"),
            (
                r#"[strcontains("abc", "b"), trimprefix("v1", "v"), trimsuffix("a.tf", ".tf"), strrev("ab"), chomp("x\n")]"#,
                r#"[true,"1","a","ba","x"]"#,
            ),
            (r#"csvdecode("id,name\n1,\"a, b\"\n")"#, r#"[{"id":"1","name":"a, b"}]"#),
            (r#"urlencode("a b/c")"#, r#""a+b%2Fc""#),
            ("sum([1, 2.5])", "3.5"),
            (r#"transpose({ a = ["x", "y"], b = ["x"] })"#, r#"{"x":["a","b"],"y":["a"]}"#),
            (r#"coalescelist([], ["a"])"#, r#"["a"]"#),
            (r#"matchkeys(["i1", "i2"], ["eu", "us"], ["us"])"#, r#"["i2"]"#),
            (r#"[basename("a/b.tf"), dirname("a/b.tf")]"#, r#"["b.tf","a"]"#),
            ("timestamp()", "error: unknown function `timestamp`"),
        ];
        for (src, expected) in cases {
            assert_eq!(check(src), expected, "{src}");
        }
    }

    #[test]
    fn constants_are_kept_as_their_values_and_the_rest_as_written() {
        let form = |src: &str| {
            let expr = hcl_edit::parser::parse_expr(src).expect("test expression parses");
            match Expr::folded(&expr, Span::default(), Span::default()).form {
                Form::Value(v) => v.to_json().to_string(),
                Form::Tree(_) => "written".to_owned(),
            }
        };
        let cases = [
            (r#"jsonencode({ a = [1, "x"], b = { c = null } })"#, r#""{\"a\":[1,\"x\"],\"b\":{\"c\":null}}""#),
            (r#""${1 + 1}-${upper("x")}""#, r#""2-X""#),
            ("<<-EOT\n  %{ if true }yes%{ endif }\n  EOT", r#""yes\n""#),
            ("[true, 2, \"three\"][1]", "2"),
            ("var.hosts", "written"),
            (r#"upper(local.profile)"#, "written"),
            ("[for h in [1, 2] : h]", "written"),
            (r#"file("policy.rego")"#, "written"),
            (r#"templatefile("t.tftpl", {})"#, "written"),
            (r#"sensitive("x")"#, "written"),
            // An error is reported where the expression is evaluated, so it is kept as written.
            ("1 + true", "written"),
            (r#"lenght("x")"#, "written"),
        ];
        for (src, expected) in cases {
            assert_eq!(form(src), expected, "{src}");
        }
    }
}
