//! The dependency graph of a configuration: which node refers to which, the order to
//! evaluate them in, and dependency cycles reported as one diagnostic each.
//!
//! This module only orders; it never evaluates and never talks to the network.

use std::collections::hash_map::Entry;
use std::collections::BTreeSet;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::config::{Module, Node, ScopeId};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::model::{Address, NameMap, NameSet, Span};

#[derive(Debug, Default)]
pub struct Graph {
    /// Every node, dependencies before dependents, ties broken by name.
    pub order: Vec<Node>,
    /// For each resource, the resources it depends on, directly or through locals.
    pub resource_deps: NameMap<Address, BTreeSet<Address>>,
    /// Resource blocks that some expression refers to. Evaluation keeps the values of these
    /// only: nothing reads the others'.
    pub referenced: NameSet<Address>,
    /// False when a cycle left some nodes without a place in the order.
    pub complete: bool,
}

pub fn build(module: &Module) -> (Graph, Diagnostics) {
    let mut diags = Diagnostics::default();
    // The graph's node `i` is `nodes[i]`.
    let mut graph: DiGraph<(), ()> = DiGraph::new();
    // In `Node` order, since each map's keys are sorted and `Node` orders by kind first: a
    // node's index then orders as the node does.
    // In `Node` order: by kind, then module, then name (each map's keys are sorted).
    let scopes = || module.scopes.iter().enumerate().map(|(i, s)| (ScopeId(u32::try_from(i).unwrap_or(u32::MAX)), s));
    let mut nodes: Vec<Node> = Vec::with_capacity(module.resources.len() + 16);
    nodes.extend(scopes().flat_map(|(id, s)| s.variables.keys().map(move |n| Node::Variable(id, n.clone()))));
    nodes.extend(scopes().flat_map(|(id, s)| s.locals.keys().map(move |n| Node::Local(id, n.clone()))));
    nodes.extend(scopes().flat_map(|(id, s)| s.calls.keys().map(move |n| Node::Module(id, n.clone()))));
    nodes.extend(module.resources.keys().map(|a| Node::Resource(a.clone())));
    nodes.extend(scopes().flat_map(|(id, s)| s.outputs.keys().map(move |n| Node::Output(id, n.clone()))));
    nodes.extend(scopes().flat_map(|(id, s)| s.checks.keys().map(move |n| Node::Check(id, n.clone()))));
    debug_assert!(nodes.windows(2).all(|w| w[0] < w[1]), "nodes are in order");
    let index: NameMap<&Node, NodeIndex> = nodes.iter().map(|node| (node, graph.add_node(()))).collect();
    // Edges point from a dependency to its dependent.
    // The span of the reference behind each edge, for cycle diagnostics.
    let mut edge_spans: NameMap<(NodeIndex, NodeIndex), Span> = NameMap::default();
    for (node, refs) in nodes.iter().zip(references(module, &nodes)) {
        let to = index[node];
        for (target, span) in refs {
            match index.get(&target) {
                Some(&from) => {
                    // A set of edges instead of `update_edge`, whose duplicate check walks
                    // every edge of a variable that thousands of resources use.
                    if let Entry::Vacant(e) = edge_spans.entry((from, to)) {
                        graph.add_edge(from, to, ());
                        e.insert(span);
                    }
                }
                None => diags.push(undeclared(module, &target, span)),
            }
        }
    }

    if report_cycles(&graph, &nodes, &edge_spans, module, &mut diags) {
        return (Graph::default(), diags);
    }

    // Kahn's algorithm over a sorted ready set keeps the order deterministic; indices order
    // as their nodes do.
    let mut indegree: Vec<usize> =
        graph.node_indices().map(|i| graph.neighbors_directed(i, petgraph::Direction::Incoming).count()).collect();
    let mut ready: BTreeSet<NodeIndex> = graph.node_indices().filter(|i| indegree[i.index()] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for next in graph.neighbors_directed(i, petgraph::Direction::Outgoing) {
            indegree[next.index()] -= 1;
            if indegree[next.index()] == 0 {
                ready.insert(next);
            }
        }
    }
    let referenced = graph
        .node_indices()
        .filter(|&i| graph.neighbors_directed(i, petgraph::Direction::Outgoing).next().is_some())
        .filter_map(|i| match &nodes[i.index()] {
            Node::Resource(a) => Some(a.clone()),
            _ => None,
        })
        .collect();

    // Resource-to-resource dependencies, looking through variables and locals.
    let mut resource_deps: NameMap<Address, BTreeSet<Address>> =
        NameMap::with_capacity_and_hasher(module.resources.len(), Default::default());
    let mut reach: Vec<BTreeSet<Address>> = vec![BTreeSet::new(); graph.node_count()];
    for &i in &order {
        let node = &nodes[i.index()];
        let mut deps = BTreeSet::new();
        for pred in graph.neighbors_directed(i, petgraph::Direction::Incoming) {
            match &nodes[pred.index()] {
                Node::Resource(a) => {
                    deps.insert(a.clone());
                }
                _ => deps.extend(reach[pred.index()].iter().cloned()),
            }
        }
        if let Node::Resource(a) = node {
            resource_deps.insert(a.clone(), deps);
        } else {
            reach[i.index()] = deps;
        }
    }
    drop(index);
    let mut nodes: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    let order = order.into_iter().filter_map(|i| nodes[i.index()].take()).collect();
    (Graph { order, resource_deps, referenced, complete: true }, diags)
}

