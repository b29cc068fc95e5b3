//! Quick fixes for the common findings: add `approval:` (E0601, E0602),
//! add `max_items:` to a fan-out (E0502), apply a "did you mean" (E0101,
//! E0103, E0105).

use std::collections::HashMap;

use aos_compiler::ast::{self, ItemKind};
use aos_compiler::{query, Code, Diagnostic, Span};
use tower_lsp_server::lsp_types::{CodeAction, CodeActionKind, CodeActionOrCommand, Range, TextEdit, Uri, WorkspaceEdit};

use crate::Snapshot;
use crate::features::diagnostics;

/// The quick fixes for the diagnostics of the main file that touch `range`.
pub fn code_actions(snap: &Snapshot, uri: &Uri, range: Range) -> Vec<CodeActionOrCommand> {
    let main = snap.main();
    let text = snap.main_text();
    let wanted = Span::new(snap.offset(range.start), snap.offset(range.end));
    let mut out = Vec::new();
    for d in snap.analysis.diagnostics.iter().filter(|d| d.file == main) {
        if d.primary.end < wanted.start || d.primary.start > wanted.end {
            continue;
        }
        let fix = match d.code {
            Code::E0601 | Code::E0602 if d.help.as_deref().is_some_and(|h| h.contains("approval")) => {
                step_of(snap, d).map(|s| ("add `approval:` to the step".to_string(), add_attr(text, s, "approval: \"approvers\"")))
            }
            Code::E0502 => step_of(snap, d).map(|s| ("add `max_items:` to the fan-out".to_string(), add_attr(text, s, "max_items: 100"))),
            Code::E0101 | Code::E0103 | Code::E0105 => did_you_mean(d).map(|name| {
                (format!("change to `{name}`"), TextEdit { range: snap.range(main, d.primary), new_text: name })
            }),
            _ => None,
        };
        let Some((title, edit)) = fix else { continue };
        let changes = HashMap::from([(uri.clone(), vec![edit])]);
        out.push(CodeActionOrCommand::CodeAction(CodeAction {
            title,
            kind: Some(CodeActionKind::QUICKFIX),
            diagnostics: Some(vec![diagnostics::convert(snap, d)]),
            edit: Some(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() }),
            is_preferred: Some(true),
            ..CodeAction::default()
        }));
    }
    out
}

/// The name suggested by a help text "did you mean `x`?".
pub fn did_you_mean(d: &Diagnostic) -> Option<String> {
    let help = d.help.as_deref()?;
    let rest = &help[help.find("did you mean `")? + "did you mean `".len()..];
    let name = &rest[..rest.find('`')?];
    (!name.is_empty()).then(|| name.to_string())
}

/// The step a diagnostic is about: the one whose span holds its primary.
fn step_of<'a>(snap: &'a Snapshot, d: &Diagnostic) -> Option<&'a ast::Step> {
    let file = query::file_ast(&snap.analysis, d.file)?;
    file.items.iter().find_map(|i| match &i.kind {
        ItemKind::Workflow(w) => w.steps.iter().find(|s| s.span.start <= d.primary.start && d.primary.end <= s.span.end),
        _ => None,
    })
}

/// The edit that adds an attribute entry to a step, creating its block if
/// it has none.
fn add_attr(text: &str, step: &ast::Step, entry: &str) -> TextEdit {
    let map = crate::position::LineMap::new(text);
    let indent_of = |offset: usize| {
        let line_start = text.get(..offset).and_then(|s| s.rfind('\n')).map_or(0, |i| i + 1);
        let line = text.get(line_start..).unwrap_or("");
        line[..line.len() - line.trim_start_matches([' ', '\t']).len()].to_string()
    };
    let step_indent = indent_of(step.span.start as usize);
    let (at, new_text) = match &step.attrs {
        None => (step.call.span.end as usize, format!(" {{\n{step_indent}  {entry}\n{step_indent}}}")),
        Some(attrs) => {
            let close = (attrs.span.end as usize).saturating_sub(1);
            let line_start = text.get(..close).and_then(|s| s.rfind('\n')).map_or(0, |i| i + 1);
            let own_line = text.get(line_start..close).is_some_and(|s| s.trim().is_empty());
            match attrs.entries.last() {
                Some(last) if own_line => {
                    let indent = indent_of(last.span.start as usize);
                    (line_start, format!("{indent}{entry}\n"))
                }
                Some(last) => (last.span.end as usize, format!(", {entry}")),
                None => (attrs.span.start as usize + 1, format!(" {entry} ")),
            }
        }
    };
    let pos = map.position(text, at);
    TextEdit { range: Range { start: pos, end: pos }, new_text }
}
