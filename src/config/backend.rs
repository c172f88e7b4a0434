//! The `terraform {}` block: where the state lives (`backend "local"`, `"pg"` or `"s3"`, with
//! Terraform's attribute names), and the settings Terraform keeps there that do not concern a
//! thoth run (`required_version`, `required_providers`, `provider_meta`).
//!
//! Anything that would change where or how the state is kept and that thoth cannot honour
//! (another backend, `cloud {}`, a DynamoDB lock table, server-side encryption settings) is an
//! error naming what is supported: it is never ignored.

use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, Structure};

use super::load::{span_of, unexpected_block};
use super::Module;
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::model::Span;

/// Where the state lives, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSettings {
    Local(LocalSettings),
    Pg(PgSettings),
    S3(Box<S3Settings>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalSettings {
    /// The state file of the default workspace (`thoth.state.json`).
    pub path: Option<String>,
    /// The directory of the other workspaces' states (`thoth.state.d`).
    pub workspace_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// The connection string; `PG_CONN_STR` when not configured.
    pub conn_str: Option<String>,
    pub schema_name: String,
    pub skip_schema_creation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    pub key: String,
    pub region: Option<String>,
    /// `endpoints { s3 = URL }` (or the older `endpoint`).
    pub endpoint: Option<String>,
    pub use_path_style: bool,
    pub workspace_key_prefix: String,
    /// A lock object beside the state. Unlike Terraform, thoth locks unless this is set to
    /// `false`, which it warns about.
    pub use_lockfile: bool,
    pub profile: Option<String>,
    pub shared_credentials_files: Vec<String>,
    pub shared_config_files: Vec<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub token: Option<String>,
}

/// The supported backends, for messages.
pub const SUPPORTED: &str = "`local`, `pg` and `s3`";

impl BackendSettings {
    pub fn name(&self) -> &'static str {
        match self {
            BackendSettings::Local(_) => "local",
            BackendSettings::Pg(_) => "pg",
            BackendSettings::S3(_) => "s3",
        }
    }
}

/// A backend as declared, with where.
#[derive(Debug, Clone)]
pub struct BackendDecl {
    pub settings: BackendSettings,
    pub span: Span,
}

const PG_ATTRS: &[&str] =
    &["conn_str", "schema_name", "skip_schema_creation", "skip_table_creation", "skip_index_creation"];
const S3_ATTRS: &[&str] = &[
    "bucket",
    "key",
    "region",
    "endpoint",
    "use_path_style",
    "force_path_style",
    "workspace_key_prefix",
    "use_lockfile",
    "profile",
    "shared_credentials_files",
    "shared_config_files",
    "access_key",
    "secret_key",
    "token",
    "skip_credentials_validation",
    "skip_region_validation",
    "skip_requesting_account_id",
    "skip_metadata_api_check",
    "skip_s3_checksum",
    "max_retries",
];
/// Settings of Terraform's `s3` backend that change how the state is kept or locked, which
/// thoth does not do: refused rather than ignored.
const S3_REFUSED: &[(&str, &str)] = &[
    ("dynamodb_table", "thoth locks with a lock object beside the state: remove it and set `use_lockfile = true`"),
    ("encrypt", "thoth does not request server-side encryption: configure default encryption on the bucket instead"),
    ("kms_key_id", "thoth does not request server-side encryption: configure default encryption on the bucket instead"),
    ("sse_customer_key", "customer-provided encryption keys are not supported"),
    ("acl", "object ACLs are not supported: use the bucket's policy"),
    ("assume_role", "assuming a role is not supported: provide credentials for the role in the environment"),
    (
        "assume_role_with_web_identity",
        "assuming a role is not supported: provide credentials for the role in the environment",
    ),
];

