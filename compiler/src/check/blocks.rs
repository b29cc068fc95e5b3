//! Fan-out blocks (docs/language.md, *Fan-out blocks*): a step `for x in
//! LIST => { step … return EXPR }` runs its block of steps once per item.
//!
//! Before the passes run, each block becomes a workflow of its own, named
//! `WORKFLOW.STEP` (no declaration can have a dotted workflow name), and the
//! fan-out calls it once per item: `for x in LIST => WORKFLOW.STEP(x: x, …)`.
//! Its parameters are the item and every parameter or step of the enclosing
//! workflow that the block reads; its steps run one at a time
//! (`max_concurrency: 1`), in their order; it takes the enclosing
//! workflow's `risk:` and `max_param_tokens:` (its cost counts in the
//! enclosing workflow's budget). So every pass
//! checks the block as it checks any workflow (names, types, roles, risk,
//! policy, cost: items × the block's bound, with E-codes pointing into the
//! block), and the runtime runs each item as a sub-run whose steps are each
//! journaled: a resumed run repeats no finished inner step.
//!
//! The syntax trees the editor and the formatter see keep the block; only
//! the passes see the lifted form.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{Arg, Attr, Expr, ExprKind, File, Ident, Item, ItemKind, Param, Step, StrPart, TypeExpr, TypeExprKind, Workflow};
use crate::span::Span;

use super::resolve::Loaded;

/// The keys a block's workflow takes from the enclosing workflow.
const INHERITED: [&str; 2] = ["risk", "max_param_tokens"];

/// The loaded files with every fan-out block lifted into a workflow, or
/// `None` when there is no block (the common case: nothing is copied).
pub fn lift(loaded: &Loaded) -> Option<Loaded> {
    if !loaded.files.iter().any(|(_, f)| has_block(f)) {
        return None;
    }
    let mut files = loaded.files.clone();
    let returns = declared_returns(&files);
    for (_, file) in &mut files {
        let mut lifted: Vec<Item> = Vec::new();
        for item in &mut file.items {
            if let ItemKind::Workflow(wf) = &mut item.kind {
                let mut pending = vec![];
                lift_workflow(wf, &returns, &mut pending);
                // A block may hold blocks of its own.
                while let Some((mut inner, span)) = pending.pop() {
                    lift_workflow(&mut inner, &returns, &mut pending);
                    lifted.push(Item { kind: ItemKind::Workflow(inner), doc: None, span });
                }
            }
        }
        file.items.extend(lifted);
    }
    Some(Loaded { files, std_files: loaded.std_files.clone() })
}

fn has_block(file: &File) -> bool {
    file.items.iter().any(|i| match &i.kind {
        ItemKind::Workflow(w) => w.steps.iter().any(|s| matches!(&s.call.kind, ExprKind::For { body, .. } if matches!(body.kind, ExprKind::Block { .. }))),
        _ => false,
    })
}

/// The declared value types of tools and workflows, by name.
fn declared_returns(files: &[(crate::source::FileId, File)]) -> BTreeMap<String, Option<TypeExpr>> {
    let mut out = BTreeMap::new();
    for (_, f) in files {
        for i in &f.items {
            match &i.kind {
                ItemKind::Tool(t) => {
                    out.insert(t.path.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join("."), t.ret.clone());
                }
                ItemKind::Workflow(w) => {
                    out.insert(w.name.name.clone(), w.ret.clone());
                }
                _ => {}
            }
        }
    }
    out
}

fn named(name: &str, span: Span) -> TypeExpr {
    TypeExpr { kind: TypeExprKind::Named(Ident { name: name.to_string(), span }), span }
}

/// The type of a step's value as far as the syntax tells: declared, else
/// `String` for an LLM call, the tool's or workflow's declared type for a
/// call, `Json` otherwise; optional under `when:`.
fn step_type(step: &Step, returns: &BTreeMap<String, Option<TypeExpr>>) -> TypeExpr {
    let span = step.name.span;
    let base = match (&step.ty, &step.call.kind) {
        (Some(t), _) => t.clone(),
        (None, ExprKind::Llm { .. }) => named("String", span),
        (None, ExprKind::Call { callee, .. }) => {
            let name = callee.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(".");
            returns.get(&name).cloned().flatten().unwrap_or_else(|| named("Json", span))
        }
        _ => named("Json", span),
    };
    let when = step.attrs.as_ref().is_some_and(|a| a.entries.iter().any(|e| e.key.name == "when"));
    match (when, &base.kind) {
        (true, TypeExprKind::Optional(_)) | (false, _) => base,
        (true, _) => TypeExpr { kind: TypeExprKind::Optional(Box::new(base)), span },
    }
}

