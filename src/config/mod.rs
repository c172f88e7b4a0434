//! Configuration: loading `*.hcl` and `*.tf` files, keeping source spans, evaluating
//! expressions and lowering resource blocks to typed attribute values.
//!
//! This module never talks to the network and never reads or writes state. Values that only
//! the control plane knows come in through the `Resolver` given to evaluation.

mod backend;
mod eval;
mod functions;
mod json;
mod load;
mod lower;
mod vars;

use std::collections::BTreeMap;
use std::path::PathBuf;

use hcl_edit::expr::Expression;

pub use backend::{
    BackendDecl, BackendSettings, LocalSettings, PgSettings, S3Settings, SUPPORTED as SUPPORTED_BACKENDS,
};
pub use eval::{references, Evaluator, Expansion, InstanceBinding, ResourceValues, Scoped};
pub(crate) use json::{key as object_key, quoted as string_literal};
pub use load::{load, load_stack, syntax_check};
pub use lower::{lower_resource, Desired};
pub use vars::{check_validation, resolve_variables, VarInputs};

use crate::model::{Address, Span, Value};
use crate::vecmap::VecMap;

/// A loaded source file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown in diagnostics, relative to the working directory where possible.
    pub name: String,
    pub text: String,
    /// The module the file belongs to.
    pub scope: ScopeId,
}

/// A module of the configuration: the root module is `ROOT`, every module call adds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ScopeId(pub u32);

/// The root module.
pub const ROOT: ScopeId = ScopeId(0);

/// The deepest brackets nest in text thoth parses: the parser and the evaluator recurse once
/// per level, so deeper text is refused before it is parsed.
pub const MAX_NESTING: usize = 128;

/// The byte offset where `text` first nests brackets (and string interpolations) deeper than
/// `MAX_NESTING`; string contents and comments do not count.
pub fn too_deep(text: &str) -> Option<usize> {
    scan(text, false).err()
}

/// Scans `text` for its nesting: the offsets of the lines that start a top-level block (a
/// letter at the start of a line outside any bracket, string or comment) when `tops` is set,
/// or the offset where brackets nest deeper than `MAX_NESTING`.
///
/// Whoever splits text at these offsets must still check that each part parses on its own:
/// the scan is lenient where the text is not valid to begin with.
pub(crate) fn scan(text: &str, tops: bool) -> Result<Vec<usize>, usize> {
    // The stack holds `"` for a string, `<` for a heredoc (whose end markers are kept in
    // `heredocs`), `$` for an interpolation, or the open bracket.
    let mut stack: Vec<u8> = Vec::new();
    let mut heredocs: Vec<&str> = Vec::new();
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let line_end = |from: usize| bytes[from..].iter().position(|c| *c == b'\n').map_or(bytes.len(), |p| from + p);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let in_string = stack.last() == Some(&b'"');
        if stack.last() == Some(&b'<') {
            let end = line_end(i);
            let at_line_start = i == 0 || bytes[i - 1] == b'\n';
            if at_line_start && heredocs.last().is_some_and(|marker| text[i..end].trim() == *marker) {
                stack.pop();
                heredocs.pop();
                i = end;
            } else if matches!(b, b'$' | b'%') && bytes.get(i + 1) == Some(&b'{') {
                stack.push(b'$');
                i += 1;
            }
        } else if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => {
                    stack.pop();
                }
                b'$' | b'%' if bytes.get(i + 1) == Some(&b'{') => {
                    stack.push(b'$');
                    i += 1;
                }
                _ => {}
            }
        } else {
            match b {
                b'"' => stack.push(b'"'),
                b'<' if bytes.get(i + 1) == Some(&b'<') => {
                    if let Some((marker, end)) = heredoc_start(text, i + 2) {
                        stack.push(b'<');
                        heredocs.push(marker);
                        i = end;
                    }
                }
                b'#' => {
                    i += bytes[i..].iter().position(|c| *c == b'\n').unwrap_or(bytes.len() - i);
                }
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    i += bytes[i..].iter().position(|c| *c == b'\n').unwrap_or(bytes.len() - i);
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    i += text[i..].find("*/").map_or(bytes.len() - i, |p| p + 1);
                }
                b'{' | b'[' | b'(' => stack.push(b),
                b'}' | b']' | b')' => {
                    stack.pop();
                }
                b if tops && stack.is_empty() && b.is_ascii_alphabetic() && (i == 0 || bytes[i - 1] == b'\n') => {
                    found.push(i);
                }
                _ => {}
            }
        }
        if stack.len() > MAX_NESTING && stack.iter().filter(|s| !matches!(**s, b'"' | b'<')).count() > MAX_NESTING {
            return Err(i);
        }
        i += 1;
    }
    Ok(found)
}

