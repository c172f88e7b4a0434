//! Reading the configuration directory into a `Module`, checking what can be checked without
//! evaluating: block kinds, labels, resource types, attribute names and required attributes.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use hcl_edit::expr::{Expression, TraversalOperator};
use hcl_edit::structure::{Attribute, Block, Body, Structure};

use super::vars::parse_type;
use super::{
    CheckDecl, Condition, Expr, IgnoreChanges, Lifecycle, Module, ModuleCall, OutputDecl, ProviderDecl, Repetition,
    ResourceDecl, Scope, ScopeId, SourceFile, Validation, VariableDecl, ROOT,
};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::model::{Address, ModuleStep, Span, Value};
use crate::schema::Schema;
use crate::vecmap::VecMap;

const TOP_LEVEL_BLOCKS: &[&str] = &[
    "resource",
    "data",
    "variable",
    "locals",
    "output",
    "provider",
    "terraform",
    "module",
    "import",
    "moved",
    "removed",
    "check",
    "verify",
    "rollout",
];
const LATER_META: &[&str] = &["provider"];
/// Terraform Stacks files: a stack is planned with `--deployment`, never read as ordinary
/// configuration.
pub(super) const STACK_SUFFIXES: &[&str] = &[".tfcomponent.hcl", ".tfdeploy.hcl", ".tfstack.hcl"];
/// How deep module calls may nest.
const MAX_MODULE_DEPTH: usize = 16;

/// Where a block is collected: the file, the module it belongs to, that module's path, and
/// whether the file is a Terraform Stacks file.
#[derive(Clone, Copy)]
struct At<'a> {
    file: usize,
    scope: ScopeId,
    steps: &'a [ModuleStep],
    stack: bool,
}

/// Loads every `*.hcl` and `*.tf` file of `dir` that is not hidden (nor a Terraform Stacks
/// file), in name order, and then the modules it calls, each from its own directory.
pub fn load(dir: &Path, display_dir: &str) -> (Module, Diagnostics) {
    let mut module = Module { dir: dir.to_path_buf(), ..Module::default() };
    module.scopes[0].dir = dir.to_path_buf();
    let mut diags = Diagnostics::default();
    if load_scope(&mut module, &mut diags, ROOT, dir, display_dir, false) == 0 {
        let stack = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_str().is_some_and(|n| STACK_SUFFIXES.iter().any(|s| n.ends_with(s))));
        diags.push(if stack {
            Diagnostic::error(format!("`{}` holds a Terraform Stack", dir.display()))
                .help("plan one of its deployments with `--deployment NAME`")
        } else {
            Diagnostic::error(format!("no configuration files in `{}`", dir.display()))
                .help("put the tenant's `*.hcl` or `*.tf` files there, or point `--chdir` at them")
        });
    }
    load_calls(&mut module, &mut diags);
    (module, diags)
}

/// Loads a Terraform Stack for one deployment: the components, variables, provider and
/// outputs of its `*.tfcomponent.hcl` files as a root module whose components are module
/// calls, and the inputs the deployment of `*.tfdeploy.hcl` gives its variables.
pub fn load_stack(dir: &Path, display_dir: &str, deployment: &str) -> (Module, Diagnostics, Vec<(String, Value)>) {
    let mut module = Module { dir: dir.to_path_buf(), ..Module::default() };
    module.scopes[0].dir = dir.to_path_buf();
    let mut diags = Diagnostics::default();
    if load_scope(&mut module, &mut diags, ROOT, dir, display_dir, true) == 0 {
        diags.push(Diagnostic::error(format!("no Terraform Stacks files in `{}`", dir.display())).help(
            "a stack is `*.tfcomponent.hcl` and `*.tfdeploy.hcl` files; plan a configuration without `--deployment`",
        ));
        return (module, diags, Vec::new());
    }
    load_calls(&mut module, &mut diags);
    let mut inputs = Vec::new();
    match module.deployments.get(deployment) {
        None => {
            let names: Vec<String> = module.deployments.keys().map(|n| format!("`{n}`")).collect();
            let mut d = Diagnostic::error(format!("the stack has no deployment `{deployment}`"));
            d = match did_you_mean(deployment, module.deployments.keys().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None if names.is_empty() => {
                    d.help("declare one in a `*.tfdeploy.hcl` file: `deployment \"NAME\" { inputs = { ... } }`")
                }
                None => d.help(format!("its deployments are {}", names.join(", "))),
            };
            diags.push(d);
        }
        Some(super::DeploymentDecl { inputs: Some(expr), .. }) => {
            let ev = super::Evaluator::new(&module, BTreeMap::new());
            match ev.eval(expr) {
                Ok((Value::Map(values), _)) => inputs.extend(values),
                Ok((other, _)) => diags.push(
                    Diagnostic::error("a deployment's `inputs` must be an object")
                        .at(expr.span, format!("this is a {}", other.type_name())),
                ),
                Err(d) => diags.push(d.help("deployment inputs are literal values")),
            }
        }
        Some(super::DeploymentDecl { inputs: None, .. }) => {}
    }
    (module, diags, inputs)
}

/// Loads the modules the root module calls, and those they call, breadth first.
fn load_calls(module: &mut Module, diags: &mut Diagnostics) {
    let mut pending: std::collections::VecDeque<(ScopeId, String)> =
        module.root().calls.keys().map(|c| (ROOT, c.clone())).collect();
    while let Some((parent, name)) = pending.pop_front() {
        let call = &module.scope(parent).calls[&name];
        let (span, source) = (call.span, call.source.clone());
        let mut path = module.scope(parent).path.clone();
        path.push(name.clone());
        let resolved = match resolve_source(module, parent, &path, &source) {
            Ok(r) => r,
            Err(d) => {
                diags.push(d.at(span, "this module call"));
                continue;
            }
        };
        let (child_dir, child_display) = resolved;
        let recursive = std::iter::successors(Some(parent), |s| module.scope(*s).parent)
            .any(|s| same_dir(&module.scope(s).dir, &child_dir));
        if path.len() > MAX_MODULE_DEPTH || recursive {
            diags.push(
                Diagnostic::error(format!("module `{name}` calls itself, directly or through other modules"))
                    .at(span, "this call")
                    .help(format!(
                        "module calls may nest at most {MAX_MODULE_DEPTH} deep and never call a module they are in"
                    )),
            );
            continue;
        }
        let id = ScopeId(u32::try_from(module.scopes.len()).unwrap_or(u32::MAX));
        module.scopes.push(Scope { path, dir: child_dir.clone(), parent: Some(parent), ..Scope::default() });
        if let Some(call) = module.scopes[parent.0 as usize].calls.get_mut(&name) {
            call.child = Some(id);
        }
        if load_scope(module, diags, id, &child_dir, &child_display, false) == 0 {
            diags.push(
                Diagnostic::error(format!("module `{name}` has no configuration files in `{child_display}`"))
                    .at(span, "this module call")
                    .help("a module is a directory of `*.tf` files"),
            );
        }
        pending.extend(module.scope(id).calls.keys().map(|c| (id, c.clone())));
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Where a module call's source is on this machine: a local path (`./` or `../`) under the
/// calling module's directory, or a module `terraform init` fetched, as
/// `.terraform/modules/modules.json` records it. Nothing is ever downloaded.
fn resolve_source(
    module: &Module,
    parent: ScopeId,
    path: &[String],
    source: &str,
) -> Result<(PathBuf, String), Diagnostic> {
    let display = |p: &Path| {
        let text = p.to_string_lossy().replace('\\', "/");
        if text.is_empty() {
            ".".to_owned()
        } else {
            text
        }
    };
    if source.starts_with("./") || source.starts_with("../") {
        let dir = normalize(&module.scope(parent).dir.join(source));
        if !dir.is_dir() {
            return Err(Diagnostic::error(format!("the module source `{source}` is not a directory"))
                .help(format!("`{}` must be a directory of `*.tf` files", display(&dir))));
        }
        return Ok((dir.clone(), display(&dir)));
    }
    let key = path.join(".");
    let manifest = module.dir.join(".terraform").join("modules").join("modules.json");
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(rename = "Modules")]
        modules: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "Key")]
        key: String,
        #[serde(rename = "Dir")]
        dir: String,
    }
    let fetched = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|t| serde_json::from_str::<Manifest>(&t).ok())
        .and_then(|m| m.modules.into_iter().find(|e| e.key == key))
        .map(|e| normalize(&module.dir.join(e.dir)))
        .filter(|d| d.is_dir());
    match fetched {
        Some(dir) => Ok((dir.clone(), display(&dir))),
        None => Err(Diagnostic::error(format!("module `{key}` comes from `{source}`, which is not on this machine"))
            .help("thoth never downloads modules: run `terraform init` once (it fetches them into `.terraform/modules/`), or use a local path such as `./modules/NAME`")),
    }
}

