//! A loopback HTTP server that speaks the three providers' documented wire
//! formats, for tests: OpenAI Chat Completions (`POST /v1/chat/completions`,
//! `Authorization: Bearer`), Anthropic Messages (`POST /v1/messages`,
//! `x-api-key`, `anthropic-version`, `max_tokens` required) and Gemini
//! `POST /v1beta/models/{model}:generateContent` (`x-goog-api-key`).
//!
//! Request and response bodies, status codes, headers and error bodies
//! follow each provider's API reference: OpenAI errors are
//! `{"error": {"message", "type", "param", "code"}}`; Anthropic errors are
//! `{"type": "error", "error": {"type", "message"}, "request_id"}` (529 is
//! `overloaded_error`); Gemini errors are `{"error": {"code", "message",
//! "status"}}` (a bad key is 400 `INVALID_ARGUMENT`).
//!
//! Each model id has a script of actions; once it is spent the model
//! answers automatically (JSON valid against the requested schema, else a
//! sentence). Every reply reports 120 input tokens (20 cached) and 30 output
//! tokens (10 of them reasoning), in each provider's own usage fields.
//!
//! The embeddings endpoints (OpenAI `POST /v1/embeddings`, Gemini
//! `:batchEmbedContents` and `:embedContent`) are in [`embeddings`].
//!
//! Used by `runtime/tests/providers.rs` and `tests/e2e/tests/providers_e2e.rs`
//! (through `aos-testkit`); it depends only on axum, tokio and serde_json.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

pub mod embeddings;

/// What the server does with one request for a model.
#[derive(Clone, Debug)]
pub enum Act {
    /// A success: schema-valid JSON when structured output was asked for,
    /// else a sentence naming the model.
    Auto,
    /// A success whose reply text (or, for Anthropic's forced tool, whose
    /// tool input, parsed as JSON) is this.
    Text(String),
    /// An error in the provider's own shape: status, error type, message,
    /// extra response headers.
    Error { status: u16, kind: String, message: String, headers: Vec<(String, String)> },
    /// 200 with a body that is not JSON.
    Malformed,
    /// Anthropic's 429 for a reached monthly spend limit (with
    /// `error.details.error_code`); never worth retrying.
    SpendLimit,
    /// Waits this long, then answers as `Auto`.
    Slow(Duration),
    /// A streamed request gets the first events of an `Auto` answer and
    /// then the stream ends without its end marker (`[DONE]`,
    /// `message_stop`, a `finishReason`), as when a connection drops.
    /// A request that does not stream gets a 200 with a truncated body.
    Cut,
    /// A success that calls a tool through the provider's native tool
    /// calling (OpenAI `tool_calls`, Anthropic `tool_use`, Gemini
    /// `functionCall`): the function's name and arguments.
    CallTool { name: String, args: Value },
}

impl Act {
    pub fn text(t: &str) -> Act {
        Act::Text(t.to_string())
    }

    /// A 429 rate limit asking to wait `ms` via `retry-after-ms` and
    /// `retry-after` (seconds, rounded up).
    pub fn rate_limited(provider: &str, ms: u64) -> Act {
        let (kind, message) = match provider {
            "openai" => ("rate_limit_exceeded", "Rate limit reached for requests"),
            "anthropic" => ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
            _ => ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        };
        Act::Error {
            status: 429,
            kind: kind.into(),
            message: message.into(),
            headers: vec![("retry-after-ms".into(), ms.to_string()), ("retry-after".into(), ms.div_ceil(1000).to_string())],
        }
    }

    pub fn call_tool(name: &str, args: Value) -> Act {
        Act::CallTool { name: name.to_string(), args }
    }

    pub fn server_error(provider: &str) -> Act {
        let kind = match provider {
            "openai" => "server_error",
            "anthropic" => "api_error",
            _ => "INTERNAL",
        };
        Act::Error { status: 500, kind: kind.into(), message: "An internal error has occurred.".into(), headers: vec![] }
    }

    /// Anthropic's 529.
    pub fn overloaded() -> Act {
        Act::Error { status: 529, kind: "overloaded_error".into(), message: "Overloaded".into(), headers: vec![] }
    }

