//! Test blocks as the checker lowers them: what `aosc test` runs.
//!
//! The checker resolves every name of a `test "…" { … }` block against the
//! checked program and turns its literals into JSON values (E0801–E0803), so
//! the runner never looks at syntax: it gets the workflow, its inputs, the
//! scripts of each role and tool, the answers at the gates and the
//! expectations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ir::Cmp;
use crate::span::Span;

/// One test block, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    pub name: String,
    /// The span of the name (reports point at it; the editor puts its lens there).
    pub span: Span,
    pub workflow: String,
    pub inputs: BTreeMap<String, Value>,
    /// The scripted replies of each role, in call order.
    pub llm: BTreeMap<String, Vec<Script>>,
    /// The scripted results of each tool, in call order.
    pub tools: BTreeMap<String, Vec<Script>>,
    /// The answer at each gate: `true` approves, `false` denies.
    pub answers: BTreeMap<String, bool>,
    pub expects: Vec<Expectation>,
}

/// What one scripted call gives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Script {
    /// The reply (a string is the reply text, another value its JSON text)
    /// or the tool's result.
    Returns(Value),
    /// The call fails with this message.
    Fails(String),
    /// A turn of an agent step that calls `tool` with these arguments
    /// (`given llm ROLE calls TOOL(ARGS)`).
    Calls { tool: String, args: Value },
}

/// One `expect` line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    pub kind: Expect,
    /// The line as written, for reports.
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// `expect output == V` (`equal`) or `!= V`.
    Output { equal: bool, value: Value },
    /// `expect cost OP $AMOUNT`, exact (the amount in whole micro-dollars,
    /// as `$…` literals are).
    Cost { cmp: Cmp, micros: u64 },
    /// These steps ran and succeeded.
    Ran(Vec<String>),
    /// These steps were skipped.
    Skipped(Vec<String>),
    /// Exactly these steps asked for approval.
    Approvals(Vec<String>),
    /// The run ended (or paused) with this status.
    Status(String),
    /// The run failed with an error containing this text.
    Error(String),
}

/// The statuses `expect status` knows.
pub const STATUSES: [&str; 3] = ["succeeded", "failed", "waiting_approval"];

/// The subjects of `expect`.
pub const SUBJECTS: [&str; 7] = ["output", "cost", "ran", "skipped", "approvals", "status", "error"];

impl Cmp {
    /// Whether `a OP b` holds.
    pub fn holds<T: PartialOrd>(self, a: &T, b: &T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }

    /// `<=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}
