//! The embedded driver: carries out the run core's decisions on tokio in
//! this process. One loop owns the [`RunState`]; each turn it asks
//! [`core::decide`], commits the tick in one transaction, publishes it, and
//! only then launches the attempts it journaled as started. Attempts run as
//! tokio tasks ([`attempt`]; one module per call kind: [`llm`], [`tool`],
//! [`workflow`]) and report back to the loop, which hands their results to
//! [`core::on_result`].

mod agent;
mod attempt;
mod cache;
pub(crate) mod fleet;
mod llm;
mod route;
mod tool;
mod workflow;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{Effect, Program, StepKind, Trust};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::core::{self, AttemptResult, Outcome, RunCtx, RunState, Tick};
use crate::events::{Entry, RunStatus, Transition};
use crate::governance;
use crate::store::writer::{Writer, MAX_BACKLOG};
use crate::store::{Batch, NewRun, StoreError};
use crate::{RunOptions, RunReport, Runtime, RuntimeError};

pub use attempt::{CallError, InvalidSchema};

/// Everything an attempt needs, shared across a run.
pub(crate) struct Shared {
    pub rt: Runtime,
    pub ctx: Arc<RunCtx>,
    pub workspace: PathBuf,
    pub opts: RunOptions,
    /// The JSON Schema validator of every step that has a schema,
    /// compiled once per run (by step index).
    pub schemas: Vec<Option<Result<Arc<jsonschema::Validator>, InvalidSchema>>>,
}

impl Shared {
    pub(crate) fn new(rt: Runtime, ctx: Arc<RunCtx>, workspace: PathBuf, opts: RunOptions) -> Shared {
        let schemas = ctx
            .wf
            .steps
            .iter()
            .map(|s| s.schema.as_ref().map(|schema| jsonschema::validator_for(schema).map(Arc::new).map_err(|e| InvalidSchema(e.to_string()))))
            .collect();
        Shared { rt, ctx, workspace, opts, schemas }
    }

    fn run_id(&self) -> &str {
        &self.ctx.run_id
    }
}

/// One run's loop.
pub(crate) struct Driver {
    sh: Arc<Shared>,
    state: RunState,
    last_journal_id: i64,
    /// The group-commit writer while [`Driver::drive`] runs (see
    /// [`crate::store::writer`]); before that, batches commit directly.
    writer: Option<Writer>,
}

impl Driver {
    /// The driver of a run whose journal is `journal`: replays it, and when
    /// the run had started before, journals `run.resumed` and recovers the
    /// attempts a crash left in flight.
    pub(crate) async fn resume(sh: Arc<Shared>, journal: &[(i64, Entry)]) -> Result<Driver, RuntimeError> {
        let mut state = RunState::new(sh.ctx.clone());
        core::replay(&mut state, journal.iter().map(|(_, e)| &e.transition));
        let last_journal_id = journal.last().map_or(0, |(id, _)| *id);
        let mut d = Driver { sh, state, last_journal_id, writer: None };
        if journal.len() > 1 {
            d.sh.rt.store.commit(d.sh.run_id(), Batch { transitions: vec![Transition::RunResumed], ..Default::default() }).await?;
            let mut tick = Tick::default();
            core::recover(&mut d.state, &mut tick);
            d.commit(tick.batch).await?;
        }
        Ok(d)
    }

    fn report(&self, status: RunStatus, error: Option<String>) -> RunReport {
        RunReport { run_id: self.sh.run_id().to_string(), status, output: None, cost_usd: self.state.spent(), error }
    }

