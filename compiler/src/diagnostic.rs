//! The one diagnostic type of the project, rendered for people (ariadne) and
//! for tools (the JSON of LANGUAGE.md §6). The language server converts the
//! same values.

use std::fmt;

use serde::Serialize;

use crate::codes::Code;
use crate::source::{FileId, Sources};
use crate::span::Span;

/// How bad a finding is. Errors fail `aosc check`; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A secondary place that explains a diagnostic ("the call opened here").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub file: FileId,
    pub span: Span,
    pub message: String,
}

/// A finding about a program: a stable code (`E0301`), a severity, a
/// message in the user's words, where it is, what else is involved and, when
/// we know, what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub file: FileId,
    pub primary: Span,
    /// A short text shown under the primary span (may be empty).
    pub primary_label: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, file: FileId, primary: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            file,
            primary,
            primary_label: String::new(),
            labels: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: Code, file: FileId, primary: Span, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, file, primary, message) }
    }

    /// The text shown under the primary span.
    #[must_use]
    pub fn with_primary_label(mut self, text: impl Into<String>) -> Self {
        self.primary_label = text.into();
        self
    }

    #[must_use]
    pub fn with_label(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { file, span, message: message.into() });
        self
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// One diagnostic as LANGUAGE.md §6 prints it for tools.
#[derive(Clone, Debug, Serialize)]
pub struct JsonDiagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<JsonLabel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct JsonLabel {
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// The JSON object of §6: `{"diagnostics": [...]}`.
pub fn to_json(diags: &[Diagnostic], sources: &Sources) -> serde_json::Value {
    let list: Vec<JsonDiagnostic> = diags.iter().map(|d| json_diagnostic(d, sources)).collect();
    serde_json::json!({ "diagnostics": list })
}

pub fn json_diagnostic(d: &Diagnostic, sources: &Sources) -> JsonDiagnostic {
    let (line, column, end_line, end_column) = sources.range_of(d.file, d.primary);
    JsonDiagnostic {
        code: d.code.as_str(),
        severity: d.severity,
        message: d.message.clone(),
        file: sources.path(d.file).to_string(),
        line,
        column,
        end_line,
        end_column,
        labels: d
            .labels
            .iter()
            .map(|l| {
                let (line, column, end_line, end_column) = sources.range_of(l.file, l.span);
                JsonLabel { message: l.message.clone(), file: sources.path(l.file).to_string(), line, column, end_line, end_column }
            })
            .collect(),
        help: d.help.clone(),
    }
}

/// Whether `render_human` may use colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Always,
    Never,
}

/// Renders diagnostics for people, with the source lines and labels.
pub fn render_human(diags: &[Diagnostic], sources: &Sources, color: Color) -> String {
    let mut out = Vec::new();
    for d in diags {
        render_one(d, sources, color, &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn render_one(d: &Diagnostic, sources: &Sources, color: Color, out: &mut Vec<u8>) {
    use ariadne::{Config, IndexType, Label as ALabel, Report, ReportKind};
    let kind = match d.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let span_of = |file: FileId, span: Span| {
        let len = sources.text(file).len();
        let start = (span.start as usize).min(len);
        let end = (span.end as usize).clamp(start, len);
        (sources.path(file).to_string(), start..end)
    };
    let config = Config::default().with_color(color == Color::Always).with_index_type(IndexType::Byte);
    let mut report = Report::build(kind, span_of(d.file, d.primary))
        .with_config(config)
        .with_code(d.code)
        .with_message(&d.message);
    let primary = ALabel::new(span_of(d.file, d.primary)).with_order(-1);
    report = report.with_label(if d.primary_label.is_empty() { primary } else { primary.with_message(&d.primary_label) });
    for l in &d.labels {
        report = report.with_label(ALabel::new(span_of(l.file, l.span)).with_message(&l.message));
    }
    if let Some(help) = &d.help {
        report = report.with_help(help);
    }
    let cache = ariadne::sources(sources.iter().map(|(_, path, text)| (path.to_string(), text.to_string())));
    let _ = report.finish().write(cache, &mut *out);
}