    /// OpenAI's 429 for an exhausted quota (never worth retrying).
    pub fn insufficient_quota() -> Act {
        Act::Error {
            status: 429,
            kind: "insufficient_quota".into(),
            message: "You exceeded your current quota, please check your plan and billing details.".into(),
            headers: vec![],
        }
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub provider: &'static str,
    pub path: String,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    pub body: Value,
    /// The model id (from the body, or Gemini's path).
    pub model: String,
    /// The status the server answered with.
    pub status: u16,
}

/// The keys the server accepts.
#[derive(Clone, Debug)]
pub struct Keys {
    pub openai: String,
    pub anthropic: String,
    pub gemini: String,
}

struct Inner {
    keys: Keys,
    /// Model ids whose server rejects `response_format: json_schema` as
    /// llama.cpp's server did before it took schemas: HTTP 500,
    /// `{"error": {"code": 500, "message": "response_format type must be one
    /// of \"text\" or \"json_object\", but got: json_schema", "type":
    /// "server_error"}}`.
    no_json_schema: Mutex<Vec<String>>,
    scripts: Mutex<HashMap<String, VecDeque<Act>>>,
    seen: Mutex<Vec<Seen>>,
    /// When set, each event of a streamed reply is sent this long after
    /// the one before (the first too): a model generating slowly.
    pace: Mutex<Option<Duration>>,
}

/// The running server.
pub struct Fake {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Fake {
    /// Starts on `127.0.0.1:0` in the current tokio runtime.
    pub async fn start(keys: Keys) -> Fake {
        let inner = Arc::new(Inner { keys, no_json_schema: Mutex::new(Vec::new()), scripts: Mutex::new(HashMap::new()), seen: Mutex::new(Vec::new()), pace: Mutex::new(None) });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/embeddings", post(openai_embeddings))
            .route("/v1/messages", post(anthropic))
            .route("/v1beta/models/{call}", post(gemini))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fake { addr, inner }
    }

    /// `http://127.0.0.1:PORT` (Anthropic's and Gemini's base URL).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (OpenAI's base URL includes the version).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Appends actions to a model's script.
    pub fn script(&self, model: &str, acts: Vec<Act>) {
        self.inner.scripts.lock().unwrap().entry(model.to_string()).or_default().extend(acts);
    }

    /// Streams every streamed reply slowly: one event each `every`, over
    /// one chunked HTTP response.
    pub fn pace_streams(&self, every: Duration) {
        *self.inner.pace.lock().unwrap() = Some(every);
    }

