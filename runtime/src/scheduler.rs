//! The scheduler: runs one workflow's steps as their dependencies resolve.
//!
//! The run's state is event-sourced: every change goes through
//! [`Exec::apply`], both live and when a resumed run replays its journal.
//! One loop owns the state. Each tick it decides transitions (start, skip,
//! gate, retry, fail, succeed), commits them in one transaction, publishes
//! them, and only then acts (spawns the attempts it journaled as started).
//! Attempts run as tokio tasks and report back to the loop.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{Backoff, Call, Effect, Expr, Program, Step, StepKind, Tool as ToolDecl, ToolImpl, Trust, Workflow};
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::audit::Decision;
use crate::events::{Entry, RunStatus, Transition, Usage};
use crate::fabric::LlmCall;
use crate::governance::{self, Facts};
use crate::interp::{self, Scope, Secrets};
use crate::store::writer::{Writer, MAX_BACKLOG};
use crate::store::{Batch, NewRun};
use crate::tokens;
use crate::tools::ToolCtx;
use crate::{RunOptions, RunReport, Runtime, RuntimeError};

/// Default bound on attempts in flight when a workflow sets no
/// `max_concurrency`.
pub const DEFAULT_MAX_CONCURRENCY: usize = 32;

type UnitKey = Option<u32>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Ready to launch (a new item, a retry whose delay passed, a fallback).
    Queued { fallback: bool },
    InFlight { fallback: bool },
    /// Interrupted mid-attempt with an external effect: waits for an operator.
    Held,
    /// A sub-workflow paused at a gate (memory only: journaled as in flight).
    Paused,
    Done,
    Exhausted,
}

#[derive(Clone, Copy, Debug)]
struct Unit {
    attempt: u32,
    phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SState {
    Pending,
    Gated,
    Running,
    Succeeded,
    Skipped,
    Failed,
}

#[derive(Clone, Debug, PartialEq)]
enum Gate {
    None,
    Requested,
    Granted,
    Denied(String),
}

struct Fan {
    n: u32,
    items: Option<Arc<Vec<Value>>>,
    values: Vec<Option<Value>>,
    next: u32,
    running: u32,
    done: u32,
}

struct StepRt {
    state: SState,
    remaining: usize,
    gate: Gate,
    units: HashMap<UnitKey, Unit>,
    fan: Option<Fan>,
    value: Option<Arc<Value>>,
    usage: Usage,
}

/// What an attempt reports back.
struct Done {
    step: usize,
    item: UnitKey,
    attempt: u32,
    result: Result<Value, String>,
    usage: Usage,
    decisions: Vec<Decision>,
    idempotency: Option<String>,
    /// A sub-workflow stopped at a gate.
    paused: Option<String>,
}

/// Everything an attempt needs, shared across a run.
pub(crate) struct Shared {
    pub rt: Runtime,
    pub run_id: String,
    pub program: Arc<Program>,
    pub wf: Workflow,
    pub params: BTreeMap<String, Value>,
    pub trust: Trust,
    pub secrets: Secrets,
    pub workspace: PathBuf,
    pub opts: RunOptions,
}

pub(crate) struct Exec {
    sh: Arc<Shared>,
    steps: Vec<StepRt>,
    index: HashMap<String, usize>,
    dependents: Vec<Vec<usize>>,
    ready: VecDeque<usize>,
    queue: VecDeque<(usize, UnitKey)>,
    timers: BinaryHeap<Reverse<(Instant, usize, UnitKey)>>,
    active_fans: Vec<usize>,
    running: usize,
    max_running: usize,
    spent: f64,
    failing: Option<String>,
    paused_children: Vec<String>,
    finished: Option<RunReport>,
    replaying: bool,
    batch: Batch,
    to_spawn: Vec<(usize, UnitKey, u32, bool)>,
    last_journal_id: i64,
}

impl Exec {
    pub(crate) fn new(sh: Arc<Shared>) -> Exec {
        let wf = &sh.wf;
        let index: HashMap<String, usize> = wf.steps.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        let mut dependents = vec![Vec::new(); wf.steps.len()];
        let mut steps = Vec::with_capacity(wf.steps.len());
        for (i, s) in wf.steps.iter().enumerate() {
            let mut remaining = 0;
            for d in &s.deps {
                if let Some(&j) = index.get(d) {
                    if let Some(list) = dependents.get_mut(j) {
                        list.push(i);
                        remaining += 1;
                    }
                }
            }
            steps.push(StepRt {
                state: SState::Pending,
                remaining,
                gate: Gate::None,
                units: HashMap::new(),
                fan: None,
                value: None,
                usage: Usage::default(),
            });
        }
        let ready = steps.iter().enumerate().filter(|(_, s)| s.remaining == 0).map(|(i, _)| i).collect();
        let max_running = wf.max_concurrency.map(|c| c.max(1) as usize).unwrap_or(DEFAULT_MAX_CONCURRENCY);
        Exec {
            sh,
            steps,
            index,
            dependents,
            ready,
            queue: VecDeque::new(),
            timers: BinaryHeap::new(),
            active_fans: Vec::new(),
            running: 0,
            max_running,
            spent: 0.0,
            failing: None,
            paused_children: Vec::new(),
            finished: None,
            replaying: false,
            batch: Batch::default(),
            to_spawn: Vec::new(),
            last_journal_id: 0,
        }
    }