/// A path without `.` steps and with `..` steps taken where they can be, as written (no
/// symbolic link is followed).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Whether a file name is one the configuration (or, for a stack, the stack) is read from.
fn is_config_file(name: &str, stack: bool) -> bool {
    // Hidden files (`.terraform.lock.hcl`) are tool metadata, not configuration.
    let stack_file = STACK_SUFFIXES.iter().any(|s| name.ends_with(s));
    !name.starts_with('.')
        && (name.ends_with(".hcl") || name.ends_with(".tf") || name.ends_with(".tf.json"))
        && stack_file == stack
}

/// Reads and collects the files of one module's directory into `scope`; returns how many
/// files it had.
fn load_scope(
    module: &mut Module,
    diags: &mut Diagnostics,
    scope: ScopeId,
    dir: &Path,
    display_dir: &str,
    stack: bool,
) -> usize {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut names = Vec::new();
            for entry in entries.filter_map(std::result::Result::ok) {
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    // A name that is not UTF-8 cannot be told apart from a configuration file
                    // by its ending alone: it is reported rather than skipped.
                    let lossy = entry.file_name().to_string_lossy().into_owned();
                    if is_config_file(&lossy, stack) {
                        diags.push(
                            Diagnostic::error(format!("the file name `{lossy}` in `{}` is not UTF-8", dir.display()))
                                .help("rename the file; configuration file names must be UTF-8"),
                        );
                    }
                    continue;
                };
                // A symbolic link is read as the file it points to.
                if is_config_file(&name, stack) && (entry.file_type().is_ok_and(|t| t.is_file() || t.is_symlink())) {
                    names.push(name);
                }
            }
            names
        }
        Err(e) => {
            diags.push(Diagnostic::error(format!("cannot read the configuration directory `{}`: {e}", dir.display())));
            return 0;
        }
    };
    names.sort();
    let first = module.files.len();
    let mut bad_json = Vec::new();
    for name in &names {
        let display =
            if display_dir.is_empty() || display_dir == "." { name.clone() } else { format!("{display_dir}/{name}") };
        match crate::files::read_text(&dir.join(name), crate::files::MAX_TEXT) {
            Ok(text) if name.ends_with(".tf.json") => match super::json::to_native(&text) {
                Ok(native) => module.files.push(SourceFile { name: display, text: native, scope }),
                Err(e) => bad_json.push((display, text, e)),
            },
            Ok(text) => module.files.push(SourceFile { name: display, text, scope }),
            Err(e) => diags.push(Diagnostic::error(format!("cannot read `{display}`: {e}"))),
        }
    }
    let steps = module.scope(scope).steps();
    for (part, part_diags) in collect_files(&module.files, first, At { file: first, scope, steps: &steps, stack }) {
        diags.extend(part_diags);
        merge(module, diags, part, scope);
    }
    // A `*.tf.json` file that is not JSON is kept as it is, for its report only.
    for (name, text, e) in bad_json {
        let offset = text.split_inclusive('\n').take(e.line().saturating_sub(1)).map(str::len).sum::<usize>()
            + e.column().saturating_sub(1);
        let offset = offset.min(text.len());
        diags.push(
            Diagnostic::error(format!("`{name}` is not valid JSON: {e}"))
                .at(Span::new(module.files.len(), offset..offset), "here")
                .help("a `*.tf.json` file holds one JSON object in Terraform's JSON syntax"),
        );
        module.files.push(SourceFile { name, text, scope });
    }
    names.len()
}

/// Files at least twice this large are parsed in parts of about this size, split between
/// top-level blocks: a syntax tree takes some twenty times the memory of its text, and each
/// thread holds one at a time.
const PART_BYTES: usize = 256 * 1024;

/// At most this many parts a file: a part also costs a scan of the spaces that stand in for
/// the text before it, which grows with the square of the number of parts.
const MAX_PARTS: usize = 16;

/// Parses and collects each file from `first` on as many threads as there are cores, and
/// returns what each declares, in file order. A large file is split between its top-level
/// blocks into parts parsed on their own; should a part not parse (a split that fell inside a
/// heredoc, or a real syntax error), the whole file is parsed again in one piece, so that
/// what is reported never depends on the split. A thread drops a part's syntax tree as soon
/// as it is collected, so that at most one tree per thread is alive at a time.
fn collect_files(files: &[SourceFile], first: usize, at: At<'_>) -> Vec<(Module, Diagnostics)> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let whole = |file: usize| {
        let mut part = Module::default();
        let mut diags = Diagnostics::default();
        let text = &files[file].text;
        match hcl_edit::parser::parse_body(text) {
            Ok(body) => collect(&mut part, &mut diags, At { file, ..at }, &body),
            Err(err) => diags.push(syntax_error(file, text, &err)),
        }
        (part, diags)
    };
    // The parts to parse: a file, and the byte range of it.
    let mut parts: Vec<(usize, usize, usize)> = Vec::new();
    let mut refused: Vec<(usize, (Module, Diagnostics))> = Vec::new();
    for (file, source) in files.iter().enumerate().skip(first) {
        let text = &source.text;
        let split = text.len() >= 2 * PART_BYTES;
        match super::scan(text, split) {
            Err(offset) => {
                let mut diags = Diagnostics::default();
                diags.push(nested_too_deep(file, offset));
                refused.push((file, (Module::default(), diags)));
            }
            Ok(tops) => {
                let size = PART_BYTES.max(text.len() / MAX_PARTS);
                let mut start = 0;
                for top in tops {
                    if top - start >= size && text.len() - top >= size / 2 {
                        parts.push((file, start, top));
                        start = top;
                    }
                }
                parts.push((file, start, text.len()));
            }
        }
    }
    // A part other than a whole file is parsed with spaces in place of the text before it, so
    // that every span in its tree is an offset into the file.
    let parse_part = |&(file, start, end): &(usize, usize, usize)| -> Option<(Module, Diagnostics)> {
        let text = &files[file].text;
        if start == 0 && end == text.len() {
            return Some(whole(file));
        }
        let mut padded = " ".repeat(start);
        padded.push_str(&text[start..end]);
        let body = hcl_edit::parser::parse_body(&padded).ok()?;
        let mut part = Module::default();
        let mut diags = Diagnostics::default();
        collect(&mut part, &mut diags, At { file, ..at }, &body);
        Some((part, diags))
    };
    // The largest parts go first, so that no thread is left with a large one at the end.
    let mut queue: Vec<usize> = (0..parts.len()).collect();
    queue.sort_by_key(|&i| std::cmp::Reverse(parts[i].2 - parts[i].1));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        while let Some(&i) = queue.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push((i, parse_part(&parts[i])));
        }
        done
    };
    let mut parsed: Vec<(usize, Option<(Module, Diagnostics)>)> = if threads <= 1 || parts.len() <= 1 {
        work()
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.min(parts.len())).map(|_| scope.spawn(work)).collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    };
    parsed.sort_by_key(|(i, _)| *i);
    // Files a part of which did not parse are parsed again whole.
    let failed: std::collections::BTreeSet<usize> =
        parsed.iter().filter(|(_, p)| p.is_none()).map(|(i, _)| parts[*i].0).collect();
    let mut out: Vec<(usize, (Module, Diagnostics))> = refused;
    for (i, part) in parsed {
        let file = parts[i].0;
        if let (Some(part), false) = (part, failed.contains(&file)) {
            out.push((file, part));
        }
    }
    for file in failed {
        out.push((file, whole(file)));
    }
    // A stable sort keeps each file's parts in the order they were split.
    out.sort_by_key(|(file, _)| *file);
    out.into_iter().map(|(_, part)| part).collect()
}

