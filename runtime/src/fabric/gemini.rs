//! `gemini`: `POST {base}/v1beta/models/{model}:generateContent` with the
//! key in `x-goog-api-key` (never in the URL, so it cannot reach a log line
//! that prints one). Structured output uses `generationConfig.
//! responseMimeType: "application/json"` with `responseJsonSchema`.

use aos_compiler::ir::{Model, Structured};
use serde_json::{json, Value};

use super::agent::{Conversation, ToolCall};
use super::embed;
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
    if let Some(conv) = &req.conversation {
        let declarations: Vec<Value> = conv
            .tools
            .iter()
            .map(|t| json!({"name": t.wire_name, "description": t.description, "parametersJsonSchema": t.parameters}))
            .collect();
        return json!({
            "contents": contents(&req.prompt, conv),
            "tools": [{"functionDeclarations": declarations}],
            "toolConfig": {"functionCallingConfig": {"mode": if conv.tools_off { "NONE" } else { "AUTO" }}},
            "generationConfig": config,
        });
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

/// The contents of an agent's turn: the prompt, then per earlier turn the
/// model's text and `functionCall` parts, and a user turn with one
/// `functionResponse` part per call (and the runtime's note as text).
fn contents(prompt: &str, conv: &Conversation) -> Vec<Value> {
    let mut out = vec![json!({"role": "user", "parts": [{"text": prompt}]})];
    for ex in &conv.history {
        let mut parts: Vec<Value> = Vec::new();
        if !ex.text.is_empty() {
            parts.push(json!({"text": ex.text}));
        }
        for c in &ex.calls {
            let mut call = json!({"name": c.name, "args": c.args});
            if !c.id.starts_with(GENERATED_ID) {
                call["id"] = json!(c.id);
            }
            parts.push(json!({"functionCall": call}));
        }
        if parts.is_empty() {
            parts.push(json!({"text": "(no reply)"}));
        }
        out.push(json!({"role": "model", "parts": parts}));
        let mut answer: Vec<Value> = ex
            .results
            .iter()
            .map(|r| {
                let key = if r.is_error { "error" } else { "result" };
                let mut resp = json!({"name": r.name, "response": {key: r.content}});
                if !r.id.starts_with(GENERATED_ID) {
                    resp["id"] = json!(r.id);
                }
                json!({"functionResponse": resp})
            })
            .collect();
        if let Some(n) = &ex.note {
            answer.push(json!({"text": n}));
        }
        if !answer.is_empty() {
            out.push(json!({"role": "user", "parts": answer}));
        }
    }
    out
}

/// The prefix of the ids given to calls that came without one (Gemini
/// models before the `id` field): they are not sent back.
const GENERATED_ID: &str = "gemini_call_";

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
                    super::stream::run(&self.endpoint, &url, &headers, &body(req, self.endpoint.logprobs), asm, deltas, req)
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

    /// `POST {base}/v1beta/models/{model}:batchEmbedContents`, one request
    /// per text, with the task type of the purpose (`RETRIEVAL_DOCUMENT`
    /// for entries, `RETRIEVAL_QUERY` for queries).
    fn embed<'a>(&'a self, model: &'a Model, texts: &'a [String], purpose: embed::Purpose) -> BoxFuture<'a, Result<embed::Vectors, ProviderError>> {
        Box::pin(async move {
            let base = self.endpoint.base_for(model.base_url.as_deref());
            let id = model.model_id.strip_prefix("models/").unwrap_or(&model.model_id);
            let url = format!("{base}/v1beta/models/{id}:batchEmbedContents");
            let task = match purpose {
                embed::Purpose::Document => "RETRIEVAL_DOCUMENT",
                embed::Purpose::Query => "RETRIEVAL_QUERY",
            };
            let requests: Vec<Value> =
                texts.iter().map(|t| json!({"model": format!("models/{id}"), "content": {"parts": [{"text": t}]}, "taskType": task})).collect();
            let headers = [("x-goog-api-key", self.endpoint.key.as_str())];
            let reply = self.endpoint.post(&url, &headers, &json!({"requests": requests})).await?;
            parse_embeddings(&reply)
        })
    }
}

/// Reads `embeddings[].values` (in the order of the requests) and, when
/// the response has it, `usageMetadata.promptTokenCount`.
pub fn parse_embeddings(reply: &Value) -> Result<embed::Vectors, ProviderError> {
    let malformed = |what: &str| ProviderError::transport(format!("gemini: malformed embeddings response: {what} in {}", wire::clip(&reply.to_string(), 200)));
    let list = reply.get("embeddings").and_then(Value::as_array).ok_or_else(|| malformed("no `embeddings` list"))?;
    let vectors: Option<Vec<Vec<f32>>> = list
        .iter()
        .map(|e| e.get("values").and_then(Value::as_array).and_then(|vs| vs.iter().map(|x| x.as_f64().map(|f| f as f32)).collect()))
        .collect();
    let vectors = vectors.ok_or_else(|| malformed("an embedding without a `values` list of numbers"))?;
    let input_tokens = wire::at(reply, &["usageMetadata", "promptTokenCount"]).and_then(Value::as_u64);
    Ok(embed::Vectors { vectors, input_tokens })
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
    let tool_calls: Vec<ToolCall> = parts
        .iter()
        .filter_map(|p| p.get("functionCall"))
        .enumerate()
        .map(|(i, f)| ToolCall {
            id: f.get("id").and_then(Value::as_str).map_or_else(|| format!("{GENERATED_ID}{i}"), str::to_string),
            name: f.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
            args: f.get("args").cloned().unwrap_or_else(|| json!({})),
        })
        .collect();
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
        tool_calls,
    })
}