    fn step(&self, i: usize) -> Option<&Step> {
        self.sh.wf.steps.get(i)
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Records a transition: applied to the state now, committed with the
    /// tick's batch before anything acts on it.
    fn emit(&mut self, t: Transition) {
        self.apply(&t);
        self.batch.transitions.push(t);
    }

    fn decide(&mut self, d: Decision) {
        self.batch.decisions.push(d);
    }

    fn resolved(&mut self, i: usize) {
        let deps = self.dependents.get(i).cloned().unwrap_or_default();
        for j in deps {
            if let Some(s) = self.steps.get_mut(j) {
                s.remaining = s.remaining.saturating_sub(1);
                if s.remaining == 0 {
                    self.ready.push_back(j);
                }
            }
        }
    }

    /// The state change of one transition (live and on replay alike).
    pub(crate) fn apply(&mut self, t: &Transition) {
        let idx = t.step().and_then(|s| self.index_of(s));
        match t {
            Transition::StepSkipped { .. } => {
                if let Some(i) = idx {
                    if let Some(s) = self.steps.get_mut(i) {
                        s.state = SState::Skipped;
                        s.value = Some(Arc::new(Value::Null));
                    }
                    self.resolved(i);
                }
            }
            Transition::FanOutPlanned { items, .. } => {
                if let Some(s) = idx.and_then(|i| self.steps.get_mut(i)) {
                    s.state = SState::Running;
                    s.fan = Some(Fan { n: *items, items: None, values: vec![None; *items as usize], next: 0, running: 0, done: 0 });
                }
                if let Some(i) = idx {
                    self.active_fans.push(i);
                }
            }
            Transition::AttemptStarted { item, attempt, fallback, .. } => {
                if let Some(s) = idx.and_then(|i| self.steps.get_mut(i)) {
                    s.state = SState::Running;
                    s.units.insert(*item, Unit { attempt: *attempt, phase: Phase::InFlight { fallback: *fallback } });
                    if let (Some(f), Some(it)) = (s.fan.as_mut(), item) {
                        f.next = f.next.max(it + 1);
                        f.running += 1;
                    }
                    self.running += 1;
                }
            }
            Transition::AttemptFailed { item, usage, retry_in_ms, attempt, .. } => {
                self.spent += usage.cost_usd;
                let Some(i) = idx else { return };
                let has_fallback = self.step(i).is_some_and(|s| s.fallback.is_some());
                let was_fallback = self.finish_unit(i, *item, usage);
                let phase = match retry_in_ms {
                    Some(_) => Phase::Queued { fallback: false },
                    None if has_fallback && !was_fallback => Phase::Queued { fallback: true },
                    None => Phase::Exhausted,
                };
                if let Some(s) = self.steps.get_mut(i) {
                    s.units.insert(*item, Unit { attempt: *attempt, phase });
                }
                if let Phase::Queued { .. } = phase {
                    match retry_in_ms {
                        Some(ms) if *ms > 0 && !self.replaying => {
                            self.timers.push(Reverse((Instant::now() + Duration::from_millis(*ms), i, *item)));
                        }
                        _ => self.queue.push_back((i, *item)),
                    }
                }
            }
            Transition::AttemptInterrupted { item, attempt, action, .. } => {
                let Some(i) = idx else { return };
                self.finish_unit(i, *item, &Usage::default());
                let phase = if action == "held" { Phase::Held } else { Phase::Queued { fallback: false } };
                if let Some(s) = self.steps.get_mut(i) {
                    // The interrupted attempt did not complete: it runs again
                    // under the same number.
                    s.units.insert(*item, Unit { attempt: attempt.saturating_sub(1), phase });
                }
                if action == "retry" {
                    self.queue.push_back((i, *item));
                }
            }
            Transition::ItemSucceeded { item, output, usage, .. } => {
                self.spent += usage.cost_usd;
                let Some(i) = idx else { return };
                self.finish_unit(i, Some(*item), usage);
                if let Some(s) = self.steps.get_mut(i) {
                    s.units.remove(&Some(*item));
                    if let Some(f) = s.fan.as_mut() {
                        if let Some(slot) = f.values.get_mut(*item as usize) {
                            if slot.is_none() {
                                f.done += 1;
                            }
                            *slot = Some(output.clone());
                        }
                    }
                }
            }
            Transition::StepSucceeded { output, usage, .. } => {
                let Some(i) = idx else { return };
                if output.is_some() {
                    self.spent += usage.cost_usd;
                    if self.steps.get(i).is_some_and(|s| s.units.get(&None).is_some_and(|u| matches!(u.phase, Phase::InFlight { .. }))) {
                        self.finish_unit(i, None, usage);
                    }
                }
                if let Some(s) = self.steps.get_mut(i) {
                    s.state = SState::Succeeded;
                    s.units.clear();
                    let v = match (output, s.fan.take()) {
                        (Some(v), _) => v.clone(),
                        (None, Some(f)) => Value::Array(f.values.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()),
                        (None, None) => Value::Null,
                    };
                    s.value = Some(Arc::new(v));
                }
                self.active_fans.retain(|&f| f != i);
                self.resolved(i);
            }
            Transition::StepFailed { error, .. } => {
                if let Some(i) = idx {
                    if let Some(s) = self.steps.get_mut(i) {
                        s.state = SState::Failed;
                    }
                    self.active_fans.retain(|&f| f != i);
                    let name = self.step(i).map(|s| s.name.clone()).unwrap_or_default();
                    if self.failing.is_none() {
                        self.failing = Some(format!("step `{name}` failed: {error}"));
                    }
                }
            }
            Transition::ApprovalRequested { .. } => {
                if let Some(s) = idx.and_then(|i| self.steps.get_mut(i)) {
                    s.gate = Gate::Requested;
                    if s.state == SState::Pending {
                        s.state = SState::Gated;
                    }
                }
            }
            Transition::ApprovalGranted { .. } => {
                let Some(i) = idx else { return };
                let mut requeue = Vec::new();
                if let Some(s) = self.steps.get_mut(i) {
                    s.gate = Gate::Granted;
                    if s.state == SState::Gated {
                        s.state = SState::Pending;
                        self.ready.push_back(i);
                    }
                    for (k, u) in s.units.iter_mut() {
                        if u.phase == Phase::Held {
                            u.phase = Phase::Queued { fallback: false };
                            requeue.push(*k);
                        }
                    }
                }
                for k in requeue {
                    self.queue.push_back((i, k));
                }
            }
            Transition::ApprovalDenied { by, note, .. } => {
                if let Some(s) = idx.and_then(|i| self.steps.get_mut(i)) {
                    let why = match note {
                        Some(n) => format!("denied by {by}: {n}"),
                        None => format!("denied by {by}"),
                    };
                    s.gate = Gate::Denied(why);
                    if s.state == SState::Gated {
                        s.state = SState::Pending;
                    }
                    if let Some(i) = idx {
                        self.ready.push_back(i);
                    }
                }
            }
            Transition::RunSucceeded { output, cost_usd } => {
                self.finished = Some(RunReport {
                    run_id: self.sh.run_id.clone(),
                    status: RunStatus::Succeeded,
                    output: Some(output.clone()),
                    cost_usd: *cost_usd,
                    error: None,
                });
            }
            Transition::RunFailed { error, cost_usd } => {
                self.finished = Some(RunReport {
                    run_id: self.sh.run_id.clone(),
                    status: RunStatus::Failed,
                    output: None,
                    cost_usd: *cost_usd,
                    error: Some(error.clone()),
                });
            }
            Transition::RunStarted { .. }
            | Transition::RunResumed
            | Transition::RunPaused { .. }
            | Transition::RunInterrupted
            | Transition::Routed { .. } => {}
        }
    }

    /// Bookkeeping when an attempt ends; returns whether it was a fallback.
    fn finish_unit(&mut self, i: usize, item: UnitKey, usage: &Usage) -> bool {
        let mut was_fallback = false;
        if let Some(s) = self.steps.get_mut(i) {
            s.usage.add(usage);
            if let Some(u) = s.units.get_mut(&item) {
                if let Phase::InFlight { fallback } = u.phase {
                    was_fallback = fallback;
                    self.running = self.running.saturating_sub(1);
                    if let (Some(f), Some(_)) = (s.fan.as_mut(), item) {
                        f.running = f.running.saturating_sub(1);
                    }
                } else if u.phase == Phase::Paused {
                    was_fallback = false;
                }
                u.phase = Phase::Done;
            }
        }
        was_fallback
    }

    /// Values of the steps `i` depends on.
    fn dep_values(&self, i: usize) -> HashMap<String, Arc<Value>> {
        let mut m = HashMap::new();
        if let Some(step) = self.step(i) {
            for d in &step.deps {
                if let Some(v) = self.index_of(d).and_then(|j| self.steps.get(j)).and_then(|s| s.value.clone()) {
                    m.insert(d.clone(), v);
                }
            }
        }
        m
    }

    fn eval_in_step(&self, i: usize, expr: &Expr, var: Option<(&str, &Value)>) -> Result<Value, String> {
        let deps = self.dep_values(i);
        eval_with(&self.sh, &deps, expr, var)
    }

    /// Decides what a step whose dependencies are resolved does now.
    fn consider(&mut self, i: usize) {
        let Some(step) = self.step(i).cloned() else { return };
        if self.steps.get(i).map(|s| s.state) != Some(SState::Pending) || self.failing.is_some() {
            return;
        }
        // A step that needs a skipped value is skipped too (unless `??`).
        let mut needed = Vec::new();
        for e in step_exprs(&step) {
            interp::needed_steps(e, &mut needed);
        }
        if let Some(skipped) = needed.iter().find(|n| self.index_of(n).and_then(|j| self.steps.get(j)).is_some_and(|s| s.state == SState::Skipped)) {
            let reason = format!("it needs `{skipped}`, which was skipped");
            self.emit(Transition::StepSkipped { step: step.name.clone(), reason });
            return;
        }
        if let Some(cond) = &step.when {
            match self.eval_in_step(i, cond, None) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) | Ok(Value::Null) => {
                    self.emit(Transition::StepSkipped { step: step.name.clone(), reason: "its `when` is false".into() });
                    return;
                }
                Ok(other) => {
                    self.emit(Transition::StepFailed { step: step.name.clone(), error: format!("`when` gave {other}, not a Bool") });
                    return;
                }
                Err(e) => {
                    self.emit(Transition::StepFailed { step: step.name.clone(), error: format!("evaluating `when`: {e}") });
                    return;
                }
            }
        }
        let tool = match &step.call {
            Call::Tool { tool, .. } => Some(tool.as_str()),
            _ => None,
        };
        let mut decisions = Vec::new();
        let verdict = governance::evaluate(&self.sh.program.rules, &Facts { step: &step, tool, trust: self.sh.trust }, &mut decisions);
        for d in decisions {
            self.decide(d);
        }
        if let Some(denied) = verdict.denied {
            self.emit(Transition::StepFailed { step: step.name.clone(), error: denied });
            return;
        }
        if let Some(policy) = &verdict.verify {
            if step.verify.is_none() && step.kind == StepKind::Llm {
                let error = format!("policy `{policy}` requires verification, but the step has no `verify:` role");
                self.emit(Transition::StepFailed { step: step.name.clone(), error });
                return;
            }
        }
        let group = step.approval.clone().or_else(|| verdict.approval.as_ref().map(|p| format!("policy:{p}")));
        if let Some(group) = group {
            let gate = self.steps.get(i).map(|s| s.gate.clone()).unwrap_or(Gate::None);
            match gate {
                Gate::Granted => {}
                Gate::Denied(why) => {
                    self.emit(Transition::StepFailed { step: step.name.clone(), error: why });
                    return;
                }
                Gate::Requested => {
                    if let Some(s) = self.steps.get_mut(i) {
                        s.state = SState::Gated;
                    }
                    return;
                }
                Gate::None => {
                    let reason = match &step.approval {
                        Some(_) => format!("step `{}` needs approval by `{group}`", step.name),
                        None => format!("policy `{}` requires approval of step `{}`", verdict.approval.unwrap_or_default(), step.name),
                    };
                    self.decide(Decision::new("approval", Some(&step.name), json!({"requested": group, "reason": reason})));
                    self.emit(Transition::ApprovalRequested { step: step.name.clone(), group, reason });
                    return;
                }
            }
        }
        if let Some(budget) = self.sh.wf.budget_usd {
            let bound = step.cost.usd;
            let left = budget - self.spent;
            let fits = bound <= left + 1e-12;
            self.decide(Decision::new(
                "budget",
                Some(&step.name),
                json!({"budget_usd": budget, "spent_usd": self.spent, "step_bound_usd": bound, "fits": fits}),
            ));
            if !fits {
                let error = format!(
                    "budget: ${:.6} of ${budget:.6} is spent; step `{}` may cost up to ${bound:.6}, which no longer fits the ${:.6} left",
                    self.spent,
                    step.name,
                    left.max(0.0)
                );
                self.emit(Transition::StepFailed { step: step.name.clone(), error });
                return;
            }
        }
        match &step.fan_out {
            Some(fan) => {
                let items = match self.eval_in_step(i, &fan.items, None) {
                    Ok(Value::Array(items)) => items,
                    Ok(Value::Null) => Vec::new(),
                    Ok(other) => {
                        self.emit(Transition::StepFailed { step: step.name.clone(), error: format!("`for` needs a List, got {other}") });
                        return;
                    }
                    Err(e) => {
                        self.emit(Transition::StepFailed { step: step.name.clone(), error: e });
                        return;
                    }
                };
                if let Some(max) = fan.max_items {
                    if items.len() as u64 > max {
                        let error = format!("the list has {} items, more than `max_items: {max}`", items.len());
                        self.emit(Transition::StepFailed { step: step.name.clone(), error });
                        return;
                    }
                }
                let n = items.len() as u32;
                self.emit(Transition::FanOutPlanned { step: step.name.clone(), items: n });
                if let Some(f) = self.steps.get_mut(i).and_then(|s| s.fan.as_mut()) {
                    f.items = Some(Arc::new(items));
                }
                if n == 0 {
                    self.emit(Transition::StepSucceeded { step: step.name.clone(), output: None, usage: Usage::default() });
                }
            }
            None => {
                if let Some(s) = self.steps.get_mut(i) {
                    s.state = SState::Running;
                    s.units.insert(None, Unit { attempt: 0, phase: Phase::Queued { fallback: false } });
                }
                self.queue.push_back((i, None));
            }
        }
    }

