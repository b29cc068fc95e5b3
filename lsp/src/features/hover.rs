//! Hover: what a name is, with the figures the checker computed.

use aos_compiler::ast::{self, ExprKind, ItemKind};
use aos_compiler::cost::{fmt_price, fmt_usd};
use aos_compiler::names::{effect_name, risk_name};
use aos_compiler::query::{self, Facts, Symbol, SymbolKind};
use aos_compiler::{FileId, Span};
use tower_lsp_server::lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind, Position};

use crate::Snapshot;
use crate::features::definition::symbol_at;

/// The hover of the name under the cursor, as Markdown.
pub fn hover(snap: &Snapshot, pos: Position) -> Option<Hover> {
    let offset = snap.offset(pos);
    if let Some((item, key)) = attr_key_at(snap, offset)
        && let Some(spec) = aos_compiler::attrs::lookup(item, &key.name)
    {
        return Some(Hover {
            contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: aos_compiler::attrs::hover(spec) }),
            range: Some(snap.range(snap.main(), key.span)),
        });
    }
    let occ = *snap.index.at(snap.main(), offset)?;
    let (_, sym) = symbol_at(snap, pos)?;
    // The figures of the workflow the symbol belongs to (or is), computed
    // over that workflow alone.
    let workflow = match sym.kind {
        SymbolKind::Workflow => Some(sym.name.as_str()),
        _ => sym.workflow.as_deref(),
    };
    let facts = query::facts_for(&snap.analysis, workflow);
    let value = describe(snap, &facts, sym)?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value }),
        range: Some(snap.range(occ.file, occ.span)),
    })
}

/// The attribute key under the cursor in the main file, and the kind of
/// item whose block it is in.
fn attr_key_at(snap: &Snapshot, offset: usize) -> Option<(aos_compiler::attrs::Item, &ast::Ident)> {
    use aos_compiler::attrs::Item;
    let file = query::file_ast(&snap.analysis, snap.main())?;
    let on = |a: &&ast::Attr| query::contains(a.key.span, offset);
    fn entries(b: &Option<ast::Attrs>) -> &[ast::Attr] {
        b.as_ref().map_or(&[][..], |a| a.entries.as_slice())
    }
    let item = file.items.iter().find(|i| query::contains(i.span, offset))?;
    match &item.kind {
        ItemKind::Workflow(w) => {
            if let Some(a) = w.attrs.iter().find(on) {
                return Some((Item::Workflow, &a.key));
            }
            w.steps.iter().flat_map(|s| entries(&s.attrs)).find(on).map(|a| (Item::Step, &a.key))
        }
        ItemKind::Tool(t) => entries(&t.attrs).iter().find(on).map(|a| (Item::Tool, &a.key)),
        ItemKind::Model(m) => entries(&m.attrs).iter().find(on).map(|a| (Item::Model, &a.key)),
        ItemKind::Role(r) => entries(&r.attrs).iter().find(on).map(|a| (Item::Role, &a.key)),
        _ => None,
    }
}

