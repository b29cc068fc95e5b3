//! The response cache's attributes: `cache:` on a step (an LLM call, or a
//! call of a `read` or `pure` tool) or on a tool declaration (`read`/`pure`
//! tools only), and `cache_scope:` (`workflow`, `shared`, `global`).
//!
//! A cached external effect would be skipped on a hit, so `cache:` on a
//! step whose call has an external effect, or on a workflow call (whose
//! steps may cache themselves), is E0105; an unknown scope is E0101 with a
//! did-you-mean, a scope of another shape E0201. The duration itself is
//! the attribute table's (E0106 for zero or negative, E0201 for a value of
//! another type).

use crate::ast::{self, ExprKind};
use crate::codes::Code;
use crate::diagnostic::Diagnostic;
use crate::ir::{self, CacheScope, Effect};
use crate::source::FileId;

use super::attrs::duration_ms;
use super::env::Env;
use super::risk;

/// Checks where `cache:` and `cache_scope:` stand, and the scope's value.
pub fn check(env: &Env, diags: &mut Vec<Diagnostic>) {
    for wf in env.workflows.values().filter(|w| !w.std) {
        for s in &wf.decl.steps {
            let attrs = Env::entries(&s.attrs);
            if let Some(a) = Env::attr(attrs, "cache_scope") {
                read_scope(a, wf.file, diags);
            }
            for key in ["cache", "cache_scope"] {
                let Some(a) = Env::attr(attrs, key) else { continue };
                if let Some(why) = not_cacheable(env, call_of(&s.call)) {
                    diags.push(not_allowed(wf.file, a, &why));
                }
            }
        }
    }
    for t in env.tools.values().filter(|t| !t.std) {
        let attrs = Env::entries(&t.decl.attrs);
        if let Some(a) = Env::attr(attrs, "cache")
            && tool_effect(attrs) == Effect::External
        {
            diags.push(not_allowed(t.file, a, "the tool's effect is `external`: a hit would skip its effect"));
        }
    }
}

/// The step's cache as the IR carries it: the step's `cache:`, else the
/// tool's own; `None` when the call cannot be cached.
pub fn lower(env: &Env, attrs: &[ast::Attr], call: &ir::Call) -> Option<ir::Cache> {
    let own = Env::attr(attrs, "cache").and_then(|a| duration_of(&a.value));
    let ttl_ms = match call {
        ir::Call::Llm { .. } => own?,
        ir::Call::Tool { tool, .. } => {
            let decl = Env::entries(&env.tools.get(tool)?.decl.attrs);
            if tool_effect(decl) == Effect::External {
                return None;
            }
            own.or_else(|| Env::attr(decl, "cache").and_then(|a| duration_of(&a.value)))?
        }
        ir::Call::Workflow { .. } => return None,
    };
    let scope = Env::attr(attrs, "cache_scope")
        .and_then(|a| match &a.value.kind {
            ExprKind::Name(id) => CacheScope::parse(&id.name),
            _ => None,
        })
        .unwrap_or_default();
    Some(ir::Cache { ttl_ms, scope })
}

fn duration_of(e: &ast::Expr) -> Option<u64> {
    match &e.kind {
        ExprKind::Duration(d) => duration_ms(d).filter(|ms| *ms > 0),
        _ => None,
    }
}

/// The call a step makes (a fan-out's body).
fn call_of(call: &ast::Expr) -> &ast::Expr {
    match &call.kind {
        ExprKind::For { body, .. } => body,
        _ => call,
    }
}

fn tool_effect(attrs: &[ast::Attr]) -> Effect {
    Env::attr(attrs, "effect")
        .and_then(|a| match &a.value.kind {
            ExprKind::Name(id) => risk::parse_effect(&id.name),
            _ => None,
        })
        .unwrap_or(Effect::Read)
}

/// Why the call cannot be cached, if it cannot.
fn not_cacheable(env: &Env, call: &ast::Expr) -> Option<String> {
    match &call.kind {
        ExprKind::Call { callee, .. } if callee.len() > 1 => {
            let name = Env::tool_name(callee);
            let decl = env.tools.get(&name)?;
            (tool_effect(Env::entries(&decl.decl.attrs)) == Effect::External)
                .then(|| format!("`{name}` has effect `external`: a cache hit would skip its effect"))
        }
        ExprKind::Call { callee, .. } => {
            let name = callee.first().map_or("", |c| c.name.as_str());
            Some(format!("`{name}` is a workflow call; its own steps may say `cache:`"))
        }
        _ => None,
    }
}

fn not_allowed(file: FileId, a: &ast::Attr, why: &str) -> Diagnostic {
    let key = a.key.name.as_str();
    Diagnostic::error(Code::E0105, file, a.key.span, format!("`{key}:` is not allowed here: {why}"))
        .with_primary_label("cannot be cached")
        .with_help("`cache:` is for LLM calls and for calls of `read` or `pure` tools")
}

fn read_scope(a: &ast::Attr, file: FileId, diags: &mut Vec<Diagnostic>) {
    match &a.value.kind {
        ExprKind::Name(id) if CacheScope::parse(&id.name).is_some() => {}
        ExprKind::Name(id) => diags.push(risk::unknown_value(file, id, "cache scope", &CacheScope::NAMES)),
        ExprKind::Error => {}
        _ => diags.push(
            Diagnostic::error(Code::E0201, file, a.value.span, "`cache_scope:` expects `workflow`, `shared` or `global`")
                .with_primary_label("not a cache scope")
                .with_help("write `cache_scope: shared` (a bare name)"),
        ),
    }
}
