//! `aos-runtime`: runs checked AOS programs durably on one machine.
//!
//! The runtime consumes only the checker's IR ([`aos_compiler::ir::Program`])
//! and never parses source. The facade is [`Runtime`]: create a run, execute
//! or resume it, record approval decisions, and read runs, journals and the
//! audit chain. Planes sit behind traits: [`store::Store`] (journal, state,
//! audit), [`bus::Bus`] (events), [`fabric::Provider`] (models) and
//! [`tools::Tool`] (tools).

pub mod audit;
pub mod cache;
pub mod control;
pub mod bus;
pub mod core;
mod driver;
pub mod events;
pub mod fabric;
pub mod governance;
pub mod ids;
pub mod redact;
pub mod secrets;
pub mod stats;
pub mod inspect;
pub mod interp;
pub mod lease;
pub mod store;
pub mod testrun;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tokens;
pub mod tools;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aos_compiler::ir::{Program, Trust, Type, Workflow};
use serde_json::{json, Value};

use crate::audit::Decision;
use crate::bus::Bus;
use crate::events::{RunStatus, Transition};
use crate::fabric::Fabric;
use crate::interp::Secrets;
use crate::store::{Batch, Store, StoreError};
use crate::tools::Tools;

pub use crate::core::DEFAULT_MAX_CONCURRENCY;
pub use driver::fleet::{Worker, WorkerOptions, WorkerStats};
/// How often a worker with Redis dispatch sweeps the task table (ms).
pub fn driver_sweep_ms() -> u64 {
    driver::fleet::SWEEP_MS
}
pub use driver::CallError;

/// Errors of the runtime that are not a run's own failure.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store failed or does not know the run.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Inputs or arguments a user can fix (exit status 2).
    #[error("{0}")]
    Usage(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A workflow call would nest deeper than [`MAX_CALL_DEPTH`] (a
    /// workflow that calls itself without end): the call fails, nothing of
    /// it is created.
    #[error("workflow call depth limit: calling `{workflow}` would nest {depth} workflow calls deep, more than the limit of {MAX_CALL_DEPTH} (does a workflow call itself?)")]
    CallDepth { workflow: String, depth: usize },
    /// Another process holds the run's lease: it is continuing the run now.
    #[error(
        "run `{run_id}` is being continued by process {pid} on host `{host}` (for {held_for_s} s); nothing was run here. Wait for it to finish (a run waiting at a gate with --wait continues by itself after `aosc approve`), or stop that process; if it was killed, its lease expires within {expires_in_s} s"
    )]
    Leased { run_id: String, pid: u32, host: String, held_for_s: u64, expires_in_s: u64 },
}

/// How deep workflow calls may nest at run time (the run itself is depth 0;
/// a step calling a workflow makes depth 1). The checker is the first line;
/// this is the second, so that a recursive program fails instead of
/// creating sub-runs without end.
pub const MAX_CALL_DEPTH: usize = 32;

/// How many workflow calls deep a run id is: `ROOT.step` is 1,
/// `ROOT.step.3` (item 3 of a fan-out) is 1 too, `ROOT.step.3.inner` is 2.
/// Step names are identifiers, never all digits, so item segments are told
/// apart from step segments.
pub fn call_depth(run_id: &str) -> usize {
    run_id.split('.').skip(1).filter(|seg| !seg.is_empty() && !seg.bytes().all(|b| b.is_ascii_digit())).count()
}

/// How to execute a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Wait at approval gates for a decision from another process instead
    /// of returning `waiting_approval`.
    pub wait: bool,
    /// Turns true when the user asks to stop (Ctrl-C).
    pub interrupt: Option<tokio::sync::watch::Receiver<bool>>,
}

/// How a run ended (or paused): the object of §6a.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    pub run_id: String,
    pub status: RunStatus,
    pub output: Option<Value>,
    pub cost_usd: f64,
    pub error: Option<String>,
}

impl RunReport {
    /// `{"run_id", "status", "output", "cost_usd", "error"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "run_id": self.run_id,
            "status": self.status.as_str(),
            "output": self.output.clone().unwrap_or(Value::Null),
            "cost_usd": self.cost_usd,
            "error": self.error,
        })
    }
}

/// An approval decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
}

