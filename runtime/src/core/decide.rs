//! [`decide`]: what a run does next, given its state and the time.

use std::cmp::Reverse;
use std::sync::Arc;

use aos_compiler::ir::StepKind;
use serde_json::{json, Value};

use super::apply::apply;
use super::state::{eval_with, Gate, Phase, RunState, StepStatus, Unit, UnitKey};
use crate::audit::Decision;
use crate::events::{Transition, Usage};
use crate::governance;
use crate::store::Batch;

/// An attempt the driver is to run, once the tick that started it is
/// committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The step's index in the workflow.
    pub step: usize,
    pub item: UnitKey,
    pub attempt: u32,
    /// Run the step's `fallback:` call instead of its call.
    pub fallback: bool,
}

/// Where the run stands after a tick.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The run ended (its final transition is in the tick).
    Finished,
    /// Attempts are in flight or retries wait for their delay: wait for a
    /// result (or until [`RunState::next_timer`]).
    Busy,
    /// Nothing runs and nothing can until someone decides at a gate (or a
    /// paused sub-run continues): why. Empty means the run is stuck.
    Waiting(Vec<String>),
}

/// What one call of the core produced: transitions (already applied to
/// the state) with the audit decisions and idempotency records behind
/// them, all to commit in one batch, then the attempts to launch.
#[derive(Debug, Default)]
pub struct Tick {
    pub batch: Batch,
    pub launches: Vec<Launch>,
}

impl Tick {
    /// Applies a transition and records it for the commit.
    pub fn emit(&mut self, state: &mut RunState, t: Transition) {
        apply(state, &t);
        self.batch.transitions.push(t);
    }

    pub fn audit(&mut self, d: Decision) {
        self.batch.decisions.push(d);
    }
}

/// Decides what the run does now: considers the steps whose dependencies
/// resolved (skip, gate, fail by policy or budget, plan a fan-out, start),
/// launches queued units, retries whose delay passed by `now_ms`, and
/// fan-out items up to the concurrency bounds, and ends the run when
/// everything resolved or a step failed for good.
pub fn decide(state: &mut RunState, now_ms: u64) -> (Tick, Outcome) {
    state.now_ms = now_ms;
    let mut tick = Tick::default();
    fill(state, &mut tick, now_ms);
    if state.finished.is_none() {
        if state.failing.is_some() && state.running == 0 {
            let error = state.failing.clone().unwrap_or_default();
            let cost_usd = state.spent;
            tick.emit(state, Transition::RunFailed { error, cost_usd });
        } else if state.failing.is_none() && state.all_resolved() {
            finish_success(state, &mut tick);
        }
    }
    let outcome = if state.finished.is_some() {
        Outcome::Finished
    } else if state.running == 0 && state.queue.is_empty() && state.starts.is_empty() && state.timers.is_empty() && tick.launches.is_empty() && state.ready.is_empty() {
        if state.failing.is_some() { Outcome::Busy } else { Outcome::Waiting(state.gated_reasons()) }
    } else {
        Outcome::Busy
    };
    (tick, outcome)
}

fn fill(state: &mut RunState, tick: &mut Tick, now_ms: u64) {
    if state.failing.is_some() {
        return;
    }
    while let Some(Reverse((at, i, item))) = state.timers.peek().copied() {
        if at > now_ms {
            break;
        }
        state.timers.pop();
        state.queue.push_back((i, item));
    }
    while let Some(i) = state.ready.pop_front() {
        consider(state, tick, i);
        if state.failing.is_some() {
            return;
        }
    }
    while state.running < state.max_running {
        let Some((i, item)) = state.queue.pop_front() else { break };
        launch(state, tick, i, item, false);
    }
    while state.running < state.max_running {
        let Some(i) = state.starts.pop_front() else { break };
        if state.steps.get(i).is_some_and(|s| s.status == StepStatus::Pending && s.units.is_empty()) {
            launch(state, tick, i, None, true);
        }
    }
    let mut f = 0;
    while state.running < state.max_running && f < state.active_fans.len() {
        let Some(&i) = state.active_fans.get(f) else { break };
        let cap = state.step(i).and_then(|s| s.fan_out.as_ref()).and_then(|fo| fo.concurrency).map(|c| c.max(1)).unwrap_or(u32::MAX);
        let next = state.steps.get(i).and_then(|s| s.fan.as_ref()).map(|fan| (fan.next, fan.n, fan.running));
        match next {
            Some((next, n, running)) if next < n && running < cap => launch(state, tick, i, Some(next), true),
            _ => f += 1,
        }
    }
}