fn undeclared(module: &Module, target: &Node, span: Span) -> Diagnostic {
    if let Node::Output(child, output) = target {
        // Said as evaluation says it, so that the two are one diagnostic.
        let call = module.scope(*child).path.last().cloned().unwrap_or_default();
        let d = Diagnostic::error(format!("module `{call}` has no output `{output}`")).at(span, "no such output");
        return match did_you_mean(output, module.scope(*child).outputs.keys().map(String::as_str)) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d,
        };
    }
    let (kind, candidates): (&str, Vec<String>) = match target {
        Node::Variable(s, _) => (
            "variable",
            module.scope(*s).variables.keys().map(|n| format!("{}var.{n}", module.scope(*s).prefix())).collect(),
        ),
        Node::Local(s, _) => (
            "local value",
            module.scope(*s).locals.keys().map(|n| format!("{}local.{n}", module.scope(*s).prefix())).collect(),
        ),
        Node::Module(s, _) => (
            "module",
            module.scope(*s).calls.keys().map(|n| format!("{}module.{n}", module.scope(*s).prefix())).collect(),
        ),
        Node::Resource(a) => (
            "resource",
            module
                .resources
                .keys()
                .filter(|r| r.type_name == a.type_name && r.module == a.module)
                .map(ToString::to_string)
                .collect(),
        ),
        Node::Output(s, _) => {
            ("output", module.scope(*s).outputs.keys().map(|n| format!("{}{n}", module.scope(*s).prefix())).collect())
        }
        // Nothing refers to a check block.
        Node::Check(..) => ("check", Vec::new()),
    };
    let name = module.node_text(target);
    let target_text = name.clone();
    let mut d = Diagnostic::error(format!("reference to undeclared {kind} `{target_text}`")).at(span, "not declared");
    if let Node::Resource(a) = target {
        if crate::schema::Schema::get().resource(&a.type_name).is_none() {
            d = Diagnostic::error(format!("unknown name `{}` in reference `{target_text}`", a.type_name))
                .at(span, "not a resource type or known root");
            let roots = ["var", "local", "path"];
            return match did_you_mean(&a.type_name, crate::schema::Schema::get().resource_names().chain(roots)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("references start with `var.`, `local.`, `path.` or a resource type"),
            };
        }
    }
    match did_you_mean(&name, candidates.iter().map(String::as_str)) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d.help(match target {
            Node::Variable(_, n) => format!("declare it with `variable \"{n}\" {{}}`"),
            Node::Local(_, n) => format!("add `{n} = ...` to a `locals` block"),
            Node::Module(_, n) => format!("declare it with `module \"{n}\" {{ source = \"./modules/{n}\" }}`"),
            Node::Resource(a) => format!("declare it with `resource \"{}\" \"{}\" {{ ... }}`", a.type_name, a.name),
            Node::Output(_, n) => format!("add `output \"{n}\" {{ value = ... }}` to the module"),
            Node::Check(_, n) => format!("declare it with `check \"{n}\" {{ assert {{ ... }} }}`"),
        }),
    }
}