/// Reads a `terraform {}` block into the module.
pub(super) fn collect(module: &mut Module, diags: &mut Diagnostics, file: usize, block: &Block) {
    for structure in &block.body {
        match structure {
            Structure::Attribute(attr) => match attr.key.as_str() {
                "required_version" | "experiments" => {}
                other => diags.push(
                    Diagnostic::error(format!("unknown argument `{other}` in `terraform`"))
                        .at(span_of(file, &attr.key), "not expected here")
                        .help("`terraform` takes `required_version`, `required_providers` and `backend`"),
                ),
            },
            Structure::Block(b) => match b.ident.as_str() {
                "required_providers" | "provider_meta" => {}
                "backend" => {
                    let span = span_of(file, &b.ident);
                    let Some(settings) = backend(diags, file, b) else { continue };
                    if let Some(prev) = &module.backend {
                        diags.push(
                            Diagnostic::error("the backend is declared twice")
                                .at(span, "declared again here")
                                .related(prev.span, "first declared here")
                                .help("a configuration has one `backend` block"),
                        );
                    } else {
                        module.backend = Some(BackendDecl { settings, span });
                    }
                }
                "cloud" => diags.push(
                    Diagnostic::error("`cloud {}` is not supported: thoth keeps its state in a backend of its own")
                        .at(span_of(file, &b.ident), "HCP Terraform / Terraform Enterprise")
                        .help(format!("use `backend` with one of {SUPPORTED}")),
                ),
                _ => diags.push(unexpected_block(file, b, "terraform")),
            },
        }
    }
}

/// A literal backend value: Terraform reads backend settings before anything else, so they
/// cannot refer to variables.
fn literal(diags: &mut Diagnostics, file: usize, expr: &Expression, name: &str) -> Option<Literal> {
    let span = span_of(file, expr);
    let value = match expr {
        Expression::String(s) => Some(Literal::Text(s.value().clone())),
        Expression::Bool(b) => Some(Literal::Bool(*b.value())),
        Expression::Number(n) => Some(Literal::Text(n.value().to_string())),
        Expression::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    Expression::String(s) => out.push(s.value().clone()),
                    _ => {
                        out.clear();
                        break;
                    }
                }
            }
            (out.len() == items.len()).then_some(Literal::List(out))
        }
        Expression::StringTemplate(t) => {
            let parts: Option<String> = t
                .iter()
                .map(|e| match e {
                    hcl_edit::template::Element::Literal(l) => Some(l.value().clone()),
                    _ => None,
                })
                .collect();
            parts.map(Literal::Text)
        }
        _ => None,
    };
    if value.is_none() {
        diags.push(
            Diagnostic::error(format!("backend setting `{name}` must be a literal value"))
                .at(span, "not a literal")
                .help("backend settings are read before variables; use the environment (`PG_CONN_STR`, `AWS_*`) for values that differ between runs"),
        );
    }
    value
}

enum Literal {
    Text(String),
    Bool(bool),
    List(Vec<String>),
    /// Not a literal: reported already.
    Invalid,
}

/// One backend block's settings by name, with nested blocks flattened as `block.name`.
fn settings(diags: &mut Diagnostics, file: usize, block: &Block) -> Vec<(String, Span, Literal)> {
    let mut out = Vec::new();
    for structure in &block.body {
        match structure {
            Structure::Attribute(a) => {
                let v = literal(diags, file, &a.value, a.key.as_str()).unwrap_or(Literal::Invalid);
                out.push((a.key.as_str().to_owned(), span_of(file, &a.key), v));
            }
            Structure::Block(inner) => {
                let prefix = inner.ident.as_str();
                for s in &inner.body {
                    match s {
                        Structure::Attribute(a) => {
                            let name = format!("{prefix}.{}", a.key.as_str());
                            let v = literal(diags, file, &a.value, &name).unwrap_or(Literal::Invalid);
                            out.push((name, span_of(file, &a.key), v));
                        }
                        Structure::Block(b) => diags.push(unexpected_block(file, b, prefix)),
                    }
                }
                if inner.body.is_empty() {
                    out.push((format!("{prefix}."), span_of(file, &inner.ident), Literal::List(Vec::new())));
                }
            }
        }
    }
    out
}

