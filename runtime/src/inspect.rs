//! Reading runs back: the summary `aosc show` prints, the timeline of
//! `aosc replay`, and the audit verdict of `aosc audit verify`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::audit::{self, Verdict};
use crate::events::{Entry, Transition, Usage};
use crate::store::{RunRow, StoreError};
use crate::{Runtime, RuntimeError};

#[derive(Default)]
struct StepSummary {
    status: &'static str,
    attempts: u32,
    output: Option<Value>,
    usage: Usage,
    error: Option<String>,
    items: Option<u32>,
    items_done: u32,
    /// The model router's choices (`llm.routed`), in order.
    routing: Vec<Value>,
    /// Calls answered from the response cache, and what they saved.
    cache_hits: u32,
    cache_saved_usd: f64,
    /// An agent step's turns and tool calls (`agent.turn`, `agent.tool`), in order.
    agent: Vec<Value>,
}

/// `{"run_id", "workflow", "status", "started_at", "cost_usd"}` (`aosc runs --json`).
pub fn run_list_json(r: &RunRow) -> Value {
    json!({"run_id": r.run_id, "workflow": r.workflow, "status": r.status.as_str(), "started_at": r.started_at, "cost_usd": r.cost_usd})
}

/// The steps of a run, from its journal, in the order they first appear.
fn summarize(journal: &[Entry]) -> Vec<(String, StepSummary)> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, StepSummary> = BTreeMap::new();
    for e in journal {
        let Some(step) = e.transition.step() else { continue };
        if !map.contains_key(step) {
            order.push(step.to_string());
        }
        let s = map.entry(step.to_string()).or_insert_with(|| StepSummary { status: "pending", ..Default::default() });
        match &e.transition {
            Transition::AttemptStarted { .. } => {
                s.attempts += 1;
                s.status = "running";
            }
            Transition::FanOutPlanned { items, .. } => {
                s.items = Some(*items);
                s.status = "running";
            }
            Transition::AttemptFailed { usage, error, retry_in_ms, .. } => {
                s.usage.add(usage);
                s.error = Some(error.clone());
                if retry_in_ms.is_some() {
                    s.status = "retrying";
                }
            }
            Transition::ItemSucceeded { usage, .. } => {
                s.usage.add(usage);
                s.items_done += 1;
            }
            Transition::StepSucceeded { output, usage, .. } => {
                s.status = "succeeded";
                s.error = None;
                if let Some(o) = output {
                    s.usage.add(usage);
                    s.output = Some(o.clone());
                }
            }
            Transition::StepFailed { error, .. } => {
                s.status = "failed";
                s.error = Some(error.clone());
            }
            Transition::StepSkipped { reason, .. } => {
                s.status = "skipped";
                s.error = Some(reason.clone());
            }
            Transition::ApprovalRequested { .. } => s.status = "waiting_approval",
            Transition::ApprovalGranted { .. } => s.status = "approved",
            Transition::ApprovalDenied { .. } => s.status = "denied",
            Transition::AttemptInterrupted { action, .. } => s.status = if *action == crate::events::Recovery::Held { "held" } else { "interrupted" },
            Transition::Routed { kind, data, item, .. } => {
                if kind == "cache_hit" {
                    s.cache_hits += 1;
                    s.cache_saved_usd += data.get("saved_usd").and_then(Value::as_f64).unwrap_or(0.0);
                }
                let mut v = json!({"kind": kind});
                if let (Some(o), Value::Object(d)) = (v.as_object_mut(), data) {
                    o.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
                    if let Some(i) = item {
                        o.insert("item".into(), json!(i));
                    }
                }
                s.routing.push(v);
            }
            Transition::AgentTurn { item, attempt, turn, model, text, calls, usage, .. } => {
                let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
                s.agent.push(json!({"kind": "turn", "item": item, "attempt": attempt, "turn": turn, "model": model,
                                    "calls": names, "answer": calls.is_empty().then_some(text), "cost_usd": usage.cost_usd}));
            }
            Transition::AgentTool { item, attempt, turn, call_id, tool, args, output, error, .. } => {
                s.agent.push(json!({"kind": "tool", "item": item, "attempt": attempt, "turn": turn, "call_id": call_id,
                                    "tool": tool, "args": args, "output": output, "error": error}));
            }
            _ => {}
        }
    }
    order.into_iter().filter_map(|n| map.remove(&n).map(|s| (n, s))).collect()
}