/// The end marker of a heredoc whose `<<` ends just before `from` (`<<EOT` or `<<-EOT`, then
/// the end of the line), and the offset of that line's end.
fn heredoc_start(text: &str, from: usize) -> Option<(&str, usize)> {
    let rest = &text[from..];
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let start = text.len() - rest.len();
    let len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-').count();
    let marker = &rest[..len];
    let after = rest[len..].bytes().take_while(|b| *b == b' ' || *b == b'\t' || *b == b'\r').count();
    let end = start + len + after;
    let starts_with_letter = marker.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    (starts_with_letter && text.as_bytes().get(end).is_none_or(|b| *b == b'\n')).then_some((marker, end))
}

#[cfg(test)]
mod scan_tests {
    use super::{scan, too_deep, MAX_NESTING};

    #[test]
    fn heredocs_are_opaque_but_their_interpolations_count() {
        let braces = "{\n".repeat(MAX_NESTING + 10);
        let text = format!("locals {{\n  a = <<-EOT\n{braces}  EOT\n}}\nresource \"x\" \"y\" {{\n}}\n");
        assert_eq!(too_deep(&text), None);
        assert_eq!(scan(&text, true), Ok(vec![0, text.find("resource").expect("resource")]));
        let deep = format!("locals {{\n  a = <<EOT\n${{{}}}\nEOT\n}}\n", "[".repeat(MAX_NESTING + 1));
        assert!(too_deep(&deep).is_some());
    }
}

/// What one module declares: its variables, locals, outputs and module calls (resources are
/// kept together in `Module::resources`, under addresses that name their module).
#[derive(Debug, Default)]
pub struct Scope {
    /// The module calls that lead here from the root (`["tenant", "inner"]`), empty for the root.
    pub path: Vec<String>,
    /// The module's directory, for `path.module`.
    pub dir: PathBuf,
    /// The module that calls this one.
    pub parent: Option<ScopeId>,
    pub variables: BTreeMap<String, VariableDecl>,
    pub locals: BTreeMap<String, Expr>,
    pub outputs: BTreeMap<String, OutputDecl>,
    pub calls: BTreeMap<String, ModuleCall>,
    pub checks: BTreeMap<String, CheckDecl>,
}

impl Scope {
    /// The module path of its blocks, without instance keys (`module.tenant.`).
    pub fn steps(&self) -> Vec<crate::model::ModuleStep> {
        self.path.iter().map(|n| crate::model::ModuleStep { name: n.clone(), key: None }).collect()
    }

    /// How a name in this module is written from the root: `module.tenant.var.x`.
    pub fn prefix(&self) -> String {
        self.path.iter().map(|n| format!("module.{n}.")).collect()
    }
}

/// A `module "NAME" { source = ... }` block.
#[derive(Debug, Clone)]
pub struct ModuleCall {
    pub name: String,
    /// The span of the block header.
    pub span: Span,
    pub source: String,
    /// The module it loads; `None` when its source could not be loaded (reported).
    pub child: Option<ScopeId>,
    /// The arguments, which set the child module's variables.
    pub inputs: VecMap<String, Expr>,
    pub repetition: Option<Repetition>,
    pub depends_on: Vec<(Address, Span)>,
}

/// Everything declared in a configuration directory and the modules it calls.
#[derive(Debug)]
pub struct Module {
    pub dir: PathBuf,
    pub files: Vec<SourceFile>,
    /// The root module first, then every module call's module.
    pub scopes: Vec<Scope>,
    /// Every resource and data source block, by its address without instance keys.
    pub resources: BTreeMap<Address, ResourceDecl>,
    pub provider: Option<ProviderDecl>,
    /// `terraform { backend "..." { } }`: where the state lives (the local file when absent).
    pub backend: Option<BackendDecl>,
    /// A Terraform Stack's deployments (empty for a plain configuration).
    pub deployments: BTreeMap<String, DeploymentDecl>,
    /// `import` blocks of the root module.
    pub imports: Vec<ImportDecl>,
    /// `moved` and `removed` blocks: how state addresses changed.
    pub moves: Vec<MoveDecl>,
    /// The thresholds of `thoth verify`.
    pub verify: Option<VerifyDecl>,
    /// Staged rollouts, by name.
    pub rollouts: BTreeMap<String, RolloutDecl>,
}

