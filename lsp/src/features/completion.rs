//! Completion: what may be written at the cursor.
//!
//! The context comes from the syntax tree where it is intact (which item,
//! which attribute block the cursor is in) and from the text just before the
//! cursor where the tree cannot know (`llm `, `ns.`, `Enum.`, `step.`): the
//! line being typed is usually the broken one.

use std::collections::BTreeSet;

use aos_compiler::ast::{self, ItemKind, TypeExprKind};
use aos_compiler::attrs::{self, AttrSpec, Item};
use aos_compiler::names::{BUILTIN_ROLES, PURE_BUILTINS};
use aos_compiler::query::{self, SymbolKind};
use tower_lsp_server::lsp_types::{CompletionItem, CompletionItemKind, Documentation, MarkupContent, MarkupKind, Position};

use crate::Snapshot;

/// Item keywords.
pub const ITEM_KEYWORDS: &[&str] = &["use", "type", "enum", "model", "role", "tool", "policy", "workflow"];
pub const BUILTIN_TYPES: &[&str] = &["String", "Int", "Float", "Bool", "Json", "Duration", "Money", "Secret", "List"];
const PROVIDERS: &[&str] = &["openai", "anthropic", "gemini", "sim"];
const RISKS: &[&str] = &["low", "medium", "high", "critical"];
const EFFECTS: &[&str] = &["pure", "read", "external"];

/// The completions at a position of the main file.
pub fn completion(snap: &Snapshot, pos: Position) -> Vec<CompletionItem> {
    let text = snap.main_text();
    let offset = snap.offset(pos).min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let word_start = before.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_').len();
    let head = before.get(..word_start).unwrap_or("");
    let line_start = head.rfind('\n').map_or(0, |i| i + 1);
    let line = head.get(line_start..).unwrap_or("");
    let file = query::file_ast(&snap.analysis, snap.main());
    let mut c = Completions::default();

    // `base.` : tools of a namespace, variants of an enum, fields of a step.
    if let Some(chain) = head.strip_suffix('.') {
        let base_start = chain.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.').len();
        let base = chain.get(base_start..).unwrap_or("");
        after_dot(snap, file, offset, base, &mut c);
        return c.items;
    }
    // `llm ` and `agent ` : roles.
    let after_word = |w: &str| head.trim_end().ends_with(w) && head.ends_with(char::is_whitespace) && word_boundary_before(head.trim_end(), w.len());
    if after_word("llm") || after_word("agent") {
        roles(snap, &mut c);
        return c.items;
    }
    let at_entry = {
        let t = line.trim_end();
        t.trim().is_empty() || t.ends_with('{') || t.ends_with(',')
    };
    let key = value_key(line);
    let item = file.and_then(|f| {
        f.items.iter().find(|i| (i.span.start as usize) <= offset && offset < i.span.end as usize)
    });
    match item.map(|i| &i.kind) {
        None => {
            for k in ITEM_KEYWORDS {
                c.keyword(k);
            }
        }
        Some(ItemKind::Workflow(w)) => {
            let step = w.steps.iter().find(|s| query::contains(s.span, offset));
            let in_attrs = step.and_then(|s| s.attrs.as_ref()).is_some_and(|a| a.span.start as usize <= offset);
            if in_attrs && at_entry {
                c.attrs(Item::Step);
            } else if step.is_none() && at_entry {
                c.attrs(Item::Workflow);
                c.keyword("step");
                c.keyword("return");
            } else if is_type_position(line) {
                types(snap, &mut c);
            } else {
                value(snap, w, step, key.as_deref(), &mut c);
            }
        }
        Some(ItemKind::Model(m)) => {
            if m.attrs.as_ref().is_some_and(|a| a.span.start as usize <= offset) {
                if at_entry {
                    c.attrs(Item::Model);
                }
            } else {
                for p in PROVIDERS {
                    c.push(p, CompletionItemKind::CONSTANT, None);
                }
            }
        }
        Some(ItemKind::Tool(t)) => {
            if t.attrs.as_ref().is_some_and(|a| a.span.start as usize <= offset) {
                if at_entry {
                    c.attrs(Item::Tool);
                } else {
                    levels(key.as_deref(), &mut c);
                }
            } else {
                types(snap, &mut c);
            }
        }
        Some(ItemKind::Role(r)) if r.attrs.as_ref().is_some_and(|a| a.span.start as usize <= offset) => {
            if at_entry {
                c.attrs(Item::Role);
            }
        }
        Some(ItemKind::Role(_)) => {
            for (name, _) in snap.index.globals_of(SymbolKind::Model) {
                c.push(name, CompletionItemKind::CONSTANT, Some("model"));
            }
        }
        Some(ItemKind::Type(_)) => types(snap, &mut c),
        Some(ItemKind::Use(_)) => {
            for (name, _) in aos_compiler::stdlib::MODULES {
                c.push(&format!("std.{name}"), CompletionItemKind::MODULE, None);
            }
        }
        Some(ItemKind::Policy(_)) => {
            for k in ["require", "deny", "when", "approval", "verify", "risk", "kind", "tool", "effect", "trust"] {
                c.keyword(k);
            }
        }
        Some(ItemKind::Test(_)) => {
            for k in ["given", "llm", "tool", "replies", "returns", "fails", "calls", "run", "expect", "approve", "deny"] {
                c.keyword(k);
            }
            for k in aos_compiler::testplan::SUBJECTS {
                c.keyword(k);
            }
            for (name, _) in snap.index.globals_of(SymbolKind::Workflow) {
                c.push(name, CompletionItemKind::FUNCTION, Some("workflow"));
            }
            for (name, _) in snap.index.globals_of(SymbolKind::Role) {
                c.push(name, CompletionItemKind::CONSTANT, Some("role"));
            }
        }
        Some(ItemKind::Enum(_) | ItemKind::Error) => {
            for k in ITEM_KEYWORDS {
                c.keyword(k);
            }
        }
    }
    c.items
}

