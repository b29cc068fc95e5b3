//! One attempt of a step (or of one fan-out item): evaluates what the
//! call needs, dispatches to the module of its call kind under the step's
//! timeout, and reports an [`AttemptResult`] to the loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{Cache, Call, Expr, Step};
use serde_json::Value;

use super::Shared;
use crate::audit::Decision;
use crate::core::{eval_with, AttemptOutcome, AttemptResult, Launch, UnitKey};
use crate::events::Usage;
use crate::interp::EvalError;
use crate::store::StoreError;

/// Why a call failed. The message becomes the journaled error.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{0}")]
    Eval(#[from] EvalError),
    /// Every model of the role failed, or the reply was unusable.
    #[error(transparent)]
    Llm(#[from] crate::fabric::FabricError),
    /// The tool failed (its kind says how).
    #[error(transparent)]
    Tool(#[from] crate::tools::ToolError),
    #[error("tool `{0}` is not available in this runtime")]
    ToolUnavailable(String),
    #[error("tool `{tool}` returned {tokens} tokens of JSON, more than max_output_tokens {bound}")]
    OutputTooLong { tool: String, tokens: u64, bound: u64 },
    #[error("the value of `{step}` does not conform to its type: {errors}")]
    Nonconforming { step: String, errors: String },
    #[error(transparent)]
    Schema(InvalidSchema),
    #[error("timed out after {0}")]
    Timeout(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sub-run of a workflow call failed (or could not start).
    #[error("workflow `{workflow}` (run {run}) failed: {error}")]
    Workflow { workflow: String, run: String, error: String },
    /// The sub-run of a workflow call could not be created or read.
    #[error(transparent)]
    Runtime(Box<crate::RuntimeError>),
    #[error("unknown step")]
    UnknownStep,
}

/// A step's JSON Schema that does not compile (the checker validates the
/// schemas it derives; this is the runtime's second line).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the step's JSON Schema is invalid: {0}")]
pub struct InvalidSchema(pub String);

/// What a call produced when it did not fail.
pub(super) enum Reply {
    Value(Value),
    /// A sub-workflow stopped at a gate: why, and how to continue.
    Paused(String),
}

/// What the call of one attempt sees and records besides its value.
pub(super) struct Attempt<'a> {
    pub sh: &'a Shared,
    pub index: usize,
    pub step: &'a Step,
    pub item: UnitKey,
    /// The attempt's number (an agent reads back its own turns by it).
    pub attempt: u32,
    deps: HashMap<String, Arc<Value>>,
    item_value: Option<Value>,
    pub usage: Usage,
    pub decisions: Vec<Decision>,
    pub idempotency: Option<String>,
    /// The step's response cache, for its own call (a `fallback:` call is
    /// never cached).
    pub cache: Option<Cache>,
}

impl Attempt<'_> {
    /// Evaluates an expression of the call (the fan-out variable bound).
    pub fn eval(&self, expr: &Expr) -> Result<Value, CallError> {
        let var = match (&self.step.fan_out, &self.item_value) {
            (Some(f), Some(v)) => Some((f.var.as_str(), v)),
            _ => None,
        };
        Ok(eval_with(&self.sh.ctx, &self.deps, expr, var)?)
    }

    /// `RUN/STEP` or `RUN/STEP/ITEM`: names the call to providers.
    pub fn call_key(&self) -> String {
        match self.item {
            Some(it) => format!("{}/{}/{it}", self.sh.ctx.run_id, self.step.name),
            None => format!("{}/{}", self.sh.ctx.run_id, self.step.name),
        }
    }
}

/// Runs one attempt and reports how it ended.
pub(super) async fn run(sh: Arc<Shared>, l: Launch, deps: HashMap<String, Arc<Value>>, item_value: Option<Value>) -> AttemptResult {
    let mut result = AttemptResult {
        step: l.step,
        item: l.item,
        attempt: l.attempt,
        outcome: AttemptOutcome::Failed(CallError::UnknownStep.to_string()),
        usage: Usage::default(),
        decisions: Vec::new(),
        idempotency: None,
    };
    let Some(step) = sh.ctx.wf.steps.get(l.step) else { return result };
    let cache = if l.fallback { None } else { step.cache };
    let mut a = Attempt { sh: &sh, index: l.step, step, item: l.item, attempt: l.attempt, deps, item_value, usage: Usage::default(), decisions: Vec::new(), idempotency: None, cache };
    let call = if l.fallback { step.fallback.as_ref().unwrap_or(&step.call) } else { &step.call };
    let res = match step.timeout_ms {
        Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), dispatch(&mut a, call)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(fmt_ms(ms))),
        },
        None => dispatch(&mut a, call).await,
    };
    let secrets = &sh.ctx.secrets;
    result.outcome = match res {
        // The value flows on unchanged (the program computes with it); the
        // journal, events and audit get it redacted when the batch is
        // committed (`Driver::commit`).
        Ok(Reply::Value(v)) => AttemptOutcome::Value(v),
        Ok(Reply::Paused(msg)) => {
            a.usage = Usage::default();
            AttemptOutcome::Paused(msg)
        }
        Err(e) => AttemptOutcome::Failed(secrets.redact(&e.to_string())),
    };
    result.usage = a.usage;
    result.decisions = a.decisions;
    result.idempotency = a.idempotency;
    result
}

async fn dispatch(a: &mut Attempt<'_>, call: &Call) -> Result<Reply, CallError> {
    match call {
        Call::Llm { role, prompt, agent: Some(agent) } => super::agent::call(a, role, prompt, agent).await.map(Reply::Value),
        Call::Llm { role, prompt, agent: None } => super::llm::call(a, role, prompt).await.map(Reply::Value),
        Call::Tool { tool, args } => super::tool::call(a, tool, args).await.map(Reply::Value),
        Call::Workflow { workflow, args } => super::workflow::call(a, workflow, args).await,
    }
}

fn fmt_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}
