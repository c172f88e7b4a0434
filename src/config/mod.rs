//! Configuration: loading `*.hcl` and `*.tf` files, keeping source spans, evaluating
//! expressions and lowering resource blocks to typed attribute values.
//!
//! This module never talks to the network and never reads or writes state. Values that only
//! the control plane knows come in through the `Resolver` given to evaluation.

mod backend;
mod eval;
mod functions;
mod load;
mod lower;
mod vars;

use std::collections::BTreeMap;
use std::path::PathBuf;

use hcl_edit::expr::Expression;

pub use backend::{
    BackendDecl, BackendSettings, LocalSettings, PgSettings, S3Settings, SUPPORTED as SUPPORTED_BACKENDS,
};
pub use eval::{references, Evaluator, Expansion, InstanceBinding, ResourceValues};
pub use load::load;
pub use lower::{lower_resource, Desired};
pub use vars::{resolve_variables, VarInputs};

use crate::model::{Address, Span};
use crate::vecmap::VecMap;

/// A loaded source file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown in diagnostics, relative to the working directory where possible.
    pub name: String,
    pub text: String,
}

/// Everything declared in a configuration directory.
#[derive(Debug, Default)]
pub struct Module {
    pub dir: PathBuf,
    pub files: Vec<SourceFile>,
    pub variables: BTreeMap<String, VariableDecl>,
    pub locals: BTreeMap<String, Expr>,
    pub resources: BTreeMap<Address, ResourceDecl>,
    pub outputs: BTreeMap<String, OutputDecl>,
    pub provider: Option<ProviderDecl>,
    /// `terraform { backend "..." { } }`: where the state lives (the local file when absent).
    pub backend: Option<BackendDecl>,
}

/// An expression with the span of its source text.
#[derive(Debug, Clone)]
pub struct Expr {
    pub expr: Expression,
    pub span: Span,
    /// The span of the name that introduced it (`name = ...`).
    pub key_span: Span,
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
    pub address: Address,
    /// The span of the block header (`resource "type" "name"`).
    pub span: Span,
    pub attributes: VecMap<String, Expr>,
    pub depends_on: Vec<(Address, Span)>,
    pub repetition: Option<Repetition>,
    pub lifecycle: Lifecycle,
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
}

#[derive(Debug, Clone, Default)]
pub struct ProviderDecl {
    pub span: Span,
    pub attributes: VecMap<String, Expr>,
}

/// The kinds of things a reference can point at; graph nodes are made of these.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Variable(String),
    Local(String),
    Resource(Address),
    Output(String),
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Node::Variable(n) => write!(f, "var.{n}"),
            Node::Local(n) => write!(f, "local.{n}"),
            Node::Resource(a) => write!(f, "{a}"),
            Node::Output(n) => write!(f, "output.{n}"),
        }
    }
}

impl Module {
    /// The expressions of a node and the nodes its expressions may reference.
    pub fn node_exprs(&self, node: &Node) -> Vec<&Expr> {
        match node {
            Node::Variable(n) => self.variables.get(n).and_then(|v| v.default.as_ref()).into_iter().collect(),
            // Validation conditions are checked once every variable has its value, so they add
            // no edges.
            Node::Local(n) => self.locals.get(n).into_iter().collect(),
            Node::Resource(a) => self
                .resources
                .get(a)
                .map(|r| {
                    let repetition = r.repetition.as_ref().map(|rep| match rep {
                        Repetition::Count(e) | Repetition::ForEach(e) => e,
                    });
                    r.attributes.values().chain(repetition).chain(&r.lifecycle.replace_triggered_by).collect()
                })
                .unwrap_or_default(),
            Node::Output(n) => self.outputs.get(n).map(|o| vec![&o.value]).unwrap_or_default(),
        }
    }

    /// Where a node is declared.
    pub fn node_span(&self, node: &Node) -> Option<Span> {
        match node {
            Node::Variable(n) => self.variables.get(n).map(|v| v.span),
            Node::Local(n) => self.locals.get(n).map(|e| e.key_span),
            Node::Resource(a) => self.resources.get(a).map(|r| r.span),
            Node::Output(n) => self.outputs.get(n).map(|o| o.span),
        }
    }
}
