//! Writing configuration: blocks of attributes in Terraform's canonical layout (two-space
//! indents, `=` aligned across consecutive one-line attributes), values as HCL literals.

use std::fmt::Write as _;

use crate::model::{format_number, Value};

/// A block to write: `kind "label" ... { attributes }`. Attribute values are expressions,
/// already written.
#[derive(Debug, Clone, Default)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub attributes: Vec<(String, String)>,
    pub blocks: Vec<Block>,
}

impl Block {
    pub fn new(kind: &str, labels: &[&str]) -> Block {
        Block { kind: kind.to_owned(), labels: labels.iter().map(|l| (*l).to_owned()).collect(), ..Block::default() }
    }

    #[must_use]
    pub fn attribute(mut self, name: &str, expression: String) -> Block {
        self.attributes.push((name.to_owned(), expression));
        self
    }

    /// The block as text, ending with a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        let _ = write!(out, "{pad}{}", self.kind);
        for label in &self.labels {
            let _ = write!(out, " {}", string(label));
        }
        out.push_str(" {\n");
        // Consecutive one-line attributes align their `=`; a multi-line value ends a group.
        let mut i = 0;
        while i < self.attributes.len() {
            let mut j = i;
            while j < self.attributes.len() && !self.attributes[j].1.contains('\n') {
                j += 1;
            }
            let group = &self.attributes[i..j.max(i + 1).min(self.attributes.len())];
            let width = group.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (name, value) in group {
                let _ = writeln!(out, "{pad}  {name:width$} = {}", indent(value, depth + 1));
            }
            i += group.len();
        }
        for block in &self.blocks {
            if !self.attributes.is_empty() || !std::ptr::eq(block, &self.blocks[0]) {
                out.push('\n');
            }
            block.write(out, depth + 1);
        }
        let _ = writeln!(out, "{pad}}}");
    }
}

/// Indents the continuation lines of a multi-line expression to the attribute's depth.
fn indent(value: &str, depth: usize) -> String {
    if !value.contains('\n') || value.starts_with("<<-") {
        return value.to_owned();
    }
    let pad = "  ".repeat(depth);
    value
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 0 { l.to_owned() } else { format!("{pad}{l}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A string literal: quoted, with `${` and `%{` escaped so that nothing is interpolated.
pub fn string(text: &str) -> String {
    crate::config::string_literal(text)
}

/// An object key: bare when it is a plain name, quoted otherwise.
pub fn key(name: &str) -> String {
    crate::config::object_key(name)
}

/// A value as an HCL literal; multi-line strings become heredocs.
pub fn value(v: &Value) -> String {
    match v {
        Value::Null | Value::Unknown => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(*n),
        Value::String(s) if s.contains('\n') && !s.contains("EOT") && !s.contains("${") && !s.contains("%{") => {
            let mut out = String::from("<<-EOT\n");
            for line in s.trim_end_matches('\n').lines() {
                out.push_str(line);
                out.push('\n');
            }
            out.push_str("EOT");
            out
        }
        Value::String(s) => string(s),
        Value::List(items) => format!("[{}]", items.iter().map(value).collect::<Vec<_>>().join(", ")),
        Value::Map(map) if map.is_empty() => "{}".to_owned(),
        Value::Map(map) => {
            let mut out = String::from("{\n");
            for (k, v) in map {
                let _ = writeln!(out, "  {} = {}", key(k), value(v).replace('\n', "\n  "));
            }
            out.push('}');
            out
        }
    }
}

/// A name usable as a block label or variable name: lower case letters, digits and `_`,
/// starting with a letter.
pub fn label(text: &str) -> String {
    let mut out: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    let out = out.trim_matches('_').to_owned();
    match out.chars().next() {
        None => "object".to_owned(),
        Some(c) if c.is_ascii_digit() => format!("_{out}"),
        Some(_) => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_align_and_values_are_literal() {
        let block = Block::new("resource", &["thoth_fleet", "claims"])
            .attribute("name", string("claims-${team}"))
            .attribute("rollout_pct", "10".to_owned())
            .attribute("config", value(&Value::Map([("a b".to_owned(), Value::Bool(true))].into_iter().collect())))
            .attribute("region", string("eu"));
        assert_eq!(
            block.render(),
            "resource \"thoth_fleet\" \"claims\" {\n  name        = \"claims-$${team}\"\n  rollout_pct = 10\n  config = {\n    \"a b\" = true\n  }\n  region = \"eu\"\n}\n"
        );
        assert_eq!(label("Chrome Enterprise (EU)"), "chrome_enterprise_eu");
        assert_eq!(label("9-lives"), "_9_lives");
    }
}
