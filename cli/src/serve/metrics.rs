//! `GET /metrics` in the Prometheus text format. Counters and histograms
//! are fed by the bus (every committed transition of the runs this server
//! executes); gauges of runs by status and approvals waiting are read from
//! the store at scrape time, so they hold for runs of every process.

use std::collections::HashMap;
use std::sync::Arc;

use aos_compiler::ir::Program;
use aos_runtime::events::{Entry, RunStatus, Transition};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus::{CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use serde_json::Value;

use super::error::ApiError;
use super::App;

pub struct Metrics {
    registry: Registry,
    runs: IntGaugeVec,
    runs_finished: IntCounterVec,
    step_seconds: HistogramVec,
    tokens: IntCounterVec,
    cost: CounterVec,
    provider_errors: IntCounterVec,
    retries: IntCounterVec,
    approvals_waiting: IntGauge,
    queue_depth: IntGauge,
    executing: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let runs = IntGaugeVec::new(Opts::new("aos_runs", "Top-level runs in the store by status."), &["status"])?;
        let runs_finished =
            IntCounterVec::new(Opts::new("aos_runs_finished_total", "Runs this server executed to an end, by how they ended."), &["status"])?;
        let step_seconds = HistogramVec::new(
            HistogramOpts::new("aos_step_duration_seconds", "Time from a step's first attempt to its end, by step kind.")
                .buckets(vec![0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0]),
            &["kind"],
        )?;
        let tokens = IntCounterVec::new(Opts::new("aos_llm_tokens_total", "Model tokens by model, provider and direction."), &["model", "provider", "direction"])?;
        let cost = CounterVec::new(Opts::new("aos_llm_cost_usd_total", "Money spent on model calls in USD by model and provider."), &["model", "provider"])?;
        let provider_errors =
            IntCounterVec::new(Opts::new("aos_provider_errors_total", "Model calls that failed, by class (transport: retryable; fatal: not)."), &["class"])?;
        let retries = IntCounterVec::new(Opts::new("aos_retries_total", "Retries: of a step attempt, or of a provider call on a transport error."), &["kind"])?;
        let approvals_waiting = IntGauge::new("aos_approvals_waiting", "Steps waiting at an approval gate.")?;
        let queue_depth = IntGauge::new("aos_queue_depth", "Runs waiting for a free execution slot on this server.")?;
        let executing = IntGauge::new("aos_runs_executing", "Runs executing on this server now.")?;
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(runs_finished.clone()))?;
        registry.register(Box::new(step_seconds.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(cost.clone()))?;
        registry.register(Box::new(provider_errors.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(approvals_waiting.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(executing.clone()))?;
        for class in ["transport", "fatal"] {
            provider_errors.with_label_values(&[class]);
        }
        for kind in ["attempt", "transport"] {
            retries.with_label_values(&[kind]);
        }
        Ok(Metrics { registry, runs, runs_finished, step_seconds, tokens, cost, provider_errors, retries, approvals_waiting, queue_depth, executing })
    }
}

/// What the observer remembers of the runs it sees.
#[derive(Default)]
struct Seen {
    /// Step kinds by run (from the run's stored program).
    kinds: HashMap<String, HashMap<String, &'static str>>,
    /// When each (run, step) started its first attempt, in ms.
    started: HashMap<(String, String), u64>,
}

fn kind_name(k: aos_compiler::ir::StepKind) -> &'static str {
    match k {
        aos_compiler::ir::StepKind::Tool => "tool",
        aos_compiler::ir::StepKind::Llm => "llm",
        aos_compiler::ir::StepKind::Workflow => "workflow",
    }
}

async fn step_kind(app: &App, seen: &mut Seen, run_id: &str, step: &str) -> &'static str {
    if !seen.kinds.contains_key(run_id) {
        let mut map = HashMap::new();
        let row = app.rt.store.run(run_id).await.ok().flatten();
        if let (Some(row), Ok(v)) = (row, app.rt.store.program(run_id).await)
            && let Ok(p) = serde_json::from_str::<Program>(&v)
            && let Some(wf) = p.workflows.get(&row.workflow)
        {
            for s in &wf.steps {
                map.insert(s.name.clone(), kind_name(s.kind));
            }
        }
        seen.kinds.insert(run_id.to_string(), map);
    }
    seen.kinds.get(run_id).and_then(|m| m.get(step)).copied().unwrap_or("unknown")
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("unknown")
}