/// The Markdown describing a symbol.
pub fn describe(snap: &Snapshot, facts: &Facts, sym: &Symbol) -> Option<String> {
    let Some(file) = sym.file else {
        // A built-in role that no `role` declaration binds.
        return Some(format!(
            "```aos\nrole {}\n```\nbuilt-in role, not bound to any model: an LLM step that uses it needs `role {} = [MODEL, …]`",
            sym.name, sym.name
        ));
    };
    let src = |span: Span| snap.text(file).get(span.range()).unwrap_or("").to_string();
    let item = find_item(snap, file, sym.span);
    let doc = item.and_then(|i| i.doc.clone());
    let mut out = String::new();
    match sym.kind {
        SymbolKind::Step => {
            let (wf, step) = find_step(snap, file, sym)?;
            let ty = step_type(snap, file, step);
            out.push_str(&format!("```aos\nstep {}: {}\n```\n", step.name.name, ty));
            out.push_str(&format!("{} of workflow `{}`\n", step_kind(&step.call), wf.name.name));
            if let Some((risk, effect, why)) = facts.risk.get(&(wf.name.name.clone(), step.name.name.clone())) {
                out.push_str(&format!("\n**risk** `{}` ({why}), **effect** `{}`\n", risk_name(*risk), effect_name(*effect)));
            }
            if let Some(cost) = facts.cost.workflows.get(&wf.name.name).and_then(|w| w.steps.get(&step.name.name)) {
                out.push_str(&format!("\n**worst-case cost** {}", fmt_usd(cost.usd)));
                if !cost.explanation.is_empty() {
                    out.push_str(&format!(":  \n{}", cost.explanation.replace('\n', "  \n")));
                }
                out.push('\n');
            }
        }
        SymbolKind::Param => {
            out.push_str(&format!("```aos\n{}\n```\nparameter of workflow `{}`\n", src(sym.span), sym.workflow.as_deref().unwrap_or("?")));
        }
        SymbolKind::ForVar => {
            out.push_str(&format!("```aos\n{}\n```\nfan-out variable: one item of the list\n", sym.name));
        }
        SymbolKind::Variant => {
            out.push_str(&format!("```aos\n{}\n```\nenum variant\n", sym.name));
        }
        SymbolKind::Workflow => {
            let Some(ItemKind::Workflow(w)) = item.map(|i| &i.kind) else { return None };
            let params = w.params.iter().map(|p| src(p.span)).collect::<Vec<_>>().join(", ");
            let ret = w.ret.as_ref().map(|r| format!(" -> {}", src(r.span))).unwrap_or_default();
            out.push_str(&format!("```aos\nworkflow {}({params}){ret}\n```\n", w.name.name));
            for key in ["intent", "budget", "risk", "trigger"] {
                if let Some(a) = w.attrs.iter().find(|a| a.key.name == key) {
                    out.push_str(&format!("- **{key}** `{}`\n", src(a.value.span)));
                }
            }
            if let Some(total) = facts.cost.workflows.get(&w.name.name).and_then(|c| c.total_usd) {
                out.push_str(&format!("- **worst-case cost** {}\n", fmt_usd(total)));
            }
        }
        SymbolKind::Model => {
            out.push_str(&format!("```aos\n{}\n```\n", src(sym.span)));
            if let Some(m) = facts.models.get(&sym.name) {
                out.push_str(&format!(
                    "provider `{}`, model `{}`: input {}, output {}, context {} tokens\n",
                    m.provider.as_str(),
                    m.model_id,
                    fmt_price(m.input_per_m),
                    fmt_price(m.output_per_m),
                    m.context
                ));
            }
        }
        SymbolKind::Role => {
            out.push_str(&format!("```aos\n{}\n```\n", src(sym.span)));
            if let Some(ItemKind::Role(r)) = item.map(|i| &i.kind) {
                if r.models.is_empty() {
                    out.push_str("bound to no model\n");
                }
                for (i, m) in r.models.iter().enumerate() {
                    let what = if i == 0 { "first" } else { "fallback" };
                    match facts.models.get(&m.name) {
                        Some(model) => out.push_str(&format!(
                            "{}. `{}` ({what}): {} `{}`, {} in, {} out\n",
                            i + 1,
                            m.name,
                            model.provider.as_str(),
                            model.model_id,
                            fmt_price(model.input_per_m),
                            fmt_price(model.output_per_m)
                        )),
                        None => out.push_str(&format!("{}. `{}` ({what})\n", i + 1, m.name)),
                    }
                }
            }
        }
        SymbolKind::Tool => {
            out.push_str(&format!("```aos\n{}\n```\n", src(sym.span)));
            if let Some(ItemKind::Tool(t)) = item.map(|i| &i.kind) {
                let attrs = t.attrs.as_ref().map_or(&[][..], |a| a.entries.as_slice());
                let get = |k: &str| attrs.iter().find(|a| a.key.name == k).map(|a| src(a.value.span));
                out.push_str(&format!(
                    "**risk** `{}`, **effect** `{}`\n",
                    get("risk").unwrap_or_else(|| "low".into()),
                    get("effect").unwrap_or_else(|| "read".into())
                ));
            }
            if sym.std {
                out.push_str(&format!("\nstandard library (`{}`)\n", snap.analysis.sources.path(file)));
            }
        }
        SymbolKind::Type | SymbolKind::Enum | SymbolKind::Policy => {
            out.push_str(&format!("```aos\n{}\n```\n", src(sym.span)));
        }
    }
    if let Some(doc) = doc {
        out.push_str("\n---\n");
        out.push_str(&doc);
        out.push('\n');
    }
    Some(out)
}

