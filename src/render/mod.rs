//! Rendering computed values for people: plans, apply reports, outputs and diagnostics.
//!
//! Renderers only format what they are given; they never decide anything, and a secret
//! reaches them only as `Shown::Sensitive`.

mod colour;
mod diagnostics;
mod graph;
mod json;
mod markdown;
mod plan;
pub mod stream;
mod verify;

pub use colour::{colour, disable as disable_colour, wanted as colour_wanted};
pub use diagnostics::diagnostics;
pub use graph::{graph_dot, graph_mermaid};
pub use json::{check as check_json, output as output_json, plan_json, PLAN_FORMAT_VERSION};
pub use markdown::{marker as markdown_marker, plan_markdown, MARKDOWN_LIMIT};
pub use plan::{
    apply_report, check_name, checks, output_lines, outputs, plan_human, running_text, state_entry, step_line,
};
pub use verify::{verify_human, verify_json, verify_markdown, VERIFY_FORMAT_VERSION};

use crate::model::{format_number, Value};

/// Text for a terminal: control characters (escape sequences a value from the control plane
/// could carry to move the cursor, rewrite lines or set the title) are written as escapes.
/// Line breaks and tabs stay.
pub(crate) fn terminal_safe(text: String) -> String {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Text inside an HTML element of a Markdown comment: `<`, `>` and `&` as entities.
pub(crate) fn html_safe(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A code fence longer than any run of backticks in `text`, so that the text cannot close it.
pub(crate) fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// A value as HCL-like text on one line, or as an indented heredoc for multi-line strings.
pub(crate) fn value_text(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(*n),
        Value::String(s) if s.contains('\n') => {
            let pad = " ".repeat(indent + 4);
            let mut out = String::from("<<-EOT\n");
            for line in s.trim_end_matches('\n').lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(&pad);
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out.push_str(&" ".repeat(indent + 2));
            out.push_str("EOT");
            out
        }
        Value::String(s) => serde_json::Value::String(s.clone()).to_string(),
        Value::List(items) => {
            format!("[{}]", items.iter().map(|v| value_text(v, indent)).collect::<Vec<_>>().join(", "))
        }
        Value::Map(map) if map.is_empty() => "{}".to_owned(),
        Value::Map(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(k, v)| format!("{} = {}", key_text(k), value_text(v, indent)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Unknown => "(known after apply)".to_owned(),
    }
}

fn key_text(key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        key.to_owned()
    } else {
        serde_json::Value::String(key.to_owned()).to_string()
    }
}