/// Adds what one file declares to its module, reporting what an earlier file declared already.
fn merge(module: &mut Module, diags: &mut Diagnostics, mut part: Module, scope: ScopeId) {
    fn add<K: Ord + std::fmt::Display, V>(
        into: &mut BTreeMap<K, V>,
        from: BTreeMap<K, V>,
        diags: &mut Diagnostics,
        what: &str,
        span: impl Fn(&V) -> Span,
    ) {
        if into.is_empty() {
            *into = from;
            return;
        }
        for (key, value) in from {
            match into.entry(key) {
                Entry::Occupied(prev) => {
                    diags.push(duplicate(&format!("{what} `{}`", prev.key()), span(&value), span(prev.get())));
                }
                Entry::Vacant(place) => {
                    place.insert(value);
                }
            }
        }
    }
    let from = std::mem::take(&mut part.scopes[0]);
    let into = &mut module.scopes[scope.0 as usize];
    add(&mut into.variables, from.variables, diags, "variable", |v| v.span);
    add(&mut into.locals, from.locals, diags, "local value", |e| e.key_span);
    add(&mut into.outputs, from.outputs, diags, "output", |o| o.span);
    add(&mut into.calls, from.calls, diags, "module", |c| c.span);
    add(&mut into.checks, from.checks, diags, "check", |c| c.span);
    add(&mut module.resources, part.resources, diags, "resource", |r| r.span);
    add(&mut module.deployments, part.deployments, diags, "deployment", |d| d.span);
    module.imports.extend(part.imports);
    module.moves.extend(part.moves);
    add(&mut module.rollouts, part.rollouts, diags, "rollout", |r| r.span);
    match (&module.verify, part.verify) {
        (Some(prev), Some(again)) => diags.push(duplicate("the `verify` block", again.span, prev.span)),
        (None, Some(verify)) => module.verify = Some(verify),
        (_, None) => {}
    }
    match (&module.provider, part.provider) {
        (Some(prev), Some(again)) => diags.push(duplicate("provider `thoth`", again.span, prev.span)),
        (None, Some(provider)) => module.provider = Some(provider),
        (_, None) => {}
    }
    match (&module.backend, part.backend) {
        (Some(prev), Some(again)) => diags.push(duplicate("the backend", again.span, prev.span)),
        (None, Some(backend)) => module.backend = Some(backend),
        (_, None) => {}
    }
}

/// The syntax error of one file of native syntax, placed in file `file`, if it has one.
pub fn syntax_check(file: usize, text: &str) -> Option<Diagnostic> {
    if let Some(offset) = super::too_deep(text) {
        return Some(nested_too_deep(file, offset));
    }
    hcl_edit::parser::parse_body(text).err().map(|err| syntax_error(file, text, &err))
}

pub(super) fn nested_too_deep(file: usize, offset: usize) -> Diagnostic {
    Diagnostic::error(format!("brackets nest more than {} levels deep", super::MAX_NESTING))
        .at(Span { file, start: offset, end: offset + 1 }, "one level too many")
        .help("flatten the expression, or move the data to a file read with `jsondecode(file(...))`")
}

/// The parser's error as a diagnostic. The parser may place an error inside a multi-byte
/// character; the span starts at the beginning of that character.
pub(super) fn syntax_error(file: usize, text: &str, err: &hcl_edit::parser::Error) -> Diagnostic {
    let mut offset = err.location().offset().min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let end = text[offset..].chars().next().map_or(offset, |c| offset + c.len_utf8());
    let message = err.message().lines().next().unwrap_or("invalid syntax").to_owned();
    Diagnostic::error(format!("syntax error: {message}"))
        .at(Span::new(file, offset..end), "here")
        .help("check for a missing quote, bracket or `=` just before this point")
}

pub(super) fn span_of(file: usize, node: &impl hcl_edit::Span) -> Span {
    node.span().map_or(Span { file, start: 0, end: 0 }, |r| Span::new(file, r))
}

fn expr_of(file: usize, attr: &Attribute) -> Expr {
    Expr::folded(&attr.value, span_of(file, &attr.value), span_of(file, &attr.key))
}

fn collect(module: &mut Module, diags: &mut Diagnostics, at: At<'_>, body: &Body) {
    let file = at.file;
    for structure in body {
        match structure {
            Structure::Attribute(attr) => diags.push(
                Diagnostic::error(format!("unexpected attribute `{}` at the top level", attr.key.as_str()))
                    .at(span_of(file, &attr.key), "not inside a block")
                    .help("top-level attributes are not allowed; put values in a `locals` block"),
            ),
            Structure::Block(block) => collect_block(module, diags, at, block),
        }
    }
}

fn labels(block: &Block) -> Vec<&str> {
    block.labels.iter().map(hcl_edit::structure::BlockLabel::as_str).collect()
}

fn header_span(file: usize, block: &Block) -> Span {
    let start = span_of(file, &block.ident);
    let end = block.labels.last().map_or(start, |l| span_of(file, l));
    Span { file, start: start.start, end: end.end }
}

fn expect_labels(diags: &mut Diagnostics, file: usize, block: &Block, want: &[&str]) -> bool {
    if block.labels.len() == want.len() {
        return true;
    }
    let kind = block.ident.as_str();
    let example =
        std::iter::once(kind.to_owned()).chain(want.iter().map(|w| format!("\"{w}\""))).collect::<Vec<_>>().join(" ");
    diags.push(
        Diagnostic::error(format!("a `{kind}` block takes {} label(s), found {}", want.len(), block.labels.len()))
            .at(header_span(file, block), "wrong number of labels")
            .help(format!("write it as `{example} {{ ... }}`")),
    );
    false
}

