//! The dependency graph as DOT (for Graphviz) and as Mermaid (for a pull request, where
//! code hosts draw it). Edges point from a dependency to what waits for it, the order apply
//! runs in; a module's resources are drawn in a box of their own.

use std::collections::BTreeMap;

use crate::graph::View;

pub fn graph_dot(view: &View) -> String {
    let mut out =
        String::from("digraph thoth {\n  rankdir = \"LR\";\n  node [shape = \"box\", fontname = \"Helvetica\"];\n");
    for (module, nodes) in by_module(view) {
        let (indent, close) = if module.is_empty() {
            ("  ", false)
        } else {
            out.push_str(&format!(
                "  subgraph \"cluster_{}\" {{\n    label = \"{}\";\n",
                dot_escape(module),
                dot_escape(module.trim_end_matches('.'))
            ));
            ("    ", true)
        };
        for i in nodes {
            let node = &view.nodes[i];
            let style = match node.action.as_deref() {
                Some(action) => {
                    format!(", style = \"filled\", fillcolor = \"{}\", xlabel = \"{action}\"", fill(action))
                }
                None => String::new(),
            };
            out.push_str(&format!(
                "{indent}\"{}\" [label = \"{}\"{style}];\n",
                dot_escape(&node.address),
                dot_escape(local(node))
            ));
        }
        if close {
            out.push_str("  }\n");
        }
    }
    for &(from, to) in &view.edges {
        out.push_str(&format!(
            "  \"{}\" -> \"{}\";\n",
            dot_escape(&view.nodes[from].address),
            dot_escape(&view.nodes[to].address)
        ));
    }
    out.push_str("}\n");
    out
}

pub fn graph_mermaid(view: &View) -> String {
    let mut out = String::from("flowchart LR\n");
    for (m, (module, nodes)) in by_module(view).into_iter().enumerate() {
        let indent = if module.is_empty() {
            "  "
        } else {
            out.push_str(&format!("  subgraph m{m}[\"{}\"]\n", mermaid_escape(module.trim_end_matches('.'))));
            "    "
        };
        for &i in &nodes {
            let node = &view.nodes[i];
            let label = match node.action.as_deref() {
                Some(action) => format!("{}<br/>{action}", mermaid_escape(local(node))),
                None => mermaid_escape(local(node)),
            };
            let class = node.action.as_deref().map(|a| format!(":::{}", class_name(a))).unwrap_or_default();
            out.push_str(&format!("{indent}n{i}[\"{label}\"]{class}\n"));
        }
        if !module.is_empty() {
            out.push_str("  end\n");
        }
    }
    for &(from, to) in &view.edges {
        out.push_str(&format!("  n{from} --> n{to}\n"));
    }
    let mut actions: Vec<&str> = view.nodes.iter().filter_map(|n| n.action.as_deref()).collect();
    actions.sort_unstable();
    actions.dedup();
    for action in actions {
        out.push_str(&format!("  classDef {} fill:{},stroke:#555\n", class_name(action), fill(action)));
    }
    out
}

/// Node indices grouped by module, the root module first.
fn by_module(view: &View) -> BTreeMap<&str, Vec<usize>> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, node) in view.nodes.iter().enumerate() {
        groups.entry(node.module.as_str()).or_default().push(i);
    }
    groups
}

/// The address within the module box it is drawn in.
fn local(node: &crate::graph::ViewNode) -> &str {
    &node.address[node.module.len()..]
}

fn fill(action: &str) -> &'static str {
    match action {
        "create" | "import" => "#d8f5d8",
        "update" | "move" => "#fdf1c7",
        "replace" => "#fbd9b0",
        "delete" => "#f7cccc",
        "forget" => "#e4e4e4",
        _ => "#ffffff",
    }
}

/// Mermaid's class names are identifiers.
fn class_name(action: &str) -> String {
    action.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Mermaid labels are in double quotes; quotes and the characters Mermaid reads as markup
/// are written as entities.
fn mermaid_escape(text: &str) -> String {
    text.replace('&', "#amp;").replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;")
}
