//! What the core makes of an attempt's result, of a resume after a crash,
//! and of the run-level events a driver reports (a pause, an interrupt).

use aos_compiler::ir::{Backoff, Effect, StepKind};
use serde_json::{json, Value};

use super::decide::Tick;
use super::state::{Phase, RunState, UnitKey};
use crate::audit::Decision;
use crate::events::{Recovery, Transition, Usage};

/// How an attempt ended.
#[derive(Clone, Debug)]
pub enum AttemptOutcome {
    /// The call produced its value.
    Value(Value),
    /// The call failed (the message is already redacted).
    Failed(String),
    /// A sub-workflow stopped at a gate: why, and how to continue.
    Paused(String),
}

/// What a driver reports back for one attempt it launched.
#[derive(Clone, Debug)]
pub struct AttemptResult {
    pub step: usize,
    pub item: UnitKey,
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    pub usage: Usage,
    /// The router's and tools' audit decisions.
    pub decisions: Vec<Decision>,
    /// The idempotency key of an external effect that took place.
    pub idempotency: Option<String>,
}

/// Turns a finished attempt into transitions: the item's or step's value,
/// or a failed attempt with its retry (and backoff), fallback, or the
/// step's failure.
pub fn on_result(state: &mut RunState, tick: &mut Tick, r: AttemptResult) {
    let ctx = state.ctx.clone();
    let Some(step) = ctx.wf.steps.get(r.step) else { return };
    for dec in r.decisions {
        // The router's choices are events too, not only audit records.
        if crate::fabric::ROUTER_DECISIONS.contains(&dec.kind.as_str()) {
            tick.emit(state, Transition::Routed { step: step.name.clone(), item: r.item, kind: dec.kind.clone(), data: dec.data.clone() });
        }
        tick.audit(dec);
    }
    match r.outcome {
        AttemptOutcome::Paused(msg) => park(state, r.step, r.item, r.attempt, msg),
        AttemptOutcome::Value(output) => {
            if let Some(key) = r.idempotency {
                tick.batch.idempotency.push((key, step.name.clone(), output.clone()));
            }
            match r.item {
                Some(item) => {
                    tick.emit(state, Transition::ItemSucceeded { step: step.name.clone(), item, output, usage: r.usage });
                    let all = state.steps.get(r.step).and_then(|s| s.fan.as_ref()).is_some_and(|f| f.done == f.n);
                    if all {
                        let usage = state.steps.get(r.step).map(|s| s.usage.clone()).unwrap_or_default();
                        tick.emit(state, Transition::StepSucceeded { step: step.name.clone(), output: None, usage });
                    }
                }
                // The usage of this (last) attempt; failed attempts
                // journaled their own.
                None => tick.emit(state, Transition::StepSucceeded { step: step.name.clone(), output: Some(output), usage: r.usage }),
            }
        }
        AttemptOutcome::Failed(error) => {
            let fallback_now = state
                .steps
                .get(r.step)
                .and_then(|s| s.units.get(&r.item))
                .is_some_and(|u| u.phase == Phase::InFlight { fallback: true });
            let retries_left = !fallback_now && r.attempt < 1 + step.retry;
            let retry_in_ms = if retries_left {
                let base = match step.backoff {
                    Some(Backoff::Fixed { ms }) => ms,
                    Some(Backoff::Exponential { ms }) => ms.saturating_mul(1u64 << r.attempt.saturating_sub(1).min(20)),
                    None => 0,
                };
                tick.audit(Decision::new(
                    "retry",
                    Some(&step.name),
                    json!({"item": r.item, "failed_attempt": r.attempt, "next_attempt": r.attempt + 1, "delay_ms": base, "error": error}),
                ));
                Some(base)
            } else {
                None
            };
            let exhausted = retry_in_ms.is_none() && (fallback_now || step.fallback.is_none());
            let t = Transition::AttemptFailed { step: step.name.clone(), item: r.item, attempt: r.attempt, error: error.clone(), usage: r.usage, retry_in_ms };
            tick.emit(state, t);
            if exhausted {
                let what = match r.item {
                    Some(it) => format!("item {it}: "),
                    None => String::new(),
                };
                let error = format!("{what}{error} (after {} attempt(s))", r.attempt);
                tick.emit(state, Transition::StepFailed { step: step.name.clone(), error });
            }
        }
    }
}

