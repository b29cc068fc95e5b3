//! The compiler's diagnostics as LSP diagnostics, per file.

use aos_compiler::{Diagnostic, Severity};
use tower_lsp_server::lsp_types::{
    self as lsp, CodeDescription, DiagnosticRelatedInformation, DiagnosticSeverity, NumberOrString, Uri,
};

use crate::Snapshot;

/// The diagnostics of every file of the program except stdlib modules,
/// one entry per file (an empty list clears a file's old diagnostics).
pub fn publish(snap: &Snapshot) -> Vec<(Uri, Vec<lsp::Diagnostic>)> {
    let mut out = Vec::new();
    for (id, _, _) in snap.analysis.sources.iter() {
        let Some(uri) = snap.uri(id) else { continue };
        let diags = snap.analysis.diagnostics.iter().filter(|d| d.file == id).map(|d| convert(snap, d)).collect();
        out.push((uri, diags));
    }
    out
}

/// One diagnostic: code, severity, the help appended to the message, and
/// the labels as related information.
pub fn convert(snap: &Snapshot, d: &Diagnostic) -> lsp::Diagnostic {
    let mut message = d.message.clone();
    if !d.primary_label.is_empty() {
        message.push_str(&format!(" ({})", d.primary_label));
    }
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter_map(|l| {
            Some(DiagnosticRelatedInformation { location: snap.location(l.file, l.span)?, message: l.message.clone() })
        })
        .collect();
    lsp::Diagnostic {
        range: snap.range(d.file, d.primary),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.to_string())),
        code_description: code_description(d),
        source: Some("aosc".to_string()),
        message,
        related_information: if related.is_empty() { None } else { Some(related) },
        data: d.help.as_ref().map(|h| serde_json::json!({ "help": h })),
        ..lsp::Diagnostic::default()
    }
}

/// Where the diagnostic's code is explained: its section of
/// `docs/diagnostics.md` (generated from the catalog, like `aosc explain`).
fn code_description(d: &Diagnostic) -> Option<CodeDescription> {
    let href = format!("{DIAGNOSTICS_DOC}#{}", d.code.anchor()).parse::<Uri>().ok()?;
    Some(CodeDescription { href })
}

/// The published page of the catalog.
pub const DIAGNOSTICS_DOC: &str = "https://github.com/autoos/autoos/blob/main/docs/diagnostics.md";
