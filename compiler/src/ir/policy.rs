//! Policy rules left for the runtime, their conditions, and the facts of a
//! step they are decided on.

use super::*;

/// A policy rule left for the runtime: its condition mentions `trust` (or
/// otherwise could not be decided at check time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyRule {
    pub policy: String,
    /// The rule as written, for messages and the audit log.
    pub text: String,
    pub action: PolicyAction,
    pub cond: Cond,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    RequireApproval,
    RequireVerify,
    Deny,
}

/// A policy condition over step facts and run facts.
///
/// Serialized with the value typed (`{"op": "compare", "cmp": "lt",
/// "value": {"trust": "trusted"}}`); IR written before values were typed
/// (`"fact": "trust", ..., "value": "trusted"`) still loads, its value
/// parsed once on load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", try_from = "compat::CondRepr")]
pub enum Cond {
    True,
    False,
    And { a: Box<Cond>, b: Box<Cond> },
    Or { a: Box<Cond>, b: Box<Cond> },
    Not { a: Box<Cond> },
    /// `FACT OP VALUE`, e.g. `trust < trusted`, `tool == "shell.exec"`:
    /// the value is typed, so the fact is the value's.
    Compare { cmp: Cmp, value: PolicyValue },
}

/// What a policy comparison compares a fact with, parsed once when the
/// policy is checked (or an old IR is loaded): evaluation only compares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyValue {
    Risk(Risk),
    Trust(Trust),
    Kind(StepKind),
    Effect(Effect),
    /// A tool's dotted name.
    Tool(String),
}

impl PolicyValue {
    /// The fact this value is compared with.
    pub fn fact(&self) -> Fact {
        match self {
            PolicyValue::Risk(_) => Fact::Risk,
            PolicyValue::Trust(_) => Fact::Trust,
            PolicyValue::Kind(_) => Fact::Kind,
            PolicyValue::Effect(_) => Fact::Effect,
            PolicyValue::Tool(_) => Fact::Tool,
        }
    }

    /// Parses the value of `fact` as written (a level, kind or effect
    /// name; a tool's name as is). `None` for a name `fact` does not have.
    pub fn parse(fact: Fact, text: &str) -> Option<PolicyValue> {
        use crate::check::risk::{parse_effect, parse_kind, parse_risk, parse_trust};
        Some(match fact {
            Fact::Risk => PolicyValue::Risk(parse_risk(text)?),
            Fact::Trust => PolicyValue::Trust(parse_trust(text)?),
            Fact::Kind => PolicyValue::Kind(parse_kind(text)?),
            Fact::Effect => PolicyValue::Effect(parse_effect(text)?),
            Fact::Tool => PolicyValue::Tool(text.to_string()),
        })
    }

    /// The value as written in a policy (a tool's name unquoted).
    pub fn name(&self) -> &str {
        use crate::check::risk::{effect_name, kind_name, risk_name, trust_name};
        match self {
            PolicyValue::Risk(r) => risk_name(*r),
            PolicyValue::Trust(t) => trust_name(*t),
            PolicyValue::Kind(k) => kind_name(*k),
            PolicyValue::Effect(e) => effect_name(*e),
            PolicyValue::Tool(t) => t,
        }
    }
}

/// The facts of one step a policy condition speaks of (the run's `trust`
/// is given beside them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepFacts<'a> {
    pub risk: Risk,
    pub kind: StepKind,
    pub effect: Effect,
    /// The dotted name of the tool, for a tool step.
    pub tool: Option<&'a str>,
}

impl Cond {
    /// Whether the condition holds for a step when the run has `trust`:
    /// the one evaluator, used by the checker (for every trust level) and
    /// by the runtime (for the run's). A comparison the checker would have
    /// rejected (an unknown value, an order on `kind`) is false.
    pub fn holds(&self, facts: &StepFacts<'_>, trust: Trust) -> bool {
        match self {
            Cond::True => true,
            Cond::False => false,
            Cond::And { a, b } => a.holds(facts, trust) && b.holds(facts, trust),
            Cond::Or { a, b } => a.holds(facts, trust) || b.holds(facts, trust),
            Cond::Not { a } => !a.holds(facts, trust),
            Cond::Compare { cmp, value } => match value {
                PolicyValue::Risk(v) => cmp.ordered(facts.risk, *v),
                PolicyValue::Trust(v) => cmp.ordered(trust, *v),
                PolicyValue::Kind(v) => cmp.equality(facts.kind == *v),
                PolicyValue::Effect(v) => cmp.equality(facts.effect == *v),
                PolicyValue::Tool(t) => cmp.equality(facts.tool == Some(t.as_str())),
            },
        }
    }
}

impl Cmp {
    fn ordered<T: Ord>(self, fact: T, value: T) -> bool {
        match self {
            Cmp::Eq => fact == value,
            Cmp::Ne => fact != value,
            Cmp::Lt => fact < value,
            Cmp::Le => fact <= value,
            Cmp::Gt => fact > value,
            Cmp::Ge => fact >= value,
        }
    }

    fn equality(self, equal: bool) -> bool {
        match self {
            Cmp::Eq => equal,
            Cmp::Ne => !equal,
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fact {
    Risk,
    Kind,
    Tool,
    Effect,
    Trust,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}