    /// Journals the start of an attempt and schedules its spawn: a queued
    /// unit (`fresh` false) or a fan-out item never started (`fresh` true).
    /// Queue entries can be stale (a replay queues a retry that the journal
    /// later shows started and finished), so a unit that is not queued is
    /// never launched from the queue.
    fn launch(&mut self, i: usize, item: UnitKey, fresh: bool) {
        let Some(name) = self.step(i).map(|s| s.name.clone()) else { return };
        let (attempt, fallback) = match self.steps.get(i).and_then(|s| s.units.get(&item)) {
            Some(Unit { attempt, phase: Phase::Queued { fallback } }) => (attempt + 1, *fallback),
            Some(_) => return,
            None if fresh => (1, false),
            None => return,
        };
        if fallback {
            self.decide(Decision::new("fallback", Some(&name), json!({"item": item, "attempt": attempt, "call": "fallback"})));
        }
        self.emit(Transition::AttemptStarted { step: name, item, attempt, fallback });
        self.to_spawn.push((i, item, attempt, fallback));
    }

    fn fill(&mut self) {
        if self.failing.is_some() {
            return;
        }
        let now = Instant::now();
        while let Some(Reverse((at, i, item))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.queue.push_back((i, item));
        }
        while let Some(i) = self.ready.pop_front() {
            self.consider(i);
            if self.failing.is_some() {
                return;
            }
        }
        while self.running < self.max_running {
            let Some((i, item)) = self.queue.pop_front() else { break };
            self.launch(i, item, false);
        }
        let mut f = 0;
        while self.running < self.max_running && f < self.active_fans.len() {
            let Some(&i) = self.active_fans.get(f) else { break };
            let cap = self.step(i).and_then(|s| s.fan_out.as_ref()).and_then(|fo| fo.concurrency).map(|c| c.max(1)).unwrap_or(u32::MAX);
            let next = self.steps.get(i).and_then(|s| s.fan.as_ref()).map(|fan| (fan.next, fan.n, fan.running));
            match next {
                Some((next, n, running)) if next < n && running < cap => self.launch(i, Some(next), true),
                _ => f += 1,
            }
        }
    }

