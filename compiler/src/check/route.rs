//! `route: measured(latency | cost | quality)` on a role: the value's shape
//! (E0201) and its measure (E0101 with a did-you-mean), and the route each
//! LLM step of the role carries in the IR.

use crate::ast::{self, ExprKind};
use crate::codes::Code;
use crate::diagnostic::Diagnostic;
use crate::ir::Route;
use crate::source::FileId;

use super::env::Env;
use super::risk;

/// Checks every role's `route:`.
pub fn check(env: &Env, diags: &mut Vec<Diagnostic>) {
    for r in env.roles.values().filter(|r| !r.std) {
        if let Some(a) = Env::attr(Env::entries(&r.decl.attrs), "route") {
            read(a, r.file, Some(diags));
        }
    }
}

/// The route of `role`, if it declares one that reads.
pub fn of_role(env: &Env, role: &str) -> Option<Route> {
    let r = env.roles.get(role)?;
    let a = Env::attr(Env::entries(&r.decl.attrs), "route")?;
    read(a, r.file, None)
}

fn read(a: &ast::Attr, file: FileId, diags: Option<&mut Vec<Diagnostic>>) -> Option<Route> {
    let shape = || {
        Diagnostic::error(Code::E0201, file, a.value.span, "`route:` expects `measured(latency)`, `measured(cost)` or `measured(quality)`")
            .with_primary_label("not a route")
            .with_help("write `route: measured(latency)`")
    };
    let ExprKind::Call { callee, args } = &a.value.kind else {
        if let (Some(d), false) = (diags, matches!(a.value.kind, ExprKind::Error)) {
            d.push(shape());
        }
        return None;
    };
    let measure = match (callee.as_slice(), args.as_slice()) {
        ([f], [arg]) if f.name == "measured" && arg.name.is_none() => match &arg.value.kind {
            ExprKind::Name(id) => id,
            _ => {
                if let Some(d) = diags {
                    d.push(shape());
                }
                return None;
            }
        },
        _ => {
            if let Some(d) = diags {
                d.push(shape());
            }
            return None;
        }
    };
    match Route::parse(&measure.name) {
        Some(r) => Some(r),
        None => {
            if let Some(d) = diags {
                d.push(risk::unknown_value(file, measure, "measure", &Route::NAMES));
            }
            None
        }
    }
}
