//! Policies (LANGUAGE.md §4 *Policies*): every `policy` of the program
//! applies to every step of every workflow.
//!
//! A rule's condition speaks of the step facts `risk`, `kind`, `tool` and
//! `effect`, which the checker knows, and of the run fact `trust`, which it
//! does not. Each rule is evaluated for each step with the static facts and
//! every trust level: when the answer is the same for all four, the rule is
//! decided here (a `require` that is not met is E0601, a matching `deny`
//! is E0603); otherwise the runtime decides it before the step starts.
//! Every valid rule goes into the IR, so that the runtime can audit each
//! evaluation, decided or not.

use std::collections::BTreeMap;

use crate::ast::{self, BinaryOp, ExprKind, RuleKind, StrPart, UnaryOp};
use crate::check::env::Env;
use crate::check::risk::{
    self, EFFECTS, KINDS, RISK_LEVELS, StepFacts, TRUST_LEVELS, WorkflowFacts, did_you_mean, effect_name,
    risk_name, unknown_value,
};
use crate::diagnostic::Diagnostic;
use crate::codes::Code;
use crate::ir::{self, Cmp, Cond, Effect, Fact, PolicyAction, Risk, StepKind, Trust};
use crate::source::FileId;
use crate::span::Span;

/// What risk and policy analysis tells the lowering to the IR.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyReport {
    /// The governance facts of every step whose call resolved, by
    /// (workflow, step).
    pub steps: BTreeMap<(String, String), StepGovernance>,
    /// Every valid policy rule, in source order, for the runtime to
    /// evaluate (and audit) before each step starts.
    pub rules: Vec<ir::PolicyRule>,
}

/// The risk, effect and kind of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepGovernance {
    pub risk: Risk,
    pub effect: Effect,
    pub kind: StepKind,
}

/// Computes the risk of every step, reports unattended risky steps
/// (E0602), checks every policy rule against every step (E0601, E0603;
/// malformed conditions E0101/E0103/E0201) and returns the facts and rules
/// the IR needs.
pub fn analyze(env: &Env<'_>, diags: &mut Vec<Diagnostic>) -> PolicyReport {
    let facts = risk::analyze(env, diags);
    let rules = compile_policies(env, diags);
    let mut report = PolicyReport::default();
    for wf in &facts {
        for s in &wf.steps {
            report
                .steps
                .entry((wf.name.clone(), s.step.name.name.clone()))
                .or_insert(StepGovernance { risk: s.risk, effect: s.effect, kind: s.kind });
            diags.extend(risk::ceiling_violation(wf, s));
            for rule in &rules {
                diags.extend(violation(rule, wf, s));
                diags.extend(fallback_denied(rule, wf, s));
            }
        }
    }
    report.rules = rules
        .into_iter()
        .map(|r| ir::PolicyRule { policy: r.policy, text: r.text, action: r.action, cond: r.cond })
        .collect();
    report
}

/// The facts a policy condition is evaluated against: the step's, plus the
/// run's `trust` given separately.
pub type Facts<'a> = ir::StepFacts<'a>;

/// Whether a condition holds for a step when the run has `trust`
/// ([`Cond::holds`], shared with the runtime).
pub fn evaluate(cond: &Cond, facts: &Facts<'_>, trust: Trust) -> bool {
    cond.holds(facts, trust)
}

/// What the checker can say about a condition for one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// True whatever the run's trust.
    Always,
    /// False whatever the run's trust.
    Never,
    /// Depends on the trust of whoever starts the run.
    Dynamic,
}

/// Decides a condition for a step's static facts: it is decided when it
/// comes out the same for every trust level.
pub fn decide(cond: &Cond, facts: &Facts<'_>) -> Decision {
    const ALL: [Trust; 4] = [Trust::Untrusted, Trust::Basic, Trust::Trusted, Trust::Admin];
    let results = ALL.map(|t| evaluate(cond, facts, t));
    if results.iter().all(|r| *r) {
        Decision::Always
    } else if results.iter().all(|r| !*r) {
        Decision::Never
    } else {
        Decision::Dynamic
    }
}