/// The runtime: its planes and where run workspaces live.
#[derive(Clone)]
pub struct Runtime {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub fabric: Arc<Fabric>,
    pub tools: Arc<Tools>,
    pub home: PathBuf,
    /// Where `secret("NAME")` values come from: by default the secrets
    /// store under `home`, then the environment.
    pub secret_source: Arc<dyn secrets::SecretSource>,
    /// Where `cache:` keeps results: the store, or Redis (`AOS_REDIS_URL`).
    pub cache: Arc<dyn cache::ResponseCache>,
}

impl Runtime {
    /// A runtime over a store, with the in-process bus, the simulator for
    /// every model and the built-in tools.
    pub fn new(store: Arc<dyn Store>, home: &Path) -> Runtime {
        let tools = Arc::new(Tools::builtin().with_store(store.clone()));
        let cache: Arc<dyn cache::ResponseCache> = Arc::new(cache::StoreCache::new(store.clone()));
        Runtime {
            store,
            bus: Arc::new(bus::InProcessBus::new()),
            fabric: Arc::new(Fabric::from_env()),
            tools,
            home: home.to_path_buf(),
            secret_source: secrets::default_source(home),
            cache,
        }
    }

    /// Checks inputs against the workflow's parameters (defaults applied,
    /// `max_param_tokens` enforced) and creates the run; nothing runs yet.
    pub async fn create(
        &self,
        program: &Program,
        workflow: &str,
        inputs: BTreeMap<String, Value>,
        trust: Trust,
    ) -> Result<String, RuntimeError> {
        let wf = find_workflow(program, workflow)?;
        let params = prepare_inputs(wf, inputs)?;
        refuse_url_passwords(program, &params)?;
        let run_id = ids::new_id();
        driver::create_run(self, program, workflow, &run_id, None, &params, trust).await?;
        Ok(run_id)
    }

    /// Checks inputs, creates the run and queues it for the fleet (`aosc
    /// worker` processes run it; needs the PostgreSQL store).
    pub async fn detach(&self, program: &Program, workflow: &str, inputs: BTreeMap<String, Value>, trust: Trust) -> Result<String, RuntimeError> {
        let id = self.create(program, workflow, inputs, trust).await?;
        self.store.fleet_queue(&id).await?;
        self.bus.dispatch(vec![bus::dispatch::TaskRef::decide(&id)]);
        Ok(id)
    }