/// Lifts the blocks of `wf`'s steps; the new workflows go to `out`.
fn lift_workflow(wf: &mut Workflow, returns: &BTreeMap<String, Option<TypeExpr>>, out: &mut Vec<(Workflow, Span)>) {
    let mut outer: BTreeMap<String, TypeExpr> = wf.params.iter().map(|p| (p.name.name.clone(), p.ty.clone())).collect();
    for s in &wf.steps {
        outer.entry(s.name.name.clone()).or_insert_with(|| step_type(s, returns));
    }
    let inherited: Vec<Attr> = wf.attrs.iter().filter(|a| INHERITED.contains(&a.key.name.as_str())).cloned().collect();
    let wf_name = wf.name.name.clone();
    for step in &mut wf.steps {
        let ExprKind::For { var, iter, body } = &mut step.call.kind else { continue };
        let body_span = body.span;
        let ExprKind::Block { steps, ret } = std::mem::replace(&mut body.kind, ExprKind::Error) else { continue };
        let name = format!("{wf_name}.{}", step.name.name);
        let inner: BTreeSet<&str> = steps.iter().map(|s| s.name.name.as_str()).collect();
        let mut read: Vec<String> = Vec::new();
        for s in &steps {
            names_in(&s.call, &mut read);
            for a in s.attrs.iter().flat_map(|a| &a.entries) {
                names_in(&a.value, &mut read);
            }
        }
        names_in(&ret, &mut read);
        let mut captured: Vec<String> = Vec::new();
        for n in read {
            if n != var.name && !inner.contains(n.as_str()) && outer.contains_key(&n) && !captured.contains(&n) {
                captured.push(n);
            }
        }
        let item_ty = item_type(iter, &outer).unwrap_or_else(|| named("Json", var.span));
        let mut params = vec![Param { name: var.clone(), ty: item_ty, default: None, span: var.span }];
        for c in &captured {
            let ty = outer.get(c).cloned().unwrap_or_else(|| named("Json", body_span));
            params.push(Param { name: Ident { name: c.clone(), span: body_span }, ty, default: None, span: body_span });
        }
        let ret_ty = match step.ty.as_ref().map(|t| &t.kind) {
            Some(TypeExprKind::List(item)) => Some((**item).clone()),
            _ => None,
        };
        let mut attrs = inherited.clone();
        let one = Expr { kind: ExprKind::Int(1), span: body_span };
        attrs.push(Attr { key: Ident { name: "max_concurrency".into(), span: body_span }, value: one, span: body_span });
        let ret_span = ret.span;
        out.push((
            Workflow { name: Ident { name: name.clone(), span: step.name.span }, params, ret: ret_ty, attrs, steps, ret_expr: Some((*ret, ret_span)) },
            body_span,
        ));
        let arg = |n: &str, span: Span| Arg {
            name: Some(Ident { name: n.to_string(), span }),
            value: Expr { kind: ExprKind::Name(Ident { name: n.to_string(), span }), span },
            span,
        };
        let mut args = vec![arg(&var.name, var.span)];
        args.extend(captured.iter().map(|c| arg(c, body_span)));
        body.kind = ExprKind::Call { callee: vec![Ident { name, span: body_span }], args };
    }
}

/// The item type of a fan-out's list, when the syntax tells it: a name of
/// a `List<T>` (or `take` of one).
fn item_type(iter: &Expr, outer: &BTreeMap<String, TypeExpr>) -> Option<TypeExpr> {
    match &iter.kind {
        ExprKind::Name(id) => match &outer.get(&id.name)?.kind {
            TypeExprKind::List(item) => Some((**item).clone()),
            _ => None,
        },
        ExprKind::Call { callee, args } if callee.len() == 1 && callee.first().is_some_and(|c| c.name == "take") => {
            item_type(&args.first()?.value, outer)
        }
        _ => None,
    }
}

/// Appends every bare name `e` reads (inner fan-out variables included;
/// the caller filters).
fn names_in(e: &Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Name(id) => out.push(id.name.clone()),
        ExprKind::Field(b, _) | ExprKind::Unary(_, b) => names_in(b, out),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            names_in(a, out);
            names_in(b, out);
        }
        ExprKind::List(items) => items.iter().for_each(|x| names_in(x, out)),
        ExprKind::Record(entries) => entries.iter().for_each(|(_, v)| names_in(v, out)),
        ExprKind::Call { args, .. } => args.iter().for_each(|a| names_in(&a.value, out)),
        ExprKind::Llm { prompt, .. } => names_in(prompt, out),
        ExprKind::For { iter, body, .. } => {
            names_in(iter, out);
            names_in(body, out);
        }
        ExprKind::Block { steps, ret } => {
            for s in steps {
                names_in(&s.call, out);
                for a in s.attrs.iter().flat_map(|a| &a.entries) {
                    names_in(&a.value, out);
                }
            }
            names_in(ret, out);
        }
        ExprKind::Str(s) => {
            for p in &s.parts {
                if let StrPart::Interp(x) = p {
                    names_in(x, out);
                }
            }
        }
        _ => {}
    }
}
