//! The state of one run: every step's status, its attempts in flight, the
//! values produced so far, and the cursors of the scheduling work lists.
//! It changes only through [`super::apply`] (and the work lists that
//! [`super::decide`] pops).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use aos_compiler::ir::{Expr, Program, Step, Trust, Workflow};
use serde_json::Value;

use crate::events::{RunStatus, Usage};
use crate::interp::{self, EvalError, Scope, Secrets};

/// Default bound on attempts in flight when a workflow sets no
/// `max_concurrency`.
pub const DEFAULT_MAX_CONCURRENCY: usize = 32;

/// A step's attempt unit: the step itself (`None`) or one fan-out item.
pub type UnitKey = Option<u32>;

/// Where one unit of work stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Ready to launch (a retry whose delay passed, a fallback).
    Queued { fallback: bool },
    InFlight { fallback: bool },
    /// Interrupted mid-attempt with an external effect: waits for an operator.
    Held,
    /// A sub-workflow paused at a gate (memory only: journaled as in flight).
    Paused,
    Done,
    Exhausted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit {
    pub attempt: u32,
    pub phase: Phase,
}

/// A step's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Gated,
    Running,
    Succeeded,
    Skipped,
    Failed,
}

/// A step's approval gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    None,
    Requested,
    Granted,
    Denied(String),
}

/// A planned fan-out.
#[derive(Clone, Debug, PartialEq)]
pub struct Fan {
    pub n: u32,
    /// The items, evaluated when planned (and again on resume).
    pub items: Option<Arc<Vec<Value>>>,
    pub values: Vec<Option<Value>>,
    /// The next item never started.
    pub next: u32,
    pub running: u32,
    pub done: u32,
}

/// One step's state.
#[derive(Clone, Debug, PartialEq)]
pub struct StepState {
    pub status: StepStatus,
    /// Dependencies not resolved yet.
    pub remaining: usize,
    pub gate: Gate,
    pub units: HashMap<UnitKey, Unit>,
    pub fan: Option<Fan>,
    pub value: Option<Arc<Value>>,
    pub usage: Usage,
}

/// The run's workflow, shared with the program that holds it (a 10k-step
/// workflow is megabytes: it is never copied for the run).
#[derive(Clone, Debug)]
pub struct WorkflowRef {
    program: Arc<Program>,
    name: String,
}

impl WorkflowRef {
    /// The workflow `name` of `program`, when it has one.
    pub fn new(program: Arc<Program>, name: &str) -> Option<WorkflowRef> {
        program.workflows.contains_key(name).then(|| WorkflowRef { program, name: name.to_string() })
    }
}

impl std::ops::Deref for WorkflowRef {
    type Target = Workflow;

    fn deref(&self) -> &Workflow {
        static NONE: std::sync::LazyLock<Workflow> = std::sync::LazyLock::new(|| Workflow {
            name: String::new(),
            params: Vec::new(),
            ret: None,
            ret_expr: None,
            intent: None,
            budget_usd: None,
            risk: aos_compiler::ir::Risk::Low,
            max_concurrency: None,
            max_param_tokens: 0,
            trigger: None,
            priority: 0,
            steps: Vec::new(),
            cost_bound_usd: 0.0,
        });
        // `new` checked that it is there; the program never changes.
        self.program.workflows.get(&self.name).unwrap_or(&NONE)
    }
}

/// What a run is, independent of how far it got: the program, the
/// workflow, its inputs and the run's trust.
pub struct RunCtx {
    pub run_id: String,
    pub program: Arc<Program>,
    pub wf: WorkflowRef,
    pub params: BTreeMap<String, Value>,
    pub trust: Trust,
    pub secrets: Secrets,
}

/// How a finished run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    pub status: RunStatus,
    pub output: Option<Value>,
    pub cost_usd: f64,
    pub error: Option<String>,
}