    /// Runs (or continues) a run until it ends, pauses at a gate, or is
    /// interrupted. A finished run reports how it ended. The process holds
    /// the run's lease meanwhile (see [`lease`]): another process asking to
    /// continue the same run gets [`RuntimeError::Leased`].
    pub async fn execute(&self, run_id: &str, mut opts: RunOptions) -> Result<RunReport, RuntimeError> {
        let row = self.store.run(run_id).await?.ok_or_else(|| RuntimeError::Store(StoreError::NoSuchRun(run_id.into())))?;
        if matches!(row.status, RunStatus::Succeeded | RunStatus::Failed) {
            return Ok(RunReport { run_id: row.run_id, status: row.status, output: row.output, cost_usd: row.cost_usd, error: row.error });
        }
        let root = run_id.split('.').next().unwrap_or(run_id);
        let held = lease::Lease::acquire(self.store.clone(), root).await?;
        // A lost lease stops the run as an interrupt does.
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut user = opts.interrupt.take();
        let mut lost = held.lost();
        let watcher = tokio::spawn(async move {
            let user_stop = async {
                match user.as_mut() {
                    Some(u) => {
                        while !*u.borrow() {
                            if u.changed().await.is_err() {
                                std::future::pending::<()>().await;
                            }
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let lease_lost = async {
                while !*lost.borrow() {
                    if lost.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                _ = user_stop => {}
                _ = lease_lost => {}
            }
            let _ = tx.send(true);
        });
        opts.interrupt = Some(rx);
        let out = self.execute_held(run_id, opts).await;
        watcher.abort();
        held.release().await;
        out
    }

    /// [`Runtime::execute`] under a lease this process already holds (the
    /// sub-runs of workflow calls run under their root run's lease).
    async fn execute_held(&self, run_id: &str, opts: RunOptions) -> Result<RunReport, RuntimeError> {
        let row = self.store.run(run_id).await?.ok_or_else(|| RuntimeError::Store(StoreError::NoSuchRun(run_id.into())))?;
        if matches!(row.status, RunStatus::Succeeded | RunStatus::Failed) {
            return Ok(RunReport { run_id: row.run_id, status: row.status, output: row.output, cost_usd: row.cost_usd, error: row.error });
        }
        let program: Program = serde_json::from_str(&self.store.program(run_id).await?)
            .map_err(|e| RuntimeError::Internal(format!("the stored program of run `{run_id}` is unreadable: {e}")))?;
        find_workflow(&program, &row.workflow)?;
        let program = Arc::new(program);
        let wf = crate::core::WorkflowRef::new(program.clone(), &row.workflow)
            .ok_or_else(|| RuntimeError::Internal(format!("no workflow `{}` in the program of run `{run_id}`", row.workflow)))?;
        let params: BTreeMap<String, Value> = serde_json::from_value(row.inputs.clone()).unwrap_or_default();
        let trust = governance::parse_trust(&row.trust).unwrap_or(Trust::Basic);
        let root = run_id.split('.').next().unwrap_or(run_id);
        let workspace = self.home.join("runs").join(root).join("workspace");
        let _ = std::fs::create_dir_all(&workspace);
        let ctx = Arc::new(crate::core::RunCtx {
            run_id: run_id.to_string(),
            program,
            wf,
            params,
            trust,
            secrets: Secrets::from_source(self.secret_source.clone()),
        });
        let sh = Arc::new(driver::Shared::new(self.clone(), ctx, workspace, opts));
        let journal = self.store.journal_since(run_id, 0).await?;
        driver::Driver::resume(sh, &journal).await?.drive().await
    }

    /// Creates and executes a run in one go.
    pub async fn run(
        &self,
        program: &Program,
        workflow: &str,
        inputs: BTreeMap<String, Value>,
        trust: Trust,
        opts: RunOptions,
    ) -> Result<RunReport, RuntimeError> {
        let id = self.create(program, workflow, inputs, trust).await?;
        self.execute(&id, opts).await
    }

    /// Runs (or resumes) the sub-run of a workflow call.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_child(
        &self,
        program: &Program,
        workflow: &str,
        child_id: &str,
        parent: &str,
        inputs: BTreeMap<String, Value>,
        trust: Trust,
        opts: RunOptions,
    ) -> Result<RunReport, RuntimeError> {
        let depth = call_depth(child_id);
        if depth > MAX_CALL_DEPTH {
            return Err(RuntimeError::CallDepth { workflow: workflow.to_string(), depth });
        }
        if self.store.run(child_id).await?.is_none() {
            let wf = find_workflow(program, workflow)?;
            let params = prepare_inputs(wf, inputs)?;
            driver::create_run(self, program, workflow, child_id, Some(parent), &params, trust).await?;
        }
        Box::pin(self.execute_held(child_id, opts)).await
    }

    /// Records an approval decision for a step waiting at a gate.
    pub async fn decide(&self, run_id: &str, step: &str, verdict: Verdict, by: &str, note: Option<&str>) -> Result<(), RuntimeError> {
        if self.store.run(run_id).await?.is_none() {
            return Err(RuntimeError::Store(StoreError::NoSuchRun(run_id.into())));
        }
        // A friendly answer for a step that never asked; the decisive check
        // (waiting, not decided yet) is made by the store in the transaction
        // that writes the decision.
        let journal = self.store.journal(run_id).await?;
        let known = journal.iter().any(|e| e.transition.step() == Some(step));
        if !known {
            return Err(RuntimeError::Usage(format!("cannot decide on step `{step}` of run `{run_id}`: the run has no such step waiting")));
        }
        let note_s = note.map(str::to_string);
        let t = match verdict {
            Verdict::Approve => Transition::ApprovalGranted { step: step.into(), by: by.into(), note: note_s.clone() },
            Verdict::Deny => Transition::ApprovalDenied { step: step.into(), by: by.into(), note: note_s.clone() },
        };
        let d = Decision::new(
            "approval",
            Some(step),
            json!({"decision": if verdict == Verdict::Approve { "approved" } else { "denied" }, "by": by, "note": note_s}),
        );
        self.store.commit_decision(run_id, step, Batch { transitions: vec![t], decisions: vec![d], ..Default::default() }).await?;
        self.bus.notify(run_id);
        // A fleet run continues when a worker decides again.
        let root = run_id.split('.').next().unwrap_or(run_id);
        if self.store.fleet_wake(root).await? {
            self.bus.dispatch(vec![bus::dispatch::TaskRef::decide(root)]);
        }
        Ok(())
    }
}

/// A password written into a URL of the program or of an input would be
/// stored with the run (the program and inputs are kept to resume it):
/// refused, naming the URL with the password hidden. Passwords belong in
/// `secret("NAME")`, which is resolved at use and never stored.
fn refuse_url_passwords(program: &Program, params: &BTreeMap<String, Value>) -> Result<(), RuntimeError> {
    for (name, v) in params {
        if let Some(url) = redact::first_url_password(v) {
            return Err(RuntimeError::Usage(format!(
                "input `{name}` holds a password in a URL (`{url}`); it would be stored with the run: pass the password with secret(\"NAME\") instead; nothing was run"
            )));
        }
    }
    let ir = serde_json::to_value(program).map_err(|e| RuntimeError::Internal(e.to_string()))?;
    if let Some(url) = redact::first_url_password(&ir) {
        return Err(RuntimeError::Usage(format!(
            "the program holds a password in a URL (`{url}`); it would be stored with every run: write the URL without it and pass the password with secret(\"NAME\"); nothing was run"
        )));
    }
    Ok(())
}

fn find_workflow<'a>(program: &'a Program, name: &str) -> Result<&'a Workflow, RuntimeError> {
    program.workflows.get(name).ok_or_else(|| {
        let names: Vec<&str> = program.workflows.keys().map(String::as_str).collect();
        RuntimeError::Usage(format!("no workflow `{name}` in the program (it has: {})", names.join(", ")))
    })
}

/// The workflow a file runs when `--workflow` is not given: its only one.
pub fn default_workflow(program: &Program) -> Result<String, RuntimeError> {
    // `W.STEP` workflows run fan-out blocks; they are not started by name.
    let names: Vec<&String> = program.workflows.keys().filter(|n| !n.contains('.')).collect();
    match names.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(RuntimeError::Usage("the file declares no workflow".into())),
        many => Err(RuntimeError::Usage(format!(
            "the file declares several workflows ({}); choose one with --workflow NAME",
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Applies defaults, refuses unknown or missing inputs and inputs larger
/// than `max_param_tokens`, before anything runs.
pub fn prepare_inputs(wf: &Workflow, mut inputs: BTreeMap<String, Value>) -> Result<BTreeMap<String, Value>, RuntimeError> {
    if let Some(unknown) = inputs.keys().find(|k| !wf.params.iter().any(|p| &p.name == *k)) {
        let known: Vec<&str> = wf.params.iter().map(|p| p.name.as_str()).collect();
        return Err(RuntimeError::Usage(format!(
            "workflow `{}` has no parameter `{unknown}` (its parameters: {})",
            wf.name,
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    }
    let mut out = BTreeMap::new();
    for p in &wf.params {
        let value = match inputs.remove(&p.name) {
            Some(v) => validate::input(&wf.name, p, v).map_err(|e| RuntimeError::Usage(e.to_string()))?,
            None => match &p.default {
                Some(e) => {
                    let empty_params = BTreeMap::new();
                    let empty_steps = std::collections::HashMap::new();
                    let secrets = Secrets::default();
                    let scope = interp::Scope { params: &empty_params, steps: &empty_steps, var: None, secrets: &secrets };
                    interp::eval(e, &scope).map_err(|e| RuntimeError::Usage(format!("default of `{}`: {e}", p.name)))?
                }
                None if matches!(p.ty, Type::Optional { .. }) => Value::Null,
                None => {
                    return Err(RuntimeError::Usage(format!(
                        "missing input `{}` of workflow `{}`: pass --input {}=…",
                        p.name, wf.name, p.name
                    )));
                }
            },
        };
        let n = tokens::count(&interp::render(&value));
        if n > wf.max_param_tokens {
            return Err(RuntimeError::Usage(format!(
                "input `{}` is {n} tokens, more than max_param_tokens ({}); nothing was run",
                p.name, wf.max_param_tokens
            )));
        }
        out.insert(p.name.clone(), value);
    }
    Ok(out)
}
