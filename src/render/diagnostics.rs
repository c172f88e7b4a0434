//! Diagnostics as miette reports: the message, the source line with the span underlined and
//! its `file:line:col`, further places as notes, and a hint.

use std::fmt::Write as _;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::config::SourceFile;
use crate::diag::{Diagnostic, Diagnostics, Severity};

/// Renders every diagnostic, sorted by file and position, without colour so that the text is
/// the same on every terminal and in logs.
pub fn diagnostics(files: &[SourceFile], diags: &Diagnostics) -> String {
    let handler =
        GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100).with_links(false);
    let mut out = String::new();
    for d in diags.sorted() {
        let report = Report::new(files, d);
        if handler.render_report(&mut out, &report).is_err() {
            let _ = writeln!(out, "{}", d.message);
        }
    }
    let errors = diags.sorted().iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diags.sorted().len() - errors;
    if errors + warnings > 0 {
        let _ = writeln!(out, "{}", count_line(errors, warnings));
    }
    out
}

fn count_line(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, w) => plural(w, "warning"),
        (e, 0) => plural(e, "error"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// A diagnostic with its source, in the shape miette renders.
#[derive(Debug)]
struct Report {
    message: String,
    severity: Severity,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl Report {
    fn new(files: &[SourceFile], d: &Diagnostic) -> Report {
        let file = d.span.and_then(|s| files.get(s.file));
        let mut labels = Vec::new();
        let mut notes = Vec::new();
        if let (Some(span), Some(_)) = (d.span, file) {
            labels
                .push(LabeledSpan::new_primary_with_span(Some(d.label.clone()), to_source_span(span.start, span.end)));
        }
        for (span, label) in &d.related {
            match (d.span, files.get(span.file)) {
                (Some(primary), Some(_)) if primary.file == span.file => {
                    labels.push(LabeledSpan::new_with_span(Some(label.clone()), to_source_span(span.start, span.end)));
                }
                (_, Some(f)) => notes.push(format!("{label} ({})", position(f, span.start))),
                (_, None) => notes.push(label.clone()),
            }
        }
        let mut help = d.help.clone();
        if !notes.is_empty() {
            let text = notes.join("; ");
            help = Some(match help {
                Some(h) => format!("{h}\nnote: {text}"),
                None => format!("note: {text}"),
            });
        }
        Report {
            message: d.message.clone(),
            severity: d.severity,
            source: file.map(|f| NamedSource::new(&f.name, f.text.clone())),
            labels,
            help,
        }
    }
}

fn to_source_span(start: usize, end: usize) -> SourceSpan {
    SourceSpan::new(start.into(), end.saturating_sub(start))
}

/// `file:line:col` of a byte offset, one-based.
pub(crate) fn position(file: &SourceFile, offset: usize) -> String {
    let before = &file.text[..offset.min(file.text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{}:{line}:{col}", file.name)
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h.clone()) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.clone().into_iter()))
        }
    }
}
