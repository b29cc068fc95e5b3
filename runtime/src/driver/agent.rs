//! Agent steps (docs/language.md, *Agent steps*): the model is asked turn
//! after turn with the step's tools; the tools it calls run, and their
//! results go back in the next turn, for at most `max_turns` turns.
//!
//! Every turn (the reply and its usage) and every finished tool call is
//! committed to the journal before the agent goes on, and audited. When the
//! attempt runs again after a crash (same step, item and attempt number),
//! the journaled turns and results are read back and replayed into the
//! conversation: no completed model call or tool call is repeated. The
//! attempt's final record (its value or failure) carries the usage of all
//! its turns, so each turn is counted once.
//!
//! With `verify:`, a final answer that is valid is cross-checked by the
//! verifier role (as an LLM step's reply is) before its turn is journaled:
//! the turn's record carries the verdict and the verification's usage, so a
//! resumed run neither asks again nor counts it twice. A rejected answer is
//! sent back with the verifier's reasons as a turn of its own; on the last
//! turn it fails the attempt (then `retry:`, then `fallback:`).

use std::collections::HashMap;
use std::sync::Arc;

use aos_compiler::ir::{Agent, Expr};
use serde_json::{json, Value};

use super::attempt::{Attempt, CallError};
use super::tool;
use crate::audit::Decision;
use crate::events::{Entry, Transition, Usage, Verdict};
use crate::fabric::agent::{Conversation, Exchange, ToolCall, ToolResult};
use crate::fabric::{FabricError, LlmOutcome, Purpose, Request};
use crate::interp;
use crate::store::Batch;

/// A turn read back from the journal.
struct Turn {
    text: String,
    calls: Vec<ToolCall>,
    verdict: Option<Verdict>,
    usage: Usage,
}

/// What the journal holds of one attempt of an agent step.
#[derive(Default)]
struct Log {
    turns: HashMap<u32, Turn>,
    /// (turn, call id) → the result.
    results: HashMap<(u32, String), Result<Value, String>>,
}

