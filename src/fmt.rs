//! Terraform's canonical layout for configuration text, as `terraform fmt` writes it: two
//! spaces of indent per line that opens brackets, one space between tokens, the `=` of
//! consecutive one-line arguments aligned, and so the trailing comments of consecutive lines,
//! trailing space removed and one final newline. Blank lines, comments, the order of
//! everything, string contents and heredoc bodies are kept as written.
//!
//! This module only transforms text: it never reads or writes files.

/// How a line continues the text before it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Code,
    /// Inside `/* ... */`.
    BlockComment,
    /// Inside a heredoc whose closing line is the marker.
    Heredoc(String),
}

/// One line of code split into the cells that line up with the lines around it.
#[derive(Debug, Default)]
struct Cells {
    /// Everything before the argument's `=` (all of the line when it is not an argument).
    lead: String,
    /// `= value`, when the line is an argument whose value ends on the line.
    assign: Option<String>,
    /// A comment after code.
    comment: Option<String>,
    /// The change in bracket nesting over the line (up to a heredoc).
    brackets: isize,
    opens_comment: bool,
    heredoc: Option<String>,
}

/// One line of output: cells with an indent, or a line kept as it is.
enum Line {
    Code(usize, Cells),
    Verbatim(String),
}

/// Reads one line of code (without its indent): collapses the space between tokens, finds
/// the argument's `=`, the trailing comment, the brackets and a heredoc or block comment
/// that goes on past the line.
fn cells(line: &str) -> Cells {
    let mut cells = Cells::default();
    let mut code = String::with_capacity(line.len());
    let mut equals: Option<(usize, isize)> = None;
    // The bracket depth at which each open string started; string text is read verbatim.
    let mut strings: Vec<isize> = Vec::new();
    let mut depth: isize = 0;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        if strings.last() == Some(&depth) {
            code.push(c);
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        code.push(n);
                    }
                }
                '"' => {
                    strings.pop();
                }
                '$' | '%' if next == Some('{') => {
                    chars.next();
                    code.push('{');
                    depth += 1;
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                strings.push(depth);
                code.push(c);
            }
            '#' => {
                cells.comment = Some(line[i..].trim_end().to_owned());
                break;
            }
            '/' if next == Some('/') => {
                cells.comment = Some(line[i..].trim_end().to_owned());
                break;
            }
            '/' if next == Some('*') => match line[i + 2..].find("*/") {
                Some(end) if line[i + 2 + end + 2..].trim().is_empty() => {
                    cells.comment = Some(line[i..].trim_end().to_owned());
                    break;
                }
                Some(end) => {
                    code.push_str(&line[i..i + 2 + end + 2]);
                    for _ in 0..end + 3 {
                        chars.next();
                    }
                }
                None => {
                    cells.comment = Some(line[i..].trim_end().to_owned());
                    cells.opens_comment = true;
                    break;
                }
            },
            '{' | '[' | '(' => {
                depth += 1;
                code.push(c);
            }
            '}' | ']' | ')' => {
                if !strings.is_empty() && strings.last() == Some(&(depth - 1)) {
                    // The end of an interpolation: back in string text.
                    depth -= 1;
                    code.push(c);
                    continue;
                }
                depth -= 1;
                code.push(c);
            }
            '<' if next == Some('<') => {
                let rest = &line[i + 2..];
                let rest = rest.strip_prefix('-').unwrap_or(rest);
                let marker: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !marker.is_empty() && rest[marker.len()..].trim().is_empty() {
                    code.push_str(line[i..].trim_end());
                    cells.heredoc = Some(marker);
                    break;
                }
                code.push(c);
            }
            '=' if equals.is_none() => {
                let prev = code.trim_end().chars().last();
                let operator = matches!(next, Some('=' | '>')) || matches!(prev, Some('=' | '!' | '<' | '>'));
                if !operator && !code.trim().is_empty() {
                    equals = Some((code.trim_end().len(), depth));
                    code.truncate(code.trim_end().len());
                    code.push_str(" = ");
                    while chars.peek().is_some_and(|&(_, n)| n == ' ' || n == '\t') {
                        chars.next();
                    }
                } else {
                    code.push(c);
                }
            }
            ' ' | '\t' => {
                if !code.ends_with(' ') && !code.is_empty() {
                    code.push(' ');
                }
            }
            _ => code.push(c),
        }
    }
    cells.brackets = depth;
    let code = code.trim_end().to_owned();
    match equals {
        // Only an argument whose value ends on its line lines up with its neighbours.
        Some((at, before)) if depth == before && cells.heredoc.is_none() => {
            cells.lead = code[..at].to_owned();
            cells.assign = Some(code[at + 1..].to_owned());
        }
        _ => cells.lead = code,
    }
    cells
}

