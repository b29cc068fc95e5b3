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
use crate::ir::{self, Cmp, Cond, Effect, Fact, PolicyAction, PolicyValue, Risk, StepKind, Trust};
use crate::source::FileId;
use crate::span::Span;

mod compile;
mod render;
#[cfg(test)]
mod tests;

pub use render::render;
use compile::Compiler;

/// What risk and policy analysis tells the lowering to the IR.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyReport {
    /// The governance facts of every step whose call resolved, by
    /// workflow, then step.
    pub steps: BTreeMap<String, BTreeMap<String, StepGovernance>>,
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
        let steps = report.steps.entry(wf.name.clone()).or_default();
        for s in &wf.steps {
            steps
                .entry(s.step.name.name.clone())
                .or_insert(StepGovernance { risk: s.risk, effect: s.effect, kind: s.kind });
            diags.extend(risk::ceiling_violation(wf, s));
            for rule in &rules {
                diags.extend(violation(rule, wf, s));
                diags.extend(fallback_denied(rule, wf, s));
                diags.extend(agent_tool_violations(rule, wf, s));
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

/// The facts of one tool of an agent step: a tool step of the step's risk
/// (the runtime evaluates the same facts before the step starts).
pub fn agent_tool_facts<'t>(step_risk: Risk, tool: &'t str, effect: Effect) -> Facts<'t> {
    Facts { risk: step_risk, kind: StepKind::Tool, effect, tool: Some(tool) }
}

/// E0603 for a `deny`, E0601 for a `require approval` without `approval:`,
/// decided for one tool of an agent step.
fn agent_tool_violations(rule: &CompiledRule, wf: &WorkflowFacts<'_>, s: &StepFacts<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for t in &s.agent_tools {
        let facts = agent_tool_facts(s.risk, &t.tool, t.effect);
        if decide(&rule.cond, &facts) != Decision::Always {
            continue;
        }
        let cond = render(&rule.cond);
        let label = format!("`{}`: risk `{}` (the step's), effect `{}`", t.tool, risk_name(s.risk), effect_name(t.effect));
        let d = match rule.action {
            PolicyAction::Deny => Diagnostic::error(
                Code::E0603,
                wf.decl.file,
                t.span,
                format!("policy `{}` denies steps where `{cond}`, and tool `{}` of agent step `{}` is one", rule.policy, t.tool, s.step.name.name),
            )
            .with_help("`approval:` cannot lift a `deny`: remove the tool from `tools:`, or change the policy"),
            PolicyAction::RequireApproval if !s.approval => Diagnostic::error(
                Code::E0601,
                wf.decl.file,
                t.span,
                format!(
                    "policy `{}` requires approval when `{cond}`: agent step `{}` may call `{}` and has no `approval:`",
                    rule.policy, s.step.name.name, t.tool
                ),
            )
            .with_help("add `approval: \"…\"` to the step, naming the group that must approve it"),
            _ => continue,
        };
        out.push(d.with_primary_label(label).with_label(rule.file, rule.span, "the rule"));
    }
    out
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
