//! Governance at run time: the policy rules the checker left for the
//! runtime (they mention `trust`, or otherwise could not be decided
//! statically) are evaluated before each step, and every evaluation is
//! audited.

use aos_compiler::ir::{PolicyAction, PolicyRule, Risk, Step, StepFacts, StepKind, Trust};
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
///
/// For an agent step every rule is also evaluated for each of its tools,
/// as a tool step of the step's risk (docs/language.md, Agent steps): a
/// `deny` denies the step, a `require approval` gates it.
pub fn evaluate(rules: &[PolicyRule], step: &Step, trust: Trust, decisions: &mut Vec<Decision>) -> Verdict {
    let mut v = Verdict::default();
    let mut all = vec![(step.facts(), None)];
    if let Some(agent) = step.call.agent() {
        for t in &agent.tools {
            let facts = StepFacts { risk: step.risk, kind: StepKind::Tool, effect: t.effect, tool: Some(t.tool.as_str()) };
            all.push((facts, Some(t.tool.as_str())));
        }
    }
    for (facts, agent_tool) in all {
        for rule in rules {
            let matched = rule.cond.holds(&facts, trust);
            let mut data = json!({"policy": rule.policy, "rule": rule.text, "matched": matched, "trust": trust_name(trust),
                                  "risk": risk_name(facts.risk), "kind": kind_name(facts.kind), "tool": facts.tool});
            if let (Some(t), Some(o)) = (agent_tool, data.as_object_mut()) {
                o.insert("agent_tool".into(), json!(t));
            }
            decisions.push(Decision::new("policy", Some(&step.name), data));
            if !matched {
                continue;
            }
            let whose = agent_tool.map(|t| format!(" for its tool `{t}`")).unwrap_or_default();
            match rule.action {
                PolicyAction::Deny => {
                    if v.denied.is_none() {
                        v.denied = Some(format!("denied by policy `{}`: `{}`{whose} (run trust: {})", rule.policy, rule.text, trust_name(trust)));
                    }
                }
                PolicyAction::RequireApproval => v.approval = Some(rule.policy.clone()),
                // A tool call cannot be verified; only the step's own facts count.
                PolicyAction::RequireVerify if agent_tool.is_none() => v.verify = Some(rule.policy.clone()),
                PolicyAction::RequireVerify => {}
            }
        }
    }
    v
}