/// The references of each node's expressions and `depends_on`, in the order of `nodes`,
/// found on two threads: walking every expression of a large configuration is most of the
/// graph's cost.
fn references(module: &Module, nodes: &[Node]) -> Vec<Vec<(Node, Span)>> {
    let of = |node: &Node| node_references(module, node);
    if nodes.len() < 1_000 {
        return nodes.iter().map(of).collect();
    }
    let (first, second) = nodes.split_at(nodes.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| second.iter().map(of).collect::<Vec<_>>());
        let mut refs: Vec<_> = first.iter().map(of).collect();
        refs.extend(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        refs
    })
}

/// What one node's expressions and `depends_on` refer to, and the module call that every
/// node of a called module waits for (it expands the module's instances and sets its
/// variables).
fn node_references(module: &Module, node: &Node) -> Vec<(Node, Span)> {
    let mut refs = Vec::new();
    for expr in module.node_exprs(node) {
        for (target, span) in crate::config::references(module, expr) {
            refs.push((target.clone(), span));
            // A whole module (`module.tenant`) is its outputs.
            if let Node::Module(scope, call) = &target {
                if let Some(child) = module.child(*scope, call) {
                    refs.extend(module.scope(child).outputs.keys().map(|o| (Node::Output(child, o.clone()), span)));
                }
            }
        }
    }
    let (scope, depends_on, span) = match node {
        Node::Resource(a) => match module.resources.get(a) {
            Some(decl) => (decl.scope, decl.depends_on.as_slice(), decl.span),
            None => return refs,
        },
        Node::Module(s, n) => match module.scope(*s).calls.get(n) {
            Some(call) => (*s, call.depends_on.as_slice(), call.span),
            None => return refs,
        },
        Node::Variable(s, _) | Node::Local(s, _) | Node::Output(s, _) | Node::Check(s, _) => {
            (*s, [].as_slice(), Span::default())
        }
    };
    for (target, at) in depends_on {
        if target.type_name.is_empty() {
            // `depends_on = [module.NAME]`: every resource of that module and those it calls.
            let Some(call) = target.module.last() else { continue };
            refs.push((Node::Module(scope, call.name.clone()), *at));
            refs.extend(
                module
                    .resources
                    .keys()
                    .filter(|r| r.module.starts_with(&target.module))
                    .map(|r| (Node::Resource(r.clone()), *at)),
            );
        } else {
            refs.push((Node::Resource(target.clone()), *at));
        }
    }
    // What the descriptor says this type exercises comes first, `depends_on` or not.
    if let Node::Resource(a) = node {
        let after =
            crate::schema::Schema::get().resource(&a.type_name).map(|rt| rt.runs_after.as_slice()).unwrap_or_default();
        if !after.is_empty() {
            refs.extend(
                module
                    .resources
                    .keys()
                    .filter(|r| after.contains(&r.type_name))
                    .map(|r| (Node::Resource(r.clone()), span)),
            );
        }
    }
    // Everything in a called module waits for its call.
    if let Some(parent) = module.scope(scope).parent {
        if let Some(call) = module.scope(scope).path.last() {
            let at = module.scope(parent).calls.get(call).map_or(span, |c| c.span);
            refs.push((Node::Module(parent, call.clone()), at));
        }
    }
    refs
}