fn collect_block(module: &mut Module, diags: &mut Diagnostics, at: At<'_>, block: &Block) {
    let file = at.file;
    let kind = block.ident.as_str();
    let span = header_span(file, block);
    match kind {
        "resource" | "data" => {
            if expect_labels(diags, file, block, &["TYPE", "NAME"]) {
                collect_resource(module, diags, at, block);
            }
        }
        "variable" => {
            if expect_labels(diags, file, block, &["NAME"]) {
                collect_variable(module, diags, file, block);
            }
        }
        "locals" => {
            for structure in &block.body {
                match structure {
                    Structure::Attribute(attr) => {
                        let name = attr.key.as_str().to_owned();
                        let expr = expr_of(file, attr);
                        let locals = &mut module.scopes[0].locals;
                        if let Some(prev) = locals.get(&name) {
                            diags.push(duplicate(&format!("local value `{name}`"), expr.key_span, prev.key_span));
                        } else {
                            locals.insert(name, expr);
                        }
                    }
                    Structure::Block(b) => diags.push(unexpected_block(file, b, "locals")),
                }
            }
        }
        "output" => {
            if expect_labels(diags, file, block, &["NAME"]) {
                collect_output(module, diags, at, block);
            }
        }
        "module" if !at.stack => {
            if expect_labels(diags, file, block, &["NAME"]) {
                collect_module_call(module, diags, at, block);
            }
        }
        "component" if at.stack => {
            if expect_labels(diags, file, block, &["NAME"]) {
                collect_module_call(module, diags, at, block);
            }
        }
        "provider" if at.stack => collect_stack_provider(module, diags, file, block),
        "import" | "moved" | "removed" if at.scope != ROOT => diags.push(
            Diagnostic::error(format!("`{kind}` blocks belong in the root module"))
                .at(span, "inside a module")
                .help("move it to the root module and name the target with its module path, such as `module.tenant.thoth_fleet.ring`"),
        ),
        "import" => {
            if expect_labels(diags, file, block, &[]) {
                collect_import(module, diags, file, block);
            }
        }
        "moved" | "removed" => {
            if expect_labels(diags, file, block, &[]) {
                collect_move(module, diags, file, block);
            }
        }
        "deployment" if at.stack => {
            if expect_labels(diags, file, block, &["NAME"]) {
                let name = labels(block)[0].to_owned();
                let mut inputs = None;
                for structure in &block.body {
                    match structure {
                        Structure::Attribute(a) if a.key.as_str() == "inputs" => inputs = Some(expr_of(file, a)),
                        // The HCP Terraform settings of a deployment do not concern a thoth run.
                        Structure::Attribute(_) => {}
                        Structure::Block(b) => diags.push(unexpected_block(file, b, "deployment")),
                    }
                }
                module.deployments.insert(name, super::DeploymentDecl { span, inputs });
            }
        }
        // Stacks blocks about HCP Terraform (its tokens, stores and orchestration rules), which
        // a thoth run does not use.
        "required_providers"
        | "identity_token"
        | "store"
        | "orchestrate"
        | "publish_output"
        | "upstream_input"
        | "deployment_group"
        | "deployment_auto_approve"
            if at.stack => {}
        "provider" if at.scope != ROOT => diags.push(
            Diagnostic::error("a module cannot configure the provider")
                .at(span, "provider configuration inside a module")
                .help("configure `provider \"thoth\"` in the root module only; modules use it as it is"),
        ),
        "provider" => {
            if expect_labels(diags, file, block, &["NAME"]) {
                let name = labels(block)[0];
                if name != "thoth" {
                    diags.push(
                        Diagnostic::error(format!("unknown provider `{name}`"))
                            .at(span, "only the `thoth` provider is managed here")
                            .help("remove this block, or rename it to `provider \"thoth\"`"),
                    );
                } else if let Some(prev) = &module.provider {
                    diags.push(duplicate("provider `thoth`", span, prev.span));
                } else {
                    let mut decl = ProviderDecl { span, attributes: VecMap::new() };
                    for structure in &block.body {
                        match structure {
                            Structure::Attribute(attr) => {
                                decl.attributes.insert(attr.key.as_str().to_owned(), expr_of(file, attr));
                            }
                            Structure::Block(b) => diags.push(unexpected_block(file, b, "provider")),
                        }
                    }
                    module.provider = Some(decl);
                }
            }
        }
        "terraform" => {
            super::backend::collect(module, diags, file, block);
            if at.scope != ROOT {
                if let Some(backend) = module.backend.take() {
                    diags.push(
                        Diagnostic::warning("a backend in a module is ignored")
                            .at(backend.span, "only the root module's backend counts")
                            .help("declare the backend in the root module"),
                    );
                }
            }
        }
        "check" => {
            if expect_labels(diags, file, block, &["NAME"]) {
                collect_check(module, diags, at, block);
            }
        }
        "verify" | "rollout" if at.scope != ROOT => diags.push(
            Diagnostic::error(format!("`{kind}` blocks belong in the root module"))
                .at(span, "inside a module")
                .help("move it to the root module"),
        ),
        "verify" => {
            if expect_labels(diags, file, block, &[]) {
                collect_verify(module, diags, file, block);
            }
        }
        "rollout" => {
            if expect_labels(diags, file, block, &["NAME"]) {
                collect_rollout(module, diags, file, block);
            }
        }
        _ => {
            let mut d = Diagnostic::error(format!("unknown block type `{kind}`"))
                .at(span_of(file, &block.ident), "not a known block type");
            if let Some(s) = did_you_mean(kind, TOP_LEVEL_BLOCKS.iter().copied()) {
                d = d.help(format!("did you mean `{s}`?"));
            } else {
                d = d.help(format!(
                    "expected one of {}",
                    TOP_LEVEL_BLOCKS.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ")
                ));
            }
            diags.push(d);
        }
    }
}

fn duplicate(what: &str, span: Span, previous: Span) -> Diagnostic {
    Diagnostic::error(format!("{what} is declared twice"))
        .at(span, "declared again here")
        .related(previous, "first declared here")
        .help("names must be unique within the configuration directory")
}

pub(super) fn unexpected_block(file: usize, block: &Block, parent: &str) -> Diagnostic {
    Diagnostic::error(format!("unexpected block `{}` inside `{parent}`", block.ident.as_str()))
        .at(span_of(file, &block.ident), "not allowed here")
        .help(format!("`{parent}` takes attributes only"))
}

fn collect_variable(module: &mut Module, diags: &mut Diagnostics, file: usize, block: &Block) {
    let variables = &mut module.scopes[0].variables;
    let name = labels(block)[0].to_owned();
    let span = header_span(file, block);
    let mut decl = VariableDecl {
        name: name.clone(),
        span,
        type_constraint: None,
        default: None,
        sensitive: false,
        description: None,
        validations: Vec::new(),
    };
    for structure in &block.body {
        match structure {
            Structure::Attribute(attr) => {
                let key = attr.key.as_str();
                let expr = expr_of(file, attr);
                match key {
                    "type" => match parse_type(&attr.value) {
                        Some(t) => decl.type_constraint = Some(t),
                        None => diags.push(
                            Diagnostic::error(format!("invalid type for variable `{name}`"))
                                .at(expr.span, "not a type")
                                .help(
                                    "use string, number, bool, any, list(TYPE), set(TYPE), map(TYPE) or object({...})",
                                ),
                        ),
                    },
                    "default" => decl.default = Some(expr),
                    "sensitive" => match &attr.value {
                        Expression::Bool(b) => decl.sensitive = *b.value(),
                        _ => diags.push(literal_expected(expr.span, "`sensitive`", "true or false")),
                    },
                    "description" => match &attr.value {
                        Expression::String(s) => decl.description = Some(s.value().clone()),
                        _ => diags.push(literal_expected(expr.span, "`description`", "a string")),
                    },
                    "nullable" | "ephemeral" => {}
                    _ => diags.push(unknown_name(
                        key,
                        expr.key_span,
                        "variable",
                        &["type", "default", "sensitive", "description", "nullable"],
                    )),
                }
            }
            Structure::Block(b) if b.ident.as_str() == "validation" => {
                let mut condition = None;
                let mut error_message = None;
                for inner in &b.body {
                    match inner {
                        Structure::Attribute(a) if a.key.as_str() == "condition" => condition = Some(expr_of(file, a)),
                        Structure::Attribute(a) if a.key.as_str() == "error_message" => {
                            error_message = Some(expr_of(file, a));
                        }
                        Structure::Attribute(a) => diags.push(unknown_name(
                            a.key.as_str(),
                            span_of(file, &a.key),
                            "validation",
                            &["condition", "error_message"],
                        )),
                        Structure::Block(inner) => diags.push(unexpected_block(file, inner, "validation")),
                    }
                }
                match (condition, error_message) {
                    (Some(condition), Some(error_message)) => {
                        decl.validations.push(Validation { condition, error_message });
                    }
                    _ => diags.push(
                        Diagnostic::error("a `validation` block needs `condition` and `error_message`")
                            .at(span_of(file, &b.ident), "incomplete validation")
                            .help("add `condition = <bool expression>` and `error_message = \"...\"`"),
                    ),
                }
            }
            Structure::Block(b) => diags.push(unexpected_block(file, b, "variable")),
        }
    }
    if let Some(prev) = variables.get(&name) {
        diags.push(duplicate(&format!("variable `{name}`"), span, prev.span));
    } else {
        variables.insert(name, decl);
    }
}

fn literal_expected(span: Span, what: &str, expected: &str) -> Diagnostic {
    Diagnostic::error(format!("{what} must be a literal value")).at(span, format!("expected {expected}"))
}

fn unknown_name(name: &str, span: Span, within: &str, known: &[&str]) -> Diagnostic {
    let mut d = Diagnostic::error(format!("unknown argument `{name}` in {within}")).at(span, "not expected here");
    if let Some(s) = did_you_mean(name, known.iter().copied()) {
        d = d.help(format!("did you mean `{s}`?"));
    }
    d
}

fn collect_output(module: &mut Module, diags: &mut Diagnostics, at: At<'_>, block: &Block) {
    let file = at.file;
    let name = labels(block)[0].to_owned();
    let span = header_span(file, block);
    let mut value = None;
    let mut sensitive = false;
    let mut description = None;
    let mut preconditions = Vec::new();
    for structure in &block.body {
        match structure {
            Structure::Attribute(attr) => {
                let expr = expr_of(file, attr);
                match attr.key.as_str() {
                    "value" => value = Some(expr),
                    "sensitive" => match &attr.value {
                        Expression::Bool(b) => sensitive = *b.value(),
                        _ => diags.push(literal_expected(expr.span, "`sensitive`", "true or false")),
                    },
                    "description" => match &attr.value {
                        Expression::String(s) => description = Some(s.value().clone()),
                        _ => diags.push(literal_expected(expr.span, "`description`", "a string")),
                    },
                    "depends_on" => {}
                    // A stack's outputs declare their type.
                    "type" | "ephemeral" if at.stack => {}
                    other => diags.push(unknown_name(
                        other,
                        expr.key_span,
                        "output",
                        &["value", "sensitive", "description", "depends_on"],
                    )),
                }
            }
            Structure::Block(b) if b.ident.as_str() == "precondition" => {
                preconditions.extend(condition(diags, file, b));
            }
            Structure::Block(b) => diags.push(unexpected_block(file, b, "output")),
        }
    }
    let Some(value) = value else {
        diags.push(
            Diagnostic::error(format!("output `{name}` has no `value`"))
                .at(span, "missing `value`")
                .help("add `value = <expression>`"),
        );
        return;
    };
    let outputs = &mut module.scopes[0].outputs;
    if let Some(prev) = outputs.get(&name) {
        diags.push(duplicate(&format!("output `{name}`"), span, prev.span));
    } else {
        outputs.insert(name.clone(), OutputDecl { name, span, value, sensitive, description, preconditions });
    }
}