/// Whether `s` has no identifier character just before its last `n` bytes.
fn word_boundary_before(s: &str, n: usize) -> bool {
    s.len() < n
        || s.get(..s.len() - n).is_none_or(|p| !p.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// The attribute key whose value is being typed on this line (`verify: `).
fn value_key(line: &str) -> Option<String> {
    let (k, _) = line.rsplit_once(':')?;
    let k = k.trim_end();
    let start = k.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_').len();
    let key = k.get(start..)?;
    (!key.is_empty()).then(|| key.to_string())
}

/// A type is expected: `step x: |`, `(p: |`, `-> |`, `List<|`.
fn is_type_position(line: &str) -> bool {
    let t = line.trim_end();
    if t.ends_with("->") || t.ends_with('<') {
        return true;
    }
    let t = t.trim_start();
    t.starts_with("step ") && t.ends_with(':') && !t.contains('=')
}

#[derive(Default)]
struct Completions {
    items: Vec<CompletionItem>,
    seen: BTreeSet<String>,
}

impl Completions {
    fn push(&mut self, label: &str, kind: CompletionItemKind, detail: Option<&str>) {
        if self.seen.insert(label.to_string()) {
            self.items.push(CompletionItem {
                label: label.to_string(),
                kind: Some(kind),
                detail: detail.map(str::to_string),
                ..CompletionItem::default()
            });
        }
    }

    fn keyword(&mut self, k: &str) {
        self.push(k, CompletionItemKind::KEYWORD, None);
    }

    /// The attributes `item` takes, from the one attribute table, with
    /// their type and doc.
    fn attrs(&mut self, item: Item) {
        for a in attrs::of(item) {
            self.attr(a);
        }
    }

    fn attr(&mut self, a: &AttrSpec) {
        if self.seen.insert(a.name.to_string()) {
            self.items.push(CompletionItem {
                label: a.name.to_string(),
                kind: Some(CompletionItemKind::PROPERTY),
                detail: Some(a.ty.describe()),
                documentation: Some(Documentation::MarkupContent(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: attrs::hover(a),
                })),
                insert_text: Some(format!("{}: ", a.name)),
                ..CompletionItem::default()
            });
        }
    }
}

fn roles(snap: &Snapshot, c: &mut Completions) {
    for (name, id) in snap.index.globals_of(SymbolKind::Role) {
        let builtin = snap.index.symbol(id).is_some_and(|s| s.file.is_none());
        c.push(name, CompletionItemKind::CLASS, Some(if builtin { "built-in role (unbound)" } else { "role" }));
    }
    for r in BUILTIN_ROLES {
        c.push(r, CompletionItemKind::CLASS, Some("built-in role"));
    }
}

fn types(snap: &Snapshot, c: &mut Completions) {
    for t in BUILTIN_TYPES {
        c.push(t, CompletionItemKind::STRUCT, Some("built-in type"));
    }
    for (name, _) in snap.index.globals_of(SymbolKind::Type) {
        c.push(name, CompletionItemKind::STRUCT, Some("type"));
    }
    for (name, _) in snap.index.globals_of(SymbolKind::Enum) {
        c.push(name, CompletionItemKind::ENUM, Some("enum"));
    }
}

fn levels(key: Option<&str>, c: &mut Completions) -> bool {
    let list: &[&str] = match key {
        Some("risk") => RISKS,
        Some("effect") => EFFECTS,
        Some("backoff") => &["fixed", "exponential"],
        Some("trigger") => &["cron", "event"],
        _ => return false,
    };
    for l in list {
        c.push(l, CompletionItemKind::ENUM_MEMBER, None);
    }
    true
}

/// An expression is expected inside a workflow.
fn value(snap: &Snapshot, w: &ast::Workflow, step: Option<&ast::Step>, key: Option<&str>, c: &mut Completions) {
    if levels(key, c) {
        return;
    }
    if key == Some("verify") {
        roles(snap, c);
        return;
    }
    // `tools: [` of an agent step: the declared tools.
    if key == Some("tools") {
        for (name, _) in snap.index.globals_of(SymbolKind::Tool) {
            c.push(name, CompletionItemKind::FUNCTION, Some("tool"));
        }
        return;
    }
    let after_only = key == Some("after");
    for s in &w.steps {
        if step.is_some_and(|cur| cur.name.name == s.name.name) {
            continue;
        }
        c.push(&s.name.name, CompletionItemKind::VARIABLE, Some("step"));
    }
    if after_only {
        return;
    }
    for p in &w.params {
        c.push(&p.name.name, CompletionItemKind::VARIABLE, Some("parameter"));
    }
    for b in PURE_BUILTINS {
        c.push(b, CompletionItemKind::FUNCTION, Some("built-in"));
    }
    c.keyword("llm");
    c.keyword("agent");
    c.keyword("for");
    let mut namespaces = BTreeSet::new();
    for (name, _) in snap.index.globals_of(SymbolKind::Tool) {
        if let Some((ns, _)) = name.split_once('.') {
            namespaces.insert(ns.to_string());
        }
    }
    for ns in namespaces {
        c.push(&ns, CompletionItemKind::MODULE, Some("tools"));
    }
    for (name, _) in snap.index.globals_of(SymbolKind::Workflow) {
        if name != w.name.name {
            c.push(name, CompletionItemKind::FUNCTION, Some("workflow"));
        }
    }
    for (name, _) in snap.index.globals_of(SymbolKind::Enum) {
        c.push(name, CompletionItemKind::ENUM, Some("enum"));
    }
}

fn after_dot(snap: &Snapshot, file: Option<&ast::File>, offset: usize, base: &str, c: &mut Completions) {
    let prefix = format!("{base}.");
    for (name, id) in snap.index.globals_of(SymbolKind::Tool) {
        if let Some(rest) = name.strip_prefix(&prefix) {
            let detail = snap.index.symbol(id).and_then(|s| {
                let f = s.file?;
                let text = snap.text(f).get(s.span.range())?;
                Some(text.lines().next().unwrap_or(text).trim_end_matches([' ', '{']).to_string())
            });
            c.push(rest, CompletionItemKind::FUNCTION, detail.as_deref());
        }
    }
    // `Enum.`: its variants.
    if let Some(sym) = snap.index.lookup(SymbolKind::Enum, base).and_then(|id| snap.index.symbol(id))
        && sym.kind == SymbolKind::Enum
            && let Some(ItemKind::Enum(e)) = item_of(snap, sym).map(|i| &i.kind) {
                for v in &e.variants {
                    c.push(&v.name, CompletionItemKind::ENUM_MEMBER, Some(&e.name.name));
                }
            }
    // `step.`: the fields of its record type.
    let Some(file) = file else { return };
    let Some((_, w)) = query::workflow_at(file, offset) else { return };
    let Some(step) = w.steps.iter().find(|s| s.name.name == base) else { return };
    let ty = step.ty.clone().or_else(|| call_ret(snap, &step.call));
    if let Some(fields) = ty.and_then(|t| record_fields(snap, &t, 0)) {
        for (name, fty) in fields {
            let detail = type_text(snap, &fty);
            c.push(&name, CompletionItemKind::FIELD, Some(&detail));
        }
    }
}

fn item_of<'a>(snap: &'a Snapshot, sym: &aos_compiler::query::Symbol) -> Option<&'a ast::Item> {
    query::file_ast(&snap.analysis, sym.file?)?.items.iter().find(|i| i.span == sym.span)
}