    /// Makes `model`'s server one without `response_format: json_schema`.
    pub fn without_json_schema(&self, model: &str) {
        self.inner.no_json_schema.lock().unwrap().push(model.to_string());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    pub fn seen_for(&self, model: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.model == model).collect()
    }
}

fn header_map(h: &HeaderMap) -> HashMap<String, String> {
    h.iter().map(|(k, v)| (k.as_str().to_lowercase(), v.to_str().unwrap_or("").to_string())).collect()
}

fn next_act(inner: &Inner, model: &str) -> Act {
    inner.scripts.lock().unwrap().get_mut(model).and_then(VecDeque::pop_front).unwrap_or(Act::Auto)
}

fn record(inner: &Inner, provider: &'static str, path: String, headers: &HeaderMap, body: &Value, model: &str, status: u16) {
    inner.seen.lock().unwrap().push(Seen { provider, path, headers: header_map(headers), body: body.clone(), model: model.to_string(), status });
}

fn respond(status: u16, headers: &[(String, String)], body: String) -> Response {
    let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
    resp.headers_mut().insert("content-type", "application/json".parse().unwrap());
    for (k, v) in headers {
        resp.headers_mut().insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    resp
}

/// A value valid against the (checker-emitted subset of) JSON Schema.
pub fn sample(schema: &Value) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        return options.first().cloned().unwrap_or(Value::Null);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = schema.get(key) {
            return options.iter().find(|o| o.get("type") != Some(&json!("null"))).map(sample).unwrap_or(Value::Null);
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null").to_string(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "object" => {
            let mut m = serde_json::Map::new();
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (k, s) in props {
                    m.insert(k.clone(), sample(s));
                }
            }
            Value::Object(m)
        }
        "array" => {
            let n = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1).max(1);
            Value::Array((0..n).map(|_| sample(schema.get("items").unwrap_or(&json!({})))).collect())
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        "number" => json!(schema.get("maximum").and_then(Value::as_f64).unwrap_or(1.0).min(1.0)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => json!("fine"),
    }
}

/// The probability the fake gives every `true`/`false` token it reports
/// log-probabilities for; other tokens are certain.
pub const BOOL_TOKEN_PROBABILITY: f64 = 0.6;

/// Tokens of a reply (runs of letters and digits, or single other
/// characters) with their log-probabilities.
fn tokens(text: &str) -> Vec<(String, f64)> {
    let mut out: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out.into_iter()
        .map(|t| {
            let lp = if t == "true" || t == "false" { BOOL_TOKEN_PROBABILITY.ln() } else { 0.0 };
            (t, lp)
        })
        .collect()
}

/// The reply text for a success, and whether it is JSON.
async fn reply_text(act: &Act, model: &str, schema: Option<&Value>) -> Option<String> {
    match act {
        Act::Text(t) => Some(t.clone()),
        Act::Slow(d) => {
            tokio::time::sleep(*d).await;
            Some(auto(model, schema))
        }
        Act::Auto => Some(auto(model, schema)),
        _ => None,
    }
}

fn auto(model: &str, schema: Option<&Value>) -> String {
    match schema {
        Some(s) => sample(s).to_string(),
        None => format!("A fine answer from {model}."),
    }
}

fn bad_json(provider: &str) -> Response {
    let body = match provider {
        "anthropic" => json!({"type": "error", "error": {"type": "invalid_request_error", "message": "The request body is not valid JSON."}}),
        "gemini" => json!({"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}),
        _ => json!({"error": {"message": "We could not parse the JSON body of your request.", "type": "invalid_request_error", "param": null, "code": null}}),
    };
    respond(400, &[], body.to_string())
}

async fn openai_embeddings(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else { return bad_json("openai") };
    embeddings::openai(inner, headers, req).await
}

async fn openai(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let path = "/v1/chat/completions".to_string();
    let Ok(req) = serde_json::from_slice::<Value>(&body) else { return bad_json("openai") };
    let model = req.get("model").and_then(Value::as_str).unwrap_or("").to_string();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth != format!("Bearer {}", inner.keys.openai) {
        record(&inner, "openai", path, &headers, &req, &model, 401);
        // OpenAI echoes (part of) the key it got; the client must not log it.
        let got = auth.strip_prefix("Bearer ").unwrap_or(auth);
        let body = json!({"error": {"message": format!("Incorrect API key provided: {got}. You can find your API key at https://platform.openai.com/account/api-keys."), "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
        return respond(401, &[], body.to_string());
    }
    let format = req.pointer("/response_format/type").and_then(Value::as_str).unwrap_or("text");
    if format == "json_schema" && inner.no_json_schema.lock().unwrap().contains(&model) {
        record(&inner, "openai", path, &headers, &req, &model, 500);
        let message = "response_format type must be one of \"text\" or \"json_object\", but got: json_schema";
        return respond(500, &[], json!({"error": {"code": 500, "message": message, "type": "server_error"}}).to_string());
    }
    let act = next_act(&inner, &model);
    let schema = req.pointer("/response_format/json_schema/schema").cloned();
    let status = match &act {
        Act::Error { status, .. } => *status,
        Act::SpendLimit => 429,
        _ => 200,
    };
    record(&inner, "openai", path, &headers, &req, &model, status);
    if let Act::Error { status, kind, message, headers } = &act {
        let body = json!({"error": {"message": message, "type": kind, "param": null, "code": kind}});
        return respond(*status, headers, body.to_string());
    }
    if let Act::Malformed = act {
        return respond(200, &[], "{\"id\": \"chatcmpl-1\", \"choices\": [".into());
    }
    if let Some(problem) = openai_tool_problem(&req) {
        let body = json!({"error": {"message": problem, "type": "invalid_request_error", "param": "messages", "code": null}});
        return respond(400, &[], body.to_string());
    }
    if let Act::CallTool { name, args } = &act {
        let n = req.get("messages").and_then(Value::as_array).map_or(0, Vec::len);
        let body = json!({
            "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"id": format!("call_fake{n}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}}]},
                "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                      "prompt_tokens_details": {"cached_tokens": 20, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 10, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        });
        return respond(200, &[("x-request-id".into(), "req_fake".into())], body.to_string());
    }
    let streamed = req.get("stream") == Some(&json!(true));
    if let (Act::Cut, false) = (&act, streamed) {
        return respond(200, &[], "{\"id\": \"chatcmpl-1\", \"choices\": [".into());
    }
    let text = reply_text(&act, &model, schema.as_ref()).await.or_else(|| matches!(act, Act::Cut).then(|| auto(&model, schema.as_ref()))).unwrap_or_default();
    if streamed {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                   "system_fingerprint": "fp_fake", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}], "usage": null})
        };
        let mut events = vec![(None, chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null).to_string())];
        events.extend(pieces(&text).into_iter().map(|p| (None, chunk(json!({"content": p}), Value::Null).to_string())));
        events.push((None, chunk(json!({}), json!("stop")).to_string()));
        if req.pointer("/stream_options/include_usage") == Some(&json!(true)) {
            events.push((None, json!({"id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                "choices": [], "usage": openai_usage()}).to_string()));
        }
        events.push((None, "[DONE]".to_string()));
        return sse(&inner, events, matches!(act, Act::Cut));
    }
    let logprobs = if req.get("logprobs") == Some(&json!(true)) {
        let content: Vec<Value> = tokens(&text).into_iter().map(|(t, lp)| json!({"token": t, "logprob": lp, "bytes": t.as_bytes(), "top_logprobs": []})).collect();
        json!({"content": content, "refusal": null})
    } else {
        Value::Null
    };
    let body = json!({
        "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "logprobs": logprobs, "finish_reason": "stop"}],
        "usage": openai_usage(),
        "service_tier": "default", "system_fingerprint": "fp_fake"
    });
    respond(200, &[("x-request-id".into(), "req_fake".into())], body.to_string())
}

async fn anthropic(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let path = "/v1/messages".to_string();
    let err = |status: u16, kind: &str, message: &str, extra: &[(String, String)]| {
        let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CfakeFake"});
        respond(status, extra, body.to_string())
    };
    let Ok(req) = serde_json::from_slice::<Value>(&body) else { return bad_json("anthropic") };
    let model = req.get("model").and_then(Value::as_str).unwrap_or("").to_string();
    let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or("");
    if key != inner.keys.anthropic {
        record(&inner, "anthropic", path, &headers, &req, &model, 401);
        return err(401, "authentication_error", "invalid x-api-key", &[]);
    }
    if headers.get("anthropic-version").is_none() {
        record(&inner, "anthropic", path, &headers, &req, &model, 400);
        return err(400, "invalid_request_error", "anthropic-version: header is required", &[]);
    }
    if req.get("max_tokens").and_then(Value::as_u64).is_none() {
        record(&inner, "anthropic", path, &headers, &req, &model, 400);
        return err(400, "invalid_request_error", "max_tokens: Field required", &[]);
    }
    let act = next_act(&inner, &model);
    let status = match &act {
        Act::Error { status, .. } => *status,
        Act::SpendLimit => 429,
        _ => 200,
    };
    record(&inner, "anthropic", path, &headers, &req, &model, status);
    if let Act::Error { status, kind, message, headers } = &act {
        return err(*status, kind, message, headers);
    }
    if let Act::SpendLimit = act {
        let body = json!({"type": "error", "error": {"type": "rate_limit_error",
            "message": "Your organization has reached its monthly usage limit.",
            "details": {"error_code": "enforced_spend_limit_reached"}}, "request_id": "req_011CfakeFake"});
        return respond(429, &[], body.to_string());
    }
    if let Act::Malformed = act {
        return respond(200, &[], "<html>502 Bad Gateway</html>".into());
    }
    if let Some(problem) = anthropic_tool_problem(&req) {
        return err(400, "invalid_request_error", &problem, &[]);
    }
    if let Act::CallTool { name, args } = &act {
        let n = req.get("messages").and_then(Value::as_array).map_or(0, Vec::len);
        let body = json!({
            "id": "msg_01Fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": format!("toolu_01Fake{n}"), "name": name, "input": args}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20, "output_tokens": 30}
        });
        return respond(200, &[("request-id".into(), "req_011CfakeFake".into())], body.to_string());
    }
    // A forced tool: the answer is the tool call's input.
    let forced = req.pointer("/tool_choice/type").and_then(Value::as_str) == Some("tool");
    let schema = req.pointer("/tools/0/input_schema").cloned();
    let streamed = req.get("stream") == Some(&json!(true));
    if let (Act::Cut, false) = (&act, streamed) {
        return respond(200, &[], "{\"id\": \"msg_01Fake\", \"content\": [".into());
    }
    let used = if forced { schema.as_ref() } else { None };
    let text = reply_text(&act, &model, used).await.or_else(|| matches!(act, Act::Cut).then(|| auto(&model, used))).unwrap_or_default();
    if streamed {
        let ev = |name: &str, data: Value| (Some(name.to_string()), data.to_string());
        let mut events = vec![ev("message_start", json!({"type": "message_start", "message": {
            "id": "msg_01Fake", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20, "output_tokens": 1}}}))];
        let (block, delta_kind, field) = if forced {
            let name = req.pointer("/tool_choice/name").cloned().unwrap_or(json!("answer"));
            (json!({"type": "tool_use", "id": "toolu_01Fake", "name": name, "input": {}}), "input_json_delta", "partial_json")
        } else {
            (json!({"type": "text", "text": ""}), "text_delta", "text")
        };
        events.push(ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": block})));
        events.push(ev("ping", json!({"type": "ping"})));
        for p in pieces(&text) {
            events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": delta_kind, field: p}})));
        }
        events.push(ev("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
        let stop = if forced { "tool_use" } else { "end_turn" };
        events.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 30}})));
        events.push(ev("message_stop", json!({"type": "message_stop"})));
        return sse(&inner, events, matches!(act, Act::Cut));
    }
    let (content, stop) = if forced {
        let name = req.pointer("/tool_choice/name").cloned().unwrap_or(json!("answer"));
        let input: Value = serde_json::from_str(&text).unwrap_or(json!({}));
        (json!([{"type": "tool_use", "id": "toolu_01Fake", "name": name, "input": input}]), "tool_use")
    } else {
        (json!([{"type": "text", "text": text}]), "end_turn")
    };
    let body = json!({
        "id": "msg_01Fake", "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": 100, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20, "output_tokens": 30}
    });
    respond(200, &[("request-id".into(), "req_011CfakeFake".into())], body.to_string())
}