fn collect_resource(module: &mut Module, diags: &mut Diagnostics, at: At<'_>, block: &Block) {
    let file = at.file;
    let kind = block.ident.as_str();
    let ls = labels(block);
    let (type_name, name) = (ls[0], ls[1]);
    let type_span = span_of(file, &block.labels[0]);
    let span = header_span(file, block);
    let schema = Schema::get();
    let data = kind == "data";
    let found = if data { schema.data_source(type_name) } else { schema.resource(type_name) };
    let Some(rt) = found else {
        let what = if data { "data source" } else { "resource type" };
        let names: Vec<&str> =
            if data { schema.data_source_names().collect() } else { schema.resource_names().collect() };
        let mut d = Diagnostic::error(format!("unknown {what} `{type_name}`")).at(type_span, format!("no such {what}"));
        d = match did_you_mean(type_name, names.iter().copied()) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!("known: {}", names.join(", "))),
        };
        diags.push(d);
        return;
    };
    let mut address = Address::managed(type_name, name).in_module(at.steps);
    if data {
        address.mode = crate::model::Mode::Data;
    }
    let mut decl = ResourceDecl {
        address: address.clone(),
        scope: at.scope,
        span,
        attributes: VecMap::new(),
        depends_on: Vec::new(),
        repetition: None,
        lifecycle: Lifecycle::default(),
        check: None,
    };
    // Sorted once at the end: attributes are rarely written in name order.
    let mut attributes = Vec::new();
    for structure in &block.body {
        match structure {
            Structure::Attribute(attr) => {
                let key = attr.key.as_str();
                let expr = expr_of(file, attr);
                if key == "depends_on" {
                    decl.depends_on = depends_on(diags, at, &attr.value, expr.span);
                } else if data && key == "lifecycle" {
                    diags.push(
                        Diagnostic::error("data sources have no `lifecycle`").at(expr.key_span, "not allowed here"),
                    );
                } else if key == "count" || key == "for_each" {
                    if decl.repetition.is_some() {
                        diags.push(
                            Diagnostic::error(format!("`{address}` has both `count` and `for_each`"))
                                .at(expr.key_span, "the second one")
                                .help("use one of them"),
                        );
                    } else {
                        decl.repetition =
                            Some(if key == "count" { Repetition::Count(expr) } else { Repetition::ForEach(expr) });
                    }
                } else if LATER_META.contains(&key) {
                    diags.push(
                        Diagnostic::error(format!("`{key}` is not supported by this version of thoth"))
                            .at(expr.key_span, "not supported")
                            .help("declare each object as its own resource block"),
                    );
                } else if let Some(a) = rt.attribute(key) {
                    if a.is_settable() {
                        attributes.push((key.to_owned(), expr));
                    } else {
                        diags.push(
                            Diagnostic::error(format!(
                                "`{key}` of `{type_name}` is set by the control plane and cannot be configured"
                            ))
                            .at(expr.key_span, "computed attribute")
                            .help(
                                "remove it; it can still be referenced as `{type_name}.{name}.{key}`"
                                    .replace("{type_name}", type_name)
                                    .replace("{name}", name)
                                    .replace("{key}", key),
                            ),
                        );
                    }
                } else if key == "id" || key == "tenant_id" {
                    diags.push(
                        Diagnostic::error(format!("`{key}` is set by thoth and cannot be configured"))
                            .at(expr.key_span, "computed attribute")
                            .help("remove it"),
                    );
                } else {
                    let mut d = Diagnostic::error(format!("unknown attribute `{key}` for `{type_name}`"))
                        .at(expr.key_span, "not an attribute of this type");
                    if let Some(s) = did_you_mean(key, rt.settable_names().chain(["depends_on"])) {
                        d = d.help(format!("did you mean `{s}`?"));
                    } else if let Some(owner) = schema.resource_names().find(|t| {
                        schema
                            .resource(t)
                            .and_then(|r| r.attribute(key))
                            .is_some_and(super::super::schema::Attribute::is_settable)
                    }) {
                        d = d.help(format!("`{key}` is an attribute of `{owner}`"));
                    }
                    diags.push(d);
                }
            }
            Structure::Block(b) => {
                let ident = b.ident.as_str();
                if ident == "lifecycle" {
                    decl.lifecycle = lifecycle(diags, file, b, rt);
                } else {
                    let mut d = Diagnostic::error(format!("unexpected block `{ident}` in `{type_name}`"))
                        .at(span_of(file, &b.ident), "attributes of this type are plain values");
                    if rt.attribute(ident).is_some() {
                        d = d.help(format!("write it as an attribute: `{ident} = ...`"));
                    }
                    diags.push(d);
                }
            }
        }
    }
    decl.attributes = attributes.into_iter().collect();
    for (attr_name, attr) in &rt.attributes {
        if attr.mode == crate::schema::AttrMode::Required && !decl.attributes.contains_key(attr_name) {
            diags.push(
                Diagnostic::error(format!("missing required attribute `{attr_name}` in `{address}`"))
                    .at(span, format!("`{attr_name}` is required"))
                    .help(format!("add `{attr_name} = ...` to the block")),
            );
        }
    }
    match module.resources.entry(address) {
        Entry::Occupied(prev) => diags.push(duplicate(&format!("resource `{}`", prev.key()), span, prev.get().span)),
        Entry::Vacant(place) => {
            place.insert(decl);
        }
    }
}

const LIFECYCLE_ARGS: &[&str] = &["prevent_destroy", "create_before_destroy", "ignore_changes", "replace_triggered_by"];

/// Reads a `lifecycle` block. Its arguments are literal, as in Terraform, except the
/// references of `replace_triggered_by`.
fn lifecycle(diags: &mut Diagnostics, file: usize, block: &Block, rt: &crate::schema::ResourceType) -> Lifecycle {
    let mut out = Lifecycle::default();
    for structure in &block.body {
        let attr = match structure {
            Structure::Attribute(attr) => attr,
            Structure::Block(b) if b.ident.as_str() == "precondition" => {
                out.preconditions.extend(condition(diags, file, b));
                continue;
            }
            Structure::Block(b) if b.ident.as_str() == "postcondition" => {
                out.postconditions.extend(condition(diags, file, b));
                continue;
            }
            Structure::Block(b) => {
                diags.push(
                    unexpected_block(file, b, "lifecycle")
                        .help("`lifecycle` takes attributes and `precondition` or `postcondition` blocks"),
                );
                continue;
            }
        };
        let expr = expr_of(file, attr);
        match attr.key.as_str() {
            "prevent_destroy" | "create_before_destroy" => match &attr.value {
                Expression::Bool(b) => {
                    if attr.key.as_str() == "prevent_destroy" {
                        out.prevent_destroy = *b.value();
                    } else {
                        out.create_before_destroy = *b.value();
                    }
                }
                _ => diags.push(literal_expected(expr.span, &format!("`{}`", attr.key.as_str()), "true or false")),
            },
            "ignore_changes" => match &attr.value {
                Expression::Variable(v) if v.as_str() == "all" => out.ignore_changes = IgnoreChanges::All,
                Expression::Array(items) => {
                    let mut names = Vec::new();
                    for item in items {
                        let name = match item {
                            Expression::Variable(v) => Some(v.as_str().to_owned()),
                            Expression::String(s) => Some(s.value().clone()),
                            _ => None,
                        };
                        match name {
                            Some(n) if rt.attribute(&n).is_some_and(crate::schema::Attribute::is_settable) => {
                                names.push(n);
                            }
                            Some(n) => {
                                let mut d =
                                    Diagnostic::error(format!("`ignore_changes` names unknown attribute `{n}`"))
                                        .at(span_of(file, item), "not a configurable attribute of this type");
                                if let Some(s) = did_you_mean(&n, rt.settable_names()) {
                                    d = d.help(format!("did you mean `{s}`?"));
                                }
                                diags.push(d);
                            }
                            None => diags.push(
                                Diagnostic::error("`ignore_changes` entries must be attribute names")
                                    .at(span_of(file, item), "not an attribute name"),
                            ),
                        }
                    }
                    out.ignore_changes = IgnoreChanges::Some(names);
                }
                _ => diags.push(
                    Diagnostic::error("`ignore_changes` must be a list of attribute names or `all`")
                        .at(expr.span, "not a list")
                        .help("write `ignore_changes = [name, other_name]`"),
                ),
            },
            "replace_triggered_by" => match &attr.value {
                Expression::Array(items) => {
                    for item in items {
                        out.replace_triggered_by.push(Expr::tree(item.clone(), span_of(file, item), expr.key_span));
                    }
                }
                _ => diags.push(
                    Diagnostic::error("`replace_triggered_by` must be a list of resource references")
                        .at(expr.span, "not a list")
                        .help("write `replace_triggered_by = [thoth_fleet.prod]`"),
                ),
            },
            other => diags.push(unknown_name(other, expr.key_span, "lifecycle", LIFECYCLE_ARGS)),
        }
    }
    out
}