    /// Handles a finished attempt.
    fn on_done(&mut self, d: Done) {
        let step_name = self.step(d.step).map(|s| s.name.clone());
        for dec in d.decisions {
            // The router's choices are events too, not only audit records.
            if let (Some(step), true) = (&step_name, crate::fabric::ROUTER_DECISIONS.contains(&dec.kind.as_str())) {
                self.emit(Transition::Routed { step: step.clone(), item: d.item, kind: dec.kind.clone(), data: dec.data.clone() });
            }
            self.decide(dec);
        }
        let Some(step) = self.step(d.step).cloned() else { return };
        if let Some(msg) = d.paused {
            if let Some(u) = self.steps.get_mut(d.step).and_then(|s| s.units.get_mut(&d.item)) {
                u.phase = Phase::Paused;
            }
            self.running = self.running.saturating_sub(1);
            if let Some(f) = self.steps.get_mut(d.step).and_then(|s| s.fan.as_mut()) {
                f.running = f.running.saturating_sub(1);
            }
            self.paused_children.push(msg);
            return;
        }
        match d.result {
            Ok(output) => {
                if let Some(key) = d.idempotency {
                    self.batch.idempotency.push((key, step.name.clone(), output.clone()));
                }
                match d.item {
                    Some(item) => {
                        self.emit(Transition::ItemSucceeded { step: step.name.clone(), item, output, usage: d.usage });
                        let all = self.steps.get(d.step).and_then(|s| s.fan.as_ref()).is_some_and(|f| f.done == f.n);
                        if all {
                            let usage = self.steps.get(d.step).map(|s| s.usage.clone()).unwrap_or_default();
                            self.emit(Transition::StepSucceeded { step: step.name.clone(), output: None, usage });
                        }
                    }
                    None => {
                        // The usage of this (last) attempt; failed attempts
                        // journaled their own.
                        self.emit(Transition::StepSucceeded { step: step.name.clone(), output: Some(output), usage: d.usage });
                    }
                }
            }
            Err(error) => {
                let fallback_now = self
                    .steps
                    .get(d.step)
                    .and_then(|s| s.units.get(&d.item))
                    .is_some_and(|u| u.phase == Phase::InFlight { fallback: true });
                let retries_left = !fallback_now && d.attempt < 1 + step.retry;
                let retry_in_ms = if retries_left {
                    let base = match step.backoff {
                        Some(Backoff::Fixed { ms }) => ms,
                        Some(Backoff::Exponential { ms }) => ms.saturating_mul(1u64 << (d.attempt.saturating_sub(1)).min(20)),
                        None => 0,
                    };
                    self.decide(Decision::new(
                        "retry",
                        Some(&step.name),
                        json!({"item": d.item, "failed_attempt": d.attempt, "next_attempt": d.attempt + 1, "delay_ms": base, "error": error}),
                    ));
                    Some(base)
                } else {
                    None
                };
                let exhausted = retry_in_ms.is_none() && (fallback_now || step.fallback.is_none());
                self.emit(Transition::AttemptFailed {
                    step: step.name.clone(),
                    item: d.item,
                    attempt: d.attempt,
                    error: error.clone(),
                    usage: d.usage,
                    retry_in_ms,
                });
                if exhausted {
                    let tries = d.attempt;
                    let what = match d.item {
                        Some(it) => format!("item {it}: "),
                        None => String::new(),
                    };
                    self.emit(Transition::StepFailed {
                        step: step.name.clone(),
                        error: format!("{what}{error} (after {tries} attempt(s))"),
                    });
                }
            }
        }
    }

