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
    let out = a
        .sh
        .rt
        .fabric
        .call(
            &a.sh.ctx.program,
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
        )
        .await;
    a.usage = out.usage;
    a.decisions = out.decisions;
    match (out.result, out.error) {
        (Some(v), _) => Ok(v),
        (None, Some(e)) => Err(CallError::Llm(e)),
        (None, None) => Err(CallError::Llm(crate::fabric::FabricError::NoReply)),
    }
}
