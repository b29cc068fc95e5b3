//! `gemini`: `POST {base}/v1beta/models/{model}:generateContent` with the
//! key in `x-goog-api-key` (never in the URL, so it cannot reach a log line
//! that prints one). Structured output uses `generationConfig.
//! responseMimeType: "application/json"` with `responseJsonSchema`.

use aos_compiler::ir::Structured;
use serde_json::{json, Value};

use super::wire::{self, Endpoint};
use super::{Completion, Provider, ProviderError, Purpose, Request};
use crate::store::BoxFuture;

/// The public endpoint: the host only.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

pub struct Gemini {
    pub endpoint: Endpoint,
}

/// The request body.
pub fn body(req: &Request, logprobs: bool) -> Value {
    let mut config = json!({"maxOutputTokens": req.max_tokens});
    if logprobs && req.purpose == Purpose::Verify {
        config["responseLogprobs"] = json!(true);
    }
    if let Some(schema) = &req.schema {
        config["responseMimeType"] = json!("application/json");
        if req.model.structured == Structured::JsonSchema {
            config["responseJsonSchema"] = schema.clone();
        }
    }
    json!({
        "contents": [{"role": "user", "parts": [{"text": req.prompt}]}],
        "generationConfig": config,
    })
}

impl Provider for Gemini {
    fn complete<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let base = self.endpoint.base_for(req.model.base_url.as_deref());
            let model = req.model.model_id.strip_prefix("models/").unwrap_or(&req.model.model_id);
            let headers = [("x-goog-api-key", self.endpoint.key.as_str())];
            let reply = match &req.stream {
                Some(deltas) => {
                    let url = format!("{base}/v1beta/models/{model}:streamGenerateContent?alt=sse");
                    let asm = super::stream::GeminiStream::default();
                    super::stream::run(&self.endpoint, &url, &headers, &body(req, self.endpoint.logprobs), asm, deltas, &req.call_key, &req.model.name)
                        .await?
                }
                None => {
                    let url = format!("{base}/v1beta/models/{model}:generateContent");
                    self.endpoint.post(&url, &headers, &body(req, self.endpoint.logprobs)).await?
                }
            };
            parse(&reply)
        })
    }
}

/// Reads the first candidate's non-thought text parts and `usageMetadata`.
/// `promptTokenCount` includes cached content; tool-use prompt tokens are
/// input too; thinking tokens (`thoughtsTokenCount`) are billed as output
/// but not counted in `candidatesTokenCount`, so they are added.
pub fn parse(reply: &Value) -> Result<Completion, ProviderError> {
    let usage = reply.get("usageMetadata").cloned().unwrap_or(Value::Null);
    let Some(parts) = wire::at(reply, &["candidates", "0", "content", "parts"]).and_then(Value::as_array) else {
        if let Some(reason) = wire::at(reply, &["promptFeedback", "blockReason"]).and_then(Value::as_str) {
            return Err(ProviderError::Fatal(format!("gemini: the prompt was blocked ({reason})")));
        }
        let finish = wire::at(reply, &["candidates", "0", "finishReason"]).and_then(Value::as_str);
        return Err(ProviderError::transport(match finish {
            Some(f) => format!("gemini: the candidate has no content (finishReason {f})"),
            None => format!("gemini: malformed response: no candidates[0].content.parts in {}", wire::clip(&reply.to_string(), 200)),
        }));
    };
    let text = parts
        .iter()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("");
    let thoughts = wire::count(&usage, &["thoughtsTokenCount"]);
    let chosen = wire::at(reply, &["candidates", "0", "logprobsResult", "chosenCandidates"]).and_then(Value::as_array);
    let agreement_probability = chosen.and_then(|ts| {
        wire::agreement_probability(ts.iter().filter_map(|t| Some((t.get("token")?.as_str()?, t.get("logProbability")?.as_f64()?))))
    });
    Ok(Completion {
        text,
        input_tokens: wire::count(&usage, &["promptTokenCount"]) + wire::count(&usage, &["toolUsePromptTokenCount"]),
        output_tokens: wire::count(&usage, &["candidatesTokenCount"]) + thoughts,
        cached_tokens: wire::count(&usage, &["cachedContentTokenCount"]),
        reasoning_tokens: thoughts,
        confidence: None,
        agreement_probability,
    })
}