    /// Decides what to do with attempts that a crash left unfinished.
    fn recover_interrupted(&mut self) {
        let mut inflight = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            for (k, u) in &s.units {
                if let Phase::InFlight { .. } = u.phase {
                    inflight.push((i, *k, u.attempt));
                }
            }
        }
        inflight.sort();
        for (i, item, attempt) in inflight {
            let Some(step) = self.step(i).cloned() else { continue };
            let external = step.kind == StepKind::Tool && step.effect == Effect::External;
            let action = if external && step.idempotency_key.is_none() { "held" } else { "retry" };
            let why = match (external, step.idempotency_key.is_some()) {
                (false, _) => "its effect is pure/read (or durable): it is safe to run again",
                (true, true) => "its effect is external: it runs again under its idempotency_key, so a completed effect is not repeated",
                (true, false) => "its effect is external and it has no idempotency_key: it may or may not have taken effect",
            };
            self.decide(Decision::new("recovery", Some(&step.name), json!({"item": item, "attempt": attempt, "action": action, "why": why})));
            self.emit(Transition::AttemptInterrupted { step: step.name.clone(), item, attempt, action: action.into() });
            if action == "held" {
                let run = &self.sh.run_id;
                let reason = format!(
                    "step `{}` was interrupted while running; it has an external effect and no idempotency_key, so it may already have taken effect. Check, then `aosc approve {run} {}` to run it again or `aosc deny {run} {}` to fail it",
                    step.name, step.name, step.name
                );
                self.decide(Decision::new("approval", Some(&step.name), json!({"requested": "operator", "reason": reason})));
                self.emit(Transition::ApprovalRequested { step: step.name.clone(), group: "operator".into(), reason });
            }
        }
    }

    fn all_resolved(&self) -> bool {
        self.steps.iter().all(|s| matches!(s.state, SState::Succeeded | SState::Skipped))
    }

    fn finish_success(&mut self) {
        let values: HashMap<String, Arc<Value>> = self
            .sh
            .wf
            .steps
            .iter()
            .zip(&self.steps)
            .filter_map(|(st, s)| s.value.clone().map(|v| (st.name.clone(), v)))
            .collect();
        let out = match &self.sh.wf.ret_expr {
            Some(e) => eval_with(&self.sh, &values, e, None),
            None => Ok(Value::Null),
        };
        let cost = self.spent;
        match out {
            Ok(v) => {
                let output = self.sh.secrets.redact_value(&v);
                self.emit(Transition::RunSucceeded { output, cost_usd: cost });
            }
            Err(e) => self.emit(Transition::RunFailed { error: format!("evaluating `return`: {e}"), cost_usd: cost }),
        }
    }

    fn gated_reasons(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .sh
            .wf
            .steps
            .iter()
            .zip(&self.steps)
            .filter(|(_, s)| s.gate == Gate::Requested && (s.state == SState::Gated || s.units.values().any(|u| u.phase == Phase::Held)))
            .map(|(st, _)| format!("step `{}` waits for approval: `aosc approve {} {}`", st.name, self.sh.run_id, st.name))
            .collect();
        out.extend(self.paused_children.iter().cloned());
        out
    }

    /// Hands the tick's batch to the group-commit writer (which publishes
    /// it once committed). It is durable after the next [`Writer::flush`],
    /// which `drive` awaits before anything with an external effect acts on
    /// it and before the run reports.
    fn commit(&mut self, writer: &Writer) -> Result<(), RuntimeError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.batch);
        if self.sh.secrets.any() {
            for t in &mut batch.transitions {
                if let Ok(v) = serde_json::to_value(&*t) {
                    if let Ok(r) = serde_json::from_value(self.sh.secrets.redact_value(&v)) {
                        *t = r;
                    }
                }
            }
            for d in &mut batch.decisions {
                d.data = self.sh.secrets.redact_value(&d.data);
            }
        }
        // The writer publishes the batch on the bus once it is committed.
        writer.send(&self.sh.run_id, batch)?;
        Ok(())
    }

    /// Whether an attempt about to be spawned acts outside the run (an
    /// external tool, a workflow call): its transitions must be durable first.
    fn needs_durable(&self) -> bool {
        self.to_spawn.iter().any(|(i, ..)| {
            self.step(*i).is_some_and(|s| s.kind == StepKind::Workflow || (s.kind == StepKind::Tool && s.effect == Effect::External))
        })
    }

    /// Replays a journal into state (resume).
    pub(crate) fn replay(&mut self, entries: &[(i64, Entry)]) {
        self.replaying = true;
        for (id, e) in entries {
            self.apply(&e.transition);
            self.last_journal_id = *id;
        }
        self.replaying = false;
        // Fan-outs planned before the crash re-evaluate their list.
        let fans: Vec<usize> = self.active_fans.clone();
        for i in fans {
            let items = self.step(i).and_then(|s| s.fan_out.clone()).map(|f| self.eval_in_step(i, &f.items, None));
            if let (Some(Ok(Value::Array(items))), Some(f)) = (items, self.steps.get_mut(i).and_then(|s| s.fan.as_mut())) {
                f.items = Some(Arc::new(items));
            }
        }
    }

    fn spawn_jobs(&mut self, set: &mut JoinSet<Done>) {
        for (i, item, attempt, fallback) in std::mem::take(&mut self.to_spawn) {
            let deps = self.dep_values(i);
            let item_value = item.and_then(|it| {
                self.steps.get(i).and_then(|s| s.fan.as_ref()).and_then(|f| f.items.as_ref()).and_then(|v| v.get(it as usize).cloned())
            });
            let sh = self.sh.clone();
            set.spawn(run_attempt(sh, i, item, attempt, fallback, deps, item_value));
        }
    }

    /// Polls the store for decisions another process recorded (approvals
    /// while `--wait`ing).
    async fn poll_external(&mut self) -> Result<(), RuntimeError> {
        let new = self.sh.rt.store.journal_since(&self.sh.run_id, self.last_journal_id).await?;
        for (id, e) in new {
            self.last_journal_id = id;
            if matches!(e.transition, Transition::ApprovalGranted { .. } | Transition::ApprovalDenied { .. }) {
                self.apply(&e.transition);
                self.sh.rt.bus.publish(e);
            }
        }
        Ok(())
    }

    /// The loop: decide, commit, act, wait.
    pub(crate) async fn drive(mut self) -> Result<RunReport, RuntimeError> {
        let mut set: JoinSet<Done> = JoinSet::new();
        let mut interrupt = self.sh.opts.interrupt.clone();
        let writer = Writer::start(self.sh.rt.store.clone(), self.sh.rt.bus.clone());
        loop {
            self.fill();
            if self.finished.is_none() {
                if self.failing.is_some() && self.running == 0 {
                    let error = self.failing.clone().unwrap_or_default();
                    let cost = self.spent;
                    self.emit(Transition::RunFailed { error, cost_usd: cost });
                } else if self.failing.is_none() && self.all_resolved() {
                    self.finish_success();
                }
            }
            let idle = self.running == 0 && self.queue.is_empty() && self.timers.is_empty() && self.to_spawn.is_empty() && self.ready.is_empty();
            let waiting = self.finished.is_none() && idle && self.failing.is_none();
            let reasons = if waiting { self.gated_reasons() } else { Vec::new() };
            if waiting && !self.sh.opts.wait {
                if reasons.is_empty() {
                    let cost = self.spent;
                    self.emit(Transition::RunFailed { error: "no step can run (internal error: the run is stuck)".into(), cost_usd: cost });
                } else {
                    let reason = reasons.join("; ");
                    self.emit(Transition::RunPaused { reason: reason.clone() });
                    self.commit(&writer)?;
                    writer.flush().await?;
                    return Ok(RunReport {
                        run_id: self.sh.run_id.clone(),
                        status: RunStatus::WaitingApproval,
                        output: None,
                        cost_usd: self.spent,
                        error: Some(reason),
                    });
                }
            }
            self.commit(&writer)?;
            if self.finished.is_some() || waiting || self.needs_durable() || writer.backlog() >= MAX_BACKLOG || writer.failed() {
                writer.flush().await?;
            }
            if let Some(r) = self.finished.take() {
                return Ok(r);
            }
            self.spawn_jobs(&mut set);
            let next_timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
            tokio::select! {
                done = set.join_next(), if !set.is_empty() => {
                    if let Some(d) = done {
                        self.take_done(d);
                    }
                    while let Some(d) = set.try_join_next() {
                        self.take_done(d);
                    }
                }
                _ = sleep_until_opt(next_timer), if next_timer.is_some() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)), if waiting => {
                    self.poll_external().await?;
                }
                changed = wait_interrupt(&mut interrupt) => {
                    if changed {
                        set.abort_all();
                        self.emit(Transition::RunInterrupted);
                        self.commit(&writer)?;
                        writer.flush().await?;
                        return Ok(RunReport {
                            run_id: self.sh.run_id.clone(),
                            status: RunStatus::Cancelled,
                            output: None,
                            cost_usd: self.spent,
                            error: Some(format!("interrupted; continue with `aosc resume {}`", self.sh.run_id)),
                        });
                    }
                    interrupt = None;
                }
            }
        }
    }

    fn take_done(&mut self, d: Result<Done, tokio::task::JoinError>) {
        match d {
            Ok(d) => self.on_done(d),
            Err(e) => {
                // A panicking attempt is a bug; fail the run rather than hang.
                if self.failing.is_none() {
                    self.failing = Some(format!("an attempt crashed: {e}"));
                }
                self.running = self.running.saturating_sub(1);
            }
        }
    }

    pub(crate) fn recover(&mut self) {
        self.recover_interrupted();
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Resolves when the interrupt flag turns true (true) or its sender is gone (false).
async fn wait_interrupt(rx: &mut Option<tokio::sync::watch::Receiver<bool>>) -> bool {
    match rx {
        Some(r) => {
            if *r.borrow() {
                return true;
            }
            match r.changed().await {
                Ok(()) => *r.borrow(),
                Err(_) => false,
            }
        }
        None => std::future::pending().await,
    }
}

fn step_exprs(step: &Step) -> Vec<&Expr> {
    let mut v = Vec::new();
    match &step.call {
        Call::Tool { args, .. } | Call::Workflow { args, .. } => v.extend(args.values()),
        Call::Llm { prompt, .. } => v.push(prompt),
    }
    if let Some(f) = &step.fan_out {
        v.push(&f.items);
    }
    if let Some(k) = &step.idempotency_key {
        v.push(k);
    }
    v
}

fn eval_with(sh: &Shared, deps: &HashMap<String, Arc<Value>>, expr: &Expr, var: Option<(&str, &Value)>) -> Result<Value, String> {
    // Scope wants owned values per name; clone only what the expression names.
    let mut names = Vec::new();
    collect_steps(expr, &mut names);
    let steps: HashMap<String, Value> = names
        .into_iter()
        .filter_map(|n| deps.get(&n).map(|v| (n, Value::clone(v))))
        .collect();
    let scope = Scope { params: &sh.params, steps: &steps, var, secrets: &sh.secrets };
    interp::eval(expr, &scope).map_err(|e| e.to_string())
}

fn collect_steps(expr: &Expr, out: &mut Vec<String>) {
    use aos_compiler::ir::InterpPart;
    match expr {
        Expr::Step { name } => out.push(name.clone()),
        Expr::Binary { a, b, .. } | Expr::Index { of: a, index: b } => {
            collect_steps(a, out);
            collect_steps(b, out);
        }
        Expr::Interp { parts } => {
            for p in parts {
                if let InterpPart::Expr { expr } = p {
                    collect_steps(expr, out);
                }
            }
        }
        Expr::Field { of, .. } | Expr::Not { a: of } | Expr::Neg { a: of } => collect_steps(of, out),
        Expr::List { items } | Expr::Builtin { args: items, .. } => items.iter().for_each(|e| collect_steps(e, out)),
        Expr::Record { fields } => fields.iter().for_each(|(_, e)| collect_steps(e, out)),
        Expr::Lit { .. } | Expr::Param { .. } | Expr::Var { .. } | Expr::Secret { .. } => {}
    }
}

/// One attempt of a step (or of one fan-out item).
async fn run_attempt(
    sh: Arc<Shared>,
    i: usize,
    item: UnitKey,
    attempt: u32,
    fallback: bool,
    deps: HashMap<String, Arc<Value>>,
    item_value: Option<Value>,
) -> Done {
    let mut done = Done { step: i, item, attempt, result: Err(String::new()), usage: Usage::default(), decisions: Vec::new(), idempotency: None, paused: None };
    let Some(step) = sh.wf.steps.get(i) else {
        done.result = Err("unknown step".into());
        return done;
    };
    let var = match (&step.fan_out, &item_value) {
        (Some(f), Some(v)) => Some((f.var.as_str(), v)),
        _ => None,
    };
    let call = if fallback { step.fallback.as_ref().unwrap_or(&step.call) } else { &step.call };
    let fut = run_call(&sh, step, call, &deps, var, item, &mut done);
    let res = match step.timeout_ms {
        Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {}", fmt_ms(ms))),
        },
        None => fut.await,
    };
    done.result = res.map(|v| sh.secrets.redact_value(&v));
    if let Err(e) = &done.result {
        done.result = Err(sh.secrets.redact(e));
    }
    done
}

