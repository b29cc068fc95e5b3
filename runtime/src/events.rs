//! The transitions of a run. Each is journaled (committed to the store)
//! before anything acts on it, then published on the bus; replaying a run's
//! journal rebuilds its state.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Tokens and money spent by one model call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Of `input_tokens`, those the provider served from its prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_input_tokens: u64,
    /// Of `output_tokens`, those spent on hidden reasoning.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
    pub cost_usd: f64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost_usd += other.cost_usd;
    }
}

/// One journaled transition of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transition {
    /// The run was created with these (redacted) inputs.
    RunStarted { workflow: String, inputs: Value, trust: String },
    /// A process picked the run up again after an interruption or a pause.
    RunResumed,
    /// A step's `when` was false, or a value it needs was skipped.
    StepSkipped { step: String, reason: String },
    /// A fan-out evaluated its list: `items` units will run.
    FanOutPlanned { step: String, items: u32 },
    /// An attempt of a step (or of one fan-out item) is about to run.
    AttemptStarted { step: String, item: Option<u32>, attempt: u32, fallback: bool },
    /// An attempt failed; `retry_in_ms` is set when another attempt follows.
    AttemptFailed {
        step: String,
        item: Option<u32>,
        attempt: u32,
        error: String,
        usage: Usage,
        retry_in_ms: Option<u64>,
    },
    /// A started attempt was found unfinished when the run resumed.
    AttemptInterrupted { step: String, item: Option<u32>, attempt: u32, action: Recovery },
    /// One fan-out item produced its value.
    ItemSucceeded { step: String, item: u32, output: Value, usage: Usage },
    /// The step produced its value (a fan-out's value is its items' values).
    StepSucceeded { step: String, output: Option<Value>, usage: Usage },
    /// The step failed for good: retries and fallback are spent.
    StepFailed { step: String, error: String },
    /// The step waits at a gate for a person.
    ApprovalRequested { step: String, group: String, reason: String },
    ApprovalGranted { step: String, by: String, note: Option<String> },
    ApprovalDenied { step: String, by: String, note: Option<String> },
    /// Nothing can run until someone decides at a gate.
    RunPaused { reason: String },
    /// Ctrl-C: the run stopped cleanly and can be resumed.
    RunInterrupted,
    /// A choice of the model router (model, retry, fallback, cooldown,
    /// verification), also kept in the audit log.
    Routed { step: String, item: Option<u32>, kind: String, data: Value },
    RunSucceeded { output: Value, cost_usd: f64 },
    RunFailed { error: String, cost_usd: f64 },
    /// One turn of an agent step: the model's reply (text and the tool
    /// calls it asks for) and its usage. Its cost is counted with the
    /// attempt's final record (which sums every turn), not here.
    AgentTurn {
        step: String,
        item: Option<u32>,
        attempt: u32,
        turn: u32,
        model: String,
        text: String,
        calls: Vec<ToolCall>,
        /// With `verify:`, the verifier's verdict on this turn's answer
        /// (its usage is in `usage`); `None`: not an answer, or no `verify:`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verdict: Option<Verdict>,
        usage: Usage,
    },
    /// One tool call of an agent step, finished: its result or its error.
    AgentTool {
        step: String,
        item: Option<u32>,
        attempt: u32,
        turn: u32,
        call_id: String,
        tool: String,
        args: Value,
        output: Option<Value>,
        error: Option<String>,
    },
}

/// A verifier's verdict on an agent's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    /// Why: sent back to the agent, or the attempt's error on its last turn.
    Rejected(String),
}

/// A tool call a model asked for in an agent step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call (generated when it gives none).
    pub id: String,
    /// The name the provider knows the tool by (`http__get`).
    pub name: String,
    /// The arguments, a JSON object.
    pub args: Value,
}

impl Transition {
    /// The dotted name shown in timelines (`step.started`).
    pub fn kind(&self) -> &'static str {
        match self {
            Transition::RunStarted { .. } => "run.started",
            Transition::RunResumed => "run.resumed",
            Transition::StepSkipped { .. } => "step.skipped",
            Transition::FanOutPlanned { .. } => "step.fanout",
            Transition::AttemptStarted { .. } => "step.started",
            Transition::AttemptFailed { .. } => "step.attempt_failed",
            Transition::AttemptInterrupted { .. } => "step.interrupted",
            Transition::ItemSucceeded { .. } => "item.succeeded",
            Transition::StepSucceeded { .. } => "step.succeeded",
            Transition::StepFailed { .. } => "step.failed",
            Transition::ApprovalRequested { .. } => "approval.requested",
            Transition::ApprovalGranted { .. } => "approval.granted",
            Transition::ApprovalDenied { .. } => "approval.denied",
            Transition::RunPaused { .. } => "run.paused",
            Transition::RunInterrupted => "run.interrupted",
            Transition::Routed { .. } => "llm.routed",
            Transition::RunSucceeded { .. } => "run.succeeded",
            Transition::RunFailed { .. } => "run.failed",
            Transition::AgentTurn { .. } => "agent.turn",
            Transition::AgentTool { .. } => "agent.tool",
        }
    }

    /// The step this transition is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Transition::StepSkipped { step, .. }
            | Transition::FanOutPlanned { step, .. }
            | Transition::AttemptStarted { step, .. }
            | Transition::AttemptFailed { step, .. }
            | Transition::AttemptInterrupted { step, .. }
            | Transition::ItemSucceeded { step, .. }
            | Transition::Routed { step, .. }
            | Transition::StepSucceeded { step, .. }
            | Transition::StepFailed { step, .. }
            | Transition::ApprovalRequested { step, .. }
            | Transition::ApprovalGranted { step, .. }
            | Transition::ApprovalDenied { step, .. }
            | Transition::AgentTurn { step, .. }
            | Transition::AgentTool { step, .. } => Some(step),
            _ => None,
        }
    }

    /// Money this transition records as spent.
    pub fn spent(&self) -> f64 {
        match self {
            Transition::AttemptFailed { usage, .. }
            | Transition::ItemSucceeded { usage, .. } => usage.cost_usd,
            // A fan-out's step record sums its items, which were counted already.
            Transition::StepSucceeded { usage, output: Some(_), .. } => usage.cost_usd,
            _ => 0.0,
        }
    }
}

/// What a resumed run does with an attempt a crash left unfinished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recovery {
    /// Run it again (its effect is pure or read, or deduplicated by an
    /// idempotency key).
    Retry,
    /// Hold it for an operator: its external effect may have happened.
    Held,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Recovery::Retry => "retry",
            Recovery::Held => "held",
        })
    }
}

/// A transition as the journal holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub run_id: String,
    pub at_ms: u64,
    pub transition: Transition,
}

/// Run status as the CLI reports it (§6a), plus `running`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Queued for the fleet (`aosc run --detach`): no worker decided yet.
    Queued,
    Running,
    Succeeded,
    Failed,
    WaitingApproval,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::WaitingApproval => "waiting_approval",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "waiting_approval" => RunStatus::WaitingApproval,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    /// The status a transition moves the run to, if it changes it.
    pub fn after(t: &Transition) -> Option<RunStatus> {
        match t {
            Transition::RunStarted { .. } | Transition::RunResumed => Some(RunStatus::Running),
            Transition::RunPaused { .. } => Some(RunStatus::WaitingApproval),
            Transition::RunInterrupted => Some(RunStatus::Cancelled),
            Transition::RunSucceeded { .. } => Some(RunStatus::Succeeded),
            Transition::RunFailed { .. } => Some(RunStatus::Failed),
            _ => None,
        }
    }
}
