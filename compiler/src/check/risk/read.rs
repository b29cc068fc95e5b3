//! Reading `risk:` and `effect:` values, and the messages for unknown ones.

use super::*;

/// Reads a `risk:` value.
pub(crate) fn read_risk(attr: &ast::Attr, file: FileId, diags: &mut Vec<Diagnostic>) -> Option<Risk> {
    read_level(attr, file, diags, "risk level", RISK_LEVELS, parse_risk)
}

/// Reads an `effect:` value.
pub(crate) fn read_effect(attr: &ast::Attr, file: FileId, diags: &mut Vec<Diagnostic>) -> Option<Effect> {
    read_level(attr, file, diags, "effect", EFFECTS, parse_effect)
}

pub(super) fn read_level<T>(
    attr: &ast::Attr,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
    what: &str,
    names: &[&str],
    parse: fn(&str) -> Option<T>,
) -> Option<T> {
    match &attr.value.kind {
        ExprKind::Name(id) => match parse(&id.name) {
            Some(v) => Some(v),
            None => {
                diags.push(unknown_value(file, id, what, names));
                None
            }
        },
        ExprKind::Error => None,
        _ => {
            diags.push(
                Diagnostic::error(
                    Code::E0201,
                    file,
                    attr.value.span,
                    format!("`{}:` takes {} {what}: {}", attr.key.name, article(what), one_of(names)),
                )
                .with_primary_label(format!("expected {} {what}", article(what))),
            );
            None
        }
    }
}

/// E0101 for a name that is not one of `names` (a level, an effect, a
/// kind), with "did you mean" when one is close.
pub(crate) fn unknown_value(file: FileId, id: &ast::Ident, what: &str, names: &[&str]) -> Diagnostic {
    let diag = Diagnostic::error(Code::E0101, file, id.span, format!("unknown {what} `{}`", id.name))
        .with_primary_label(format!("not {} {what}", article(what)));
    match did_you_mean(&id.name, names.iter().copied()) {
        Some(s) => diag.with_help(format!("did you mean `{s}`? ({} {what} is one of {})", article(what), one_of(names))),
        None => diag.with_help(format!("{} {what} is one of {}", article(what), one_of(names))),
    }
}

pub(super) fn article(what: &str) -> &'static str {
    if what.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// "`low`, `medium`, `high` or `critical`".
pub(crate) fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The candidate closest to `name`, if it is close enough to be a typo
/// (the one did-you-mean of the compiler, [`super::suggest::closest`]).
pub(crate) fn did_you_mean<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    crate::check::suggest::closest(name, candidates)
}