/// The state of one run.
pub struct RunState {
    pub ctx: Arc<RunCtx>,
    pub(crate) steps: Vec<StepState>,
    index: HashMap<String, usize>,
    dependents: Vec<Vec<usize>>,
    /// Steps whose dependencies are resolved, to consider.
    pub(crate) ready: VecDeque<usize>,
    /// Units queued to launch (retries, fallbacks, recovered attempts).
    pub(crate) queue: VecDeque<(usize, UnitKey)>,
    /// Steps (not fan-outs) cleared to start their first attempt; they stay
    /// `Pending` until `step.started` is journaled, so that the state never
    /// holds what the journal does not.
    pub(crate) starts: VecDeque<usize>,
    /// Retries waiting for their delay: (due at ms, step, unit).
    pub(crate) timers: BinaryHeap<Reverse<(u64, usize, UnitKey)>>,
    pub(crate) active_fans: Vec<usize>,
    /// Steps succeeded or skipped (kept by [`set_status`]): whether all
    /// are is asked on every tick, and counting them each time made a
    /// chain quadratic.
    pub(crate) resolved_steps: usize,
    pub(crate) running: usize,
    pub(crate) max_running: usize,
    pub(crate) spent: f64,
    pub(crate) failing: Option<String>,
    /// Why each attempt whose sub-run paused at a gate waits, by unit
    /// (memory only; a reason counts while its unit is still `Paused`).
    pub(crate) paused_children: BTreeMap<(usize, UnitKey), String>,
    pub(crate) finished: Option<Finished>,
    /// True while replaying a journal: retry delays are not waited again.
    pub(crate) replaying: bool,
    /// The time the driver last passed in (ms since the epoch).
    pub(crate) now_ms: u64,
}