fn fmt_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
}

async fn run_call(
    sh: &Shared,
    step: &Step,
    call: &Call,
    deps: &HashMap<String, Arc<Value>>,
    var: Option<(&str, &Value)>,
    item: UnitKey,
    done: &mut Done,
) -> Result<Value, String> {
    let call_key = match item {
        Some(it) => format!("{}/{}/{it}", sh.run_id, step.name),
        None => format!("{}/{}", sh.run_id, step.name),
    };
    match call {
        Call::Llm { role, prompt } => {
            let prompt = interp::render(&eval_with(sh, deps, prompt, var)?);
            let typed = !matches!(step.ty, aos_compiler::ir::Type::String)
                && !matches!(&step.ty, aos_compiler::ir::Type::Optional { inner } if matches!(**inner, aos_compiler::ir::Type::String));
            let out = sh
                .rt
                .fabric
                .call(
                    &sh.program,
                    LlmCall {
                        role,
                        prompt,
                        max_tokens: step.max_tokens,
                        max_input_tokens: step.max_input_tokens,
                        schema: step.schema.as_ref(),
                        typed,
                        verify: step.verify.as_ref(),
                        call_key,
                        step: &step.name,
                    },
                )
                .await;
            done.usage = out.usage;
            done.decisions = out.decisions;
            match (out.result, out.error) {
                (Some(v), _) => Ok(v),
                (None, Some(e)) => Err(e),
                (None, None) => Err("no reply".into()),
            }
        }
        Call::Tool { tool, args } => {
            let mut obj = serde_json::Map::new();
            for (k, e) in args {
                obj.insert(k.clone(), eval_with(sh, deps, e, var)?);
            }
            let key = match &step.idempotency_key {
                Some(e) => Some(interp::render(&eval_with(sh, deps, e, var)?)),
                None => None,
            };
            let key = key.map(|k| match item {
                Some(it) => format!("{k}#{it}"),
                None => k,
            });
            if let (Some(k), Effect::External) = (&key, step.effect) {
                if let Some(v) = sh.rt.store.idempotent_output(k).await.map_err(|e| e.to_string())? {
                    done.decisions.push(Decision::new("idempotency", Some(&step.name), json!({"key": k, "deduplicated": true})));
                    return Ok(v);
                }
                done.idempotency = Some(k.clone());
            }
            let decl = sh.program.tools.get(tool);
            let implemented = sh.rt.tools.get(tool).cloned();
            let step_name = match item {
                Some(it) => format!("{}#{it}", step.name),
                None => step.name.clone(),
            };
            let ctx = ToolCtx { workspace: sh.workspace.clone(), idempotency_key: key, run_id: sh.run_id.clone(), step: step_name };
            let value = match (decl, implemented) {
                (Some(ToolDecl { implementation: ToolImpl::Builtin, .. }) | None, Some(t)) => t.call(Value::Object(obj), &ctx).await?,
                (Some(ToolDecl { implementation: ToolImpl::Http { method, url }, .. }), _) => {
                    sh.rt.tools.call_http(tool, method, url, Value::Object(obj)).await?
                }
                (Some(d @ ToolDecl { implementation: ToolImpl::Exec { argv }, .. }), _) => {
                    sh.rt.tools.exec_tool(d, argv).call(Value::Object(obj), &ctx).await?
                }
                _ => return Err(format!("tool `{tool}` is not available in this runtime")),
            };
            let bound = step.max_output_tokens;
            let value = match value {
                Value::String(s) if tokens::count(&s) > bound => Value::String(tokens::truncate(&s, bound).to_string()),
                Value::String(s) => Value::String(s),
                other => {
                    let n = tokens::count(&other.to_string());
                    if n > bound {
                        return Err(format!("tool `{tool}` returned {n} tokens of JSON, more than max_output_tokens {bound}"));
                    }
                    other
                }
            };
            if let Some(schema) = &step.schema {
                let validator = jsonschema::validator_for(schema).map_err(|e| format!("the step's JSON Schema is invalid: {e}"))?;
                let errors: Vec<String> = validator.iter_errors(&value).take(3).map(|e| e.to_string()).collect();
                if !errors.is_empty() {
                    return Err(format!("the value of `{}` does not conform to its type: {}", step.name, errors.join("; ")));
                }
            }
            Ok(value)
        }
        Call::Workflow { workflow, args } => {
            let mut inputs = BTreeMap::new();
            for (k, e) in args {
                inputs.insert(k.clone(), eval_with(sh, deps, e, var)?);
            }
            let child_id = match item {
                Some(it) => format!("{}.{}.{it}", sh.run_id, step.name),
                None => format!("{}.{}", sh.run_id, step.name),
            };
            let report = Box::pin(sh.rt.run_child(&sh.program, workflow, &child_id, &sh.run_id, inputs, sh.trust, sh.opts.clone()))
                .await
                .map_err(|e| e.to_string())?;
            done.usage = Usage { cost_usd: report.cost_usd, ..Usage::default() };
            match report.status {
                RunStatus::Succeeded => Ok(report.output.unwrap_or(Value::Null)),
                RunStatus::WaitingApproval => {
                    done.usage = Usage::default();
                    done.paused = Some(format!(
                        "sub-run `{child_id}` of step `{}` waits: {}; then `aosc resume {}`",
                        step.name,
                        report.error.unwrap_or_default(),
                        sh.run_id
                    ));
                    Err("paused".into())
                }
                _ => Err(format!("workflow `{workflow}` (run {child_id}) failed: {}", report.error.unwrap_or_default())),
            }
        }
    }
}

/// Creates the run row and journals `run.started`.
pub(crate) async fn create_run(
    rt: &Runtime,
    program: &Program,
    workflow: &str,
    run_id: &str,
    parent: Option<&str>,
    inputs: &BTreeMap<String, Value>,
    trust: Trust,
) -> Result<(), RuntimeError> {
    let program_json = serde_json::to_string(program).map_err(|e| RuntimeError::Internal(e.to_string()))?;
    let inputs_json = serde_json::to_value(inputs).map_err(|e| RuntimeError::Internal(e.to_string()))?;
    rt.store
        .create_run(NewRun {
            run_id: run_id.to_string(),
            parent: parent.map(str::to_string),
            workflow: workflow.to_string(),
            trust: governance::trust_name(trust).to_string(),
            inputs: inputs_json.clone(),
            program: program_json,
            at_ms: crate::ids::now_ms(),
        })
        .await?;
    let batch = Batch {
        transitions: vec![Transition::RunStarted { workflow: workflow.into(), inputs: inputs_json, trust: governance::trust_name(trust).into() }],
        ..Default::default()
    };
    rt.store.commit(run_id, batch).await?;
    Ok(())
}