/// Decides what a step whose dependencies are resolved does now.
fn consider(state: &mut RunState, tick: &mut Tick, i: usize) {
    let ctx = state.ctx.clone();
    let Some(step) = ctx.wf.steps.get(i) else { return };
    if state.steps.get(i).map(|s| s.status) != Some(StepStatus::Pending) || state.failing.is_some() {
        return;
    }
    let name = step.name.clone();
    let fail = |state: &mut RunState, tick: &mut Tick, error: String| tick.emit(state, Transition::StepFailed { step: step.name.clone(), error });
    // A step that needs a skipped value is skipped too (unless `??`).
    if let Some(skipped) = step.needs.iter().find(|n| state.step_state(n).is_some_and(|s| s.status == StepStatus::Skipped)) {
        let reason = format!("it needs `{skipped}`, which was skipped");
        tick.emit(state, Transition::StepSkipped { step: name, reason });
        return;
    }
    if let Some(cond) = &step.when {
        match state.eval_in_step(i, cond) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false) | Value::Null) => {
                tick.emit(state, Transition::StepSkipped { step: name, reason: "its `when` is false".into() });
                return;
            }
            Ok(other) => return fail(state, tick, format!("`when` gave {other}, not a Bool")),
            Err(e) => return fail(state, tick, format!("evaluating `when`: {e}")),
        }
    }
    let verdict = governance::evaluate(&ctx.program.rules, step, ctx.trust, &mut tick.batch.decisions);
    if let Some(denied) = verdict.denied {
        return fail(state, tick, denied);
    }
    if let Some(policy) = &verdict.verify
        && step.verify.is_none()
        && step.kind == StepKind::Llm
    {
        return fail(state, tick, format!("policy `{policy}` requires verification, but the step has no `verify:` role"));
    }
    let group = step.approval.clone().or_else(|| verdict.approval.as_ref().map(|p| format!("policy:{p}")));
    if let Some(group) = group {
        let gate = state.steps.get(i).map(|s| s.gate.clone()).unwrap_or(Gate::None);
        match gate {
            Gate::Granted => {}
            Gate::Denied(why) => return fail(state, tick, why),
            Gate::Requested => {
                if let Some(s) = state.steps.get_mut(i) {
                    super::state::set_status(&mut s.status, StepStatus::Gated, &mut state.resolved_steps);
                }
                return;
            }
            Gate::None => {
                let reason = match &step.approval {
                    Some(_) => format!("step `{name}` needs approval by `{group}`"),
                    None => format!("policy `{}` requires approval of step `{name}`", verdict.approval.unwrap_or_default()),
                };
                tick.audit(Decision::new("approval", Some(&name), json!({"requested": group, "reason": reason})));
                tick.emit(state, Transition::ApprovalRequested { step: name, group, reason });
                return;
            }
        }
    }
    if let Some(budget) = ctx.wf.budget_usd {
        let bound = step.cost.usd;
        let spent = state.spent;
        let left = budget - spent;
        let fits = bound <= left + 1e-12;
        tick.audit(Decision::new("budget", Some(&name), json!({"budget_usd": budget, "spent_usd": spent, "step_bound_usd": bound, "fits": fits})));
        if !fits {
            let left = left.max(0.0);
            return fail(
                state,
                tick,
                format!("budget: ${spent:.6} of ${budget:.6} is spent; step `{name}` may cost up to ${bound:.6}, which no longer fits the ${left:.6} left"),
            );
        }
    }
    match &step.fan_out {
        Some(fan) => {
            let items = match state.eval_in_step(i, &fan.items) {
                Ok(Value::Array(items)) => items,
                Ok(Value::Null) => Vec::new(),
                Ok(other) => return fail(state, tick, format!("`for` needs a List, got {other}")),
                Err(e) => return fail(state, tick, e.to_string()),
            };
            if let Some(max) = fan.max_items
                && items.len() as u64 > max
            {
                return fail(state, tick, format!("the list has {} items, more than `max_items: {max}`", items.len()));
            }
            let n = items.len() as u32;
            tick.emit(state, Transition::FanOutPlanned { step: name.clone(), items: n });
            if let Some(f) = state.steps.get_mut(i).and_then(|s| s.fan.as_mut()) {
                f.items = Some(Arc::new(items));
            }
            if n == 0 {
                tick.emit(state, Transition::StepSucceeded { step: name, output: None, usage: Usage::default() });
            }
        }
        None => state.starts.push_back(i),
    }
}

/// Journals the start of an attempt and schedules its launch: a queued
/// unit (`fresh` false), or a step or fan-out item never started (`fresh`
/// true).
/// Queue entries can be stale (a replay queues a retry that the journal
/// later shows started and finished), so a unit that is not queued is
/// never launched from the queue.
fn launch(state: &mut RunState, tick: &mut Tick, i: usize, item: UnitKey, fresh: bool) {
    let Some(name) = state.step(i).map(|s| s.name.clone()) else { return };
    let (attempt, fallback) = match state.steps.get(i).and_then(|s| s.units.get(&item)) {
        Some(Unit { attempt, phase: Phase::Queued { fallback } }) => (attempt + 1, *fallback),
        Some(_) => return,
        None if fresh => (1, false),
        None => return,
    };
    if fallback {
        tick.audit(Decision::new("fallback", Some(&name), json!({"item": item, "attempt": attempt, "call": "fallback"})));
    }
    tick.emit(state, Transition::AttemptStarted { step: name, item, attempt, fallback });
    tick.launches.push(Launch { step: i, item, attempt, fallback });
}

fn finish_success(state: &mut RunState, tick: &mut Tick) {
    let ctx = state.ctx.clone();
    let out = match &ctx.wf.ret_expr {
        Some(e) => eval_with(&ctx, &state.values(), e, None),
        None => Ok(Value::Null),
    };
    let cost_usd = state.spent;
    // The returned value must be of the declared type (checked, not trusted).
    let out = out
        .map_err(|e| format!("evaluating `return`: {e}"))
        .and_then(|v| crate::validate::returned(&ctx.wf, &v).map(|()| v).map_err(|e| e.to_string()));
    match out {
        Ok(v) => tick.emit(state, Transition::RunSucceeded { output: ctx.secrets.redact_value(&v), cost_usd }),
        Err(error) => tick.emit(state, Transition::RunFailed { error, cost_usd }),
    }
}