fn find_item(snap: &Snapshot, file: FileId, span: Span) -> Option<&ast::Item> {
    query::file_ast(&snap.analysis, file)?.items.iter().find(|i| i.span == span)
}

fn find_step<'a>(snap: &'a Snapshot, file: FileId, sym: &Symbol) -> Option<(&'a ast::Workflow, &'a ast::Step)> {
    let wf_name = sym.workflow.as_deref()?;
    query::file_ast(&snap.analysis, file)?.items.iter().find_map(|i| match &i.kind {
        ItemKind::Workflow(w) if w.name.name == wf_name => {
            w.steps.iter().find(|s| s.span == sym.span).map(|s| (w, s))
        }
        _ => None,
    })
}

fn step_kind(call: &ast::Expr) -> String {
    match &call.kind {
        ExprKind::Llm { role, agent: true, .. } => format!("agent step (role `{}`; may call its `tools:`)", role.name),
        ExprKind::Llm { role, .. } => format!("LLM step (role `{}`)", role.name),
        ExprKind::Call { callee, .. } if callee.len() >= 2 => format!("tool step (`{}`)", query::tool_name(callee)),
        ExprKind::Call { callee, .. } => format!("workflow step (`{}`)", query::tool_name(callee)),
        ExprKind::For { body, .. } => format!("fan-out {}", step_kind(body)),
        _ => "step".to_string(),
    }
}

/// The step's type: the declared one, else what its call returns.
pub fn step_type(snap: &Snapshot, file: FileId, step: &ast::Step) -> String {
    let src = |f: FileId, span: Span| snap.text(f).get(span.range()).unwrap_or("?").to_string();
    let mut ty = match &step.ty {
        Some(t) => src(file, t.span),
        None => call_type(snap, &step.call).unwrap_or_else(|| "?".to_string()),
    };
    if aos_compiler::AttrBlock(step.attrs.as_ref().map_or(&[][..], |a| a.entries.as_slice())).get("when").is_some()
        && !ty.ends_with('?')
    {
        ty.push('?');
    }
    ty
}

fn call_type(snap: &Snapshot, call: &ast::Expr) -> Option<String> {
    let src = |f: FileId, span: Span| snap.text(f).get(span.range()).unwrap_or("?").to_string();
    match &call.kind {
        ExprKind::Llm { .. } => Some("String".to_string()),
        ExprKind::For { body, .. } => call_type(snap, body).map(|t| format!("List<{t}>")),
        ExprKind::Call { callee, .. } => {
            let name = query::tool_name(callee);
            let kind = if callee.len() >= 2 { SymbolKind::Tool } else { SymbolKind::Workflow };
            let sym = snap.index.symbol(snap.index.lookup(kind, &name)?)?;
            let file = sym.file?;
            match &find_item(snap, file, sym.span)?.kind {
                ItemKind::Tool(t) => Some(t.ret.as_ref().map_or("Json".to_string(), |r| src(file, r.span))),
                ItemKind::Workflow(w) => Some(w.ret.as_ref().map_or("?".to_string(), |r| src(file, r.span))),
                _ => None,
            }
        }
        _ => None,
    }
}