async fn gemini(State(inner): State<Arc<Inner>>, Path(call): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let path = format!("/v1beta/models/{call}");
    let err = |status: u16, kind: &str, message: &str, extra: &[(String, String)]| {
        let body = json!({"error": {"code": status, "message": message, "status": kind}});
        respond(status, extra, body.to_string())
    };
    let embed = [(":batchEmbedContents", true), (":embedContent", false)].into_iter().find_map(|(m, batch)| Some((call.strip_suffix(m)?.to_string(), batch)));
    let (model, streamed) = match (call.strip_suffix(":generateContent"), call.strip_suffix(":streamGenerateContent"), &embed) {
        (Some(m), _, _) => (m.to_string(), false),
        (None, Some(m), _) => (m.to_string(), true),
        (None, None, Some((m, _))) => (m.clone(), false),
        _ => return err(404, "NOT_FOUND", "unknown method", &[]),
    };
    let Ok(req) = serde_json::from_slice::<Value>(&body) else { return bad_json("gemini") };
    let key = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).unwrap_or("");
    if key != inner.keys.gemini {
        record(&inner, "gemini", path, &headers, &req, &model, 400);
        return err(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", &[]);
    }
    if let Some((_, batch)) = embed {
        return embeddings::gemini(inner, model, batch, path, headers, req).await;
    }
    let act = next_act(&inner, &model);
    let status = match &act {
        Act::Error { status, .. } => *status,
        Act::SpendLimit => 429,
        _ => 200,
    };
    record(&inner, "gemini", path, &headers, &req, &model, status);
    if let Act::Error { status, kind, message, headers } = &act {
        return err(*status, kind, message, headers);
    }
    if let Act::Malformed = act {
        return respond(200, &[], "{\"candidates\": [{\"content\": ".into());
    }
    if let Some(problem) = gemini_tool_problem(&req) {
        return err(400, "INVALID_ARGUMENT", &problem, &[]);
    }
    let usage = json!({"promptTokenCount": 120, "candidatesTokenCount": 20, "totalTokenCount": 160,
                       "cachedContentTokenCount": 20, "thoughtsTokenCount": 10});
    if let Act::CallTool { name, args } = &act {
        let candidate = json!({"content": {"parts": [{"functionCall": {"name": name, "args": args}}], "role": "model"}, "finishReason": "STOP", "index": 0});
        return respond(200, &[], json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}).to_string());
    }
    let schema = req.pointer("/generationConfig/responseJsonSchema").cloned();
    if let (Act::Cut, false) = (&act, streamed) {
        return respond(200, &[], "{\"candidates\": [{\"content\": ".into());
    }
    let text = reply_text(&act, &model, schema.as_ref()).await.or_else(|| matches!(act, Act::Cut).then(|| auto(&model, schema.as_ref()))).unwrap_or_default();
    if streamed {
        let ps = pieces(&text);
        let n = ps.len();
        let events = ps
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let last = i + 1 == n;
                let mut c = json!({"content": {"parts": [{"text": p}], "role": "model"}, "index": 0});
                let usage = if last {
                    c["finishReason"] = json!("STOP");
                    gemini_usage()
                } else {
                    json!({"promptTokenCount": 120, "totalTokenCount": 120})
                };
                (None, json!({"candidates": [c], "usageMetadata": usage, "modelVersion": model, "responseId": "fakeResponseId"}).to_string())
            })
            .collect();
        return sse(&inner, events, matches!(act, Act::Cut));
    }
    let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0});
    if req.pointer("/generationConfig/responseLogprobs") == Some(&json!(true)) {
        let chosen: Vec<Value> = tokens(&text).into_iter().map(|(t, lp)| json!({"token": t, "tokenId": 0, "logProbability": lp})).collect();
        candidate["avgLogprobs"] = json!(-0.1);
        candidate["logprobsResult"] = json!({"topCandidates": [], "chosenCandidates": chosen});
    }
    let body = json!({
        "candidates": [candidate],
        "usageMetadata": gemini_usage(),
        "modelVersion": model, "responseId": "fakeResponseId"
    });
    respond(200, &[], body.to_string())
}

