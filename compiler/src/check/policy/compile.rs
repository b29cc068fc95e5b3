//! Compiling a rule's condition into an [`ir::Cond`], reporting what is not
//! a fact, a value of it, or a comparison the fact allows.

use super::*;

/// Turns the condition of a rule into an [`ir::Cond`], reporting what is
/// not a fact, a value of it, or a comparison the fact allows.
pub(super) struct Compiler<'e, 'a, 'd> {
    pub(super) env: &'e Env<'a>,
    pub(super) file: FileId,
    pub(super) diags: &'d mut Vec<Diagnostic>,
}

pub(super) const FACTS: &[&str] = &["risk", "kind", "tool", "effect", "trust"];

pub(super) fn parse_fact(name: &str) -> Option<Fact> {
    match name {
        "risk" => Some(Fact::Risk),
        "kind" => Some(Fact::Kind),
        "tool" => Some(Fact::Tool),
        "effect" => Some(Fact::Effect),
        "trust" => Some(Fact::Trust),
        _ => None,
    }
}

pub(super) fn fact_name(fact: Fact) -> &'static str {
    match fact {
        Fact::Risk => "risk",
        Fact::Kind => "kind",
        Fact::Tool => "tool",
        Fact::Effect => "effect",
        Fact::Trust => "trust",
    }
}

pub(super) fn fact_of(expr: &ast::Expr) -> Option<Fact> {
    match &expr.kind {
        ExprKind::Name(id) => parse_fact(&id.name),
        _ => None,
    }
}

pub(super) fn cmp_of(op: BinaryOp) -> Option<Cmp> {
    match op {
        BinaryOp::Eq => Some(Cmp::Eq),
        BinaryOp::Ne => Some(Cmp::Ne),
        BinaryOp::Lt => Some(Cmp::Lt),
        BinaryOp::Le => Some(Cmp::Le),
        BinaryOp::Gt => Some(Cmp::Gt),
        BinaryOp::Ge => Some(Cmp::Ge),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Coalesce => None,
    }
}

/// The comparison seen from the other side: `high <= risk` is `risk >= high`.
pub(super) fn flipped(cmp: Cmp) -> Cmp {
    match cmp {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        Cmp::Eq | Cmp::Ne => cmp,
    }
}

pub(super) fn cmp_str(cmp: Cmp) -> &'static str {
    match cmp {
        Cmp::Eq => "==",
        Cmp::Ne => "!=",
        Cmp::Lt => "<",
        Cmp::Le => "<=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
    }
}

pub(super) const CONDITION_HELP: &str =
    "a condition compares a fact (`risk`, `kind`, `tool`, `effect`, `trust`) with a value, e.g. `risk >= high`, and combines comparisons with `and`, `or`, `not`";