/// `verify { window_hours = 24  stale_after = "24h" ... }`: literal thresholds.
#[derive(Debug, Clone, Default)]
pub struct VerifyDecl {
    pub span: Span,
    pub attributes: VecMap<String, Expr>,
}

/// `rollout "NAME" { stage "canary" { targets = [...] } ... gate { checks = [...] soak = "30m" } }`.
#[derive(Debug, Clone)]
pub struct RolloutDecl {
    pub name: String,
    pub span: Span,
    /// In the order they are written, which is the order they apply in.
    pub stages: Vec<StageDecl>,
    /// The gate every stage passes before the next one starts, unless it has its own.
    pub gate: Option<GateDecl>,
}

#[derive(Debug, Clone)]
pub struct StageDecl {
    pub name: String,
    pub span: Span,
    /// Resource addresses or module paths (`thoth_fleet.canary`, `module.ring["pilot"]`), as
    /// written.
    pub targets: Vec<(String, Span)>,
    pub gate: Option<GateDecl>,
}

/// What a stage must pass, and for how long it soaks, before the next one applies.
#[derive(Debug, Clone)]
pub struct GateDecl {
    pub span: Span,
    /// `check.NAME` blocks of the root module.
    pub checks: Vec<(String, Span)>,
    pub soak: std::time::Duration,
}

impl RolloutDecl {
    /// The gate that follows a stage.
    pub fn gate_of<'a>(&'a self, stage: &'a StageDecl) -> Option<&'a GateDecl> {
        stage.gate.as_ref().or(self.gate.as_ref())
    }
}

/// `import { to = ADDR  id = "..." }`, with an optional `for_each`.
#[derive(Debug, Clone)]
pub struct ImportDecl {
    pub span: Span,
    pub to: Expr,
    pub id: Expr,
    pub for_each: Option<Expr>,
}

/// `moved { from = A  to = B }`, or `removed { from = A  lifecycle { destroy = false } }`
/// (`to` is `None` for a removal).
#[derive(Debug, Clone)]
pub struct MoveDecl {
    pub span: Span,
    pub from: Expr,
    pub to: Option<Expr>,
    /// For a removal: delete the object (`destroy = true`, the default) or only forget it.
    pub destroy: bool,
}

/// A stack's `deployment "NAME" { inputs = { ... } }`.
#[derive(Debug, Clone)]
pub struct DeploymentDecl {
    pub span: Span,
    pub inputs: Option<Expr>,
}

impl Default for Module {
    fn default() -> Self {
        Module {
            dir: PathBuf::new(),
            files: Vec::new(),
            scopes: vec![Scope::default()],
            resources: BTreeMap::new(),
            provider: None,
            backend: None,
            deployments: BTreeMap::new(),
            imports: Vec::new(),
            moves: Vec::new(),
            verify: None,
            rollouts: BTreeMap::new(),
        }
    }
}

/// An expression with the span of its source text.
#[derive(Debug, Clone)]
pub struct Expr {
    pub form: Form,
    pub span: Span,
    /// The span of the name that introduced it (`name = ...`).
    pub key_span: Span,
}

/// What an expression is kept as until it is evaluated.
#[derive(Debug, Clone)]
pub enum Form {
    /// Its syntax tree, evaluated where it is used.
    Tree(Box<Expression>),
    /// The value of an expression that refers to nothing and reads nothing (literals, and pure
    /// functions such as `jsonencode` of literals), computed once when its file is read. A
    /// syntax tree takes many times the memory of the value it stands for, and most of a
    /// configuration is literal.
    Value(Value),
}

impl Expr {
    /// An expression kept as written, for what reads its shape (references, addresses).
    pub fn tree(expr: Expression, span: Span, key_span: Span) -> Expr {
        Expr { form: Form::Tree(Box::new(expr)), span, key_span }
    }

    /// An expression kept as its value when it is a constant, else as written.
    pub fn folded(expr: &Expression, span: Span, key_span: Span) -> Expr {
        let form = match eval::constant(expr, span.file) {
            Some(value) => Form::Value(value),
            None => Form::Tree(Box::new(expr.clone())),
        };
        Expr { form, span, key_span }
    }

