//! Diagnostics: collected problems with a position in a source file.
//!
//! Stages push diagnostics into a `Diagnostics` collection instead of returning at the first
//! problem, so a user sees every error in one run. This module only holds data; `render`
//! prints it.

use crate::model::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Where the problem is; `None` for problems that are not about one place in a file.
    pub span: Option<Span>,
    /// Short text shown under the highlighted source.
    pub label: String,
    pub help: Option<String>,
    /// Further places that take part in the problem (every member of a cycle, say).
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            label: String::new(),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(message) }
    }

    #[must_use]
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.span = Some(span);
        self.label = label.into();
        self
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn related(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.related.push((span, label.into()));
        self
    }
}

/// A collection of diagnostics, kept sorted by file and position when read.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Adds a diagnostic unless one with the same severity, place and message is there: two
    /// stages may notice the same problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        let same = |d: &Diagnostic| {
            d.severity == diagnostic.severity && d.span == diagnostic.span && d.message == diagnostic.message
        };
        if !self.items.iter().any(same) {
            self.items.push(diagnostic);
        }
    }

    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.items {
            self.push(d);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors_only(&self) -> Diagnostics {
        Diagnostics { items: self.items.iter().filter(|d| d.severity == Severity::Error).cloned().collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The diagnostics ordered by file, position, then severity and message.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut out: Vec<&Diagnostic> = self.items.iter().collect();
        out.sort_by(|a, b| {
            let key = |d: &Diagnostic| d.span.map(|s| (s.file, s.start, s.end));
            key(a).cmp(&key(b)).then(a.severity.cmp(&b.severity)).then(a.message.cmp(&b.message))
        });
        out
    }
}

/// Returns the candidate closest to `name` when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(name, candidate);
        let limit = (name.len().max(candidate.len()) / 3).max(2);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_names_only() {
        let names = ["shadow_high", "shadow_low", "webhook_url"];
        assert_eq!(did_you_mean("shadow_hgih", names), Some("shadow_high"));
        assert_eq!(did_you_mean("webhok_url", names), Some("webhook_url"));
        assert_eq!(did_you_mean("completely_else", names), None);
    }
}