/// The settings a `verify` block takes.
pub(crate) const VERIFY_ARGS: &[&str] =
    &["window_hours", "decision_window_hours", "stale_after", "min_endpoints", "require_current_runtime", "skip"];

fn collect_verify(module: &mut Module, diags: &mut Diagnostics, file: usize, block: &Block) {
    let mut decl = super::VerifyDecl { span: header_span(file, block), attributes: VecMap::new() };
    for structure in &block.body {
        match structure {
            Structure::Attribute(a) if VERIFY_ARGS.contains(&a.key.as_str()) => {
                decl.attributes.insert(a.key.as_str().to_owned(), expr_of(file, a));
            }
            Structure::Attribute(a) => {
                diags.push(unknown_name(a.key.as_str(), span_of(file, &a.key), "verify", VERIFY_ARGS));
            }
            Structure::Block(b) => diags.push(unexpected_block(file, b, "verify")),
        }
    }
    module.verify = Some(decl);
}

/// Reads a `rollout "NAME"` block: its stages in order, and the gates between them.
fn collect_rollout(module: &mut Module, diags: &mut Diagnostics, file: usize, block: &Block) {
    let name = labels(block)[0].to_owned();
    let span = header_span(file, block);
    let mut rollout = super::RolloutDecl { name: name.clone(), span, stages: Vec::new(), gate: None };
    for structure in &block.body {
        match structure {
            Structure::Block(b) if b.ident.as_str() == "stage" => {
                if let Some(stage) = stage(diags, file, b, &name) {
                    match rollout.stages.iter().find(|s| s.name == stage.name) {
                        Some(prev) => diags.push(duplicate(&format!("stage `{}`", stage.name), stage.span, prev.span)),
                        None => rollout.stages.push(stage),
                    }
                }
            }
            Structure::Block(b) if b.ident.as_str() == "gate" => rollout.gate = Some(gate(diags, file, b)),
            Structure::Block(b) => diags.push(
                Diagnostic::error(format!("unexpected block `{}` inside `rollout`", b.ident.as_str()))
                    .at(span_of(file, &b.ident), "not allowed here")
                    .help("a `rollout` holds `stage \"NAME\" { targets = [...] }` blocks and a `gate`"),
            ),
            Structure::Attribute(a) => diags.push(
                Diagnostic::error(format!("unexpected attribute `{}` in `rollout`", a.key.as_str()))
                    .at(span_of(file, &a.key), "not allowed here")
                    .help("a `rollout` holds `stage` blocks and a `gate`"),
            ),
        }
    }
    if rollout.stages.is_empty() {
        diags.push(
            Diagnostic::error(format!("rollout `{name}` has no stages"))
                .at(span, "nothing to roll out")
                .help("add `stage \"canary\" { targets = [...] }` blocks, in the order they apply"),
        );
    }
    module.rollouts.insert(name, rollout);
}

/// Reads a `stage "NAME" { targets = [...]  gate { ... } }` block.
fn stage(diags: &mut Diagnostics, file: usize, block: &Block, rollout: &str) -> Option<super::StageDecl> {
    if !expect_labels(diags, file, block, &["NAME"]) {
        return None;
    }
    let name = labels(block)[0].to_owned();
    let mut stage =
        super::StageDecl { name: name.clone(), span: header_span(file, block), targets: Vec::new(), gate: None };
    for inner in &block.body {
        match inner {
            Structure::Attribute(a) if a.key.as_str() == "targets" => {
                stage.targets = references_listed(diags, file, a, "a resource address or `module.NAME`");
            }
            Structure::Attribute(a) => {
                diags.push(unknown_name(a.key.as_str(), span_of(file, &a.key), "stage", &["targets"]));
            }
            Structure::Block(g) if g.ident.as_str() == "gate" => stage.gate = Some(gate(diags, file, g)),
            Structure::Block(g) => diags.push(unexpected_block(file, g, "stage")),
        }
    }
    if stage.targets.is_empty() {
        diags.push(
            Diagnostic::error(format!("stage `{name}` of rollout `{rollout}` has no targets"))
                .at(stage.span, "nothing to roll out")
                .help("add `targets = [thoth_fleet.canary, module.ring[\"canary\"]]`"),
        );
    }
    Some(stage)
}

/// Reads a `gate { checks = [check.NAME, ...]  soak = "30m" }` block.
fn gate(diags: &mut Diagnostics, file: usize, block: &Block) -> super::GateDecl {
    let mut out =
        super::GateDecl { span: header_span(file, block), checks: Vec::new(), soak: std::time::Duration::ZERO };
    for structure in &block.body {
        match structure {
            Structure::Attribute(a) if a.key.as_str() == "checks" => {
                out.checks = references_listed(diags, file, a, "`check.NAME`");
                for (text, at) in &out.checks {
                    if !text.starts_with("check.") || text.matches('.').count() != 1 {
                        diags.push(
                            Diagnostic::error(format!("`{text}` is not a check block"))
                                .at(*at, "expected `check.NAME`")
                                .help("a gate passes when the named `check` blocks of the root module pass"),
                        );
                    }
                }
            }
            Structure::Attribute(a) if a.key.as_str() == "soak" => {
                let expr = expr_of(file, a);
                match &a.value {
                    Expression::String(s) => match crate::state::lock::parse_duration(s.value()) {
                        Ok(d) => out.soak = d,
                        Err(e) => diags.push(Diagnostic::error(e).at(expr.span, "not a duration")),
                    },
                    _ => diags.push(literal_expected(expr.span, "`soak`", "a duration such as \"30m\"")),
                }
            }
            Structure::Attribute(a) => {
                diags.push(unknown_name(a.key.as_str(), span_of(file, &a.key), "gate", &["checks", "soak"]));
            }
            Structure::Block(b) => diags.push(unexpected_block(file, b, "gate")),
        }
    }
    out
}

/// A list of references written as they are (`[thoth_fleet.a, module.m["k"]]`), each with
/// its span.
fn references_listed(diags: &mut Diagnostics, file: usize, attr: &Attribute, what: &str) -> Vec<(String, Span)> {
    let Expression::Array(items) = &attr.value else {
        diags.push(
            Diagnostic::error(format!("`{}` must be a list of references", attr.key.as_str()))
                .at(span_of(file, &attr.value), "not a list")
                .help(format!("each element is {what}, written without quotes")),
        );
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let at = span_of(file, item);
            if let Expression::Traversal(_) | Expression::Variable(_) = item {
                return Some((item.to_string().split_whitespace().collect::<String>(), at));
            }
            diags.push(
                Diagnostic::error("expected a reference").at(at, "not a reference").help(format!("write {what}")),
            );
            None
        })
        .collect()
}