    /// The syntax tree, unless the expression was kept as its value.
    pub fn syntax(&self) -> Option<&Expression> {
        match &self.form {
            Form::Tree(e) => Some(e),
            Form::Value(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct VariableDecl {
    pub name: String,
    pub span: Span,
    pub type_constraint: Option<vars::TypeConstraint>,
    pub default: Option<Expr>,
    pub sensitive: bool,
    pub description: Option<String>,
    pub validations: Vec<Validation>,
}

/// A `validation` block of a variable.
#[derive(Debug, Clone)]
pub struct Validation {
    pub condition: Expr,
    pub error_message: Expr,
}

#[derive(Debug, Clone)]
pub struct ResourceDecl {
    /// The block's address without instance keys; its module path names its module.
    pub address: Address,
    pub scope: ScopeId,
    /// The span of the block header (`resource "type" "name"`).
    pub span: Span,
    pub attributes: VecMap<String, Expr>,
    pub depends_on: Vec<(Address, Span)>,
    pub repetition: Option<Repetition>,
    pub lifecycle: Lifecycle,
    /// For a data source declared inside a `check` block, the block's name: reading it may
    /// fail without failing the plan.
    pub check: Option<String>,
}

/// `count` or `for_each` of a resource block.
#[derive(Debug, Clone)]
pub enum Repetition {
    Count(Expr),
    ForEach(Expr),
}

/// A resource's `lifecycle` block.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub prevent_destroy: bool,
    pub create_before_destroy: bool,
    pub ignore_changes: IgnoreChanges,
    /// References to resources (or their attributes) whose change replaces this resource.
    pub replace_triggered_by: Vec<Expr>,
    /// Conditions on what the resource is given, and on what it holds once planned or
    /// applied (`self`).
    pub preconditions: Vec<Condition>,
    pub postconditions: Vec<Condition>,
}

/// A `condition` with its `error_message`: an `assert` of a `check` block, a precondition or
/// a postcondition.
#[derive(Debug, Clone)]
pub struct Condition {
    pub span: Span,
    pub condition: Expr,
    pub error_message: Expr,
}

impl Condition {
    fn exprs(&self) -> [&Expr; 2] {
        [&self.condition, &self.error_message]
    }
}

/// A `check "NAME" { data ... assert { ... } }` block. Its data sources are resource blocks
/// of the module, marked with the check's name.
#[derive(Debug, Clone)]
pub struct CheckDecl {
    pub name: String,
    pub span: Span,
    pub asserts: Vec<Condition>,
}

/// What a condition or check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckStatus {
    Pass,
    Fail,
    /// It depends on values known only after apply.
    Unknown,
}

/// Which kind of condition a result is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckKind {
    Check,
    Precondition,
    Postcondition,
}

/// The result of a check block, or of the preconditions or postconditions of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// `check.NAME`, an instance address, or `output.NAME`, with its module path.
    pub address: String,
    pub kind: CheckKind,
    pub status: CheckStatus,
    /// The error messages of the conditions that failed.
    pub messages: Vec<String>,
    pub span: Span,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Check => "check",
            CheckKind::Precondition => "precondition",
            CheckKind::Postcondition => "postcondition",
        }
    }
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IgnoreChanges {
    #[default]
    None,
    All,
    Some(Vec<String>),
}

impl IgnoreChanges {
    pub fn ignores(&self, name: &str) -> bool {
        match self {
            IgnoreChanges::None => false,
            IgnoreChanges::All => true,
            IgnoreChanges::Some(names) => names.iter().any(|n| n == name),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutputDecl {
    pub name: String,
    pub span: Span,
    pub value: Expr,
    pub sensitive: bool,
    pub description: Option<String>,
    pub preconditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default)]
pub struct ProviderDecl {
    pub span: Span,
    pub attributes: VecMap<String, Expr>,
}

/// The kinds of things a reference can point at; graph nodes are made of these. Names are
/// those of the module (`ScopeId`) they are declared in; a resource's address names its
/// module itself. `Module` is a module call: the node that expands its instances and sets its
/// variables, and what a reference to the whole module (`module.tenant`) points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Variable(ScopeId, String),
    Local(ScopeId, String),
    Module(ScopeId, String),
    Resource(Address),
    Output(ScopeId, String),
    Check(ScopeId, String),
}

impl Module {
    pub fn scope(&self, id: ScopeId) -> &Scope {
        &self.scopes[id.0 as usize]
    }

