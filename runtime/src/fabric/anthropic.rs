//! `anthropic`: the Messages API (`POST {base}/v1/messages`, headers
//! `x-api-key` and `anthropic-version`). Structured output is a forced tool
//! call: one tool `answer` whose `input_schema` is the step's schema, and
//! `tool_choice: {"type": "tool", "name": "answer"}`.

use aos_compiler::ir::Structured;
use serde_json::{json, Value};

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

impl Provider for Anthropic {
    fn complete<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let base = self.endpoint.base_for(req.model.base_url.as_deref());
            let url = format!("{base}/v1/messages");
            let (body, wrapped) = body(req);
            let headers = [("x-api-key", self.endpoint.key.as_str()), ("anthropic-version", VERSION)];
            let reply = match &req.stream {
                Some(deltas) => {
                    let mut body = body;
                    body["stream"] = serde_json::json!(true);
                    let asm = super::stream::AnthropicStream::default();
                    super::stream::run(&self.endpoint, &url, &headers, &body, asm, deltas, &req.call_key, &req.model.name).await?
                }
                None => self.endpoint.post(&url, &headers, &body).await?,
            };
            parse(&reply, wrapped)
        })
    }
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
    })
}
