//! LLM calls: the prompt rendered, the reply routed through the fabric
//! (with the step's JSON Schema validator compiled once per run).

use aos_compiler::ir::Expr;
use serde_json::Value;

use super::attempt::{Attempt, CallError};
use crate::fabric::LlmCall;
use crate::interp;

pub(super) async fn call(a: &mut Attempt<'_>, role: &str, prompt: &Expr) -> Result<Value, CallError> {
    let prompt = interp::render(&a.eval(prompt)?);
    let validator = match a.sh.schemas.get(a.index).and_then(Option::as_ref) {
        Some(Ok(v)) => Some(v.clone()),
        Some(Err(e)) => return Err(CallError::Schema(e.clone())),
        None => None,
    };
    let step = a.step;
    let cached = match a.cache {
        Some(c) => {
            let key = crate::cache::llm_key(&a.sh.ctx.program, a.asker(c), step, role, &prompt);
            if let Some(v) = a.cached(&key).await {
                return Ok(v);
            }
            Some((c, key))
        }
        None => None,
    };
    let routed = match step.route {
        Some(r) => super::route::reorder(a, role, r).await,
        None => None,
    };
    let program = routed.as_ref().unwrap_or(&a.sh.ctx.program);
    let out = a
        .sh
        .rt
        .fabric
        .call_attempt(
            program,
            LlmCall {
                role,
                prompt,
                max_tokens: step.max_tokens,
                max_reply_bytes: step.max_reply_bytes,
                max_input_tokens: step.max_input_tokens,
                schema: step.schema.as_ref(),
                validator: validator.as_deref(),
                typed: step.typed,
                verify: step.verify.as_ref(),
                call_key: a.call_key(),
                step: &step.name,
            },
            a.attempt,
        )
        .await;
    a.usage = out.usage;
    a.decisions.extend(out.decisions);
    // The models' measured statistics (`route: measured(…)`, `aosc models
    // --stats`); a store that cannot take them does not fail the step.
    let now = crate::ids::now_ms();
    for sample in crate::stats::samples(&a.decisions) {
        if let Err(e) = a.sh.rt.store.record_model_sample(&sample, now).await {
            tracing::warn!(model = %sample.key, error = %e, "model statistics not recorded");
        }
    }
    match (out.result, out.error) {
        (Some(v), _) => {
            if let Some((c, key)) = cached {
                let model = answered_by(&a.decisions);
                a.remember(c, &key, &v, model).await;
            }
            Ok(v)
        }
        (None, Some(e)) => Err(CallError::Llm(e)),
        (None, None) => Err(CallError::Llm(crate::fabric::FabricError::NoReply)),
    }
}

/// The model whose answer was accepted: the last `model` decision that
/// answered (not verified).
fn answered_by(decisions: &[crate::audit::Decision]) -> Option<String> {
    decisions
        .iter()
        .rev()
        .find(|d| d.kind == "model" && d.data.get("purpose").and_then(Value::as_str) == Some("answer"))
        .and_then(|d| d.data.get("model")?.as_str().map(str::to_string))
}