impl Compiler<'_, '_, '_> {
    pub(super) fn cond(&mut self, expr: &ast::Expr) -> Option<Cond> {
        match &expr.kind {
            ExprKind::Error => None,
            ExprKind::Bool(true) => Some(Cond::True),
            ExprKind::Bool(false) => Some(Cond::False),
            ExprKind::Unary(UnaryOp::Not, a) => Some(Cond::Not { a: Box::new(self.cond(a)?) }),
            ExprKind::Binary(BinaryOp::And, a, b) => {
                let (a, b) = (self.cond(a), self.cond(b));
                Some(Cond::And { a: Box::new(a?), b: Box::new(b?) })
            }
            ExprKind::Binary(BinaryOp::Or, a, b) => {
                let (a, b) = (self.cond(a), self.cond(b));
                Some(Cond::Or { a: Box::new(a?), b: Box::new(b?) })
            }
            ExprKind::Binary(op, a, b) if cmp_of(*op).is_some() => {
                let cmp = cmp_of(*op)?;
                match (fact_of(a), fact_of(b)) {
                    (Some(fact), _) => self.compare(fact, a, cmp, b),
                    (None, Some(fact)) => self.compare(fact, b, flipped(cmp), a),
                    (None, None) => {
                        self.not_a_fact(a);
                        None
                    }
                }
            }
            ExprKind::Name(id) if parse_fact(&id.name).is_some() => {
                self.diags.push(
                    Diagnostic::error(
                        Code::E0201,
                        self.file,
                        expr.span,
                        format!("`{}` alone is not a condition: compare it with a value", id.name),
                    )
                    .with_primary_label("a fact, not a condition")
                    .with_help(example_for(parse_fact(&id.name).unwrap_or(Fact::Risk))),
                );
                None
            }
            ExprKind::Name(_) => {
                self.not_a_fact(expr);
                None
            }
            _ => {
                self.diags.push(
                    Diagnostic::error(Code::E0201, self.file, expr.span, "this is not a policy condition")
                        .with_primary_label("expected a comparison of a fact with a value")
                        .with_help(CONDITION_HELP),
                );
                None
            }
        }
    }

    /// Reports the side of a comparison that should have been a fact.
    pub(super) fn not_a_fact(&mut self, expr: &ast::Expr) {
        let diag = match &expr.kind {
            ExprKind::Error => return,
            ExprKind::Name(id) => unknown_value(self.file, id, "fact", FACTS),
            _ => Diagnostic::error(Code::E0201, self.file, expr.span, "a comparison in a policy condition needs a fact on one side")
                .with_primary_label("not a fact")
                .with_help(CONDITION_HELP),
        };
        self.diags.push(diag);
    }

    pub(super) fn compare(&mut self, fact: Fact, fact_expr: &ast::Expr, cmp: Cmp, value: &ast::Expr) -> Option<Cond> {
        let ordered = matches!(cmp, Cmp::Lt | Cmp::Le | Cmp::Gt | Cmp::Ge);
        if ordered && !matches!(fact, Fact::Risk | Fact::Trust) {
            self.diags.push(
                Diagnostic::error(
                    Code::E0201,
                    self.file,
                    fact_expr.span.join(value.span),
                    format!("`{}` has no order: it can only be compared with `==` or `!=`", fact_name(fact)),
                )
                .with_primary_label(format!("`{}` compared with `{}`", fact_name(fact), cmp_str(cmp)))
                .with_help("only `risk` and `trust` are ordered"),
            );
            return None;
        }
        let text = match fact {
            Fact::Tool => self.tool_value(value)?,
            Fact::Risk => self.level(value, fact, "risk level", RISK_LEVELS)?,
            Fact::Trust => self.level(value, fact, "trust level", TRUST_LEVELS)?,
            Fact::Kind => self.level(value, fact, "step kind", KINDS)?,
            Fact::Effect => self.level(value, fact, "effect", EFFECTS)?,
        };
        // Parsed here, once: evaluation only compares.
        Some(Cond::Compare { cmp, value: PolicyValue::parse(fact, &text)? })
    }

    /// The value of a level-like fact: a bare name out of `names`.
    pub(super) fn level(&mut self, value: &ast::Expr, fact: Fact, what: &str, names: &[&str]) -> Option<String> {
        match &value.kind {
            ExprKind::Name(id) if names.contains(&id.name.as_str()) => Some(id.name.clone()),
            ExprKind::Name(id) => {
                self.diags.push(unknown_value(self.file, id, what, names));
                None
            }
            ExprKind::Error => None,
            ExprKind::Str(lit) => {
                let text = plain_text(lit);
                let help = match text.as_deref() {
                    Some(t) if names.contains(&t) => format!("write `{t}` without quotes"),
                    _ => format!("{} is one of {}", with_article(what), risk::one_of(names)),
                };
                self.diags.push(
                    Diagnostic::error(Code::E0201, self.file, value.span, format!("`{}` is compared with a name, not a string", fact_name(fact)))
                        .with_primary_label(format!("expected a {what}"))
                        .with_help(help),
                );
                None
            }
            _ => {
                self.diags.push(
                    Diagnostic::error(Code::E0201, self.file, value.span, format!("`{}` is compared with a {what}", fact_name(fact)))
                        .with_primary_label(format!("expected a {what}"))
                        .with_help(format!("{} is one of {}", with_article(what), risk::one_of(names))),
                );
                None
            }
        }
    }

    /// The value of `tool`: a dotted name in quotes. A name that is no
    /// known tool but one edit away from one is a typo that would silently
    /// disable the rule, so it is reported; other unknown names are allowed
    /// (a shared policy may name tools this program does not declare).
    pub(super) fn tool_value(&mut self, value: &ast::Expr) -> Option<String> {
        match &value.kind {
            ExprKind::Error => None,
            ExprKind::Str(lit) if plain_text(lit).is_some() => {
                let name = plain_text(lit)?;
                let known = |n: &str| self.env.tools.contains_key(n) || self.env.unused_std_tools.contains_key(n);
                if !known(&name) {
                    let candidates = self.env.tools.keys().chain(self.env.unused_std_tools.keys()).map(String::as_str);
                    if let Some(s) = did_you_mean(&name, candidates) {
                        self.diags.push(
                            Diagnostic::error(Code::E0103, self.file, value.span, format!("unknown tool `{name}`"))
                                .with_primary_label("no tool has this name")
                                .with_help(format!("did you mean `{s}`?")),
                        );
                        return None;
                    }
                }
                Some(name)
            }
            _ => {
                let help = match dotted(value) {
                    Some(path) => format!("write the tool's name in quotes: `tool == \"{path}\"`"),
                    None => "write the tool's name in quotes, e.g. `tool == \"shell.exec\"`".to_string(),
                };
                self.diags.push(
                    Diagnostic::error(Code::E0201, self.file, value.span, "`tool` is compared with a tool's name in quotes")
                        .with_primary_label("expected a string")
                        .with_help(help),
                );
                None
            }
        }
    }
}

pub(super) fn with_article(what: &str) -> String {
    let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {what}")
}

pub(super) fn example_for(fact: Fact) -> &'static str {
    match fact {
        Fact::Risk => "compare it with a level, e.g. `risk >= high`",
        Fact::Kind => "compare it with a kind, e.g. `kind == llm`",
        Fact::Tool => "compare it with a tool's name, e.g. `tool == \"shell.exec\"`",
        Fact::Effect => "compare it with an effect, e.g. `effect == external`",
        Fact::Trust => "compare it with a level, e.g. `trust < trusted`",
    }
}

/// The text of a string literal without interpolation.
pub(super) fn plain_text(lit: &ast::StrLit) -> Option<String> {
    let mut out = String::new();
    for part in &lit.parts {
        match part {
            StrPart::Text(t) => out.push_str(t),
            StrPart::Interp(_) => return None,
        }
    }
    Some(out)
}

/// `shell.exec` for the expression `shell.exec` written without quotes.
pub(super) fn dotted(expr: &ast::Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::Name(id) => Some(id.name.clone()),
        ExprKind::Field(of, field) => Some(format!("{}.{}", dotted(of)?, field.name)),
        _ => None,
    }
}
