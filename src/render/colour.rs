//! Colour for the human plan on a terminal: added lines green, removed red, changed yellow,
//! actions cyan, headlines bold, and every `loosens` in bold red. Applied to finished text, so
//! the plan reads the same with and without it; never used when output is not a terminal or
//! `NO_COLOR` is set.

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const BOLD_RED: &str = "\x1b[1;31m";

static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--no-color`: no colour for the rest of the process.
pub fn disable() {
    NEVER.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether standard output should get colour.
pub fn wanted() -> bool {
    use std::io::IsTerminal;
    !NEVER.load(std::sync::atomic::Ordering::Relaxed)
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The same text with colour codes.
pub fn colour(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let trimmed = body.trim_start();
        let code = if trimmed.starts_with("# ") {
            Some(BOLD)
        } else if trimmed.starts_with("-/+ ") || trimmed.starts_with("- ") {
            Some(RED)
        } else if trimmed.starts_with("+ ") {
            Some(GREEN)
        } else if trimmed.starts_with("~ ") {
            Some(YELLOW)
        } else if trimmed.starts_with("! ") || trimmed.starts_with("<= ") {
            Some(CYAN)
        } else {
            None
        };
        let body = body.replace("loosens", &format!("{BOLD_RED}loosens{RESET}{}", code.unwrap_or("")));
        match code {
            Some(c) => {
                out.push_str(c);
                out.push_str(&body);
                out.push_str(RESET);
            }
            None => out.push_str(&body),
        }
        if line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_marks_lines_by_their_symbol_and_loosening_in_red() {
        let text = "  # a will be updated in place [loosens]\n  ~ resource \"t\" \"a\" {\n      + x = 1\n    }\n";
        let coloured = colour(text);
        assert!(
            coloured.starts_with("\x1b[1m  # a will be updated in place [\x1b[1;31mloosens\x1b[0m\x1b[1m]\x1b[0m\n")
        );
        assert!(coloured.contains("\x1b[33m  ~ resource"));
        assert!(coloured.contains("\x1b[32m      + x = 1\x1b[0m\n"));
        assert!(coloured.ends_with("    }\n"), "unmarked lines are left alone");
        let plain: String =
            coloured.replace(RESET, "").replace(BOLD_RED, "").replace(BOLD, "").replace(GREEN, "").replace(YELLOW, "");
        assert_eq!(plain, text);
    }
}