/// Reports each strongly connected component with more than one node (or a self-reference)
/// as one diagnostic naming the whole cycle in order. Returns whether there was a cycle.
fn report_cycles(
    graph: &DiGraph<(), ()>,
    nodes: &[Node],
    edge_spans: &NameMap<(NodeIndex, NodeIndex), Span>,
    module: &Module,
    diags: &mut Diagnostics,
) -> bool {
    let mut cyclic = false;
    for scc in petgraph::algo::tarjan_scc(graph) {
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
        // Walk the cycle from the smallest node, always taking the smallest next member, until
        // the walk returns to a visited node. Indices order as their nodes do.
        let start = *members.first().unwrap_or(&scc[0]);
        let mut path = vec![start];
        let mut current = start;
        loop {
            let next = graph
                .neighbors_directed(current, petgraph::Direction::Outgoing)
                .filter(|n| members.contains(n))
                .min_by_key(|n| (!path.contains(n) || *n == start, *n));
            let Some(next) = next else { break };
            if next == start || path.contains(&next) {
                break;
            }
            path.push(next);
            current = next;
        }
        // Edges run from a dependency to its dependent; the message reads "depends on".
        let names: Vec<String> = std::iter::once(&start)
            .chain(path[1..].iter().rev())
            .chain(std::iter::once(&start))
            .map(|i| format!("`{}`", module.node_text(&nodes[i.index()])))
            .collect();
        let first = &nodes[start.index()];
        let last = &nodes[path[path.len() - 1].index()];
        let last_index = path[path.len() - 1];
        let span = edge_spans.get(&(last_index, start)).copied().or_else(|| module.node_span(first));
        let mut d = Diagnostic::error(format!("dependency cycle: {}", names.join(" → ")))
            .help("break the cycle by removing one of these references or `depends_on` entries");
        if let Some(s) = span {
            d = d.at(s, format!("`{}` refers to `{}` here", module.node_text(first), module.node_text(last)));
        }
        for pair in path.windows(2) {
            if let Some(s) = edge_spans.get(&(pair[0], pair[1])) {
                d = d.related(
                    *s,
                    format!(
                        "`{}` refers to `{}`",
                        module.node_text(&nodes[pair[1].index()]),
                        module.node_text(&nodes[pair[0].index()])
                    ),
                );
            }
        }
        diags.push(d);
        cyclic = true;
    }
    cyclic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_found_on_two_threads_are_each_nodes_own() {
        let dir = std::env::temp_dir().join(format!("thoth-graph-refs-{}", std::process::id()));
        crate::synth::write_tenant(&dir, 3_000, crate::synth::Shape::Light).expect("write the tenant");
        let (module, diags) = crate::config::load(&dir, "");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(diags.is_empty(), "{diags:?}");
        let nodes: Vec<Node> = module.resources.keys().rev().map(|a| Node::Resource(a.clone())).collect();
        let one_by_one: Vec<_> = nodes.iter().map(|n| node_references(&module, n)).collect();
        assert!(one_by_one[..nodes.len() / 2].iter().any(|r| !r.is_empty()), "references in the first half");
        assert!(one_by_one[nodes.len() / 2..].iter().any(|r| !r.is_empty()), "references in the second half");
        assert_eq!(references(&module, &nodes), one_by_one);
    }
}

/// The graph as people look at it: resources, what each waits for, and for a plan the
/// action planned for each. `thoth graph` renders it as DOT or Mermaid.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct View {
    /// By address; the module path of each is the address's `module.` prefix.
    pub nodes: Vec<ViewNode>,
    /// `(dependency, dependent)` as indices into `nodes`, sorted.
    pub edges: Vec<(usize, usize)>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ViewNode {
    pub address: String,
    /// The `module.NAME[KEY].` prefix of the address, empty in the root module.
    pub module: String,
    /// The planned action, for the graph of a plan.
    pub action: Option<String>,
}