    pub fn root(&self) -> &Scope {
        self.scope(ROOT)
    }

    /// Whether anything is checked after apply: a check block, or a condition on a resource
    /// or an output.
    pub fn has_conditions(&self) -> bool {
        self.scopes.iter().any(|s| !s.checks.is_empty() || s.outputs.values().any(|o| !o.preconditions.is_empty()))
            || self
                .resources
                .values()
                .any(|r| !r.lifecycle.preconditions.is_empty() || !r.lifecycle.postconditions.is_empty())
    }

    /// The module an expression is written in.
    pub fn scope_of(&self, expr: &Expr) -> ScopeId {
        self.files.get(expr.span.file).map_or(ROOT, |f| f.scope)
    }

    /// The module a call in `scope` loads.
    pub fn child(&self, scope: ScopeId, call: &str) -> Option<ScopeId> {
        self.scope(scope).calls.get(call).and_then(|c| c.child)
    }

    /// A node as a user writes it from the root: `module.tenant.var.regions`.
    pub fn node_text(&self, node: &Node) -> String {
        match node {
            Node::Variable(s, n) => format!("{}var.{n}", self.scope(*s).prefix()),
            Node::Local(s, n) => format!("{}local.{n}", self.scope(*s).prefix()),
            Node::Module(s, n) => format!("{}module.{n}", self.scope(*s).prefix()),
            Node::Resource(a) => a.to_string(),
            Node::Output(s, n) => {
                let scope = self.scope(*s);
                match scope.path.split_last() {
                    Some((_, _)) => format!("{}{n}", scope.prefix()),
                    None => format!("output.{n}"),
                }
            }
            Node::Check(s, n) => format!("{}check.{n}", self.scope(*s).prefix()),
        }
    }

    /// The expressions of a node and the nodes its expressions may reference.
    pub fn node_exprs(&self, node: &Node) -> Vec<&Expr> {
        match node {
            Node::Variable(s, n) => {
                self.scope(*s).variables.get(n).and_then(|v| v.default.as_ref()).into_iter().collect()
            }
            // Validation conditions are checked once every variable has its value, so they add
            // no edges.
            Node::Local(s, n) => self.scope(*s).locals.get(n).into_iter().collect(),
            Node::Module(s, n) => self
                .scope(*s)
                .calls
                .get(n)
                .map(|c| {
                    let repetition = c.repetition.as_ref().map(|rep| match rep {
                        Repetition::Count(e) | Repetition::ForEach(e) => e,
                    });
                    c.inputs.values().chain(repetition).collect()
                })
                .unwrap_or_default(),
            Node::Resource(a) => self
                .resources
                .get(a)
                .map(|r| {
                    let repetition = r.repetition.as_ref().map(|rep| match rep {
                        Repetition::Count(e) | Repetition::ForEach(e) => e,
                    });
                    r.attributes
                        .values()
                        .chain(repetition)
                        .chain(&r.lifecycle.replace_triggered_by)
                        .chain(
                            r.lifecycle
                                .preconditions
                                .iter()
                                .chain(&r.lifecycle.postconditions)
                                .flat_map(Condition::exprs),
                        )
                        .collect()
                })
                .unwrap_or_default(),
            Node::Output(s, n) => self
                .scope(*s)
                .outputs
                .get(n)
                .map(|o| std::iter::once(&o.value).chain(o.preconditions.iter().flat_map(Condition::exprs)).collect())
                .unwrap_or_default(),
            Node::Check(s, n) => self
                .scope(*s)
                .checks
                .get(n)
                .map(|c| c.asserts.iter().flat_map(Condition::exprs).collect())
                .unwrap_or_default(),
        }
    }

    /// Where a node is declared.
    pub fn node_span(&self, node: &Node) -> Option<Span> {
        match node {
            Node::Variable(s, n) => self.scope(*s).variables.get(n).map(|v| v.span),
            Node::Local(s, n) => self.scope(*s).locals.get(n).map(|e| e.key_span),
            Node::Module(s, n) => self.scope(*s).calls.get(n).map(|c| c.span),
            Node::Resource(a) => self.resources.get(a).map(|r| r.span),
            Node::Output(s, n) => self.scope(*s).outputs.get(n).map(|o| o.span),
            Node::Check(s, n) => self.scope(*s).checks.get(n).map(|c| c.span),
        }
    }
}