/// A rule whose condition compiled.
struct CompiledRule {
    policy: String,
    file: FileId,
    span: Span,
    action: PolicyAction,
    cond: Cond,
    /// The whole rule: `require approval when effect == external`.
    text: String,
}

fn facts_of<'s>(s: &'s StepFacts<'_>) -> Facts<'s> {
    Facts { risk: s.risk, kind: s.kind, effect: s.effect, tool: s.tool.as_deref() }
}

/// The diagnostic for a rule that is decided true for a step and not met.
fn violation(rule: &CompiledRule, wf: &WorkflowFacts<'_>, s: &StepFacts<'_>) -> Option<Diagnostic> {
    if decide(&rule.cond, &facts_of(s)) != Decision::Always {
        return None;
    }
    let step = &s.step.name;
    let policy = &rule.policy;
    let cond = render(&rule.cond);
    let diag = match rule.action {
        PolicyAction::RequireApproval if !s.approval => Diagnostic::error(
            Code::E0601,
            wf.decl.file,
            step.span,
            format!("policy `{policy}` requires approval when `{cond}`: step `{}` has no `approval:`", step.name),
        )
        .with_help("add `approval: \"…\"` to the step, naming the group that must approve it"),
        PolicyAction::RequireVerify if s.kind != StepKind::Llm => Diagnostic::error(
            Code::E0601,
            wf.decl.file,
            step.span,
            format!(
                "policy `{policy}` requires verify when `{cond}`: step `{}` is {}, and only LLM steps can be verified",
                step.name,
                kind_phrase(s.kind)
            ),
        )
        .with_help("narrow the rule to LLM steps (`kind == llm and …`), or change the step"),
        PolicyAction::RequireVerify if !s.verify => Diagnostic::error(
            Code::E0601,
            wf.decl.file,
            step.span,
            format!("policy `{policy}` requires verify when `{cond}`: step `{}` has no `verify:`", step.name),
        )
        .with_help("add `verify: ROLE` to the step, with a role whose models differ from the step's"),
        PolicyAction::Deny => Diagnostic::error(
            Code::E0603,
            wf.decl.file,
            step.span,
            format!("policy `{policy}` denies steps where `{cond}`, and step `{}` is one", step.name),
        )
        .with_help("`approval:` cannot lift a `deny`: remove the step, or change the policy"),
        _ => return None,
    };
    Some(diag.with_primary_label(describe_facts(s)).with_label(rule.file, rule.span, "the rule"))
}

/// E0603 for a `deny` that matches a step's `fallback:` call by itself
/// (the step's approval covers its fallback, so only `deny` applies).
fn fallback_denied(rule: &CompiledRule, wf: &WorkflowFacts<'_>, s: &StepFacts<'_>) -> Option<Diagnostic> {
    let fb = s.fallback.as_ref()?;
    let facts = Facts { risk: fb.risk, kind: fb.kind, effect: fb.effect, tool: fb.tool.as_deref() };
    if rule.action != PolicyAction::Deny || decide(&rule.cond, &facts) != Decision::Always {
        return None;
    }
    let what = match &fb.tool {
        Some(tool) => format!("`{tool}`"),
        None => kind_phrase(fb.kind).to_string(),
    };
    Some(
        Diagnostic::error(
            Code::E0603,
            wf.decl.file,
            fb.span,
            format!(
                "policy `{}` denies steps where `{}`, and the `fallback:` of step `{}` is one",
                rule.policy,
                render(&rule.cond),
                s.step.name.name
            ),
        )
        .with_primary_label(format!("{what}: risk `{}`, effect `{}`", risk_name(fb.risk), effect_name(fb.effect)))
        .with_label(rule.file, rule.span, "the rule")
        .with_help("`approval:` cannot lift a `deny`: remove the fallback, or change the policy"),
    )
}

fn kind_phrase(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Tool => "a tool call",
        StepKind::Llm => "an LLM call",
        StepKind::Workflow => "a workflow call",
    }
}