pub(super) async fn call(a: &mut Attempt<'_>, role: &str, prompt: &Expr, agent: &Agent) -> Result<Value, CallError> {
    let (sh, step) = (a.sh, a.step);
    let mut prompt = interp::render(&a.eval(prompt)?);
    // The verifier reads the request as written (the checker bounds it so).
    let asked = prompt.clone();
    if let (Some(schema), true) = (&step.schema, step.typed) {
        prompt = format!(
            "{prompt}\n\nWhen you have the answer, reply with only a JSON value (no prose, no code fence) that validates against this JSON Schema:\n{schema}"
        );
    }
    let validator = match sh.schemas.get(a.index).and_then(Option::as_ref) {
        Some(Ok(v)) => Some(v.clone()),
        Some(Err(e)) => return Err(CallError::Schema(e.clone())),
        None => None,
    };
    let log = read_log(a).await?;
    let mut history: Vec<Exchange> = Vec::new();
    let mut calls_run: u32 = 0;
    let turns = agent.max_turns.max(1);
    for turn in 0..turns {
        let last = turn + 1 == turns;
        let (text, calls, verdict) = match log.turns.get(&turn) {
            Some(t) => {
                a.usage.add(&t.usage);
                a.decisions.push(Decision::new("agent.replayed", Some(&step.name), json!({"turn": turn, "item": a.item})));
                (t.text.clone(), t.calls.clone(), t.verdict.clone())
            }
            None => {
                let conversation = Conversation { tools: agent.tools.clone(), history: history.clone(), tools_off: last };
                let req = Request {
                    model: crate::fabric::placeholder_model(),
                    prompt: prompt.clone(),
                    max_tokens: step.max_tokens,
                    schema: step.schema.clone(),
                    call_key: format!("{}#turn{turn}", a.call_key()),
                    purpose: Purpose::Answer,
                    role: role.to_string(),
                    conversation: Some(Arc::new(conversation)),
                    // An agent's turns are not streamed.
                    stream: None,
                };
                let mut out = LlmOutcome::default();
                let res = sh.rt.fabric.agent_turn(&sh.ctx.program, &req, &mut out, &step.name).await;
                a.decisions.append(&mut out.decisions);
                let (c, mut usage, model) = res.map_err(CallError::Llm)?;
                let mut verdict = None;
                if let (true, Some(verify)) = (c.tool_calls.is_empty(), &step.verify)
                    && answer(&c.text, step.typed, validator.as_deref()).is_ok()
                {
                    let mut checked = LlmOutcome::default();
                    let key = format!("{}#turn{turn}", a.call_key());
                    let res = sh.rt.fabric.verify(&sh.ctx.program, verify, &asked, &c.text, &key, &step.name, &mut checked).await;
                    a.decisions.append(&mut checked.decisions);
                    usage.add(&checked.usage);
                    match res {
                        Ok(None) => verdict = Some(Verdict::Accepted),
                        Ok(Some((why, _))) => verdict = Some(Verdict::Rejected(why)),
                        Err(e) => {
                            a.usage.add(&usage);
                            return Err(CallError::Llm(e));
                        }
                    }
                }
                a.usage.add(&usage);
                let t = Transition::AgentTurn {
                    step: step.name.clone(),
                    item: a.item,
                    attempt: a.attempt,
                    turn,
                    model: model.clone(),
                    text: c.text.clone(),
                    calls: c.tool_calls.clone(),
                    verdict: verdict.clone(),
                    usage,
                };
                let names: Vec<&str> = c.tool_calls.iter().map(|c| c.name.as_str()).collect();
                let d = Decision::new("agent.turn", Some(&step.name), json!({"item": a.item, "turn": turn, "model": model, "calls": names}));
                journal(a, t, d).await?;
                (c.text, c.tool_calls, verdict)
            }
        };
        if calls.is_empty() {
            match answer(&text, step.typed, validator.as_deref()) {
                Ok(_) if last && let Some(Verdict::Rejected(why)) = verdict => {
                    return Err(CallError::Llm(FabricError::Unverified { why, replies: vec![text] }));
                }
                Ok(_) if let Some(Verdict::Rejected(why)) = verdict => {
                    let note = format!("Your answer was rejected by a reviewer: {why}. Answer again.");
                    history.push(Exchange { text, calls, results: Vec::new(), note: Some(note) });
                    continue;
                }
                Ok(v) => return Ok(v),
                Err(problem) if last => {
                    return Err(CallError::Llm(FabricError::AgentUnusable { step: step.name.clone(), turns, problem: problem.to_string() }));
                }
                Err(problem) => {
                    let note = format!("Your answer was rejected: {problem}. Answer again.");
                    history.push(Exchange { text, calls, results: Vec::new(), note: Some(note) });
                    continue;
                }
            }
        }
        if last {
            return Err(CallError::Llm(FabricError::AgentTurns {
                step: step.name.clone(),
                turns,
                still_calling: calls.iter().map(|c| c.name.clone()).collect(),
            }));
        }
        let mut results = Vec::with_capacity(calls.len());
        for c in &calls {
            let tool = agent.tools.iter().find(|t| t.wire_name == c.name);
            let outcome = match log.results.get(&(turn, c.id.clone())) {
                Some(r) => r.clone(),
                None => {
                    let r = match tool {
                        None => Err(format!("there is no tool `{}`; the tools are {}", c.name, agent.tools.iter().map(|t| t.wire_name.as_str()).collect::<Vec<_>>().join(", "))),
                        Some(_) if calls_run >= agent.max_tool_calls => {
                            Err(format!("the step's `max_tool_calls: {}` are spent: answer with what you have", agent.max_tool_calls))
                        }
                        Some(t) => {
                            let bound = sh.ctx.program.tools.get(&t.tool).map_or(step.max_output_tokens, |d| d.max_output_tokens.min(step.max_output_tokens));
                            let name = match a.item {
                                Some(it) => format!("{}#{it}", step.name),
                                None => step.name.clone(),
                            };
                            let mut spent = crate::tools::Spent::default();
                            let r = tool::invoke(sh, &t.tool, c.args.clone(), None, name, bound, &mut spent).await.map_err(|e| e.to_string());
                            a.usage.add(&spent.usage);
                            a.decisions.append(&mut spent.decisions);
                            r
                        }
                    };
                    let tool_name = tool.map_or(c.name.clone(), |t| t.tool.clone());
                    let ok = r.is_ok();
                    let t = Transition::AgentTool {
                        step: step.name.clone(),
                        item: a.item,
                        attempt: a.attempt,
                        turn,
                        call_id: c.id.clone(),
                        tool: tool_name.clone(),
                        args: c.args.clone(),
                        output: r.as_ref().ok().cloned(),
                        error: r.as_ref().err().cloned(),
                    };
                    let d = Decision::new(
                        "agent.tool",
                        Some(&step.name),
                        json!({"item": a.item, "turn": turn, "call_id": c.id, "tool": tool_name, "args": c.args, "ok": ok}),
                    );
                    journal(a, t, d).await?;
                    r
                }
            };
            if tool.is_some() && calls_run < agent.max_tool_calls {
                calls_run += 1;
            }
            let (content, is_error) = match outcome {
                Ok(Value::String(s)) => (s, false),
                Ok(v) => (v.to_string(), false),
                Err(e) => (e, true),
            };
            results.push(ToolResult { id: c.id.clone(), name: c.name.clone(), content, is_error });
        }
        history.push(Exchange { text, calls, results, note: None });
    }
    Err(CallError::Llm(FabricError::AgentTurns { step: step.name.clone(), turns, still_calling: Vec::new() }))
}