async fn observe(app: &App, seen: &mut Seen, e: &Entry) {
    let m = &app.metrics;
    let step = e.transition.step().unwrap_or("");
    tracing::info!(run_id = %e.run_id, step, event = e.transition.kind(), "transition");
    match &e.transition {
        Transition::AttemptStarted { step, item: None, .. } => {
            seen.started.entry((e.run_id.clone(), step.clone())).or_insert(e.at_ms);
        }
        Transition::FanOutPlanned { step, .. } => {
            seen.started.entry((e.run_id.clone(), step.clone())).or_insert(e.at_ms);
        }
        Transition::StepSucceeded { step, .. } | Transition::StepFailed { step, .. } => {
            if let Some(t0) = seen.started.remove(&(e.run_id.clone(), step.clone())) {
                let kind = step_kind(app, seen, &e.run_id, step).await;
                m.step_seconds.with_label_values(&[kind]).observe(e.at_ms.saturating_sub(t0) as f64 / 1000.0);
            }
        }
        Transition::AttemptFailed { retry_in_ms: Some(_), .. } => m.retries.with_label_values(&["attempt"]).inc(),
        Transition::Routed { kind, data, .. } => match kind.as_str() {
            "model" => {
                let (model, provider) = (str_of(data, "model"), str_of(data, "answered_by"));
                let u = data.get("usage").cloned().unwrap_or(Value::Null);
                let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
                m.tokens.with_label_values(&[model, provider, "input"]).inc_by(n("input_tokens"));
                m.tokens.with_label_values(&[model, provider, "output"]).inc_by(n("output_tokens"));
                m.cost.with_label_values(&[model, provider]).inc_by(u.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0));
            }
            "model_failed" => {
                let class = if data.get("retryable").and_then(Value::as_bool).unwrap_or(false) { "transport" } else { "fatal" };
                m.provider_errors.with_label_values(&[class]).inc();
            }
            "transport_retry" => m.retries.with_label_values(&["transport"]).inc(),
            _ => {}
        },
        Transition::RunSucceeded { .. } | Transition::RunFailed { .. } | Transition::RunInterrupted => {
            if let Some(s) = RunStatus::after(&e.transition) {
                m.runs_finished.with_label_values(&[s.as_str()]).inc();
            }
            seen.kinds.remove(&e.run_id);
            seen.started.retain(|(r, _), _| r != &e.run_id);
        }
        _ => {}
    }
}

/// Feeds the counters from the bus for as long as the server runs.
pub fn spawn_observer(app: Arc<App>) {
    let mut rx = app.rt.bus.subscribe();
    tokio::spawn(async move {
        let mut seen = Seen::default();
        loop {
            match rx.recv().await {
                Ok(e) => observe(&app, &mut seen, &e).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "metrics missed events"),
                Err(_) => break,
            }
        }
    });
}

/// `GET /metrics`.
pub async fn scrape(State(app): State<Arc<App>>) -> Result<impl IntoResponse, ApiError> {
    let m = &app.metrics;
    let rows = app.rt.store.runs().await?;
    let mut waiting = 0i64;
    for status in [RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::WaitingApproval, RunStatus::Cancelled] {
        let n = rows.iter().filter(|r| r.status == status).count();
        m.runs.with_label_values(&[status.as_str()]).set(n as i64);
    }
    for r in rows.iter().filter(|r| r.status == RunStatus::WaitingApproval) {
        let journal = app.rt.store.journal(&r.run_id).await?;
        let mut open: HashMap<&str, bool> = HashMap::new();
        for e in &journal {
            match &e.transition {
                Transition::ApprovalRequested { step, .. } => {
                    open.insert(step, true);
                }
                Transition::ApprovalGranted { step, .. } | Transition::ApprovalDenied { step, .. } => {
                    open.insert(step, false);
                }
                _ => {}
            }
        }
        waiting += open.values().filter(|w| **w).count() as i64;
    }
    m.approvals_waiting.set(waiting);
    m.queue_depth.set(app.runner.queue_depth() as i64);
    m.executing.set(app.runner.live_count().await as i64);
    let mut buf = Vec::new();
    TextEncoder::new().encode(&m.registry.gather(), &mut buf).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], buf))
}