/// "`file.write`: risk `medium`, effect `external`".
fn describe_facts(s: &StepFacts<'_>) -> String {
    let what = match &s.tool {
        Some(tool) => format!("`{tool}`"),
        None => kind_phrase(s.kind).to_string(),
    };
    format!("{what}: risk `{}`, effect `{}`", risk_name(s.risk), effect_name(s.effect))
}

/// Compiles every rule of every policy, in source order, reporting the
/// malformed ones (which are then left out).
fn compile_policies(env: &Env<'_>, diags: &mut Vec<Diagnostic>) -> Vec<CompiledRule> {
    let mut policies: Vec<_> = env.policies.iter().collect();
    policies.sort_by_key(|(_, d)| (d.file, d.span.start));
    let mut out = Vec::new();
    for (name, decl) in policies {
        let mut cx = Compiler { env, file: decl.file, diags: &mut *diags };
        for rule in &decl.decl.rules {
            let action = match &rule.kind {
                RuleKind::Deny => Some(PolicyAction::Deny),
                RuleKind::Require(what) => match what.name.as_str() {
                    "approval" => Some(PolicyAction::RequireApproval),
                    "verify" => Some(PolicyAction::RequireVerify),
                    _ => {
                        cx.diags.push(unknown_value(decl.file, what, "requirement", &["approval", "verify"]));
                        None
                    }
                },
            };
            let cond = cx.cond(&rule.cond);
            if let (Some(action), Some(cond)) = (action, cond) {
                let head = match action {
                    PolicyAction::RequireApproval => "require approval",
                    PolicyAction::RequireVerify => "require verify",
                    PolicyAction::Deny => "deny",
                };
                let text = format!("{head} when {}", render(&cond));
                out.push(CompiledRule { policy: name.clone(), file: decl.file, span: rule.span, action, cond, text });
            }
        }
    }
    out
}

/// Turns the condition of a rule into an [`ir::Cond`], reporting what is
/// not a fact, a value of it, or a comparison the fact allows.
struct Compiler<'e, 'a, 'd> {
    env: &'e Env<'a>,
    file: FileId,
    diags: &'d mut Vec<Diagnostic>,
}

const FACTS: &[&str] = &["risk", "kind", "tool", "effect", "trust"];

fn parse_fact(name: &str) -> Option<Fact> {
    match name {
        "risk" => Some(Fact::Risk),
        "kind" => Some(Fact::Kind),
        "tool" => Some(Fact::Tool),
        "effect" => Some(Fact::Effect),
        "trust" => Some(Fact::Trust),
        _ => None,
    }
}

fn fact_name(fact: Fact) -> &'static str {
    match fact {
        Fact::Risk => "risk",
        Fact::Kind => "kind",
        Fact::Tool => "tool",
        Fact::Effect => "effect",
        Fact::Trust => "trust",
    }
}

fn fact_of(expr: &ast::Expr) -> Option<Fact> {
    match &expr.kind {
        ExprKind::Name(id) => parse_fact(&id.name),
        _ => None,
    }
}

fn cmp_of(op: BinaryOp) -> Option<Cmp> {
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
fn flipped(cmp: Cmp) -> Cmp {
    match cmp {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        Cmp::Eq | Cmp::Ne => cmp,
    }
}

fn cmp_str(cmp: Cmp) -> &'static str {
    match cmp {
        Cmp::Eq => "==",
        Cmp::Ne => "!=",
        Cmp::Lt => "<",
        Cmp::Le => "<=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
    }
}

const CONDITION_HELP: &str =
    "a condition compares a fact (`risk`, `kind`, `tool`, `effect`, `trust`) with a value, e.g. `risk >= high`, and combines comparisons with `and`, `or`, `not`";

