//! `anthropic`: the Messages API (`POST {base}/v1/messages`, headers
//! `x-api-key` and `anthropic-version`). Structured output is a forced tool
//! call: one tool `answer` whose `input_schema` is the step's schema, and
//! `tool_choice: {"type": "tool", "name": "answer"}`.

use aos_compiler::ir::Structured;
use serde_json::{json, Value};

use super::agent::{Conversation, ToolCall};
use super::wire::{self, Endpoint};
use super::{Completion, Provider, ProviderError, Request};
use crate::store::BoxFuture;

/// The public endpoint, without the version path (as Anthropic's SDKs).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version every request names.
pub const VERSION: &str = "2023-06-01";

pub struct Anthropic {
    pub endpoint: Endpoint,
}

/// The request body and whether the schema was wrapped in `{"value": …}`
/// (a tool's `input_schema` must be an object).
pub fn body(req: &Request) -> (Value, bool) {
    let mut body = json!({
        "model": req.model.model_id,
        "max_tokens": req.max_tokens,
        "messages": [{"role": "user", "content": req.prompt}],
    });
    let mut wrapped = false;
    if let Some(conv) = &req.conversation {
        body["messages"] = json!(messages(&req.prompt, conv));
        body["tools"] = json!(conv.tools.iter().map(|t| json!({
            "name": t.wire_name, "description": t.description, "input_schema": t.parameters,
        })).collect::<Vec<_>>());
        body["tool_choice"] = json!({"type": if conv.tools_off { "none" } else { "auto" }});
        return (body, false);
    }
    // Anthropic has no JSON mode: `json_object` is the schema in the prompt.
    if let Some(schema) = req.schema.as_ref().filter(|_| req.model.structured == Structured::JsonSchema) {
        let (root, w) = wire::object_root(schema);
        wrapped = w;
        body["tools"] = json!([{
            "name": "answer",
            "description": "Give the answer. Its input is the answer itself, in the required shape.",
            "input_schema": root,
        }]);
        body["tool_choice"] = json!({"type": "tool", "name": "answer"});
    }
    (body, wrapped)
}

/// The messages of an agent's turn: the prompt, then per earlier turn the
/// assistant's text and `tool_use` blocks, and a user message with one
/// `tool_result` block per call (and the runtime's note as text).
fn messages(prompt: &str, conv: &Conversation) -> Vec<Value> {
    let mut out = vec![json!({"role": "user", "content": prompt})];
    for ex in &conv.history {
        let mut blocks: Vec<Value> = Vec::new();
        if !ex.text.is_empty() {
            blocks.push(json!({"type": "text", "text": ex.text}));
        }
        for c in &ex.calls {
            blocks.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.args}));
        }
        if blocks.is_empty() {
            blocks.push(json!({"type": "text", "text": "(no reply)"}));
        }
        out.push(json!({"role": "assistant", "content": blocks}));
        let mut answer: Vec<Value> = ex
            .results
            .iter()
            .map(|r| json!({"type": "tool_result", "tool_use_id": r.id, "content": r.content, "is_error": r.is_error}))
            .collect();
        if let Some(n) = &ex.note {
            answer.push(json!({"type": "text", "text": n}));
        }
        if !answer.is_empty() {
            out.push(json!({"role": "user", "content": answer}));
        }
    }
    out
}

impl Provider for Anthropic {
    fn complete<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let base = self.endpoint.base_for(req.model.base_url.as_deref());
            let url = format!("{base}/v1/messages");
            let (body, wrapped) = body(req);
            let headers = [("x-api-key", self.endpoint.key.as_str()), ("anthropic-version", VERSION)];
            let reply = match (&req.stream, &req.conversation) {
                // An agent's turns are not streamed.
                (Some(deltas), None) => {
                    let mut body = body;
                    body["stream"] = serde_json::json!(true);
                    let asm = super::stream::AnthropicStream::default();
                    super::stream::run(&self.endpoint, &url, &headers, &body, asm, deltas, req).await?
                }
                _ => self.endpoint.post(&url, &headers, &body).await?,
            };
            if req.conversation.is_some() { parse_turn(&reply) } else { parse(&reply, wrapped) }
        })
    }
}

/// Reads an agent's turn: the text blocks, and every `tool_use` block as a
/// tool call.
pub fn parse_turn(reply: &Value) -> Result<Completion, ProviderError> {
    let mut c = parse(&json!({"content": [], "usage": reply.get("usage").cloned().unwrap_or(Value::Null)}), false)?;
    let Some(blocks) = reply.get("content").and_then(Value::as_array) else {
        return Err(ProviderError::transport(format!(
            "anthropic: malformed response: no content array in {}",
            wire::clip(&reply.to_string(), 200)
        )));
    };
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => c.text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => c.tool_calls.push(ToolCall {
                id: b.get("id").and_then(Value::as_str).unwrap_or("").to_string(),
                name: b.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                args: b.get("input").cloned().unwrap_or_else(|| json!({})),
            }),
            _ => {}
        }
    }
    Ok(c)
}

/// Reads the `answer` tool call's input (else the text blocks) and `usage`.
/// Anthropic reports cache reads and writes apart from `input_tokens`; all
/// three are input. `output_tokens` includes extended-thinking tokens.
pub fn parse(reply: &Value, wrapped: bool) -> Result<Completion, ProviderError> {
    let Some(blocks) = reply.get("content").and_then(Value::as_array) else {
        return Err(ProviderError::transport(format!(
            "anthropic: malformed response: no content array in {}",
            wire::clip(&reply.to_string(), 200)
        )));
    };
    let tool = blocks.iter().find(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"));
    let text = match tool.and_then(|b| b.get("input")) {
        Some(input) => wire::unwrap_value(input.to_string(), wrapped),
        None => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
    };
    let usage = reply.get("usage").cloned().unwrap_or(Value::Null);
    let cache_read = wire::count(&usage, &["cache_read_input_tokens"]);
    let cache_write = wire::count(&usage, &["cache_creation_input_tokens"]);
    Ok(Completion {
        text,
        input_tokens: wire::count(&usage, &["input_tokens"]) + cache_read + cache_write,
        output_tokens: wire::count(&usage, &["output_tokens"]),
        cached_tokens: cache_read,
        reasoning_tokens: 0,
        confidence: None,
        agreement_probability: None,
        tool_calls: Vec::new(),
    })
}
