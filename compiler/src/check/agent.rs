//! Agent steps (docs/language.md, *Agent steps*): `agent ROLE(prompt) {
//! tools: [...], max_turns: N }`. This pass checks the shape of the step
//! (E0901), that every listed tool is declared (E0103); the helpers read
//! the step's tools and bounds once for the risk, policy, cost and lowering
//! passes.

use std::collections::BTreeSet;

use crate::ast::{self, ExprKind};
use crate::codes::Code;
use crate::diagnostic::Diagnostic;
use crate::source::FileId;
use crate::span::Span;

use super::attrs::StepAttrs;
use super::env::Env;
use super::suggest;

/// `max_turns:` when the step does not say.
pub const DEFAULT_MAX_TURNS: u32 = 4;

/// The attributes only an agent step takes.
const AGENT_KEYS: [&str; 3] = ["tools", "max_turns", "max_tool_calls"];

/// The call of a step, inside its fan-out when it has one.
fn body(call: &ast::Expr) -> &ast::Expr {
    match &call.kind {
        ExprKind::For { body: inner, .. } => body(inner),
        _ => call,
    }
}

/// Whether the step's call (or its fan-out's body) is `agent ROLE(…)`.
pub fn is_agent(step: &ast::Step) -> bool {
    matches!(body(&step.call).kind, ExprKind::Llm { agent: true, .. })
}

/// The tools of an agent step's `tools:`, as (dotted name, span), in
/// order; entries that are not dotted names are left out (reported).
pub fn tools_of(step: &ast::Step) -> Vec<(String, Span)> {
    let Some(a) = Env::attr(Env::entries(&step.attrs), "tools") else { return Vec::new() };
    let ExprKind::List(items) = &a.value.kind else { return Vec::new() };
    items.iter().filter_map(|e| dotted(e).map(|n| (n, e.span))).collect()
}

/// `a.b.c` written as field accesses, as a dotted name.
fn dotted(e: &ast::Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Field(base, field) => Some(format!("{}.{}", dotted(base)?, field.name)),
        ExprKind::Name(id) => Some(id.name.clone()),
        _ => None,
    }
}

/// `max_turns:` (default [`DEFAULT_MAX_TURNS`]).
pub fn max_turns(step: &ast::Step) -> u32 {
    StepAttrs::read(Env::entries(&step.attrs)).max_turns.unwrap_or(DEFAULT_MAX_TURNS).max(1)
}

/// `max_tool_calls:` (default `max_turns - 1`: one call per turn but the last).
pub fn max_tool_calls(step: &ast::Step) -> u32 {
    StepAttrs::read(Env::entries(&step.attrs)).max_tool_calls.unwrap_or_else(|| max_turns(step).saturating_sub(1))
}

/// Checks every agent step, and that no other step takes agent attributes.
pub fn check(env: &Env, diags: &mut Vec<Diagnostic>) {
    for wf in env.workflows.values().filter(|w| !w.std) {
        for s in &wf.decl.steps {
            step(env, wf.file, s, diags);
        }
    }
}

