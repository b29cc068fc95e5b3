//! Checks of declarations outside workflow bodies (parameter defaults, type
//! names, the models of roles) and two small helpers: the type of a
//! constructor call (`secret`, `cron`, `event`) and a list of names.

use super::*;

pub(super) fn ret_of(name: &str, ret: Ty) -> Ty {
    match name {
        "secret" => Ty::Secret,
        "cron" | "event" => Ty::Trigger,
        _ => ret,
    }
}

pub(super) fn list_names(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Default values of parameters against their types (no names in scope).
pub(super) fn check_defaults(cx: &Cx, file: FileId, params: &[ast::Param], diags: &mut Vec<Diagnostic>) {
    static EMPTY: std::sync::OnceLock<ast::Workflow> = std::sync::OnceLock::new();
    let empty = EMPTY.get_or_init(|| ast::Workflow {
        name: ast::Ident { name: String::new(), span: Span::default() },
        params: Vec::new(),
        ret: None,
        attrs: Vec::new(),
        steps: Vec::new(),
        ret_expr: None,
    });
    for p in params {
        let Some(default) = &p.default else { continue };
        let expected = cx.resolve(&p.ty);
        let mut w = Walker::new(cx, file, empty, diags);
        let t = w.expr(default);
        w.expect(&t, &expected, default.span, &Sink::Default { param: &p.name.name });
    }
}

/// E0101 for type names that are neither built-in nor declared, anywhere a
/// type is written.
pub(super) fn check_type_names(env: &Env, diags: &mut Vec<Diagnostic>) {
    fn walk(env: &Env, file: FileId, t: &ast::TypeExpr, diags: &mut Vec<Diagnostic>) {
        match &t.kind {
            ast::TypeExprKind::Error => {}
            ast::TypeExprKind::List(i) | ast::TypeExprKind::Optional(i) => walk(env, file, i, diags),
            ast::TypeExprKind::Record(fields) => fields.iter().for_each(|(_, f)| walk(env, file, f, diags)),
            ast::TypeExprKind::Named(id) => {
                let n = id.name.as_str();
                if BUILTIN_TYPES.contains(&n) || n == "List" || env.types.contains_key(n) || env.enums.contains_key(n) {
                    return;
                }
                let candidates: Vec<&str> = BUILTIN_TYPES
                    .iter()
                    .copied()
                    .chain(env.types.keys().map(String::as_str))
                    .chain(env.enums.keys().map(String::as_str))
                    .collect();
                let mut d = Diagnostic::error(Code::E0101, file, id.span, format!("unknown type `{n}`"))
                    .with_primary_label("no type of this name");
                d = match suggest::did_you_mean(n, candidates) {
                    Some(h) => d.with_help(h),
                    None => d.with_help(format!("declare it (`type {n} = {{ … }}` or `enum {n} {{ … }}`) or use a built-in type")),
                };
                diags.push(d);
            }
        }
    }
    fn params(env: &Env, file: FileId, ps: &[ast::Param], diags: &mut Vec<Diagnostic>) {
        for p in ps {
            walk(env, file, &p.ty, diags);
        }
    }
    for t in env.types.values() {
        walk(env, t.file, &t.decl.ty, diags);
    }
    for t in env.tools.values() {
        params(env, t.file, &t.decl.params, diags);
        if let Some(r) = &t.decl.ret {
            walk(env, t.file, r, diags);
        }
    }
    for w in env.workflows.values() {
        params(env, w.file, &w.decl.params, diags);
        if let Some(r) = &w.decl.ret {
            walk(env, w.file, r, diags);
        }
        for s in &w.decl.steps {
            if let Some(t) = &s.ty {
                walk(env, w.file, t, diags);
            }
        }
    }
}

/// E0101 for models a role names that are not declared.
pub(super) fn check_role_models(env: &Env, diags: &mut Vec<Diagnostic>) {
    for role in env.roles.values() {
        let role: &Decl<ast::RoleDecl> = role;
        for m in &role.decl.models {
            if env.models.contains_key(&m.name) {
                continue;
            }
            let mut d = Diagnostic::error(Code::E0101, role.file, m.span, format!("unknown model `{}`", m.name))
                .with_primary_label(format!("role `{}` names no declared model", role.decl.name.name));
            d = match suggest::did_you_mean(&m.name, env.models.keys().map(String::as_str)) {
                Some(h) => d.with_help(h),
                None => d.with_help(format!("declare it: `model {} = openai(\"MODEL_ID\") {{ input: $…/M, output: $…/M, context: … }}`", m.name)),
            };
            diags.push(d);
        }
    }
}