fn call_ret(snap: &Snapshot, call: &ast::Expr) -> Option<ast::TypeExpr> {
    let ast::ExprKind::Call { callee, .. } = &call.kind else { return None };
    let kind = if callee.len() >= 2 { SymbolKind::Tool } else { SymbolKind::Workflow };
    let sym = snap.index.symbol(snap.index.lookup(kind, &query::tool_name(callee))?)?;
    match &item_of(snap, sym)?.kind {
        ItemKind::Tool(t) => t.ret.clone(),
        ItemKind::Workflow(w) => w.ret.clone(),
        _ => None,
    }
}

/// The fields of a record type, following `type` names (and `T?`).
fn record_fields(snap: &Snapshot, ty: &ast::TypeExpr, depth: usize) -> Option<Vec<(String, ast::TypeExpr)>> {
    if depth > 16 {
        return None;
    }
    match &ty.kind {
        TypeExprKind::Record(fields) => Some(fields.iter().map(|(n, t)| (n.name.clone(), t.clone())).collect()),
        TypeExprKind::Optional(inner) => record_fields(snap, inner, depth + 1),
        TypeExprKind::Named(n) => {
            let sym = snap.index.symbol(snap.index.lookup(SymbolKind::Type, &n.name)?)?;
            match &item_of(snap, sym)?.kind {
                ItemKind::Type(t) => record_fields(snap, &t.ty, depth + 1),
                _ => None,
            }
        }
        TypeExprKind::List(_) | TypeExprKind::Error => None,
    }
}

fn type_text(snap: &Snapshot, ty: &ast::TypeExpr) -> String {
    match &ty.kind {
        TypeExprKind::Named(n) => n.name.clone(),
        TypeExprKind::List(inner) => format!("List<{}>", type_text(snap, inner)),
        TypeExprKind::Optional(inner) => format!("{}?", type_text(snap, inner)),
        TypeExprKind::Record(fields) => {
            let f: Vec<String> = fields.iter().map(|(n, t)| format!("{}: {}", n.name, type_text(snap, t))).collect();
            format!("{{ {} }}", f.join(", "))
        }
        TypeExprKind::Error => "?".to_string(),
    }
}