fn step(env: &Env, file: FileId, s: &ast::Step, diags: &mut Vec<Diagnostic>) {
    let attrs = Env::entries(&s.attrs);
    if let Some(fb) = Env::attr(attrs, "fallback")
        && matches!(body(&fb.value).kind, ExprKind::Llm { agent: true, .. })
    {
        diags.push(
            Diagnostic::error(Code::E0901, file, fb.value.span, "an `agent` call cannot be a `fallback:`")
                .with_primary_label("an agent here")
                .with_help("make the agent a step of its own"),
        );
    }
    if !is_agent(s) {
        for a in attrs.iter().filter(|a| AGENT_KEYS.contains(&a.key.name.as_str())) {
            diags.push(
                Diagnostic::error(Code::E0901, file, a.key.span, format!("`{}:` is taken only by agent steps", a.key.name))
                    .with_primary_label("not an agent step")
                    .with_help("write the step as `agent ROLE(\"…\") { tools: [ns.tool] }`, or remove the attribute"),
            );
        }
        return;
    }
    let Some(list) = Env::attr(attrs, "tools") else {
        diags.push(
            Diagnostic::error(Code::E0901, file, s.name.span, format!("agent step `{}` needs `tools: [...]`", s.name.name))
                .with_primary_label("no `tools:`")
                .with_help("list the tools the model may call: `{ tools: [http.get] }`"),
        );
        return;
    };
    let ExprKind::List(items) = &list.value.kind else {
        if !matches!(list.value.kind, ExprKind::Error) {
            diags.push(
                Diagnostic::error(Code::E0201, file, list.value.span, "`tools:` expects a list of tools")
                    .with_primary_label("not a list")
                    .with_help("write `tools: [http.get, sql.query]`"),
            );
        }
        return;
    };
    if items.is_empty() {
        diags.push(
            Diagnostic::error(Code::E0901, file, list.value.span, format!("agent step `{}` lists no tools", s.name.name))
                .with_primary_label("an empty list")
                .with_help("list one tool or more; a step without tools is `llm ROLE(…)`"),
        );
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for item in items {
        let Some(name) = dotted(item) else {
            if !matches!(item.kind, ExprKind::Error) {
                diags.push(
                    Diagnostic::error(Code::E0201, file, item.span, "`tools:` expects tool names")
                        .with_primary_label("not a tool name")
                        .with_help("write the tool's dotted name, unquoted: `tools: [http.get]`"),
                );
            }
            continue;
        };
        if !seen.insert(name.clone()) {
            diags.push(
                Diagnostic::error(Code::E0901, file, item.span, format!("tool `{name}` is listed twice"))
                    .with_primary_label("listed again")
                    .with_help("list each tool once"),
            );
            continue;
        }
        if !env.tools.contains_key(&name) {
            diags.push(unknown_tool(env, file, &name, item.span));
        }
    }
}

/// E0103 for a listed tool that is not declared.
fn unknown_tool(env: &Env, file: FileId, name: &str, span: Span) -> Diagnostic {
    let d = Diagnostic::error(Code::E0103, file, span, format!("unknown tool `{name}`")).with_primary_label("no tool of this name is visible");
    if let Some(module) = env.unused_std_tools.get(name) {
        return d.with_help(format!("`{name}` is in the standard library: add `use std.{module}`"));
    }
    match suggest::did_you_mean(name, env.tools.keys().map(String::as_str)) {
        Some(h) => d.with_help(h),
        None => d,
    }
}

/// Tokens of framing counted per earlier turn and per tool call (roles,
/// call ids, the provider's message wrapping).
pub const FRAMING_TOKENS: u64 = 32;

/// A listed tool as providers are told of it: dotted name, description,
/// and the JSON Schema of its arguments.
pub struct Definition {
    pub tool: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// The definitions of the declared tools of an agent step, in `tools:` order.
pub fn definitions(env: &Env, step: &ast::Step) -> Vec<Definition> {
    tools_of(step)
        .into_iter()
        .filter_map(|(name, _)| {
            let decl = env.tools.get(&name)?;
            let description = match decl.doc {
                Some(doc) if !doc.trim().is_empty() => doc.trim().to_string(),
                _ => format!("The tool `{name}`."),
            };
            Some(Definition { parameters: parameters_schema(env, decl.decl), description, tool: name })
        })
        .collect()
}

/// The JSON Schema of a tool's arguments: an object of its parameters,
/// those without a default required.
pub fn parameters_schema(env: &Env, decl: &ast::ToolDecl) -> serde_json::Value {
    let props: serde_json::Map<String, serde_json::Value> =
        decl.params.iter().map(|p| (p.name.name.clone(), super::lower::json_schema(&super::ty::resolve(env, &p.ty)))).collect();
    let required: Vec<&str> = decl.params.iter().filter(|p| p.default.is_none()).map(|p| p.name.name.as_str()).collect();
    serde_json::json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
}

/// The largest result of one tool call, in tokens: the step's
/// `max_output_tokens:`, else the largest of the listed tools'.
pub fn result_bound(env: &Env, step: &ast::Step) -> u64 {
    if let Some(n) = StepAttrs::read(Env::entries(&step.attrs)).max_output_tokens {
        return n;
    }
    tools_of(step)
        .iter()
        .filter_map(|(name, _)| env.tools.get(name))
        .map(|t| super::attrs::ToolAttrs::read(Env::entries(&t.decl.attrs)).max_output_tokens.unwrap_or(super::cost::DEFAULT_MAX_OUTPUT_TOKENS))
        .max()
        .unwrap_or(0)
}

/// What one turn's prompt may hold beyond the step's prompt, in tokens (an
/// upper bound: UTF-8 bytes for text), with the sentence explaining it:
/// the tool definitions, `max_turns - 1` earlier replies of `max_tokens`,
/// `max_tool_calls` results, and framing.
pub fn turn_extra(env: &Env, step: &ast::Step, max_tokens: u64) -> (u64, String) {
    let defs: u64 = definitions(env, step)
        .iter()
        .map(|d| (d.tool.len() + d.description.len() + d.parameters.to_string().len()) as u64 + FRAMING_TOKENS)
        .sum();
    let earlier = u64::from(max_turns(step).saturating_sub(1));
    let calls = u64::from(max_tool_calls(step));
    let result = result_bound(env, step);
    let replies = earlier.saturating_mul(max_tokens.saturating_add(FRAMING_TOKENS));
    let results = calls.saturating_mul(result.saturating_add(FRAMING_TOKENS));
    let total = defs.saturating_add(replies).saturating_add(results);
    let text = format!(
        "each turn's prompt adds ≤ {total} tokens: {defs} of tool definitions + {earlier} earlier {} × ({max_tokens} + {FRAMING_TOKENS}) + {calls} tool {} × ({result} + {FRAMING_TOKENS})",
        if earlier == 1 { "reply" } else { "replies" },
        if calls == 1 { "result" } else { "results" },
    );
    (total, text)
}