/// Reads a `check "NAME"` block: its `assert` blocks, and the data sources it reads, which
/// become data sources of the module marked with the check's name.
fn collect_check(module: &mut Module, diags: &mut Diagnostics, at: At<'_>, block: &Block) {
    let file = at.file;
    let name = labels(block)[0].to_owned();
    let span = header_span(file, block);
    let mut asserts = Vec::new();
    for structure in &block.body {
        match structure {
            Structure::Block(b) if b.ident.as_str() == "assert" => asserts.extend(condition(diags, file, b)),
            Structure::Block(b) if b.ident.as_str() == "data" => {
                if !expect_labels(diags, file, b, &["TYPE", "NAME"]) {
                    continue;
                }
                let before: BTreeSet<Address> = module.resources.keys().cloned().collect();
                collect_resource(module, diags, at, b);
                for (address, decl) in &mut module.resources {
                    if !before.contains(address) {
                        decl.check = Some(name.clone());
                    }
                }
            }
            Structure::Block(b) => diags.push(
                Diagnostic::error(format!("unexpected block `{}` inside `check`", b.ident.as_str()))
                    .at(span_of(file, &b.ident), "not allowed here")
                    .help("a `check` block holds `assert` blocks and at most one `data` block"),
            ),
            Structure::Attribute(a) => diags.push(
                Diagnostic::error(format!("unexpected attribute `{}` in `check`", a.key.as_str()))
                    .at(span_of(file, &a.key), "not allowed here")
                    .help("write the condition in an `assert { condition = ... error_message = ... }` block"),
            ),
        }
    }
    if asserts.is_empty() {
        diags.push(
            Diagnostic::error(format!("check `{name}` has no `assert` block"))
                .at(span, "nothing to check")
                .help("add `assert { condition = ... error_message = \"...\" }`"),
        );
        return;
    }
    let checks = &mut module.scopes[0].checks;
    if let Some(prev) = checks.get(&name) {
        diags.push(duplicate(&format!("check `{name}`"), span, prev.span));
    } else {
        checks.insert(name.clone(), CheckDecl { name, span, asserts });
    }
}

/// Reads the `condition` and `error_message` of an `assert`, `precondition` or
/// `postcondition` block.
fn condition(diags: &mut Diagnostics, file: usize, block: &Block) -> Option<Condition> {
    let kind = block.ident.as_str();
    let span = header_span(file, block);
    let (mut condition, mut error_message) = (None, None);
    for structure in &block.body {
        match structure {
            Structure::Attribute(a) if a.key.as_str() == "condition" => condition = Some(expr_of(file, a)),
            Structure::Attribute(a) if a.key.as_str() == "error_message" => error_message = Some(expr_of(file, a)),
            Structure::Attribute(a) => {
                diags.push(unknown_name(a.key.as_str(), span_of(file, &a.key), kind, &["condition", "error_message"]));
            }
            Structure::Block(b) => diags.push(unexpected_block(file, b, kind)),
        }
    }
    match (condition, error_message) {
        (Some(condition), Some(error_message)) => Some(Condition { span, condition, error_message }),
        (c, _) => {
            let missing = if c.is_none() { "condition" } else { "error_message" };
            diags.push(
                Diagnostic::error(format!("`{kind}` has no `{missing}`"))
                    .at(span, format!("missing `{missing}`"))
                    .help("write both `condition = <bool expression>` and `error_message = \"...\"`"),
            );
            None
        }
    }
}