fn backend(diags: &mut Diagnostics, file: usize, block: &Block) -> Option<BackendSettings> {
    let ident_span = span_of(file, &block.ident);
    let [label] = block.labels.as_slice() else {
        diags.push(
            Diagnostic::error("a `backend` block takes one label, the backend's name")
                .at(ident_span, "missing or extra label")
                .help("write it as `backend \"pg\" { ... }`"),
        );
        return None;
    };
    let name = label.as_str();
    let label_span = span_of(file, label);
    let values = settings(diags, file, block);
    match name {
        "local" => {
            let mut out = LocalSettings::default();
            for (n, span, v) in &values {
                match (n.as_str(), v) {
                    (_, Literal::Invalid) => {}
                    ("path", Literal::Text(s)) => out.path = Some(s.clone()),
                    ("workspace_dir", Literal::Text(s)) => out.workspace_dir = Some(s.clone()),
                    ("path" | "workspace_dir", _) => wrong_type(diags, n, *span, "string"),
                    (other, _) => diags.push(unknown_setting(other, *span, "local", &["path", "workspace_dir"])),
                }
            }
            Some(BackendSettings::Local(out))
        }
        "pg" => {
            let mut out = PgSettings {
                conn_str: None,
                schema_name: "thoth_remote_state".to_owned(),
                skip_schema_creation: false,
            };
            for (n, span, v) in &values {
                match (n.as_str(), v) {
                    (_, Literal::Invalid) => {}
                    ("conn_str", Literal::Text(s)) => out.conn_str = Some(s.clone()),
                    ("schema_name", Literal::Text(s)) => out.schema_name = s.clone(),
                    ("skip_schema_creation", Literal::Bool(b)) => out.skip_schema_creation = *b,
                    // Tables and indexes come with the schema: skipping the schema skips them.
                    ("skip_table_creation" | "skip_index_creation", Literal::Bool(_)) => {}
                    (other, _) if PG_ATTRS.contains(&other) => {
                        let want = if other == "conn_str" || other == "schema_name" { "string" } else { "bool" };
                        wrong_type(diags, other, *span, want);
                    }
                    (other, _) => diags.push(unknown_setting(other, *span, "pg", PG_ATTRS)),
                }
            }
            if !valid_identifier(&out.schema_name) {
                diags.push(
                    Diagnostic::error(format!("`schema_name` `{}` is not a plain SQL identifier", out.schema_name))
                        .at(ident_span, "this backend")
                        .help("use letters, digits and `_`, starting with a letter or `_`"),
                );
                return None;
            }
            Some(BackendSettings::Pg(out))
        }
        "s3" => {
            let mut bucket = None;
            let mut key = None;
            let mut out = S3Settings {
                bucket: String::new(),
                key: String::new(),
                region: None,
                endpoint: None,
                use_path_style: false,
                workspace_key_prefix: "env:".to_owned(),
                use_lockfile: true,
                profile: None,
                shared_credentials_files: Vec::new(),
                shared_config_files: Vec::new(),
                access_key: None,
                secret_key: None,
                token: None,
            };
            for (n, span, v) in &values {
                if let Some((_, why)) = S3_REFUSED.iter().find(|(r, _)| n == r || n.starts_with(&format!("{r}."))) {
                    diags.push(
                        Diagnostic::error(format!(
                            "`{}` of the `s3` backend is not supported",
                            n.trim_end_matches('.')
                        ))
                        .at(*span, "not supported by thoth")
                        .help(*why),
                    );
                    continue;
                }
                match (n.as_str(), v) {
                    (_, Literal::Invalid) => {}
                    ("bucket", Literal::Text(s)) => bucket = Some(s.clone()),
                    ("key", Literal::Text(s)) => key = Some(s.clone()),
                    ("region", Literal::Text(s)) => out.region = Some(s.clone()),
                    ("endpoint" | "endpoints.s3", Literal::Text(s)) => out.endpoint = Some(s.clone()),
                    ("use_path_style" | "force_path_style", Literal::Bool(b)) => out.use_path_style = *b,
                    ("workspace_key_prefix", Literal::Text(s)) => out.workspace_key_prefix = s.clone(),
                    ("use_lockfile", Literal::Bool(b)) => out.use_lockfile = *b,
                    ("profile", Literal::Text(s)) => out.profile = Some(s.clone()),
                    ("shared_credentials_files", Literal::List(l)) => out.shared_credentials_files = l.clone(),
                    ("shared_config_files", Literal::List(l)) => out.shared_config_files = l.clone(),
                    ("access_key", Literal::Text(s)) => out.access_key = Some(s.clone()),
                    ("secret_key", Literal::Text(s)) => out.secret_key = Some(s.clone()),
                    ("token", Literal::Text(s)) => out.token = Some(s.clone()),
                    // Checks the AWS SDK makes before it starts; thoth makes none of them.
                    (
                        "skip_credentials_validation"
                        | "skip_region_validation"
                        | "skip_requesting_account_id"
                        | "skip_metadata_api_check"
                        | "skip_s3_checksum",
                        Literal::Bool(_),
                    ) => {}
                    ("max_retries", Literal::Text(_)) => {}
                    (other, _) if other.starts_with("endpoints.") => diags.push(
                        Diagnostic::error(format!("`{other}` of the `s3` backend is not supported"))
                            .at(*span, "only the S3 endpoint is used")
                            .help("thoth talks to S3 only: keep `endpoints { s3 = ... }`"),
                    ),
                    (other, _) if S3_ATTRS.contains(&other) => {
                        let want = match other {
                            "use_path_style" | "force_path_style" | "use_lockfile" => "bool",
                            "shared_credentials_files" | "shared_config_files" => "list",
                            n if n.starts_with("skip_") => "bool",
                            _ => "string",
                        };
                        wrong_type(diags, other, *span, want);
                    }
                    (other, _) => diags.push(unknown_setting(other, *span, "s3", S3_ATTRS)),
                }
            }
            for (what, value) in [("bucket", &bucket), ("key", &key)] {
                let given = values.iter().any(|(n, _, v)| n == what && matches!(v, Literal::Invalid));
                if !given && value.as_deref().is_none_or(str::is_empty) {
                    diags.push(
                        Diagnostic::error(format!("the `s3` backend needs `{what}`"))
                            .at(label_span, format!("`{what}` is required"))
                            .help(format!("add `{what} = \"...\"` to the block")),
                    );
                }
            }
            out.bucket = bucket?;
            out.key = key?;
            if out.key.ends_with('/') || out.key.starts_with('/') {
                diags.push(
                    Diagnostic::error("the `s3` backend's `key` must name an object")
                        .at(label_span, "the key starts or ends with `/`")
                        .help("write it as `key = \"tenants/acme/thoth.state.json\"`"),
                );
                return None;
            }
            Some(BackendSettings::S3(Box::new(out)))
        }
        other => {
            let mut d = Diagnostic::error(format!("backend `{other}` is not supported"))
                .at(label_span, "not a backend thoth has");
            d = match did_you_mean(other, ["local", "pg", "s3"]) {
                Some(s) => d.help(format!("did you mean `{s}`? thoth keeps state in {SUPPORTED}")),
                None => d.help(format!("thoth keeps state in {SUPPORTED}")),
            };
            diags.push(d);
            None
        }
    }
}

fn wrong_type(diags: &mut Diagnostics, name: &str, span: Span, want: &str) {
    diags.push(
        Diagnostic::error(format!("backend setting `{name}` must be a {want}")).at(span, format!("expected a {want}")),
    );
}

fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

fn unknown_setting(name: &str, span: Span, backend: &str, known: &[&str]) -> Diagnostic {
    let mut d = Diagnostic::error(format!("unknown setting `{name}` of the `{backend}` backend"))
        .at(span, "not a setting of this backend");
    if let Some(s) = did_you_mean(name, known.iter().copied()) {
        d = d.help(format!("did you mean `{s}`?"));
    }
    d
}
