//! Builders of hand-made syntax trees and environments for the unit tests
//! of risk and policy (they do not need the parser).

use crate::ast::{self, ExprKind};
use crate::check::env::{Decl, Env};
use crate::source::FileId;
use crate::span::Span;

pub fn id(name: &str) -> ast::Ident {
    ast::Ident { name: name.to_string(), span: Span::default() }
}

pub fn at(kind: ExprKind) -> ast::Expr {
    ast::Expr { kind, span: Span::default() }
}

pub fn name(n: &str) -> ast::Expr {
    at(ExprKind::Name(id(n)))
}

pub fn string(s: &str) -> ast::Expr {
    at(ExprKind::Str(ast::StrLit { parts: vec![ast::StrPart::Text(s.to_string())], triple: false }))
}

pub fn bin(op: ast::BinaryOp, a: ast::Expr, b: ast::Expr) -> ast::Expr {
    at(ExprKind::Binary(op, Box::new(a), Box::new(b)))
}

pub fn not(a: ast::Expr) -> ast::Expr {
    at(ExprKind::Unary(ast::UnaryOp::Not, Box::new(a)))
}

pub fn call(path: &str) -> ast::Expr {
    at(ExprKind::Call { callee: path.split('.').map(id).collect(), args: vec![] })
}

pub fn llm() -> ast::Expr {
    at(ExprKind::Llm { role: id("executor"), prompt: Box::new(string("hi")), agent: false })
}

pub fn fan_out(body: ast::Expr) -> ast::Expr {
    at(ExprKind::For { var: id("x"), iter: Box::new(name("xs")), body: Box::new(body) })
}

pub fn attrs(entries: &[(&str, ast::Expr)]) -> Vec<ast::Attr> {
    entries.iter().map(|(k, v)| ast::Attr { key: id(k), value: v.clone(), span: Span::default() }).collect()
}

pub fn step(n: &str, call: ast::Expr, entries: &[(&str, ast::Expr)]) -> ast::Step {
    ast::Step {
        name: id(n),
        ty: None,
        call,
        attrs: Some(ast::Attrs { entries: attrs(entries), span: Span::default() }),
        span: Span::default(),
    }
}

pub fn tool(path: &str, entries: &[(&str, ast::Expr)]) -> ast::ToolDecl {
    ast::ToolDecl {
        path: path.split('.').map(id).collect(),
        params: vec![],
        ret: None,
        attrs: Some(ast::Attrs { entries: attrs(entries), span: Span::default() }),
    }
}

pub fn workflow(n: &str, header: &[(&str, ast::Expr)], steps: Vec<ast::Step>) -> ast::Workflow {
    ast::Workflow { name: id(n), params: vec![], ret: None, attrs: attrs(header), steps, ret_expr: None }
}

pub fn policy(n: &str, rules: Vec<(ast::RuleKind, ast::Expr)>) -> ast::PolicyDecl {
    ast::PolicyDecl {
        name: id(n),
        rules: rules.into_iter().map(|(kind, cond)| ast::Rule { kind, cond, span: Span::default() }).collect(),
    }
}

pub fn require(what: &str) -> ast::RuleKind {
    ast::RuleKind::Require(id(what))
}

/// The declarations of a test program.
#[derive(Default)]
pub struct Program {
    pub tools: Vec<ast::ToolDecl>,
    pub workflows: Vec<ast::Workflow>,
    pub policies: Vec<ast::PolicyDecl>,
}

fn decl<T>(decl: &T, i: usize) -> Decl<'_, T> {
    Decl { file: FileId(0), decl, doc: None, span: Span::new(i, i + 1), std: false }
}

impl Program {
    pub fn env(&self) -> Env<'_> {
        let mut env = Env::default();
        for (i, t) in self.tools.iter().enumerate() {
            env.tools.insert(Env::tool_name(&t.path), decl(t, i));
        }
        for (i, w) in self.workflows.iter().enumerate() {
            env.workflows.insert(w.name.name.clone(), decl(w, i));
        }
        for (i, p) in self.policies.iter().enumerate() {
            env.policies.insert(p.name.name.clone(), decl(p, i));
        }
        env
    }
}