    /// The loop: decide, commit, act, wait.
    pub(crate) async fn drive(mut self) -> Result<RunReport, RuntimeError> {
        let mut set: JoinSet<AttemptResult> = JoinSet::new();
        let mut interrupt = self.sh.opts.interrupt.clone();
        let start = tokio::time::Instant::now();
        let epoch = crate::ids::now_ms();
        let now = move || epoch + start.elapsed().as_millis() as u64;
        self.writer = Some(Writer::start(self.sh.rt.store.clone(), self.sh.rt.bus.clone()));
        loop {
            let (mut tick, outcome) = core::decide(&mut self.state, now());
            let waiting = matches!(outcome, Outcome::Waiting(_));
            if let Outcome::Waiting(reasons) = &outcome
                && !self.sh.opts.wait
            {
                core::pause(&mut self.state, &mut tick, reasons);
                self.commit(tick.batch).await?;
                self.flush().await?;
                if let Some(f) = self.state.finished().cloned() {
                    return Ok(RunReport { run_id: self.sh.run_id().into(), status: f.status, output: f.output, cost_usd: f.cost_usd, error: f.error });
                }
                return Ok(self.report(RunStatus::WaitingApproval, Some(reasons.join("; "))));
            }
            self.commit(tick.batch).await?;
            let finished = self.state.finished().is_some();
            if finished || waiting || self.needs_durable(&tick.launches) || self.writer.as_ref().is_some_and(|w| w.backlog() >= MAX_BACKLOG || w.failed()) {
                self.flush().await?;
            }
            if let Some(f) = self.state.finished().cloned() {
                return Ok(RunReport { run_id: self.sh.run_id().into(), status: f.status, output: f.output, cost_usd: f.cost_usd, error: f.error });
            }
            for l in tick.launches {
                let deps = self.state.dep_values(l.step);
                let item_value = self.state.item_value(l.step, l.item);
                set.spawn(attempt::run(self.sh.clone(), l, deps, item_value));
            }
            let next_timer = self.state.next_timer().map(|at| Duration::from_millis(at.saturating_sub(now())));
            tokio::select! {
                done = set.join_next(), if !set.is_empty() => {
                    let t = now();
                    let mut tick = Tick::default();
                    if let Some(d) = done {
                        self.take(&mut tick, d, t);
                    }
                    while let Some(d) = set.try_join_next() {
                        self.take(&mut tick, d, t);
                    }
                    self.commit(tick.batch).await?;
                }
                _ = sleep_opt(next_timer), if next_timer.is_some() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)), if waiting => {
                    self.poll_external().await?;
                }
                changed = wait_interrupt(&mut interrupt) => {
                    if changed {
                        set.abort_all();
                        self.commit(Batch { transitions: vec![Transition::RunInterrupted], ..Default::default() }).await?;
                        self.flush().await?;
                        let error = format!("interrupted; continue with `aosc resume {}`", self.sh.run_id());
                        return Ok(self.report(RunStatus::Cancelled, Some(error)));
                    }
                    interrupt = None;
                }
            }
        }
    }

    fn take(&mut self, tick: &mut Tick, d: Result<AttemptResult, tokio::task::JoinError>, now_ms: u64) {
        // Retry delays count from when the failure is handled.
        self.state.set_now(now_ms);
        match d {
            Ok(r) => core::on_result(&mut self.state, tick, r),
            // A panicking attempt is a bug; fail the run rather than hang.
            Err(e) => core::on_lost(&mut self.state, &e.to_string()),
        }
    }

    /// Whether an attempt about to start acts outside the run (an external
    /// tool, a workflow call, or a fallback call, which may be either): the
    /// transitions before it must be durable first.
    fn needs_durable(&self, launches: &[core::Launch]) -> bool {
        launches.iter().any(|l| {
            l.fallback
                || self.sh.ctx.wf.steps.get(l.step).is_some_and(|s| {
                    s.kind == StepKind::Workflow
                        || (s.kind == StepKind::Tool && s.effect == Effect::External)
                        || (s.call.agent().is_some() && s.effect == Effect::External)
                })
        })
    }

    /// Waits until every batch handed to the writer is committed.
    async fn flush(&self) -> Result<(), RuntimeError> {
        if let Some(w) = &self.writer {
            w.flush().await?;
        }
        Ok(())
    }

    /// Commits a batch (secrets redacted), then publishes its transitions:
    /// through the group-commit writer while the loop runs (durable at the
    /// next [`Driver::flush`]), directly before it.
    async fn commit(&mut self, mut batch: Batch) -> Result<(), RuntimeError> {
        if batch.is_empty() {
            return Ok(());
        }
        redact_batch(&self.sh.ctx.secrets, &mut batch);
        if let Some(w) = &self.writer {
            w.send(self.sh.run_id(), batch)?;
            return Ok(());
        }
        let published = batch.transitions.clone();
        self.sh.rt.store.commit(self.sh.run_id(), batch).await?;
        let at = crate::ids::now_ms();
        for t in published {
            self.sh.rt.bus.publish(Entry { run_id: self.sh.run_id().to_string(), at_ms: at, transition: t });
        }
        Ok(())
    }

    /// Reads the decisions another process journaled (approvals while
    /// `--wait`ing) and applies them.
    async fn poll_external(&mut self) -> Result<(), RuntimeError> {
        let new = self.sh.rt.store.journal_since(self.sh.run_id(), self.last_journal_id).await?;
        for (id, e) in new {
            self.last_journal_id = id;
            if matches!(e.transition, Transition::ApprovalGranted { .. } | Transition::ApprovalDenied { .. }) {
                core::apply(&mut self.state, &e.transition);
                self.sh.rt.bus.publish(e);
            }
        }
        Ok(())
    }
}

/// Hides what a batch must not hold before it is journaled: passwords in
/// URLs (an error naming a URL, a page echoing it), whatever the secrets,
/// and the run's secret values.
pub(crate) fn redact_batch(secrets: &crate::interp::Secrets, batch: &mut Batch) {
    for t in &mut batch.transitions {
        crate::redact::transition_url_passwords(t);
    }
    for d in &mut batch.decisions {
        crate::redact::url_passwords_in(&mut d.data);
    }
    if secrets.any() {
        for t in &mut batch.transitions {
            if let Ok(v) = serde_json::to_value(&*t)
                && let Ok(r) = serde_json::from_value(secrets.redact_value(&v))
            {
                *t = r;
            }
        }
        for d in &mut batch.decisions {
            d.data = secrets.redact_value(&d.data);
        }
        for (_, _, out) in &mut batch.idempotency {
            *out = secrets.redact_value(out);
        }
    }
}

async fn sleep_opt(d: Option<Duration>) {
    if let Some(d) = d {
        tokio::time::sleep(d).await;
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
    rt.store.commit(run_id, batch).await.map_err(|e: StoreError| RuntimeError::Store(e))?;
    Ok(())
}