/// Reads `depends_on = [thoth_x.y, module.z, ...]`: resources of the same module, or whole
/// module calls (every resource in them), in the module's own address space.
fn depends_on(diags: &mut Diagnostics, at: At<'_>, value: &Expression, span: Span) -> Vec<(Address, Span)> {
    let file = at.file;
    let Expression::Array(items) = value else {
        diags.push(
            Diagnostic::error("`depends_on` must be a list of resource references")
                .at(span, "not a list")
                .help("write `depends_on = [thoth_fleet.prod]`"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let item_span = span_of(file, item);
        let address = match item {
            Expression::Traversal(t) => match (&t.expr, t.operators.as_slice()) {
                (Expression::Variable(root), [op]) => match op.value() {
                    TraversalOperator::GetAttr(name) if root.as_str() == "module" => {
                        // A whole module: its address is the call's, with an empty type.
                        let mut steps = at.steps.to_vec();
                        steps.push(ModuleStep { name: name.as_str().to_owned(), key: None });
                        Some(Address { module: steps, ..Address::managed("", "") })
                    }
                    TraversalOperator::GetAttr(name) => {
                        Some(Address::managed(root.as_str(), name.as_str()).in_module(at.steps))
                    }
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        match address {
            Some(a) => out.push((a, item_span)),
            None => diags.push(
                Diagnostic::error("`depends_on` entries must name a resource or a module")
                    .at(item_span, "not a resource reference")
                    .help("write the address without quotes, such as `thoth_fleet.prod` or `module.tenant`"),
            ),
        }
    }
    out
}

/// Reads `import { to = ADDR  id = "..."  for_each = ... }`.
fn collect_import(module: &mut Module, diags: &mut Diagnostics, file: usize, block: &Block) {
    let span = header_span(file, block);
    let (mut to, mut id, mut for_each) = (None, None, None);
    for structure in &block.body {
        match structure {
            Structure::Attribute(attr) => {
                let expr = expr_of(file, attr);
                match attr.key.as_str() {
                    "to" => to = Some(expr),
                    "id" => id = Some(expr),
                    "for_each" => for_each = Some(expr),
                    "provider" => {}
                    other => diags.push(unknown_name(other, expr.key_span, "import", &["to", "id", "for_each"])),
                }
            }
            Structure::Block(b) => diags.push(unexpected_block(file, b, "import")),
        }
    }
    match (to, id) {
        (Some(to), Some(id)) => module.imports.push(super::ImportDecl { span, to, id, for_each }),
        _ => diags.push(
            Diagnostic::error("an `import` block needs `to` and `id`")
                .at(span, "incomplete import")
                .help("write `import { to = thoth_fleet.claims  id = \"flt_123\" }`"),
        ),
    }
}

/// Reads `moved { from = A  to = B }` and `removed { from = A  lifecycle { destroy = false } }`.
fn collect_move(module: &mut Module, diags: &mut Diagnostics, file: usize, block: &Block) {
    let span = header_span(file, block);
    let moved = block.ident.as_str() == "moved";
    let (mut from, mut to, mut destroy) = (None, None, true);
    for structure in &block.body {
        match structure {
            Structure::Attribute(attr) => {
                let expr = expr_of(file, attr);
                match attr.key.as_str() {
                    "from" => from = Some(expr),
                    "to" if moved => to = Some(expr),
                    other => diags.push(unknown_name(
                        other,
                        expr.key_span,
                        block.ident.as_str(),
                        if moved { &["from", "to"] } else { &["from"] },
                    )),
                }
            }
            Structure::Block(b) if !moved && b.ident.as_str() == "lifecycle" => {
                for inner in &b.body {
                    match inner {
                        Structure::Attribute(a) if a.key.as_str() == "destroy" => match &a.value {
                            Expression::Bool(v) => destroy = *v.value(),
                            _ => diags.push(literal_expected(span_of(file, &a.value), "`destroy`", "true or false")),
                        },
                        Structure::Attribute(a) => {
                            diags.push(unknown_name(a.key.as_str(), span_of(file, &a.key), "lifecycle", &["destroy"]));
                        }
                        Structure::Block(x) => diags.push(unexpected_block(file, x, "lifecycle")),
                    }
                }
            }
            Structure::Block(b) => diags.push(unexpected_block(file, b, block.ident.as_str())),
        }
    }
    match (from, to, moved) {
        (Some(from), Some(to), true) => module.moves.push(super::MoveDecl { span, from, to: Some(to), destroy: false }),
        (Some(from), None, false) => module.moves.push(super::MoveDecl { span, from, to: None, destroy }),
        _ => diags.push(
            Diagnostic::error(format!(
                "a `{}` block needs {}",
                block.ident.as_str(),
                if moved { "`from` and `to`" } else { "`from`" }
            ))
            .at(span, "incomplete block")
            .help(if moved {
                "write `moved { from = thoth_fleet.old  to = thoth_fleet.new }`"
            } else {
                "write `removed { from = thoth_fleet.old  lifecycle { destroy = false } }`"
            }),
        ),
    }
}

/// Reads a stack's `provider "thoth" "NAME" { config { ... } }` block: its `config` is the
/// provider configuration.
fn collect_stack_provider(module: &mut Module, diags: &mut Diagnostics, file: usize, block: &Block) {
    let span = header_span(file, block);
    if !expect_labels(diags, file, block, &["TYPE", "NAME"]) {
        return;
    }
    if labels(block)[0] != "thoth" {
        diags.push(
            Diagnostic::error(format!("unknown provider `{}`", labels(block)[0]))
                .at(span, "only the `thoth` provider is managed here"),
        );
        return;
    }
    let mut decl = ProviderDecl { span, attributes: VecMap::new() };
    for structure in &block.body {
        match structure {
            Structure::Block(b) if b.ident.as_str() == "config" => {
                for inner in &b.body {
                    match inner {
                        Structure::Attribute(attr) => {
                            decl.attributes.insert(attr.key.as_str().to_owned(), expr_of(file, attr));
                        }
                        Structure::Block(x) => diags.push(unexpected_block(file, x, "config")),
                    }
                }
            }
            Structure::Attribute(a) if a.key.as_str() == "for_each" => diags.push(
                Diagnostic::error("a provider with `for_each` is not supported")
                    .at(span_of(file, &a.key), "one provider configuration per deployment")
                    .help("give each tenant its own deployment"),
            ),
            Structure::Attribute(_) => {}
            Structure::Block(b) => diags.push(unexpected_block(file, b, "provider")),
        }
    }
    if let Some(prev) = &module.provider {
        diags.push(duplicate("provider `thoth`", span, prev.span));
    } else {
        module.provider = Some(decl);
    }
}

/// Reads a `module "NAME" { source = "./path" ... }` block (or a stack's `component`, whose
/// inputs are its `inputs` object): its source, `count` or `for_each`, `depends_on`, and
/// every other argument as an input of the module's variables. `version` and `providers` are
/// accepted (the one provider configuration is used).
fn collect_module_call(module: &mut Module, diags: &mut Diagnostics, at: At<'_>, block: &Block) {
    let file = at.file;
    let name = labels(block)[0].to_owned();
    let span = header_span(file, block);
    let mut source = None;
    let mut call = ModuleCall {
        name: name.clone(),
        span,
        source: String::new(),
        child: None,
        inputs: VecMap::new(),
        repetition: None,
        depends_on: Vec::new(),
    };
    let mut inputs = Vec::new();
    for structure in &block.body {
        match structure {
            Structure::Attribute(attr) => {
                let key = attr.key.as_str();
                let expr = expr_of(file, attr);
                match key {
                    "source" => match &attr.value {
                        Expression::String(s) => source = Some(s.value().clone()),
                        _ => diags.push(literal_expected(expr.span, "`source`", "a string")),
                    },
                    "version" => {}
                    "providers" => {
                        if !matches!(attr.value, Expression::Object(_)) {
                            diags.push(
                                Diagnostic::error("`providers` must be a map of provider configurations")
                                    .at(expr.span, "not a map")
                                    .help("write `providers = { thoth = thoth }`"),
                            );
                        }
                    }
                    "depends_on" => call.depends_on = depends_on(diags, at, &attr.value, expr.span),
                    "inputs" if at.stack => match &attr.value {
                        Expression::Object(object) => {
                            for (key, value) in object {
                                let name = match key {
                                    hcl_edit::expr::ObjectKey::Ident(i) => i.as_str().to_owned(),
                                    hcl_edit::expr::ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                                    hcl_edit::expr::ObjectKey::Expression(e) => {
                                        diags.push(
                                            Diagnostic::error("component input names must be plain names")
                                                .at(span_of(file, e), "not a name"),
                                        );
                                        continue;
                                    }
                                };
                                let key_span = match key {
                                    hcl_edit::expr::ObjectKey::Ident(i) => span_of(file, i),
                                    hcl_edit::expr::ObjectKey::Expression(e) => span_of(file, e),
                                };
                                inputs.push((name, Expr::folded(value.expr(), span_of(file, value.expr()), key_span)));
                            }
                        }
                        _ => diags.push(
                            Diagnostic::error("a component's `inputs` must be an object")
                                .at(expr.span, "not an object")
                                .help("write `inputs = { name = value }`"),
                        ),
                    },
                    "count" | "for_each" => {
                        if call.repetition.is_some() {
                            diags.push(
                                Diagnostic::error(format!("module `{name}` has both `count` and `for_each`"))
                                    .at(expr.key_span, "the second one")
                                    .help("use one of them"),
                            );
                        } else {
                            call.repetition =
                                Some(if key == "count" { Repetition::Count(expr) } else { Repetition::ForEach(expr) });
                        }
                    }
                    _ => inputs.push((key.to_owned(), expr)),
                }
            }
            Structure::Block(b) => diags.push(
                Diagnostic::error(format!(
                    "unexpected block `{}` in `{} \"{name}\"`",
                    b.ident.as_str(),
                    block.ident.as_str()
                ))
                .at(span_of(file, &b.ident), "module arguments are attributes")
                .help("set the module's variables as `name = value`"),
            ),
        }
    }
    call.inputs = inputs.into_iter().collect();
    let Some(source) = source else {
        diags.push(
            Diagnostic::error(format!("module `{name}` has no `source`"))
                .at(span, "missing `source`")
                .help("add `source = \"./modules/NAME\"`"),
        );
        return;
    };
    call.source = source;
    let calls = &mut module.scopes[0].calls;
    if let Some(prev) = calls.get(&name) {
        diags.push(duplicate(&format!("module `{name}`"), span, prev.span));
    } else {
        calls.insert(name, call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file large enough to be parsed in parts, with a heredoc holding what looks like the
    /// start of a block, then the same file with a syntax error at the end.
    fn large_file(tail: &str) -> String {
        let mut text = String::new();
        for i in 0..8_000 {
            text.push_str(&format!(
                "resource \"thoth_fleet\" \"f{i}\" {{\n  name   = \"fleet-{i}\"\n  region = \"eu\"\n}}\n\n"
            ));
            if i % 2 == 0 {
                text.push_str(&format!(
                    "resource \"thoth_fleet\" \"h{i}\" {{\n  name = <<-EOT\n}}\n{}EOT\n}}\n\n",
                    (0..5).map(|k| format!("resource \"thoth_fleet\" \"fake{i}_{k}\" {{\n")).collect::<String>()
                ));
            }
        }
        text.push_str(tail);
        text
    }

    fn load_text(text: &str) -> (Module, Diagnostics) {
        let dir = std::env::temp_dir().join(format!("thoth-parts-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("main.tf"), text).expect("write");
        let loaded = load(&dir, "");
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    #[test]
    fn a_large_file_parsed_in_parts_reads_as_it_does_whole() {
        let text = large_file("");
        assert!(text.len() > 3 * PART_BYTES, "{}", text.len());
        let (module, diags) = load_text(&text);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(module.resources.len(), 12_000);
        assert!(!module.resources.keys().any(|a| a.to_string().contains("fake")));
        // Spans are offsets into the file, whichever part a block was parsed in.
        for decl in module.resources.values() {
            let header = &text[decl.span.start..decl.span.end];
            assert!(header.starts_with("resource \"thoth_fleet\""), "{header:?}");
            assert!(header.contains(&format!("\"{}\"", decl.address.name)), "{header:?}");
        }
        let body = hcl_edit::parser::parse_body(&text).expect("parses whole");
        let mut whole = Module::default();
        let mut whole_diags = Diagnostics::default();
        let steps = Vec::new();
        collect(&mut whole, &mut whole_diags, At { file: 0, scope: ROOT, steps: &steps, stack: false }, &body);
        let spans = |m: &Module| m.resources.values().map(|d| (d.address.to_string(), d.span)).collect::<Vec<_>>();
        assert_eq!(spans(&module), spans(&whole));
    }

    #[test]
    fn a_syntax_error_in_a_large_file_is_placed_as_in_the_whole_file() {
        let text = large_file("resource \"thoth_fleet\" \"broken\" {\n  name = \n}\n");
        let (_, diags) = load_text(&text);
        let expected = syntax_check(0, &text).expect("a syntax error");
        let found: Vec<_> = diags.sorted().into_iter().filter(|d| d.message.starts_with("syntax error")).collect();
        assert_eq!(found.len(), 1, "{diags:?}");
        assert_eq!(found[0].message, expected.message);
        assert_eq!(found[0].span, expected.span);
    }
}
