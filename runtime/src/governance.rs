//! Governance at run time: the policy rules the checker left for the
//! runtime (they mention `trust`, or otherwise could not be decided
//! statically) are evaluated before each step, and every evaluation is
//! audited.

use aos_compiler::ir::{Cmp, Cond, Effect, Fact, PolicyAction, PolicyRule, Risk, Step, StepKind, Trust};
use serde_json::json;

use crate::audit::Decision;

/// What the rules demand of a step.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Verdict {
    /// `Some(message)` when a `deny` rule matched.
    pub denied: Option<String>,
    /// `Some(policy)` when a rule requires approval.
    pub approval: Option<String>,
    /// `Some(policy)` when a rule requires verification.
    pub verify: Option<String>,
}

pub fn risk_name(r: Risk) -> &'static str {
    match r {
        Risk::Low => "low",
        Risk::Medium => "medium",
        Risk::High => "high",
        Risk::Critical => "critical",
    }
}

pub fn trust_name(t: Trust) -> &'static str {
    match t {
        Trust::Untrusted => "untrusted",
        Trust::Basic => "basic",
        Trust::Trusted => "trusted",
        Trust::Admin => "admin",
    }
}

pub fn parse_trust(s: &str) -> Option<Trust> {
    Some(match s {
        "untrusted" => Trust::Untrusted,
        "basic" => Trust::Basic,
        "trusted" => Trust::Trusted,
        "admin" => Trust::Admin,
        _ => return None,
    })
}

fn effect_name(e: Effect) -> &'static str {
    match e {
        Effect::Pure => "pure",
        Effect::Read => "read",
        Effect::External => "external",
    }
}

fn kind_name(k: StepKind) -> &'static str {
    match k {
        StepKind::Tool => "tool",
        StepKind::Llm => "llm",
        StepKind::Workflow => "workflow",
    }
}

fn level(fact: Fact, v: &str) -> Option<u8> {
    let order: &[&str] = match fact {
        Fact::Risk => &["low", "medium", "high", "critical"],
        Fact::Trust => &["untrusted", "basic", "trusted", "admin"],
        _ => return None,
    };
    order.iter().position(|x| *x == v).map(|p| p as u8)
}

/// The facts of one step in a run.
pub struct Facts<'a> {
    pub step: &'a Step,
    pub tool: Option<&'a str>,
    pub trust: Trust,
}

fn fact_value(f: &Facts<'_>, fact: Fact) -> String {
    match fact {
        Fact::Risk => risk_name(f.step.risk).into(),
        Fact::Kind => kind_name(f.step.kind).into(),
        Fact::Tool => f.tool.unwrap_or("").into(),
        Fact::Effect => effect_name(f.step.effect).into(),
        Fact::Trust => trust_name(f.trust).into(),
    }
}

/// Whether `cond` holds for these facts.
pub fn holds(cond: &Cond, f: &Facts<'_>) -> bool {
    match cond {
        Cond::True => true,
        Cond::False => false,
        Cond::And { a, b } => holds(a, f) && holds(b, f),
        Cond::Or { a, b } => holds(a, f) || holds(b, f),
        Cond::Not { a } => !holds(a, f),
        Cond::Compare { fact, cmp, value } => {
            let actual = fact_value(f, *fact);
            let value = value.trim_matches('"');
            match cmp {
                Cmp::Eq => actual == value,
                Cmp::Ne => actual != value,
                _ => match (level(*fact, &actual), level(*fact, value)) {
                    (Some(a), Some(b)) => match cmp {
                        Cmp::Lt => a < b,
                        Cmp::Le => a <= b,
                        Cmp::Gt => a > b,
                        _ => a >= b,
                    },
                    _ => false,
                },
            }
        }
    }
}

/// Evaluates every rule for a step; each evaluation becomes an audit record.
pub fn evaluate(rules: &[PolicyRule], f: &Facts<'_>, decisions: &mut Vec<Decision>) -> Verdict {
    let mut v = Verdict::default();
    for rule in rules {
        let matched = holds(&rule.cond, f);
        decisions.push(Decision::new(
            "policy",
            Some(&f.step.name),
            json!({"policy": rule.policy, "rule": rule.text, "matched": matched, "trust": trust_name(f.trust),
                   "risk": risk_name(f.step.risk), "kind": kind_name(f.step.kind), "tool": f.tool}),
        ));
        if !matched {
            continue;
        }
        match rule.action {
            PolicyAction::Deny => {
                if v.denied.is_none() {
                    v.denied = Some(format!("denied by policy `{}`: `{}` (run trust: {})", rule.policy, rule.text, trust_name(f.trust)));
                }
            }
            PolicyAction::RequireApproval => v.approval = Some(rule.policy.clone()),
            PolicyAction::RequireVerify => v.verify = Some(rule.policy.clone()),
        }
    }
    v
}
