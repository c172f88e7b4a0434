//! Terraform's JSON syntax (`*.tf.json`), read by writing the same configuration in native
//! syntax: every block becomes the block it stands for, and every string, which the JSON
//! syntax reads as a template (`"${var.name}"`), becomes that template or, when it is one
//! interpolation and nothing else, that expression. The result is parsed like any other file,
//! so a diagnostic shows the configuration as thoth read it.

use serde_json::{Map, Value};

/// Which keys of a block's JSON object are nested blocks rather than arguments.
fn nested_blocks(kind: &str) -> &'static [&'static str] {
    match kind {
        "resource" | "data" => &["lifecycle"],
        "variable" => &["validation"],
        "terraform" => &["required_providers", "backend", "cloud", "provider_meta"],
        "check" => &["assert", "data"],
        _ => &[],
    }
}

/// The native syntax of a `*.tf.json` file; the error is the JSON parser's, with its line and
/// column.
pub(super) fn to_native(text: &str) -> Result<String, serde_json::Error> {
    let doc: Value = serde_json::from_str(text)?;
    let mut out = String::from("# Read from Terraform's JSON syntax.\n\n");
    let Value::Object(top) = doc else {
        out.push_str("# The file does not hold an object.\n!\n");
        return Ok(out);
    };
    for (kind, body) in &top {
        if kind == "//" {
            continue;
        }
        for body in each(body) {
            let labels = match kind.as_str() {
                "resource" | "data" => 2,
                "variable" | "output" | "module" | "provider" | "check" | "moved" | "import" | "removed" => {
                    usize::from(!matches!(kind.as_str(), "moved" | "import" | "removed"))
                }
                _ => 0,
            };
            top_block(&mut out, kind, body, labels);
        }
    }
    Ok(out)
}

/// A value that may be an object or a list of objects, as the JSON syntax allows for blocks.
fn each(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn top_block(out: &mut String, kind: &str, body: &Value, labels: usize) {
    match (labels, body) {
        (0, Value::Object(attrs)) if kind == "locals" => {
            out.push_str("locals {\n");
            for (k, v) in attrs.iter().filter(|(k, _)| *k != "//") {
                out.push_str(&format!("  {} = {}\n", key(k), expression(v, 2)));
            }
            out.push_str("}\n\n");
        }
        (0, Value::Object(attrs)) => {
            out.push_str(&format!("{kind} {{\n"));
            body_of(out, kind, attrs, 1);
            out.push_str("}\n\n");
        }
        (1, Value::Object(named)) => {
            for (name, inner) in named.iter().filter(|(k, _)| *k != "//") {
                for inner in each(inner) {
                    if let Value::Object(attrs) = inner {
                        out.push_str(&format!("{kind} {} {{\n", quoted(name)));
                        body_of(out, kind, attrs, 1);
                        out.push_str("}\n\n");
                    }
                }
            }
        }
        (_, Value::Object(types)) => {
            for (type_name, named) in types.iter().filter(|(k, _)| *k != "//") {
                let Value::Object(named) = named else { continue };
                for (name, inner) in named.iter().filter(|(k, _)| *k != "//") {
                    for inner in each(inner) {
                        if let Value::Object(attrs) = inner {
                            out.push_str(&format!("{kind} {} {} {{\n", quoted(type_name), quoted(name)));
                            body_of(out, kind, attrs, 1);
                            out.push_str("}\n\n");
                        }
                    }
                }
            }
        }
        _ => out.push_str(&format!("# `{kind}` must hold an object.\n{kind} {{ ! }}\n\n")),
    }
}

fn body_of(out: &mut String, kind: &str, attrs: &Map<String, Value>, depth: usize) {
    let pad = "  ".repeat(depth);
    for (name, value) in attrs.iter().filter(|(k, _)| *k != "//") {
        if nested_blocks(kind).contains(&name.as_str()) {
            for inner in each(value) {
                let Value::Object(inner) = inner else { continue };
                // `backend` and `provider_meta` are keyed by their label.
                if matches!(name.as_str(), "backend" | "provider_meta" | "data") {
                    for (label, body) in inner {
                        if let Value::Object(body) = body {
                            out.push_str(&format!("{pad}{name} {} {{\n", quoted(label)));
                            body_of(out, name, body, depth + 1);
                            out.push_str(&format!("{pad}}}\n"));
                        }
                    }
                    continue;
                }
                out.push_str(&format!("{pad}{name} {{\n"));
                body_of(out, name, inner, depth + 1);
                out.push_str(&format!("{pad}}}\n"));
            }
            continue;
        }
        // Backend and provider requirements are literal in every syntax.
        let literal = matches!(kind, "required_providers" | "pg" | "s3" | "local") || is_keyword_list(kind, name);
        let text = if literal { literal_value(value, depth) } else { argument(kind, name, value, depth) };
        out.push_str(&format!("{pad}{} = {text}\n", key(name)));
    }
}

/// `ignore_changes` and the like name attributes; `depends_on` names blocks: both are
/// references written as strings in the JSON syntax.
fn is_keyword_list(kind: &str, name: &str) -> bool {
    kind == "lifecycle" && name == "ignore_changes"
}

fn argument(kind: &str, name: &str, value: &Value, depth: usize) -> String {
    match (kind, name, value) {
        // References and types are written as strings and mean the expression they spell.
        (_, "depends_on" | "replace_triggered_by", Value::Array(items)) => {
            let refs: Vec<String> =
                items.iter().map(|i| i.as_str().map_or_else(|| expression(i, depth), unwrap)).collect();
            format!("[{}]", refs.join(", "))
        }
        ("variable", "type", Value::String(t)) => unwrap(t),
        ("moved" | "removed" | "import", "from" | "to", Value::String(a)) => unwrap(a),
        _ => expression(value, depth),
    }
}

/// A string that stands for an expression: `"${x}"` is `x`, and a bare `x` is `x` too.
fn unwrap(text: &str) -> String {
    match single_interpolation(text) {
        Some(inner) => inner.to_owned(),
        None => text.to_owned(),
    }
}

fn single_interpolation(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("${")?.strip_suffix('}')?;
    (!inner.contains("${") && !inner.contains('}')).then_some(inner.trim())
}

/// A JSON value read as a Terraform JSON expression: strings are templates.
fn expression(value: &Value, depth: usize) -> String {
    match value {
        Value::String(s) => match single_interpolation(s) {
            Some(inner) => format!("({inner})"),
            None => template(s),
        },
        Value::Array(items) => {
            format!("[{}]", items.iter().map(|v| expression(v, depth)).collect::<Vec<_>>().join(", "))
        }
        Value::Object(map) => object(map, depth, expression),
        other => other.to_string(),
    }
}

/// A JSON value as a literal: strings are plain strings.
fn literal_value(value: &Value, depth: usize) -> String {
    match value {
        Value::String(s) => quoted(s),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(|v| literal_value(v, depth)).collect::<Vec<_>>().join(", "))
        }
        Value::Object(map) => object(map, depth, literal_value),
        other => other.to_string(),
    }
}

