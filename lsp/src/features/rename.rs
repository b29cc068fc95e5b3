//! Rename: every occurrence of a user-declared name, in every file of the
//! program (string interpolations included: their spans are in the file).

use std::collections::HashMap;

use aos_compiler::query::SymbolKind;
use tower_lsp_server::lsp_types::{Position, Range, TextEdit, Uri, WorkspaceEdit};

use crate::Snapshot;
use crate::features::definition::symbol_at;

/// The range of the name that would be renamed, or why it cannot be.
pub fn prepare(snap: &Snapshot, pos: Position) -> Result<Range, String> {
    let (id, sym) = symbol_at(snap, pos).ok_or("there is no renamable name here")?;
    if sym.std || sym.file.is_none() {
        return Err(format!("`{}` is built in or from the standard library and cannot be renamed", sym.name));
    }
    let offset = snap.offset(pos);
    let occ = snap
        .index
        .references(id)
        .find(|o| o.file == snap.main() && aos_compiler::query::contains(o.span, offset))
        .ok_or("there is no renamable name here")?;
    Ok(snap.range(occ.file, occ.span))
}

/// The edits renaming the symbol under the cursor to `new_name`.
pub fn rename(snap: &Snapshot, pos: Position, new_name: &str) -> Result<WorkspaceEdit, String> {
    prepare(snap, pos)?;
    let (id, sym) = symbol_at(snap, pos).ok_or("there is no renamable name here")?;
    let valid = match sym.kind {
        SymbolKind::Tool => new_name.split('.').count() >= 2 && new_name.split('.').all(is_ident),
        _ => is_ident(new_name),
    };
    if !valid {
        let what = if sym.kind == SymbolKind::Tool { "a dotted name such as `ns.name`" } else { "an identifier" };
        return Err(format!("`{new_name}` is not a valid name here: expected {what}"));
    }
    // A variant is written `Enum.variant`; only the variant part is renamed.
    let replacement = match sym.kind {
        SymbolKind::Variant => new_name.rsplit('.').next().unwrap_or(new_name).to_string(),
        _ => new_name.to_string(),
    };
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    for occ in snap.index.references(id) {
        let Some(uri) = snap.uri(occ.file) else { continue };
        changes
            .entry(uri)
            .or_default()
            .push(TextEdit { range: snap.range(occ.file, occ.span), new_text: replacement.clone() });
    }
    Ok(WorkspaceEdit { changes: Some(changes), ..WorkspaceEdit::default() })
}

const KEYWORDS: &[&str] = &[
    "use", "workflow", "step", "tool", "model", "role", "type", "enum", "policy", "return", "for", "in", "llm", "true",
    "false", "null", "and", "or", "not", "require", "deny", "when",
];

/// An identifier that is not a keyword.
pub fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s)
}