impl View {
    /// The resource blocks of a configuration and the blocks each refers to, directly or
    /// through variables, locals and module calls.
    pub fn of_config(graph: &Graph) -> View {
        let mut deps: Vec<(String, Vec<String>)> = graph
            .resource_deps
            .iter()
            .map(|(a, d)| (a.to_string(), d.iter().map(ToString::to_string).collect()))
            .collect();
        deps.sort();
        View::from_pairs(deps.into_iter().map(|(a, d)| (a, None, d)))
    }

    /// The changes of a plan in the versioned JSON format and the objects each waits for;
    /// a dependency without a change of its own is a node without an action.
    pub fn of_plan(plan: &serde_json::Value) -> View {
        let changes = plan.get("changes").and_then(serde_json::Value::as_array).map_or(&[][..], Vec::as_slice);
        let mut entries: Vec<(String, Option<String>, Vec<String>)> = changes
            .iter()
            .filter_map(|c| {
                let address = c.get("address")?.as_str()?.to_owned();
                let action = c.get("action").and_then(serde_json::Value::as_str).map(str::to_owned);
                let deps = c
                    .get("depends_on")
                    .and_then(serde_json::Value::as_array)
                    .map(|d| d.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                Some((address, action, deps))
            })
            .collect();
        entries.sort();
        View::from_pairs(entries)
    }

    fn from_pairs(entries: impl IntoIterator<Item = (String, Option<String>, Vec<String>)>) -> View {
        let entries: Vec<_> = entries.into_iter().collect();
        let mut addresses: BTreeSet<&str> = entries.iter().map(|(a, _, _)| a.as_str()).collect();
        addresses.extend(entries.iter().flat_map(|(_, _, d)| d.iter().map(String::as_str)));
        let index: std::collections::BTreeMap<&str, usize> =
            addresses.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        let actions: std::collections::BTreeMap<&str, &Option<String>> =
            entries.iter().map(|(a, action, _)| (a.as_str(), action)).collect();
        let nodes = addresses
            .iter()
            .map(|a| ViewNode {
                address: (*a).to_owned(),
                module: module_prefix(a).to_owned(),
                action: actions.get(a).and_then(|x| (*x).clone()),
            })
            .collect();
        let mut edges: Vec<(usize, usize)> = entries
            .iter()
            .flat_map(|(a, _, deps)| deps.iter().map(|d| (index[d.as_str()], index[a.as_str()])))
            .collect();
        edges.sort_unstable();
        edges.dedup();
        View { nodes, edges }
    }
}

/// The `module.NAME[KEY].` steps an address starts with.
fn module_prefix(address: &str) -> &str {
    let mut end = 0;
    let mut rest = address;
    while let Some(after) = rest.strip_prefix("module.") {
        // The step's name, then an optional `[key]` that may hold dots in a string.
        let name_len = after.find(['.', '[']).unwrap_or(after.len());
        let mut step = "module.".len() + name_len;
        if after[name_len..].starts_with('[') {
            match after[name_len..].find("].") {
                Some(close) => step += close + 1,
                None => break,
            }
        }
        if !rest[step..].starts_with('.') {
            break;
        }
        step += 1;
        end += step;
        rest = &rest[step..];
    }
    &address[..end]
}

#[cfg(test)]
mod view_tests {
    #[test]
    fn module_prefixes() {
        assert_eq!(super::module_prefix("thoth_fleet.a"), "");
        assert_eq!(super::module_prefix("module.m.thoth_fleet.a"), "module.m.");
        assert_eq!(super::module_prefix("module.t[\"e.u\"].module.x.thoth_fleet.a[0]"), "module.t[\"e.u\"].module.x.");
    }
}