fn object(map: &Map<String, Value>, depth: usize, each: fn(&Value, usize) -> String) -> String {
    if map.is_empty() {
        return "{}".to_owned();
    }
    let pad = "  ".repeat(depth + 1);
    let mut out = String::from("{\n");
    for (k, v) in map.iter().filter(|(k, _)| *k != "//") {
        out.push_str(&format!("{pad}{} = {}\n", quoted(k), each(v, depth + 1)));
    }
    out.push_str(&"  ".repeat(depth));
    out.push('}');
    out
}

/// A template string in native syntax: its `${...}` and `%{...}` sequences kept, everything
/// else escaped.
fn template(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// A plain string in native syntax: nothing in it is interpolated.
pub(crate) fn quoted(text: &str) -> String {
    template(&text.replace("${", "$${").replace("%{", "%%{"))
}

/// An object key in native syntax: bare when it is a plain name, quoted otherwise.
pub(crate) fn key(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        name.to_owned()
    } else {
        quoted(name)
    }
}

#[cfg(test)]
mod tests {
    use super::to_native;

    #[test]
    fn json_syntax_reads_as_the_native_configuration() {
        let json = r#"{
          "//": "a comment",
          "variable": { "hosts": { "type": "list(string)", "default": ["a.com"] } },
          "locals": { "team": "claims" },
          "resource": {
            "thoth_fleet": {
              "claims": {
                "name": "${local.team}-laptops",
                "region": "eu-west-1",
                "count": "${length(var.hosts)}",
                "depends_on": ["thoth_mdm_provider.jamf"],
                "lifecycle": { "prevent_destroy": true, "ignore_changes": ["region"] }
              }
            }
          },
          "terraform": { "backend": { "pg": { "schema_name": "state" } } },
          "output": { "fleet": { "value": "${thoth_fleet.claims[0].id}" } }
        }"#;
        let native = to_native(json).expect("valid JSON");
        for expected in [
            "variable \"hosts\" {\n  type = list(string)\n  default = [\"a.com\"]\n}",
            "locals {\n  team = \"claims\"\n}",
            "resource \"thoth_fleet\" \"claims\" {\n  name = \"${local.team}-laptops\"",
            "  count = (length(var.hosts))",
            "  depends_on = [thoth_mdm_provider.jamf]",
            "  lifecycle {\n    prevent_destroy = true\n    ignore_changes = [\"region\"]\n  }",
            "terraform {\n  backend \"pg\" {\n    schema_name = \"state\"\n  }\n}",
            "output \"fleet\" {\n  value = (thoth_fleet.claims[0].id)\n}",
        ] {
            assert!(native.contains(expected), "missing:\n{expected}\nin:\n{native}");
        }
        assert!(hcl_edit::parser::parse_body(&native).is_ok(), "{native}");
    }
}