/// An attempt whose sub-run paused at a gate: memory only (the journal
/// keeps the attempt in flight, and a resume runs it again, which continues
/// the sub-run). A fleet worker also calls it for the attempts other
/// workers parked. Nothing happens unless `attempt` of the unit is in flight.
pub fn park(state: &mut RunState, i: usize, item: UnitKey, attempt: u32, why: String) {
    let Some(s) = state.steps.get_mut(i) else { return };
    let Some(u) = s.units.get_mut(&item).filter(|u| u.attempt == attempt && matches!(u.phase, Phase::InFlight { .. })) else { return };
    u.phase = Phase::Paused;
    if let (Some(f), Some(_)) = (s.fan.as_mut(), item) {
        f.running = f.running.saturating_sub(1);
    }
    state.running = state.running.saturating_sub(1);
    state.paused_children.insert((i, item), why);
}

/// A driver lost an attempt (its task crashed): the run fails rather than
/// hangs.
pub fn on_lost(state: &mut RunState, why: &str) {
    if state.failing.is_none() {
        state.failing = Some(format!("an attempt crashed: {why}"));
    }
    state.running = state.running.saturating_sub(1);
}

/// After replaying the journal of a run that was interrupted: decides
/// what to do with each attempt left in flight. One whose effect is pure
/// or read, or external under an idempotency key, runs again; an external
/// one without a key is held for an operator.
pub fn recover(state: &mut RunState, tick: &mut Tick) {
    let mut inflight = Vec::new();
    for (i, s) in state.steps.iter().enumerate() {
        for (k, u) in &s.units {
            if let Phase::InFlight { .. } = u.phase {
                inflight.push((i, *k, u.attempt));
            }
        }
    }
    inflight.sort();
    for (i, item, attempt) in inflight {
        recover_unit(state, tick, i, item, attempt);
    }
}

/// [`recover`] for one attempt left in flight (a fleet worker that claims
/// the task of a worker that died decides about that attempt only).
/// Nothing happens unless `attempt` of unit (`i`, `item`) is in flight (or
/// [`park`]ed: a sub-run paused at a gate that was decided since).
pub fn recover_unit(state: &mut RunState, tick: &mut Tick, i: usize, item: UnitKey, attempt: u32) {
    let in_flight = state
        .steps
        .get(i)
        .and_then(|s| s.units.get(&item))
        .is_some_and(|u| u.attempt == attempt && matches!(u.phase, Phase::InFlight { .. } | Phase::Paused));
    if !in_flight {
        return;
    }
    let ctx = state.ctx.clone();
    let run = &ctx.run_id;
    {
        let Some(step) = ctx.wf.steps.get(i) else { return };
        let name = &step.name;
        let external = step.kind == StepKind::Tool && step.effect == Effect::External;
        let action = if external && step.idempotency_key.is_none() { Recovery::Held } else { Recovery::Retry };
        let why = match (external, step.idempotency_key.is_some()) {
            (false, _) => "its effect is pure/read (or durable): it is safe to run again",
            (true, true) => "its effect is external: it runs again under its idempotency_key, so a completed effect is not repeated",
            (true, false) => "its effect is external and it has no idempotency_key: it may or may not have taken effect",
        };
        tick.audit(Decision::new("recovery", Some(name), json!({"item": item, "attempt": attempt, "action": action, "why": why})));
        tick.emit(state, Transition::AttemptInterrupted { step: name.clone(), item, attempt, action });
        if action == Recovery::Held {
            let reason = format!(
                "step `{name}` was interrupted while running; it has an external effect and no idempotency_key, so it may already have taken effect. Check, then `aosc approve {run} {name}` to run it again or `aosc deny {run} {name}` to fail it"
            );
            tick.audit(Decision::new("approval", Some(name), json!({"requested": "operator", "reason": reason})));
            tick.emit(state, Transition::ApprovalRequested { step: name.clone(), group: "operator".into(), reason });
        }
    }
}
