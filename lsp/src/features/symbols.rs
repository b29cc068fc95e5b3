//! The outline: items, and the steps of each workflow as its children.

use aos_compiler::ast::{ItemKind, Use};
use aos_compiler::query;
use tower_lsp_server::lsp_types::{DocumentSymbol, SymbolKind};

use crate::Snapshot;

/// The document symbols of the main file.
pub fn document_symbols(snap: &Snapshot) -> Vec<DocumentSymbol> {
    let main = snap.main();
    let Some(file) = query::file_ast(&snap.analysis, main) else { return Vec::new() };
    let sym = |name: String, detail: Option<String>, kind: SymbolKind, span, sel, children: Option<Vec<DocumentSymbol>>| {
        #[allow(deprecated)]
        DocumentSymbol {
            name,
            detail,
            kind,
            tags: None,
            deprecated: None,
            range: snap.range(main, span),
            selection_range: snap.range(main, sel),
            children,
        }
    };
    let mut out = Vec::new();
    for item in &file.items {
        let s = match &item.kind {
            ItemKind::Use(Use::Std(path)) => {
                let Some(sel) = query::path_span(path) else { continue };
                sym(format!("use std.{}", query::tool_name(path)), None, SymbolKind::MODULE, item.span, sel, None)
            }
            ItemKind::Use(Use::Path(p, sel)) => sym(format!("use \"{p}\""), None, SymbolKind::MODULE, item.span, *sel, None),
            ItemKind::Type(t) => sym(t.name.name.clone(), Some("type".into()), SymbolKind::STRUCT, item.span, t.name.span, None),
            ItemKind::Enum(e) => {
                let children = e
                    .variants
                    .iter()
                    .map(|v| sym(v.name.clone(), None, SymbolKind::ENUM_MEMBER, v.span, v.span, None))
                    .collect();
                sym(e.name.name.clone(), Some("enum".into()), SymbolKind::ENUM, item.span, e.name.span, Some(children))
            }
            ItemKind::Model(m) => sym(
                m.name.name.clone(),
                Some(format!("{}(\"{}\")", m.provider.name, m.model_id)),
                SymbolKind::CONSTANT,
                item.span,
                m.name.span,
                None,
            ),
            ItemKind::Role(r) => {
                let chain = r.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ");
                sym(r.name.name.clone(), Some(format!("role [{chain}]")), SymbolKind::INTERFACE, item.span, r.name.span, None)
            }
            ItemKind::Tool(t) => {
                let Some(sel) = query::path_span(&t.path) else { continue };
                sym(query::tool_name(&t.path), Some("tool".into()), SymbolKind::FUNCTION, item.span, sel, None)
            }
            ItemKind::Policy(p) => sym(p.name.name.clone(), Some("policy".into()), SymbolKind::OBJECT, item.span, p.name.span, None),
            ItemKind::Workflow(w) => {
                let children = w
                    .steps
                    .iter()
                    .map(|s| sym(s.name.name.clone(), Some("step".into()), SymbolKind::VARIABLE, s.span, s.name.span, None))
                    .collect();
                sym(w.name.name.clone(), Some("workflow".into()), SymbolKind::FUNCTION, item.span, w.name.span, Some(children))
            }
            ItemKind::Test(t) => sym(format!("test \"{}\"", t.name), Some("test".into()), SymbolKind::METHOD, item.span, t.name_span, None),
            ItemKind::Error => continue,
        };
        out.push(s);
    }
    out
}