/// The final answer as the step's value: the text for a `String` step,
/// else JSON valid against the step's schema.
fn answer(text: &str, typed: bool, validator: Option<&jsonschema::Validator>) -> Result<Value, String> {
    if !typed {
        return Ok(Value::String(text.to_string()));
    }
    let v = serde_json::from_str::<Value>(crate::fabric::json_text(text)).map_err(|e| format!("the reply is not valid JSON: {e}"))?;
    if let Some(val) = validator {
        let errors: Vec<String> = val.iter_errors(&v).take(3).map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            return Err(format!("the reply does not match the schema: {}", errors.join("; ")));
        }
    }
    Ok(v)
}

/// Commits one transition of the agent (with its audit record) before the
/// agent acts on it, then publishes it.
async fn journal(a: &Attempt<'_>, t: Transition, d: Decision) -> Result<(), CallError> {
    let sh = a.sh;
    let mut batch = Batch { transitions: vec![t], decisions: vec![d], ..Default::default() };
    super::redact_batch(&sh.ctx.secrets, &mut batch);
    let published = batch.transitions.clone();
    sh.rt.store.commit(&sh.ctx.run_id, batch).await?;
    let at = crate::ids::now_ms();
    for t in published {
        sh.rt.bus.publish(Entry { run_id: sh.ctx.run_id.clone(), at_ms: at, transition: t });
    }
    Ok(())
}

/// The turns and tool results this attempt journaled before (a resumed run).
async fn read_log(a: &Attempt<'_>) -> Result<Log, CallError> {
    let mut log = Log::default();
    let journal = a.sh.rt.store.journal(&a.sh.ctx.run_id).await?;
    for e in journal {
        match e.transition {
            Transition::AgentTurn { step, item, attempt, turn, text, calls, verdict, usage, .. }
                if step == a.step.name && item == a.item && attempt == a.attempt =>
            {
                log.turns.insert(turn, Turn { text, calls, verdict, usage });
            }
            Transition::AgentTool { step, item, attempt, turn, call_id, output, error, .. }
                if step == a.step.name && item == a.item && attempt == a.attempt =>
            {
                let r = match (output, error) {
                    (_, Some(e)) => Err(e),
                    (Some(v), None) => Ok(v),
                    (None, None) => Ok(Value::Null),
                };
                log.results.insert((turn, call_id), r);
            }
            _ => {}
        }
    }
    Ok(log)
}