impl Runtime {
    async fn row(&self, run_id: &str) -> Result<RunRow, RuntimeError> {
        self.store.run(run_id).await?.ok_or_else(|| RuntimeError::Store(StoreError::NoSuchRun(run_id.into())))
    }

    /// Everything `aosc show --json` prints.
    pub async fn show(&self, run_id: &str) -> Result<Value, RuntimeError> {
        let row = self.row(run_id).await?;
        let journal = self.store.journal(run_id).await?;
        let mut steps = Vec::new();
        for (name, s) in summarize(&journal) {
            let mut v = json!({
                "name": name, "status": s.status, "attempts": s.attempts, "output": s.output,
                "usage": {"input_tokens": s.usage.input_tokens, "output_tokens": s.usage.output_tokens,
                          "cached_input_tokens": s.usage.cached_input_tokens, "reasoning_tokens": s.usage.reasoning_tokens},
                "cost_usd": s.usage.cost_usd, "error": s.error,
            });
            if let (false, Some(obj)) = (s.routing.is_empty(), v.as_object_mut()) {
                obj.insert("routing".into(), Value::Array(s.routing));
            }
            if let (false, Some(obj)) = (s.agent.is_empty(), v.as_object_mut()) {
                obj.insert("agent".into(), Value::Array(s.agent));
            }
            if let (Some(n), Some(obj)) = (s.items, v.as_object_mut()) {
                obj.insert("items".into(), json!({"total": n, "succeeded": s.items_done}));
            }
            // `cached`: the step's value came from the response cache (for
            // a fan-out: every item's did).
            if let (true, Some(obj)) = (s.cache_hits > 0, v.as_object_mut()) {
                let all = s.status == "succeeded" && s.items.is_none_or(|n| s.cache_hits >= n);
                obj.insert("cached".into(), json!(all));
                obj.insert("cache".into(), json!({"hits": s.cache_hits, "saved_usd": s.cache_saved_usd}));
            }
            steps.push(v);
        }
        Ok(json!({
            "run_id": row.run_id, "workflow": row.workflow, "status": row.status.as_str(),
            "started_at": row.started_at, "updated_at": row.updated_at, "trust": row.trust,
            "inputs": row.inputs, "output": row.output, "cost_usd": row.cost_usd, "error": row.error,
            "parent": row.parent, "steps": steps,
        }))
    }

    /// The run's timeline, one line per transition.
    pub async fn timeline(&self, run_id: &str) -> Result<Vec<String>, RuntimeError> {
        self.row(run_id).await?;
        let journal = self.store.journal(run_id).await?;
        let t0 = journal.first().map(|e| e.at_ms).unwrap_or(0);
        Ok(journal
            .iter()
            .map(|e| {
                let mut data = serde_json::to_value(&e.transition).unwrap_or(Value::Null);
                if let Some(o) = data.as_object_mut() {
                    o.remove("type");
                    o.remove("step");
                    o.retain(|_, v| !v.is_null());
                }
                let step = e.transition.step().map(|s| format!(" {s}")).unwrap_or_default();
                let rest = match &data {
                    Value::Object(o) if o.is_empty() => String::new(),
                    Value::Null => String::new(),
                    other => format!(" {other}"),
                };
                let rest: String = if rest.chars().count() > 200 { rest.chars().take(200).collect::<String>() + "…" } else { rest };
                format!("+{:>8.3}s {}{step}{rest}", (e.at_ms.saturating_sub(t0)) as f64 / 1000.0, e.transition.kind())
            })
            .collect())
    }

    /// Checks the run's audit chain.
    pub async fn verify_audit(&self, run_id: &str) -> Result<Verdict, RuntimeError> {
        let row = self.row(run_id).await?;
        let records = self.store.audit(run_id).await?;
        Ok(audit::verify(&records, &row.audit_head, row.audit_count))
    }
}
