//! Roles: every LLM step (and every `verify:`) must reach a model (E0401),
//! and a verifier must not share a model with what it verifies (E0402).

use std::collections::BTreeMap;

use crate::ast::{self, ExprKind};
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::source::FileId;

use super::env::{BUILTIN_ROLES, Env};

/// Checks the roles of every LLM step and verifier, and returns each
/// declared role's fallback chain (the models that exist, in order).
pub fn check(env: &Env, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, Vec<String>> {
    let chains = chains(env);
    for wf in env.workflows.values() {
        if wf.std {
            continue;
        }
        for step in &wf.decl.steps {
            check_step(env, &chains, wf.file, step, diags);
        }
    }
    chains
}

/// Each declared role's chain: its models that are declared (an unknown
/// model is the resolver's E0101), in order, without repeats.
pub fn chains(env: &Env) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (name, role) in &env.roles {
        let mut chain: Vec<String> = Vec::new();
        for m in &role.decl.models {
            if env.models.contains_key(&m.name) && !chain.contains(&m.name) {
                chain.push(m.name.clone());
            }
        }
        out.insert(name.clone(), chain);
    }
    out
}

/// The role of the LLM call a step makes, directly or in its fan-out body.
pub fn llm_role(call: &ast::Expr) -> Option<&ast::Ident> {
    match &call.kind {
        ExprKind::Llm { role, .. } => Some(role),
        ExprKind::For { body, .. } => llm_role(body),
        _ => None,
    }
}

/// The role named by a step's `verify:` attribute, when it is a bare name.
pub fn verify_role(step: &ast::Step) -> Option<&ast::Ident> {
    let attr = Env::attr(Env::entries(&step.attrs), "verify")?;
    match &attr.value.kind {
        ExprKind::Name(id) => Some(id),
        _ => None,
    }
}

fn check_step(
    env: &Env,
    chains: &BTreeMap<String, Vec<String>>,
    file: FileId,
    step: &ast::Step,
    diags: &mut Vec<Diagnostic>,
) {
    let role = llm_role(&step.call);
    let role_ok = role.is_some_and(|r| bound(env, file, r, "this LLM step", diags));
    // An LLM `fallback:` names a role too.
    if let Some(r) = Env::attr(Env::entries(&step.attrs), "fallback").and_then(|fb| llm_role(&fb.value)) {
        bound(env, file, r, "this fallback", diags);
    }
    let Some(verifier) = verify_role(step) else { return };
    let verifier_ok = bound(env, file, verifier, "this verification", diags);
    let (Some(role), true, true) = (role, role_ok, verifier_ok) else { return };
    let (Some(step_chain), Some(ver_chain)) = (chains.get(&role.name), chains.get(&verifier.name)) else { return };
    let shared: Vec<&String> = ver_chain.iter().filter(|m| step_chain.contains(m)).collect();
    let Some(first) = shared.first() else { return };
    let what = if shared.len() == 1 {
        format!("model `{first}`")
    } else {
        format!("models {}", shared.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "))
    };
    let mut d = Diagnostic::error(
        Code::E0402,
        file,
        verifier.span,
        format!(
            "step `{}` is verified by role `{}`, which shares {what} with its own role `{}`",
            step.name.name, verifier.name, role.name
        ),
    )
    .with_primary_label(format!("`{}` can run on {what}", verifier.name))
    .with_help("a model does not catch its own mistakes: verify with a role bound to other models");
    if let Some(decl) = env.roles.get(&role.name) {
        d = d.with_label(decl.file, decl.decl.name.span, format!("`{}` is bound to {what} here", role.name));
    }
    if let Some(decl) = env.roles.get(&verifier.name).filter(|_| verifier.name != role.name) {
        d = d.with_label(decl.file, decl.decl.name.span, format!("`{}` is bound to {what} here", verifier.name));
    }
    diags.push(d);
}

/// Whether `role` reaches a model; E0401 when it is declared empty or is a
/// built-in role nothing binds. An undeclared non-built-in role is the
/// resolver's E0101 and counts as bound here (nothing more to say).
fn bound(env: &Env, file: FileId, role: &ast::Ident, what: &str, diags: &mut Vec<Diagnostic>) -> bool {
    match env.roles.get(&role.name) {
        Some(decl) if decl.decl.models.is_empty() => {
            let example = env.models.keys().next().map_or("some_model", String::as_str);
            diags.push(
                Diagnostic::error(
                    Code::E0401,
                    file,
                    role.span,
                    format!("role `{}` is bound to no model, so {what} has nothing to run on", role.name),
                )
                .with_primary_label(format!("`{}` has no model", role.name))
                .with_label(decl.file, decl.span, "declared with an empty list here")
                .with_help(format!("list at least one model: `role {} = [{example}]`", role.name)),
            );
            false
        }
        Some(_) => true,
        None if BUILTIN_ROLES.contains(&role.name.as_str()) => {
            let mut d = Diagnostic::error(
                Code::E0401,
                file,
                role.span,
                format!("role `{}` is bound to no model, so {what} has nothing to run on", role.name),
            )
            .with_primary_label(format!("`{}` is a built-in role, but nothing binds it", role.name));
            let example = env.models.keys().next().map_or("some_model", String::as_str);
            d = d.with_help(format!("bind it to models: `role {} = [{example}]`", role.name));
            diags.push(d);
            false
        }
        None => false,
    }
}