fn openai_usage() -> Value {
    json!({"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
           "prompt_tokens_details": {"cached_tokens": 20, "audio_tokens": 0},
           "completion_tokens_details": {"reasoning_tokens": 10, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}})
}

fn gemini_usage() -> Value {
    json!({"promptTokenCount": 120, "candidatesTokenCount": 20, "totalTokenCount": 160, "cachedContentTokenCount": 20, "thoughtsTokenCount": 10})
}

/// A reply in the pieces a stream sends: words with their spaces (at least
/// one piece).
pub fn pieces(text: &str) -> Vec<String> {
    let v: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
    if v.is_empty() { vec![String::new()] } else { v }
}

/// A `text/event-stream` response of `events` (`event:` name, `data:`),
/// or of their first half only when `cut`.
fn sse(inner: &Inner, events: Vec<(Option<String>, String)>, cut: bool) -> Response {
    let keep = if cut { events.len() / 2 } else { events.len() };
    let blocks: VecDeque<String> = events
        .into_iter()
        .take(keep)
        .map(|(name, data)| match name {
            Some(n) => format!("event: {n}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        })
        .collect();
    let pace = *inner.pace.lock().unwrap();
    let mut resp = match pace {
        None => (StatusCode::OK, blocks.into_iter().collect::<String>()).into_response(),
        Some(every) => {
            let body = futures_util::stream::unfold(blocks, move |mut blocks| async move {
                let block = blocks.pop_front()?;
                tokio::time::sleep(every).await;
                Some((Ok::<_, std::convert::Infallible>(block), blocks))
            });
            (StatusCode::OK, axum::body::Body::from_stream(body)).into_response()
        }
    };
    resp.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
    resp.headers_mut().insert("cache-control", "no-cache".parse().unwrap());
    resp
}

/// What OpenAI answers 400 to in a tool-calling conversation: a `tool`
/// message that answers no `tool_calls` id of the assistant message before
/// it, an assistant `tool_calls` id left unanswered, a tool call of a
/// function not in `tools`, or `tool_choice` without `tools`.
fn openai_tool_problem(req: &Value) -> Option<String> {
    let tools: Vec<&str> = req.get("tools").and_then(Value::as_array).map(|ts| ts.iter().filter_map(|t| t.pointer("/function/name").and_then(Value::as_str)).collect()).unwrap_or_default();
    if req.get("tool_choice").is_some() && tools.is_empty() {
        return Some("'tool_choice' is only allowed when 'tools' are specified.".into());
    }
    let msgs = req.get("messages").and_then(Value::as_array)?;
    let mut open: Vec<String> = Vec::new();
    for m in msgs {
        match m.get("role").and_then(Value::as_str) {
            Some("assistant") => {
                if !open.is_empty() {
                    return Some(format!("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}", open.join(", ")));
                }
                for c in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    let name = c.pointer("/function/name").and_then(Value::as_str).unwrap_or("");
                    if !tools.contains(&name) {
                        return Some(format!("tool call of unknown function `{name}`"));
                    }
                    if c.pointer("/function/arguments").and_then(Value::as_str).is_none() {
                        return Some("function.arguments must be a string".into());
                    }
                    open.push(c.get("id").and_then(Value::as_str).unwrap_or("").to_string());
                }
            }
            Some("tool") => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let Some(i) = open.iter().position(|o| o == id) else {
                    return Some("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.".into());
                };
                open.remove(i);
            }
            _ => {
                if !open.is_empty() {
                    return Some(format!("tool_call_ids did not have response messages: {}", open.join(", ")));
                }
            }
        }
    }
    None
}

/// What Anthropic answers 400 to: `tool_use` blocks without `tools`, a
/// `tool_result` that answers no `tool_use` of the assistant message right
/// before it, or a `tool_use` left unanswered.
fn anthropic_tool_problem(req: &Value) -> Option<String> {
    let tools: Vec<&str> = req.get("tools").and_then(Value::as_array).map(|ts| ts.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).collect()).unwrap_or_default();
    let msgs = req.get("messages").and_then(Value::as_array)?;
    let mut open: Vec<String> = Vec::new();
    for m in msgs {
        let blocks: Vec<&Value> = m.get("content").and_then(Value::as_array).map(|b| b.iter().collect()).unwrap_or_default();
        match m.get("role").and_then(Value::as_str) {
            Some("assistant") => {
                if !open.is_empty() {
                    return Some("messages: tool_use ids were found without tool_result blocks immediately after".into());
                }
                for b in blocks.iter().filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use")) {
                    let name = b.get("name").and_then(Value::as_str).unwrap_or("");
                    if !tools.contains(&name) {
                        return Some("Requests which include `tool_use` or `tool_result` blocks must define tools.".into());
                    }
                    open.push(b.get("id").and_then(Value::as_str).unwrap_or("").to_string());
                }
            }
            _ => {
                for b in blocks.iter().filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result")) {
                    let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
                    let Some(i) = open.iter().position(|o| o == id) else {
                        return Some(format!("messages: unexpected `tool_use_id` found in `tool_result` blocks: {id}"));
                    };
                    open.remove(i);
                }
                if !open.is_empty() {
                    return Some("messages: tool_use ids were found without tool_result blocks immediately after".into());
                }
            }
        }
    }
    None
}

