//! [`apply`]: the state change of one transition, the same live and when a
//! journal is replayed.

use std::cmp::Reverse;
use std::sync::Arc;

use serde_json::Value;

use super::state::{Fan, Finished, Gate, Phase, RunState, StepStatus, Unit, UnitKey};
use crate::events::{Recovery, RunStatus, Transition, Usage};

/// The most fan-out items a replayed journal may plan for one step (a
/// live run plans as many as its list has).
pub const MAX_REPLAYED_FAN_ITEMS: u64 = 1 << 24;

/// Changes `state` as the transition says. Transitions about steps the
/// workflow does not have change nothing.
pub fn apply(state: &mut RunState, t: &Transition) {
    let idx = t.step().and_then(|s| state.index_of(s));
    match t {
        Transition::StepSkipped { .. } => {
            let Some(i) = idx else { return };
            if let Some(s) = state.steps.get_mut(i) {
                super::state::set_status(&mut s.status, StepStatus::Skipped, &mut state.resolved_steps);
                s.value = Some(Arc::new(Value::Null));
            }
            state.resolved(i);
        }
        Transition::FanOutPlanned { items, step } => {
            let Some(i) = idx else { return };
            // The journal is not trusted with the size of an allocation: a
            // count the step cannot have (no `for`, over its `max_items` or
            // over any list a run could hold) fails the run instead of
            // allocating it (found by the journal-replay fuzz seeds).
            let bound = state.ctx.wf.steps.get(i).and_then(|s| s.fan_out.as_ref()).map(|f| f.max_items.unwrap_or(MAX_REPLAYED_FAN_ITEMS).min(MAX_REPLAYED_FAN_ITEMS));
            if bound.is_none_or(|b| u64::from(*items) > b) {
                state.failing.get_or_insert_with(|| format!("the journal is damaged: it plans {items} fan-out items for step `{step}`, which cannot have them"));
                return;
            }
            if let Some(s) = state.steps.get_mut(i) {
                super::state::set_status(&mut s.status, StepStatus::Running, &mut state.resolved_steps);
                s.fan = Some(Fan { n: *items, items: None, values: vec![None; *items as usize], next: 0, running: 0, done: 0 });
            }
            state.active_fans.push(i);
        }
        Transition::AttemptStarted { item, attempt, fallback, .. } => {
            if let Some(s) = idx.and_then(|i| state.steps.get_mut(i)) {
                super::state::set_status(&mut s.status, StepStatus::Running, &mut state.resolved_steps);
                s.units.insert(*item, Unit { attempt: *attempt, phase: Phase::InFlight { fallback: *fallback } });
                if let (Some(f), Some(it)) = (s.fan.as_mut(), item) {
                    f.next = f.next.max(it + 1);
                    f.running += 1;
                }
                state.running += 1;
            }
        }
        Transition::AttemptFailed { item, usage, retry_in_ms, attempt, .. } => {
            state.spent += usage.cost_usd;
            let Some(i) = idx else { return };
            let has_fallback = state.step(i).is_some_and(|s| s.fallback.is_some());
            let was_fallback = finish_unit(state, i, *item, usage);
            let phase = match retry_in_ms {
                Some(_) => Phase::Queued { fallback: false },
                None if has_fallback && !was_fallback => Phase::Queued { fallback: true },
                None => Phase::Exhausted,
            };
            if let Some(s) = state.steps.get_mut(i) {
                s.units.insert(*item, Unit { attempt: *attempt, phase });
            }
            if let Phase::Queued { .. } = phase {
                match retry_in_ms {
                    Some(ms) if *ms > 0 && !state.replaying => state.timers.push(Reverse((state.now_ms.saturating_add(*ms), i, *item))),
                    _ => state.queue.push_back((i, *item)),
                }
            }
        }
        Transition::AttemptInterrupted { item, attempt, action, .. } => {
            let Some(i) = idx else { return };
            finish_unit(state, i, *item, &Usage::default());
            let phase = match action {
                Recovery::Held => Phase::Held,
                Recovery::Retry => Phase::Queued { fallback: false },
            };
            if let Some(s) = state.steps.get_mut(i) {
                // The interrupted attempt did not complete: it runs again
                // under the same number.
                s.units.insert(*item, Unit { attempt: attempt.saturating_sub(1), phase });
            }
            if *action == Recovery::Retry {
                state.queue.push_back((i, *item));
            }
        }
        Transition::ItemSucceeded { item, output, usage, .. } => {
            state.spent += usage.cost_usd;
            let Some(i) = idx else { return };
            finish_unit(state, i, Some(*item), usage);
            if let Some(s) = state.steps.get_mut(i) {
                s.units.remove(&Some(*item));
                if let Some(slot) = s.fan.as_mut().and_then(|f| {
                    let fresh = f.values.get(*item as usize).is_some_and(Option::is_none);
                    if fresh {
                        f.done += 1;
                    }
                    f.values.get_mut(*item as usize)
                }) {
                    *slot = Some(output.clone());
                }
            }
        }
        Transition::StepSucceeded { output, usage, .. } => {
            let Some(i) = idx else { return };
            if output.is_some() {
                state.spent += usage.cost_usd;
                let in_flight = state.steps.get(i).is_some_and(|s| s.units.get(&None).is_some_and(|u| matches!(u.phase, Phase::InFlight { .. })));
                if in_flight {
                    finish_unit(state, i, None, usage);
                }
            }
            if let Some(s) = state.steps.get_mut(i) {
                super::state::set_status(&mut s.status, StepStatus::Succeeded, &mut state.resolved_steps);
                s.units.clear();
                let v = match (output, s.fan.take()) {
                    (Some(v), _) => v.clone(),
                    (None, Some(f)) => Value::Array(f.values.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()),
                    (None, None) => Value::Null,
                };
                s.value = Some(Arc::new(v));
            }
            state.active_fans.retain(|&f| f != i);
            state.resolved(i);
        }
        Transition::StepFailed { error, .. } => {
            let Some(i) = idx else { return };
            if let Some(s) = state.steps.get_mut(i) {
                super::state::set_status(&mut s.status, StepStatus::Failed, &mut state.resolved_steps);
            }
            state.active_fans.retain(|&f| f != i);
            if state.failing.is_none() {
                let name = state.step(i).map(|s| s.name.clone()).unwrap_or_default();
                state.failing = Some(format!("step `{name}` failed: {error}"));
            }
        }
        Transition::ApprovalRequested { .. } => {
            if let Some(s) = idx.and_then(|i| state.steps.get_mut(i)) {
                s.gate = Gate::Requested;
                if s.status == StepStatus::Pending {
                    super::state::set_status(&mut s.status, StepStatus::Gated, &mut state.resolved_steps);
                }
            }
        }
        Transition::ApprovalGranted { .. } => {
            let Some(i) = idx else { return };
            let mut requeue = Vec::new();
            if let Some(s) = state.steps.get_mut(i) {
                s.gate = Gate::Granted;
                if s.status == StepStatus::Gated {
                    super::state::set_status(&mut s.status, StepStatus::Pending, &mut state.resolved_steps);
                    state.ready.push_back(i);
                }
                for (k, u) in s.units.iter_mut() {
                    if u.phase == Phase::Held {
                        u.phase = Phase::Queued { fallback: false };
                        requeue.push(*k);
                    }
                }
            }
            requeue.sort();
            for k in requeue {
                state.queue.push_back((i, k));
            }
        }
        Transition::ApprovalDenied { by, note, .. } => {
            let Some(i) = idx else { return };
            if let Some(s) = state.steps.get_mut(i) {
                let why = match note {
                    Some(n) => format!("denied by {by}: {n}"),
                    None => format!("denied by {by}"),
                };
                s.gate = Gate::Denied(why);
                if s.status == StepStatus::Gated {
                    super::state::set_status(&mut s.status, StepStatus::Pending, &mut state.resolved_steps);
                }
                state.ready.push_back(i);
            }
        }
        Transition::RunSucceeded { output, cost_usd } => {
            state.finished = Some(Finished { status: RunStatus::Succeeded, output: Some(output.clone()), cost_usd: *cost_usd, error: None });
        }
        Transition::RunFailed { error, cost_usd } => {
            state.finished = Some(Finished { status: RunStatus::Failed, output: None, cost_usd: *cost_usd, error: Some(error.clone()) });
        }
        // An agent's turns and tool calls are read back by the agent when
        // its attempt runs again (`driver::agent`); they change no state.
        Transition::RunStarted { .. }
        | Transition::RunResumed
        | Transition::RunPaused { .. }
        | Transition::RunInterrupted
        | Transition::Routed { .. }
        | Transition::AgentTurn { .. }
        | Transition::AgentTool { .. } => {}
    }
}

/// Replays a journal into a fresh state: the state the run had after its
/// last entry (the fan-outs planned evaluate their list again).
pub fn replay<'a>(state: &mut RunState, transitions: impl IntoIterator<Item = &'a Transition>) {
    state.replaying = true;
    for t in transitions {
        apply(state, t);
    }
    state.replaying = false;
    state.reload_fan_items();
}

/// Bookkeeping when an attempt ends; returns whether it was a fallback.
fn finish_unit(state: &mut RunState, i: usize, item: UnitKey, usage: &Usage) -> bool {
    let mut was_fallback = false;
    if let Some(s) = state.steps.get_mut(i) {
        s.usage.add(usage);
        if let Some(u) = s.units.get_mut(&item) {
            if let Phase::InFlight { fallback } = u.phase {
                was_fallback = fallback;
                state.running = state.running.saturating_sub(1);
                if let (Some(f), Some(_)) = (s.fan.as_mut(), item) {
                    f.running = f.running.saturating_sub(1);
                }
            }
            u.phase = Phase::Done;
        }
    }
    was_fallback
}