impl Compiler<'_, '_, '_> {
    fn cond(&mut self, expr: &ast::Expr) -> Option<Cond> {
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
    fn not_a_fact(&mut self, expr: &ast::Expr) {
        let diag = match &expr.kind {
            ExprKind::Error => return,
            ExprKind::Name(id) => unknown_value(self.file, id, "fact", FACTS),
            _ => Diagnostic::error(Code::E0201, self.file, expr.span, "a comparison in a policy condition needs a fact on one side")
                .with_primary_label("not a fact")
                .with_help(CONDITION_HELP),
        };
        self.diags.push(diag);
    }

    fn compare(&mut self, fact: Fact, fact_expr: &ast::Expr, cmp: Cmp, value: &ast::Expr) -> Option<Cond> {
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
        let value = match fact {
            Fact::Tool => self.tool_value(value)?,
            Fact::Risk => self.level(value, fact, "risk level", RISK_LEVELS)?,
            Fact::Trust => self.level(value, fact, "trust level", TRUST_LEVELS)?,
            Fact::Kind => self.level(value, fact, "step kind", KINDS)?,
            Fact::Effect => self.level(value, fact, "effect", EFFECTS)?,
        };
        Some(Cond::Compare { fact, cmp, value })
    }

    /// The value of a level-like fact: a bare name out of `names`.
    fn level(&mut self, value: &ast::Expr, fact: Fact, what: &str, names: &[&str]) -> Option<String> {
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
    fn tool_value(&mut self, value: &ast::Expr) -> Option<String> {
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

fn with_article(what: &str) -> String {
    let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {what}")
}

fn example_for(fact: Fact) -> &'static str {
    match fact {
        Fact::Risk => "compare it with a level, e.g. `risk >= high`",
        Fact::Kind => "compare it with a kind, e.g. `kind == llm`",
        Fact::Tool => "compare it with a tool's name, e.g. `tool == \"shell.exec\"`",
        Fact::Effect => "compare it with an effect, e.g. `effect == external`",
        Fact::Trust => "compare it with a level, e.g. `trust < trusted`",
    }
}

/// The text of a string literal without interpolation.
fn plain_text(lit: &ast::StrLit) -> Option<String> {
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
fn dotted(expr: &ast::Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::Name(id) => Some(id.name.clone()),
        ExprKind::Field(of, field) => Some(format!("{}.{}", dotted(of)?, field.name)),
        _ => None,
    }
}

/// A condition as source text, parenthesized only where needed.
pub fn render(cond: &Cond) -> String {
    render_at(cond, 0)
}

/// `prec`: 0 anywhere, 1 operand of `or`, 2 operand of `and`, 3 operand of
/// `not`.
fn render_at(cond: &Cond, prec: u8) -> String {
    let (own, text) = match cond {
        Cond::True => (4, "true".to_string()),
        Cond::False => (4, "false".to_string()),
        Cond::Or { a, b } => (1, format!("{} or {}", render_at(a, 1), render_at(b, 2))),
        Cond::And { a, b } => (2, format!("{} and {}", render_at(a, 2), render_at(b, 3))),
        Cond::Not { a } => (3, format!("not {}", render_at(a, 3))),
        Cond::Compare { fact, cmp, value } => {
            let value = match fact {
                Fact::Tool => format!("\"{}\"", escape(value)),
                _ => value.clone(),
            };
            (4, format!("{} {} {value}", fact_name(*fact), cmp_str(*cmp)))
        }
    };
    if own < prec { format!("({text})") } else { text }
}

fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' | '\\' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::ast::BinaryOp as B;
    use crate::check::risk::build::*;

    fn cmp(fact: Fact, cmp: Cmp, value: &str) -> Cond {
        Cond::Compare { fact, cmp, value: value.to_string() }
    }

    fn and(a: Cond, b: Cond) -> Cond {
        Cond::And { a: Box::new(a), b: Box::new(b) }
    }

    fn or(a: Cond, b: Cond) -> Cond {
        Cond::Or { a: Box::new(a), b: Box::new(b) }
    }

    const SHELL: Facts<'static> = Facts { risk: Risk::High, kind: StepKind::Tool, effect: Effect::External, tool: Some("shell.exec") };
    const LLM: Facts<'static> = Facts { risk: Risk::Low, kind: StepKind::Llm, effect: Effect::Pure, tool: None };

    #[test]
    fn a_condition_on_static_facts_is_decided() {
        assert_eq!(decide(&cmp(Fact::Risk, Cmp::Ge, "high"), &SHELL), Decision::Always);
        assert_eq!(decide(&cmp(Fact::Risk, Cmp::Ge, "high"), &LLM), Decision::Never);
        assert_eq!(decide(&cmp(Fact::Kind, Cmp::Eq, "llm"), &LLM), Decision::Always);
        assert_eq!(decide(&cmp(Fact::Tool, Cmp::Ne, "shell.exec"), &LLM), Decision::Always);
        assert_eq!(decide(&cmp(Fact::Tool, Cmp::Eq, "shell.exec"), &LLM), Decision::Never);
        assert_eq!(decide(&cmp(Fact::Effect, Cmp::Eq, "external"), &SHELL), Decision::Always);
    }

    #[test]
    fn a_trust_condition_is_dynamic_unless_every_level_agrees() {
        let deny_shell = and(cmp(Fact::Tool, Cmp::Eq, "shell.exec"), cmp(Fact::Trust, Cmp::Lt, "trusted"));
        assert_eq!(decide(&deny_shell, &SHELL), Decision::Dynamic);
        // The static half is false for an LLM step, whatever the trust.
        assert_eq!(decide(&deny_shell, &LLM), Decision::Never);
        // True or false for every trust level: decided.
        let tautology = or(cmp(Fact::Trust, Cmp::Lt, "trusted"), cmp(Fact::Trust, Cmp::Ge, "trusted"));
        assert_eq!(decide(&tautology, &LLM), Decision::Always);
        assert_eq!(decide(&cmp(Fact::Trust, Cmp::Le, "admin"), &LLM), Decision::Always);
        assert_eq!(decide(&cmp(Fact::Trust, Cmp::Lt, "untrusted"), &LLM), Decision::Never);
        let not = Cond::Not { a: Box::new(cmp(Fact::Trust, Cmp::Eq, "admin")) };
        assert_eq!(decide(&not, &SHELL), Decision::Dynamic);
    }

    #[test]
    fn evaluate_orders_trust_and_risk() {
        let c = cmp(Fact::Trust, Cmp::Lt, "trusted");
        assert!(evaluate(&c, &SHELL, Trust::Untrusted));
        assert!(evaluate(&c, &SHELL, Trust::Basic));
        assert!(!evaluate(&c, &SHELL, Trust::Trusted));
        assert!(!evaluate(&c, &SHELL, Trust::Admin));
        assert!(evaluate(&cmp(Fact::Risk, Cmp::Gt, "medium"), &SHELL, Trust::Admin));
        assert!(!evaluate(&cmp(Fact::Risk, Cmp::Gt, "bogus"), &SHELL, Trust::Admin));
    }

    #[test]
    fn render_parenthesizes_only_where_needed() {
        let c = and(
            or(cmp(Fact::Risk, Cmp::Ge, "high"), cmp(Fact::Kind, Cmp::Eq, "llm")),
            Cond::Not { a: Box::new(cmp(Fact::Tool, Cmp::Eq, "shell.exec")) },
        );
        assert_eq!(render(&c), "(risk >= high or kind == llm) and not tool == \"shell.exec\"");
        let c = or(and(cmp(Fact::Risk, Cmp::Ge, "high"), cmp(Fact::Trust, Cmp::Lt, "basic")), Cond::True);
        assert_eq!(render(&c), "risk >= high and trust < basic or true");
    }

    fn compile(cond: ast::Expr) -> (Option<Cond>, Vec<Diagnostic>) {
        let p = Program { tools: vec![tool("shell.exec", &[])], ..Program::default() };
        let env = p.env();
        let mut diags = Vec::new();
        let c = Compiler { env: &env, file: FileId(0), diags: &mut diags }.cond(&cond);
        (c, diags)
    }

    #[test]
    fn conditions_compile_and_a_value_first_comparison_is_flipped() {
        let (c, d) = compile(bin(B::Le, name("high"), name("risk")));
        assert!(d.is_empty());
        assert_eq!(c, Some(cmp(Fact::Risk, Cmp::Ge, "high")));
        let (c, d) = compile(bin(
            B::And,
            bin(B::Eq, name("tool"), string("shell.exec")),
            not(bin(B::Ge, name("trust"), name("trusted"))),
        ));
        assert!(d.is_empty(), "{d:#?}");
        assert_eq!(render(&c.unwrap()), "tool == \"shell.exec\" and not trust >= trusted");
    }

    fn errors(cond: ast::Expr) -> Vec<(&'static str, String, String)> {
        let (c, d) = compile(cond);
        assert_eq!(c, None);
        d.into_iter().map(|d| (d.code.as_str(), d.message, d.help.unwrap_or_default())).collect()
    }

    #[test]
    fn unknown_facts_and_values_get_a_suggestion() {
        let e = errors(bin(B::Ge, name("risk"), name("hgh")));
        assert_eq!(e[0].0, "E0101");
        assert_eq!(e[0].1, "unknown risk level `hgh`");
        assert!(e[0].2.starts_with("did you mean `high`?"), "{}", e[0].2);
        let e = errors(bin(B::Eq, name("kidn"), name("llm")));
        assert_eq!((e[0].0, e[0].1.as_str()), ("E0101", "unknown fact `kidn`"));
        assert!(e[0].2.starts_with("did you mean `kind`?"));
        // Both sides of `and` are checked.
        let e = errors(bin(B::And, bin(B::Eq, name("kind"), name("lm")), bin(B::Lt, name("trust"), name("trustd"))));
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e[1].2.starts_with("did you mean `trusted`?"));
        let e = errors(bin(B::Eq, name("tool"), string("shell.exce")));
        assert_eq!((e[0].0, e[0].1.as_str(), e[0].2.as_str()), ("E0103", "unknown tool `shell.exce`", "did you mean `shell.exec`?"));
    }

    #[test]
    fn malformed_comparisons_are_type_errors() {
        let e = errors(bin(B::Lt, name("kind"), name("llm")));
        assert_eq!((e[0].0, e[0].1.as_str()), ("E0201", "`kind` has no order: it can only be compared with `==` or `!=`"));
        let e = errors(bin(B::Eq, name("tool"), at(ExprKind::Field(Box::new(name("shell")), id("exec")))));
        assert_eq!(e[0].2, "write the tool's name in quotes: `tool == \"shell.exec\"`");
        let e = errors(bin(B::Eq, name("kind"), string("llm")));
        assert_eq!(e[0].2, "write `llm` without quotes");
        let e = errors(name("risk"));
        assert_eq!(e[0].1, "`risk` alone is not a condition: compare it with a value");
    }

    fn run(p: &Program) -> (PolicyReport, Vec<Diagnostic>) {
        let env = p.env();
        let mut diags = Vec::new();
        let report = analyze(&env, &mut diags);
        (report, diags)
    }

    fn file_write() -> ast::ToolDecl {
        tool("file.write", &[("risk", name("medium")), ("effect", name("external"))])
    }

    #[test]
    fn a_require_decided_true_and_unmet_is_e0601() {
        let p = Program {
            tools: vec![file_write()],
            workflows: vec![workflow(
                "w",
                &[],
                vec![
                    step("write", call("file.write"), &[]),
                    step("gated", call("file.write"), &[("approval", string("ops"))]),
                    step("think", llm(), &[]),
                ],
            )],
            policies: vec![policy(
                "careful",
                vec![
                    (require("approval"), bin(B::Eq, name("effect"), name("external"))),
                    (require("verify"), bin(B::Eq, name("kind"), name("llm"))),
                    (require("verify"), bin(B::Eq, name("tool"), string("file.write"))),
                ],
            )],
        };
        let (report, diags) = run(&p);
        let got: Vec<_> = diags.iter().map(|d| (d.code.as_str(), d.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("E0601", "policy `careful` requires approval when `effect == external`: step `write` has no `approval:`"),
                (
                    "E0601",
                    "policy `careful` requires verify when `tool == \"file.write\"`: step `write` is a tool call, and only LLM steps can be verified"
                ),
                (
                    "E0601",
                    "policy `careful` requires verify when `tool == \"file.write\"`: step `gated` is a tool call, and only LLM steps can be verified"
                ),
                ("E0601", "policy `careful` requires verify when `kind == llm`: step `think` has no `verify:`"),
            ]
        );
        assert_eq!(report.rules.len(), 3);
        assert_eq!(report.rules[0].text, "require approval when effect == external");
        assert_eq!(
            report.steps.get(&("w".to_string(), "think".to_string())),
            Some(&StepGovernance { risk: Risk::Low, effect: Effect::Pure, kind: StepKind::Llm })
        );
    }

    #[test]
    fn a_static_deny_is_e0603_even_with_approval() {
        let p = Program {
            tools: vec![tool("shell.exec", &[("risk", name("high"))])],
            workflows: vec![workflow(
                "w",
                &[("risk", name("high"))],
                vec![step("x", call("shell.exec"), &[("approval", string("ops"))])],
            )],
            policies: vec![policy("no_shell", vec![(ast::RuleKind::Deny, bin(B::Eq, name("tool"), string("shell.exec")))])],
        };
        let (_, diags) = run(&p);
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert_eq!(diags[0].code, "E0603");
        assert_eq!(diags[0].message, "policy `no_shell` denies steps where `tool == \"shell.exec\"`, and step `x` is one");
    }

    #[test]
    fn a_deny_also_applies_to_a_fallback_call() {
        let p = Program {
            tools: vec![tool("shell.exec", &[("risk", name("high"))]), tool("file.read", &[])],
            workflows: vec![workflow(
                "w",
                &[("risk", name("high"))],
                vec![step("y", call("file.read"), &[("approval", string("ops")), ("fallback", call("shell.exec"))])],
            )],
            policies: vec![policy("no_shell", vec![(ast::RuleKind::Deny, bin(B::Eq, name("tool"), string("shell.exec")))])],
        };
        let (report, diags) = run(&p);
        assert_eq!(diags.len(), 1, "{diags:#?}");
        assert_eq!(diags[0].code, "E0603");
        assert_eq!(
            diags[0].message,
            "policy `no_shell` denies steps where `tool == \"shell.exec\"`, and the `fallback:` of step `y` is one"
        );
        // The step itself is still a `file.read`, raised by its fallback.
        let g = report.steps.get(&("w".to_string(), "y".to_string())).copied().unwrap();
        assert_eq!(g, StepGovernance { risk: Risk::High, effect: Effect::Read, kind: StepKind::Tool });
    }

    #[test]
    fn a_trust_rule_is_left_to_the_runtime() {
        let p = Program {
            tools: vec![tool("shell.exec", &[("risk", name("high"))])],
            workflows: vec![workflow(
                "w",
                &[("risk", name("high"))],
                vec![step("x", call("shell.exec"), &[]), step("y", llm(), &[])],
            )],
            policies: vec![policy(
                "house",
                vec![(
                    ast::RuleKind::Deny,
                    bin(B::And, bin(B::Eq, name("tool"), string("shell.exec")), bin(B::Lt, name("trust"), name("trusted"))),
                )],
            )],
        };
        let (report, diags) = run(&p);
        assert!(diags.is_empty(), "{diags:#?}");
        assert_eq!(
            report.rules,
            vec![ir::PolicyRule {
                policy: "house".into(),
                text: "deny when tool == \"shell.exec\" and trust < trusted".into(),
                action: PolicyAction::Deny,
                cond: and(cmp(Fact::Tool, Cmp::Eq, "shell.exec"), cmp(Fact::Trust, Cmp::Lt, "trusted")),
            }]
        );
    }

    #[test]
    fn an_unknown_requirement_is_reported_and_the_rule_dropped() {
        let p = Program {
            policies: vec![policy("p", vec![(require("aproval"), bin(B::Ge, name("risk"), name("high")))])],
            ..Program::default()
        };
        let (report, diags) = run(&p);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].message, "unknown requirement `aproval`");
        assert!(report.rules.is_empty());
    }
}