/// What Gemini answers 400 to: a `functionCall` of an undeclared function,
/// or a turn of `functionCall`s not followed by as many `functionResponse`s.
fn gemini_tool_problem(req: &Value) -> Option<String> {
    let declared: Vec<&str> = req.pointer("/tools/0/functionDeclarations").and_then(Value::as_array).map(|ds| ds.iter().filter_map(|d| d.get("name").and_then(Value::as_str)).collect()).unwrap_or_default();
    let contents = req.get("contents").and_then(Value::as_array)?;
    let mut open = 0usize;
    for c in contents {
        let parts: Vec<&Value> = c.get("parts").and_then(Value::as_array).map(|p| p.iter().collect()).unwrap_or_default();
        let calls: Vec<&str> = parts.iter().filter_map(|p| p.pointer("/functionCall/name").and_then(Value::as_str)).collect();
        let responses = parts.iter().filter(|p| p.get("functionResponse").is_some()).count();
        if let Some(name) = calls.iter().find(|n| !declared.contains(n)) {
            return Some(format!("function `{name}` is not declared in tools.functionDeclarations"));
        }
        if c.get("role").and_then(Value::as_str) == Some("model") {
            if open > 0 {
                return Some("Please ensure that function call turn comes immediately after a user turn or after a function response turn.".into());
            }
            open = calls.len();
        } else {
            if responses != open {
                return Some("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.".into());
            }
            open = 0;
        }
    }
    None
}