impl RunState {
    /// The state of a run that has not started a step.
    pub fn new(ctx: Arc<RunCtx>) -> RunState {
        let wf = &ctx.wf;
        let index: HashMap<String, usize> = wf.steps.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        let mut dependents = vec![Vec::new(); wf.steps.len()];
        let mut steps = Vec::with_capacity(wf.steps.len());
        for (i, s) in wf.steps.iter().enumerate() {
            let mut remaining = 0;
            for d in &s.deps {
                if let Some(list) = index.get(d).and_then(|&j| dependents.get_mut(j)) {
                    list.push(i);
                    remaining += 1;
                }
            }
            steps.push(StepState {
                status: StepStatus::Pending,
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
        RunState {
            ctx,
            steps,
            index,
            dependents,
            ready,
            queue: VecDeque::new(),
            starts: VecDeque::new(),
            timers: BinaryHeap::new(),
            active_fans: Vec::new(),
            resolved_steps: 0,
            running: 0,
            max_running,
            spent: 0.0,
            failing: None,
            paused_children: BTreeMap::new(),
            finished: None,
            replaying: false,
            now_ms: 0,
        }
    }

    pub fn step(&self, i: usize) -> Option<&Step> {
        self.ctx.wf.steps.get(i)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The state of the step named `name`.
    pub fn step_state(&self, name: &str) -> Option<&StepState> {
        self.index_of(name).and_then(|i| self.steps.get(i))
    }

    /// Money spent so far.
    pub fn spent(&self) -> f64 {
        self.spent
    }

    /// Attempts in flight.
    pub fn running(&self) -> usize {
        self.running
    }

    /// How the run ended, once it has.
    pub fn finished(&self) -> Option<&Finished> {
        self.finished.as_ref()
    }

    /// Passes the time in (ms since the epoch): a retry delay journaled
    /// next is due this long after it.
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// The due time of the earliest retry waiting for its delay.
    pub fn next_timer(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// A step resolved (succeeded or skipped): its dependents may be ready.
    pub(crate) fn resolved(&mut self, i: usize) {
        let Some(deps) = self.dependents.get(i) else { return };
        for &j in deps {
            if let Some(s) = self.steps.get_mut(j) {
                s.remaining = s.remaining.saturating_sub(1);
                if s.remaining == 0 {
                    self.ready.push_back(j);
                }
            }
        }
    }

    /// Values of the steps `i` depends on.
    pub fn dep_values(&self, i: usize) -> HashMap<String, Arc<Value>> {
        let mut m = HashMap::new();
        if let Some(step) = self.step(i) {
            for d in &step.deps {
                if let Some(v) = self.step_state(d).and_then(|s| s.value.clone()) {
                    m.insert(d.clone(), v);
                }
            }
        }
        m
    }

    /// The value of fan-out item `item` of step `i`.
    pub fn item_value(&self, i: usize, item: UnitKey) -> Option<Value> {
        let it = item?;
        self.steps.get(i)?.fan.as_ref()?.items.as_ref()?.get(it as usize).cloned()
    }

    /// Evaluates an expression of step `i` over its dependencies' values.
    pub fn eval_in_step(&self, i: usize, expr: &Expr) -> Result<Value, EvalError> {
        eval_with(&self.ctx, &self.dep_values(i), expr, None)
    }

    /// Every step succeeded or was skipped.
    pub fn all_resolved(&self) -> bool {
        debug_assert_eq!(self.resolved_steps, self.steps.iter().filter(|s| is_resolved(s.status)).count());
        self.resolved_steps == self.steps.len()
    }

    /// The values of every resolved step.
    pub fn values(&self) -> HashMap<String, Arc<Value>> {
        self.ctx.wf.steps.iter().zip(&self.steps).filter_map(|(st, s)| s.value.clone().map(|v| (st.name.clone(), v))).collect()
    }

    /// Why the run waits: the gates and the paused sub-runs.
    pub fn gated_reasons(&self) -> Vec<String> {
        let run = &self.ctx.run_id;
        let mut out: Vec<String> = self
            .ctx
            .wf
            .steps
            .iter()
            .zip(&self.steps)
            .filter(|(_, s)| s.gate == Gate::Requested && (s.status == StepStatus::Gated || s.units.values().any(|u| u.phase == Phase::Held)))
            .map(|(st, _)| format!("step `{}` waits for approval: `aosc approve {run} {}`", st.name, st.name))
            .collect();
        out.extend(
            self.paused_children
                .iter()
                .filter(|((i, k), _)| self.steps.get(*i).and_then(|s| s.units.get(k)).is_some_and(|u| u.phase == Phase::Paused))
                .map(|(_, why)| why.clone()),
        );
        out
    }

    /// The fan-outs planned before a resume evaluate their list again.
    pub(crate) fn reload_fan_items(&mut self) {
        for i in self.active_fans.clone() {
            let items = self.step(i).and_then(|s| s.fan_out.as_ref()).map(|f| self.eval_in_step(i, &f.items));
            if let (Some(Ok(Value::Array(items))), Some(f)) = (items, self.steps.get_mut(i).and_then(|s| s.fan.as_mut())) {
                f.items = Some(Arc::new(items));
            }
        }
    }

    /// A comparable summary of the state (for tests: replay equals live).
    pub fn snapshot(&self) -> Snapshot {
        let mut steps: Vec<StepSnapshot> = Vec::new();
        for (st, s) in self.ctx.wf.steps.iter().zip(&self.steps) {
            let mut units: Vec<(UnitKey, Unit)> = s.units.iter().map(|(k, u)| (*k, *u)).collect();
            units.sort_by_key(|(k, _)| *k);
            steps.push((st.name.clone(), s.status, s.value.as_deref().cloned(), units, s.gate.clone()));
        }
        Snapshot { steps, running: self.running, spent_micros: (self.spent * 1e6).round() as i64, finished: self.finished.clone() }
    }
}

fn is_resolved(s: StepStatus) -> bool {
    matches!(s, StepStatus::Succeeded | StepStatus::Skipped)
}

/// Sets a step's status, keeping the count of resolved steps: every
/// status change goes through here.
pub(crate) fn set_status(status: &mut StepStatus, to: StepStatus, resolved: &mut usize) {
    match (is_resolved(*status), is_resolved(to)) {
        (false, true) => *resolved += 1,
        (true, false) => *resolved = resolved.saturating_sub(1),
        _ => {}
    }
    *status = to;
}

/// One step in a [`Snapshot`]: name, status, value, units, gate.
pub type StepSnapshot = (String, StepStatus, Option<Value>, Vec<(UnitKey, Unit)>, Gate);

/// See [`RunState::snapshot`].
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub steps: Vec<StepSnapshot>,
    pub running: usize,
    pub spent_micros: i64,
    pub finished: Option<Finished>,
}

/// Evaluates `expr` over step values, parameters and the fan-out variable.
pub fn eval_with(ctx: &RunCtx, steps: &HashMap<String, Arc<Value>>, expr: &Expr, var: Option<(&str, &Value)>) -> Result<Value, EvalError> {
    let scope = Scope { params: &ctx.params, steps, var, secrets: &ctx.secrets };
    interp::eval(expr, &scope)
}
