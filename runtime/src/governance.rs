//! Governance at run time: the policy rules the checker left for the
//! runtime (they mention `trust`, or otherwise could not be decided
//! statically) are evaluated before each step, and every evaluation is
//! audited.

use aos_compiler::ir::{PolicyAction, PolicyRule, Risk, Step, StepKind, Trust};
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

fn kind_name(k: StepKind) -> &'static str {
    match k {
        StepKind::Tool => "tool",
        StepKind::Llm => "llm",
        StepKind::Workflow => "workflow",
    }
}

/// Evaluates every rule for a step; each evaluation becomes an audit record.
/// The condition is evaluated by [`aos_compiler::ir::Cond::holds`], the
/// evaluator the checker uses.
pub fn evaluate(rules: &[PolicyRule], step: &Step, trust: Trust, decisions: &mut Vec<Decision>) -> Verdict {
    let mut v = Verdict::default();
    let facts = step.facts();
    for rule in rules {
        let matched = rule.cond.holds(&facts, trust);
        decisions.push(Decision::new(
            "policy",
            Some(&step.name),
            json!({"policy": rule.policy, "rule": rule.text, "matched": matched, "trust": trust_name(trust),
                   "risk": risk_name(step.risk), "kind": kind_name(step.kind), "tool": facts.tool}),
        ));
        if !matched {
            continue;
        }
        match rule.action {
            PolicyAction::Deny => {
                if v.denied.is_none() {
                    v.denied = Some(format!("denied by policy `{}`: `{}` (run trust: {})", rule.policy, rule.text, trust_name(trust)));
                }
            }
            PolicyAction::RequireApproval => v.approval = Some(rule.policy.clone()),
            PolicyAction::RequireVerify => v.verify = Some(rule.policy.clone()),
        }
    }
    v
}
