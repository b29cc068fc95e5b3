//! `openai`: the Chat Completions API (`POST {base}/chat/completions`),
//! which OpenAI and the OpenAI-compatible servers (Ollama, vLLM, llama.cpp's
//! server, gateways) speak. Structured output uses `response_format:
//! {"type": "json_schema", …}`.

use aos_compiler::ir::{Model, Structured};
use serde_json::{json, Value};

use super::agent::{self, Conversation, ToolCall};
use super::embed;
use super::stream;
use super::wire::{self, Endpoint};
use super::{Completion, Provider, ProviderError, Purpose, Request};
use crate::store::BoxFuture;

/// The public endpoint, version path included (as OpenAI's SDKs).
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

pub struct OpenAi {
    pub endpoint: Endpoint,
}

/// The request body and whether the schema was wrapped in `{"value": …}`
/// (structured outputs need an object at the root).
pub fn body(req: &Request, base: &str, logprobs: bool) -> (Value, bool) {
    let mut body = json!({
        "model": req.model.model_id,
        "messages": [{"role": "user", "content": req.prompt}],
    });
    // OpenAI's own endpoint deprecates `max_tokens` (its reasoning models
    // refuse it); compatible servers widely know only `max_tokens`.
    let key = if base.starts_with(DEFAULT_BASE_URL) { "max_completion_tokens" } else { "max_tokens" };
    body[key] = json!(req.max_tokens);
    if logprobs && req.purpose == Purpose::Verify {
        body["logprobs"] = json!(true);
    }
    let mut wrapped = false;
    if let Some(conv) = &req.conversation {
        body["messages"] = json!(messages(&req.prompt, conv));
        body["tools"] = json!(conv.tools.iter().map(|t| json!({
            "type": "function",
            "function": {"name": t.wire_name, "description": t.description, "parameters": t.parameters},
        })).collect::<Vec<_>>());
        body["tool_choice"] = json!(if conv.tools_off { "none" } else { "auto" });
        return (body, false);
    }
    if let Some(schema) = &req.schema {
        let (root, w) = wire::object_root(schema);
        wrapped = w;
        body["response_format"] = match req.model.structured {
            // The schema is in the prompt (the router put it there). Off
            // OpenAI's own endpoint it also goes in `schema`, which
            // llama-cpp-python turns into a grammar (others ignore it).
            Structured::JsonObject if base.starts_with(DEFAULT_BASE_URL) => json!({"type": "json_object"}),
            Structured::JsonObject => json!({"type": "json_object", "schema": root}),
            _ => json!({
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": root, "strict": strict_ok(&root)},
            }),
        };
    }
    (body, wrapped)
}

/// The messages of an agent's turn: the prompt, then per earlier turn the
/// assistant message with its `tool_calls`, one `tool` message per result,
/// and the runtime's note as a user message.
fn messages(prompt: &str, conv: &Conversation) -> Vec<Value> {
    let mut out = vec![json!({"role": "user", "content": prompt})];
    for ex in &conv.history {
        let mut m = json!({"role": "assistant", "content": if ex.text.is_empty() { Value::Null } else { json!(ex.text) }});
        if !ex.calls.is_empty() {
            m["tool_calls"] = json!(ex.calls.iter().map(|c| json!({
                "id": c.id, "type": "function",
                "function": {"name": c.name, "arguments": c.args.to_string()},
            })).collect::<Vec<_>>());
        }
        out.push(m);
        for r in &ex.results {
            out.push(json!({"role": "tool", "tool_call_id": r.id, "content": r.content}));
        }
        if let Some(n) = &ex.note {
            out.push(json!({"role": "user", "content": n}));
        }
    }
    out
}

/// OpenAI's strict mode accepts only schemas whose every object lists all
/// its properties as required and forbids others; send `strict: true` only
/// for those (the reply is validated either way).
fn strict_ok(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some("object") || m.contains_key("properties") {
                let props: Vec<&String> = m.get("properties").and_then(Value::as_object).map(|p| p.keys().collect()).unwrap_or_default();
                let required: Vec<&str> = m.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                if m.get("additionalProperties") != Some(&Value::Bool(false)) || props.iter().any(|p| !required.contains(&p.as_str())) {
                    return false;
                }
            }
            m.values().all(strict_ok)
        }
        Value::Array(items) => items.iter().all(strict_ok),
        _ => true,
    }
}

impl Provider for OpenAi {
    fn complete<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let base = self.endpoint.base_for(req.model.base_url.as_deref());
            let url = format!("{base}/chat/completions");
            let (body, wrapped) = body(req, base, self.endpoint.logprobs);
            let auth = format!("Bearer {}", self.endpoint.key);
            let reply = match &req.stream {
                Some(deltas) => {
                    let mut body = body;
                    body["stream"] = json!(true);
                    body["stream_options"] = json!({"include_usage": true});
                    let asm = stream::OpenAiStream::default();
                    stream::run(&self.endpoint, &url, &[("authorization", &auth)], &body, asm, deltas, req)
                        .await
                        .map_err(|e| explain(e, req, base, &url, &body))?
                }
                None => self.endpoint.post(&url, &[("authorization", &auth)], &body).await.map_err(|e| explain(e, req, base, &url, &body))?,
            };
            parse(&reply, wrapped)
        })
    }

    /// `POST {base}/embeddings` with `{model, input: [...], encoding_format:
    /// "float"}`.
    fn embed<'a>(&'a self, model: &'a Model, texts: &'a [String], _purpose: embed::Purpose) -> BoxFuture<'a, Result<embed::Vectors, ProviderError>> {
        Box::pin(async move {
            let base = self.endpoint.base_for(model.base_url.as_deref());
            let url = format!("{base}/embeddings");
            let body = json!({"model": model.model_id, "input": texts, "encoding_format": "float"});
            let auth = format!("Bearer {}", self.endpoint.key);
            let reply = self.endpoint.post(&url, &[("authorization", &auth)], &body).await?;
            parse_embeddings(&reply)
        })
    }
}