/// The text in canonical layout.
pub fn format(text: &str) -> String {
    let mut lines: Vec<Line> = Vec::new();
    let mut mode = Mode::Code;
    // As Terraform's formatter: each line that opens brackets adds one level of indent and
    // remembers how many it opened; closing them takes the level away again.
    let mut indents: Vec<isize> = Vec::new();
    for raw in text.lines() {
        match &mode {
            Mode::Heredoc(marker) => {
                if raw.trim() == marker {
                    mode = Mode::Code;
                }
                lines.push(Line::Verbatim(raw.to_owned()));
                continue;
            }
            Mode::BlockComment => {
                if raw.contains("*/") {
                    mode = Mode::Code;
                }
                lines.push(Line::Verbatim(raw.trim_end().to_owned()));
                continue;
            }
            Mode::Code => {}
        }
        let content = raw.trim();
        if content.is_empty() {
            lines.push(Line::Verbatim(String::new()));
            continue;
        }
        let c = cells(content);
        let indent = match c.brackets {
            n if n > 0 => {
                let at = indents.len();
                indents.push(n);
                at
            }
            n if n < 0 => {
                let mut closed = -n;
                while closed > 0 {
                    let Some(last) = indents.last_mut() else { break };
                    if closed >= *last {
                        closed -= *last;
                        indents.pop();
                    } else {
                        *last -= closed;
                        closed = 0;
                    }
                }
                indents.len()
            }
            _ => indents.len(),
        };
        if c.opens_comment {
            mode = Mode::BlockComment;
        } else if let Some(marker) = &c.heredoc {
            mode = Mode::Heredoc(marker.clone());
        }
        lines.push(Line::Code(indent, c));
    }
    align(
        &mut lines,
        |c| c.assign.is_some(),
        |indent, c| 2 * indent + c.lead.chars().count(),
        |c, pad| {
            c.lead.push_str(&" ".repeat(pad));
        },
    );
    align(
        &mut lines,
        |c| c.comment.is_some() && !(c.lead.is_empty() && c.assign.is_none()),
        |indent, c| 2 * indent + c.lead.chars().count() + c.assign.as_ref().map_or(0, |a| a.chars().count() + 1),
        |c, pad| {
            if let Some(comment) = &mut c.comment {
                comment.insert_str(0, &" ".repeat(pad));
            }
        },
    );
    let mut out = String::with_capacity(text.len() + 16);
    for line in &lines {
        match line {
            Line::Verbatim(text) => out.push_str(text),
            Line::Code(indent, c) => {
                out.push_str(&"  ".repeat(*indent));
                out.push_str(&c.lead);
                if let Some(assign) = &c.assign {
                    out.push(' ');
                    out.push_str(assign);
                }
                if let Some(comment) = &c.comment {
                    if !c.lead.is_empty() || c.assign.is_some() {
                        out.push(' ');
                    }
                    out.push_str(comment);
                }
            }
        }
        out.push('\n');
    }
    // One final newline, and no blank lines after it.
    while out.ends_with("\n\n") {
        out.pop();
    }
    if out.trim().is_empty() {
        return String::new();
    }
    out
}

/// Lines up a cell over each run of consecutive lines that have it: `width` is where the
/// cell would start, and `pad` adds the spaces that bring it to the widest line's.
fn align(
    lines: &mut [Line],
    has: impl Fn(&Cells) -> bool,
    width: impl Fn(usize, &Cells) -> usize,
    pad: impl Fn(&mut Cells, usize),
) {
    let mut i = 0;
    while i < lines.len() {
        let runs = |line: &Line| matches!(line, Line::Code(_, c) if has(c));
        if !runs(&lines[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < lines.len() && runs(&lines[j]) {
            j += 1;
        }
        let widths: Vec<usize> =
            lines[i..j].iter().map(|l| if let Line::Code(indent, c) = l { width(*indent, c) } else { 0 }).collect();
        let widest = widths.iter().copied().max().unwrap_or(0);
        for (line, w) in lines[i..j].iter_mut().zip(widths) {
            if let Line::Code(_, c) = line {
                pad(c, widest - w);
            }
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn canonical_layout() {
        let messy = "resource  \"thoth_fleet\"   \"a\" {\n      name=\"claims\"   # who\n  rollout_pct    =  10   # how much\n\n    tags = {\n a = 1\n      bbb = \"x  y\"\n  }\n  policy = jsonencode({\n      k = [\n  1,\n   ]\n    })\n  text = <<-EOT\n      keep   this  \n    EOT\n}\n\n\n";
        assert_eq!(
            format(messy),
            "resource \"thoth_fleet\" \"a\" {\n  name        = \"claims\" # who\n  rollout_pct = 10       # how much\n\n  tags = {\n    a   = 1\n    bbb = \"x  y\"\n  }\n  policy = jsonencode({\n    k = [\n      1,\n    ]\n  })\n  text = <<-EOT\n      keep   this  \n    EOT\n}\n"
        );
        // Formatting is idempotent, and strings keep their braces, `=` and spaces.
        let tricky = "locals {\n  a = \"${lookup(m, \"k = v\")}\"\n  b = [\n    \"x\",\n  ]\n  c = a == b ? 1 : 2\n}\n";
        assert_eq!(format(tricky), tricky);
        assert_eq!(format(&format(messy)), format(messy));
    }
}
