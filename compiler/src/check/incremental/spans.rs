//! Moving every span of a syntax tree: the items after an edit keep their
//! trees, shifted by the length the edit added or removed.

use crate::ast::{self, ExprKind, StrPart, TestStmtKind, TypeExprKind};
use crate::span::Span;

/// `span` moved by `delta` bytes (which never crosses zero: only spans after
/// an edit move, and by no more than the edit removed before them).
pub(super) fn shift(span: &mut Span, delta: i64) {
    let at = |n: u32| u32::try_from(i64::from(n) + delta).unwrap_or(n);
    *span = Span { start: at(span.start), end: at(span.end) };
}

/// Moves every span of an item.
pub(super) fn shift_item(item: &mut ast::Item, d: i64) {
    shift(&mut item.span, d);
    match &mut item.kind {
        ast::ItemKind::Use(u) => match u {
            ast::Use::Std(segments) => segments.iter_mut().for_each(|i| ident(i, d)),
            ast::Use::Path(_, span) => shift(span, d),
        },
        ast::ItemKind::Type(t) => {
            ident(&mut t.name, d);
            ty(&mut t.ty, d);
        }
        ast::ItemKind::Enum(e) => {
            ident(&mut e.name, d);
            e.variants.iter_mut().for_each(|v| ident(v, d));
        }
        ast::ItemKind::Model(m) => {
            ident(&mut m.name, d);
            ident(&mut m.provider, d);
            shift(&mut m.model_id_span, d);
            attrs(&mut m.attrs, d);
        }
        ast::ItemKind::Role(r) => {
            ident(&mut r.name, d);
            r.models.iter_mut().for_each(|m| ident(m, d));
        }
        ast::ItemKind::Tool(t) => {
            t.path.iter_mut().for_each(|i| ident(i, d));
            t.params.iter_mut().for_each(|p| param(p, d));
            if let Some(r) = &mut t.ret {
                ty(r, d);
            }
            attrs(&mut t.attrs, d);
        }
        ast::ItemKind::Policy(p) => {
            ident(&mut p.name, d);
            for r in &mut p.rules {
                shift(&mut r.span, d);
                if let ast::RuleKind::Require(what) = &mut r.kind {
                    ident(what, d);
                }
                expr(&mut r.cond, d);
            }
        }
        ast::ItemKind::Workflow(w) => workflow(w, d),
        ast::ItemKind::Test(t) => {
            shift(&mut t.name_span, d);
            for s in &mut t.stmts {
                shift(&mut s.span, d);
                match &mut s.kind {
                    TestStmtKind::GivenLlm { role, value, .. } => {
                        ident(role, d);
                        expr(value, d);
                    }
                    TestStmtKind::GivenTool { tool, value, .. } => {
                        tool.iter_mut().for_each(|i| ident(i, d));
                        expr(value, d);
                    }
                    TestStmtKind::Answer { step, .. } => ident(step, d),
                    TestStmtKind::Run(e) => expr(e, d),
                    TestStmtKind::Expect { subject, value, .. } => {
                        ident(subject, d);
                        expr(value, d);
                    }
                }
            }
        }
        ast::ItemKind::Error => {}
    }
}

fn workflow(w: &mut ast::Workflow, d: i64) {
    ident(&mut w.name, d);
    w.params.iter_mut().for_each(|p| param(p, d));
    if let Some(r) = &mut w.ret {
        ty(r, d);
    }
    w.attrs.iter_mut().for_each(|a| attr(a, d));
    w.steps.iter_mut().for_each(|s| step(s, d));
    if let Some((e, span)) = &mut w.ret_expr {
        expr(e, d);
        shift(span, d);
    }
}

fn step(s: &mut ast::Step, d: i64) {
    ident(&mut s.name, d);
    if let Some(t) = &mut s.ty {
        ty(t, d);
    }
    expr(&mut s.call, d);
    attrs(&mut s.attrs, d);
    shift(&mut s.span, d);
}

fn ident(i: &mut ast::Ident, d: i64) {
    shift(&mut i.span, d);
}

fn param(p: &mut ast::Param, d: i64) {
    ident(&mut p.name, d);
    ty(&mut p.ty, d);
    if let Some(e) = &mut p.default {
        expr(e, d);
    }
    shift(&mut p.span, d);
}

fn attrs(a: &mut Option<ast::Attrs>, d: i64) {
    if let Some(a) = a {
        shift(&mut a.span, d);
        a.entries.iter_mut().for_each(|e| attr(e, d));
    }
}

fn attr(a: &mut ast::Attr, d: i64) {
    ident(&mut a.key, d);
    expr(&mut a.value, d);
    shift(&mut a.span, d);
}

fn ty(t: &mut ast::TypeExpr, d: i64) {
    shift(&mut t.span, d);
    match &mut t.kind {
        TypeExprKind::Named(i) => ident(i, d),
        TypeExprKind::List(inner) | TypeExprKind::Optional(inner) => ty(inner, d),
        TypeExprKind::Record(fields) => {
            for (name, t) in fields {
                ident(name, d);
                ty(t, d);
            }
        }
        TypeExprKind::Error => {}
    }
}

fn expr(e: &mut ast::Expr, d: i64) {
    shift(&mut e.span, d);
    match &mut e.kind {
        ExprKind::Str(s) => {
            for p in &mut s.parts {
                if let StrPart::Interp(x) = p {
                    expr(x, d);
                }
            }
        }
        ExprKind::Name(i) => ident(i, d),
        ExprKind::Field(base, f) => {
            expr(base, d);
            ident(f, d);
        }
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            expr(a, d);
            expr(b, d);
        }
        ExprKind::List(items) => items.iter_mut().for_each(|x| expr(x, d)),
        ExprKind::Record(fields) => {
            for (name, v) in fields {
                ident(name, d);
                expr(v, d);
            }
        }
        ExprKind::Unary(_, a) => expr(a, d),
        ExprKind::Call { callee, args } => {
            callee.iter_mut().for_each(|i| ident(i, d));
            for a in args {
                if let Some(n) = &mut a.name {
                    ident(n, d);
                }
                expr(&mut a.value, d);
                shift(&mut a.span, d);
            }
        }
        ExprKind::Llm { role, prompt, .. } => {
            ident(role, d);
            expr(prompt, d);
        }
        ExprKind::For { var, iter, body } => {
            ident(var, d);
            expr(iter, d);
            expr(body, d);
        }
        ExprKind::Block { steps, ret } => {
            steps.iter_mut().for_each(|s| step(s, d));
            expr(ret, d);
        }
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Null
        | ExprKind::Duration(_)
        | ExprKind::Money(_)
        | ExprKind::Price(_)
        | ExprKind::Error => {}
    }
}