/// Reads `data[].embedding` in the order of `data[].index` and
/// `usage.prompt_tokens`.
pub fn parse_embeddings(reply: &Value) -> Result<embed::Vectors, ProviderError> {
    let malformed = |what: &str| ProviderError::transport(format!("openai: malformed embeddings response: {what} in {}", wire::clip(&reply.to_string(), 200)));
    let data = reply.get("data").and_then(Value::as_array).ok_or_else(|| malformed("no `data` list"))?;
    let mut rows: Vec<(u64, Vec<f32>)> = Vec::with_capacity(data.len());
    for (i, d) in data.iter().enumerate() {
        let index = d.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
        let v = d.get("embedding").and_then(Value::as_array).ok_or_else(|| malformed("an item without an `embedding` list"))?;
        let v: Option<Vec<f32>> = v.iter().map(|x| x.as_f64().map(|f| f as f32)).collect();
        rows.push((index, v.ok_or_else(|| malformed("a non-number in an embedding"))?));
    }
    rows.sort_by_key(|r| r.0);
    if rows.iter().enumerate().any(|(i, r)| r.0 != i as u64) {
        return Err(malformed("`index` values that are not 0..n"));
    }
    let input_tokens = wire::at(reply, &["usage", "prompt_tokens"]).and_then(Value::as_u64);
    Ok(embed::Vectors { vectors: rows.into_iter().map(|r| r.1).collect(), input_tokens })
}

/// Adds what a user needs to fix a failed request: a server that rejects
/// `response_format` is not retried and the error names the `structured:`
/// attribute; a 404 names the URL and, when the base URL has no `/v1`,
/// suggests it.
pub fn explain(e: ProviderError, req: &Request, base: &str, url: &str, body: &Value) -> ProviderError {
    let message = e.to_string();
    let http = |code: &str| message.starts_with(&format!("openai: HTTP {code}"));
    let status_4xx_5xx = ["4", "5"].iter().any(|d| http(d));
    if status_4xx_5xx && body.get("response_format").is_some() && message.to_lowercase().contains("response_format") {
        let mode = req.model.structured.as_str();
        let other = if req.model.structured == Structured::JsonSchema { "`structured: \"json_object\"` or `structured: \"prompt\"`" } else { "`structured: \"prompt\"`" };
        return ProviderError::Fatal(format!(
            "{message} (the server at {base} does not take `response_format` of type {mode} (the model's `structured:` mode); set {other} on model `{}`; not retried)",
            req.model.name
        ));
    }
    if http("404") {
        let hint = if base.trim_end_matches('/').ends_with("/v1") {
            String::new()
        } else {
            format!("; OpenAI-compatible servers serve under `/v1`: try the base URL `{}/v1`", base.trim_end_matches('/'))
        };
        let text = format!("{message} (POST {url}{hint})");
        return match e {
            ProviderError::Refused(_) => ProviderError::Refused(text),
            _ => ProviderError::Fatal(text),
        };
    }
    e
}

/// Reads `choices[0].message.content` and `usage`. `prompt_tokens`
/// includes cached tokens and `completion_tokens` includes reasoning tokens.
pub fn parse(reply: &Value, wrapped: bool) -> Result<Completion, ProviderError> {
    let message = wire::at(reply, &["choices", "0", "message"])
        .ok_or_else(|| ProviderError::transport(format!("openai: malformed response: no choices[0].message in {}", wire::clip(&reply.to_string(), 200))))?;
    let tool_calls: Vec<ToolCall> = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, c)| ToolCall {
                    id: c.get("id").and_then(Value::as_str).map_or_else(|| format!("call_{i}"), str::to_string),
                    name: wire::at(c, &["function", "name"]).and_then(Value::as_str).unwrap_or("").to_string(),
                    args: agent::parse_args(wire::at(c, &["function", "arguments"]).and_then(Value::as_str).unwrap_or("{}")),
                })
                .collect()
        })
        .unwrap_or_default();
    let text = match (message.get("content").and_then(Value::as_str), message.get("refusal").and_then(Value::as_str)) {
        (Some(t), _) => t.to_string(),
        (None, Some(r)) => format!("(refused) {r}"),
        (None, None) if !tool_calls.is_empty() => String::new(),
        (None, None) => return Err(ProviderError::transport("openai: malformed response: the message has no content".into())),
    };
    let usage = reply.get("usage").cloned().unwrap_or(Value::Null);
    let tokens = wire::at(reply, &["choices", "0", "logprobs", "content"]).and_then(Value::as_array);
    let agreement_probability = tokens.and_then(|ts| {
        wire::agreement_probability(ts.iter().filter_map(|t| Some((t.get("token")?.as_str()?, t.get("logprob")?.as_f64()?))))
    });
    Ok(Completion {
        text: wire::unwrap_value(text, wrapped),
        input_tokens: wire::count(&usage, &["prompt_tokens"]),
        output_tokens: wire::count(&usage, &["completion_tokens"]),
        cached_tokens: wire::count(&usage, &["prompt_tokens_details", "cached_tokens"]),
        reasoning_tokens: wire::count(&usage, &["completion_tokens_details", "reasoning_tokens"]),
        confidence: None,
        agreement_probability,
        tool_calls,
    })
}
