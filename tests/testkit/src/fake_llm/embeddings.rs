//! The embeddings endpoints of the fake providers:
//!
//! - OpenAI `POST /v1/embeddings` with `{model, input: String | [String],
//!   encoding_format?, dimensions?}` → `{"object": "list", "data":
//!   [{"object": "embedding", "index", "embedding": [...]}], "model",
//!   "usage": {"prompt_tokens", "total_tokens"}}`; an empty input is 400
//!   `invalid_request_error`, `dimensions` on a model without it is 400.
//! - Gemini `POST /v1beta/models/{model}:batchEmbedContents` with
//!   `{requests: [{model: "models/{model}", content: {parts: [{text}]},
//!   taskType?, outputDimensionality?}]}` → `{"embeddings": [{"values":
//!   [...]}]}` (at most 100 requests; each request's `model` must be the
//!   URL's, else 400 `INVALID_ARGUMENT`), and `:embedContent` with one
//!   request's fields → `{"embedding": {"values": [...]}}`.
//!
//! Vectors are deterministic: character trigrams of the lower-cased text
//! hashed (with the model id) into the model's dimension, L2-normalised, so
//! similar texts get similar vectors, two models different ones, and a test
//! that runs twice sees the same numbers. Dimensions follow the models:
//! `text-embedding-3-large` 3072, other OpenAI models 1536,
//! `gemini-embedding-001` 3072, other Gemini models 768, unless the request
//! asks for fewer (`dimensions`, `outputDimensionality`). Scripted actions
//! (errors, malformed bodies, slowness) apply as for chat requests.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::{next_act, record, reply_text, respond, Act, Inner};

/// The vector the fake gives `text` under `model`.
pub fn vector(model: &str, text: &str, dims: usize) -> Vec<f64> {
    let mut v = vec![0f64; dims.max(1)];
    let norm: String = text.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = format!(" {norm} ").chars().collect();
    for w in chars.windows(3) {
        let mut h = DefaultHasher::new();
        model.hash(&mut h);
        w.hash(&mut h);
        let x = h.finish();
        let bucket = (x % v.len() as u64) as usize;
        v[bucket] += if x >> 63 == 0 { 1.0 } else { -1.0 };
    }
    let len = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if len > 0.0 {
        v.iter_mut().for_each(|x| *x /= len);
    }
    v
}

/// The dimension a model's vectors have by default.
pub fn default_dims(provider: &str, model: &str) -> usize {
    match (provider, model) {
        ("openai", "text-embedding-3-large") => 3072,
        ("openai", _) => 1536,
        (_, "gemini-embedding-001") => 3072,
        _ => 768,
    }
}

/// Tokens the fake bills for a text: one per four bytes, at least one.
pub fn tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4).max(1)
}

fn openai_error(status: u16, kind: &str, message: &str, param: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": null}});
    respond(status, &[], body.to_string())
}

/// `POST /v1/embeddings`.
pub(super) async fn openai(inner: Arc<Inner>, headers: HeaderMap, req: Value) -> Response {
    let path = "/v1/embeddings".to_string();
    let model = req.get("model").and_then(Value::as_str).unwrap_or("").to_string();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth != format!("Bearer {}", inner.keys.openai) {
        record(&inner, "openai", path, &headers, &req, &model, 401);
        let body = json!({"error": {"message": "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
        return respond(401, &[], body.to_string());
    }
    let inputs: Option<Vec<String>> = match req.get("input") {
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(a)) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    };
    let problem = match &inputs {
        None => Some("'input' is a required property and must be a string or an array of strings"),
        Some(v) if v.is_empty() || v.iter().any(String::is_empty) => Some("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."),
        Some(v) if v.len() > 2048 => Some("'$.input' must have at most 2048 items"),
        _ => None,
    };
    let dims_asked = req.get("dimensions").and_then(Value::as_u64);
    let problem = problem.or_else(|| (dims_asked.is_some() && !model.starts_with("text-embedding-3")).then_some("This model does not support specifying dimensions."));
    if let Some(p) = problem {
        record(&inner, "openai", path, &headers, &req, &model, 400);
        return openai_error(400, "invalid_request_error", p, Some("input"));
    }
    let inputs = inputs.unwrap_or_default();
    let act = next_act(&inner, &model);
    let status = if let Act::Error { status, .. } = &act { *status } else { 200 };
    record(&inner, "openai", path, &headers, &req, &model, status);
    if let Act::Error { status, kind, message, headers } = &act {
        let body = json!({"error": {"message": message, "type": kind, "param": null, "code": kind}});
        return respond(*status, headers, body.to_string());
    }
    if let Act::Malformed = act {
        return respond(200, &[], "{\"object\": \"list\", \"data\": [".into());
    }
    // `Slow` waits as for chat; the other acts answer normally.
    let _ = reply_text(&act, &model, None).await;
    let dims = dims_asked.map_or_else(|| default_dims("openai", &model), |d| d as usize);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector(&model, t, dims)}))
        .collect();
    let n: u64 = inputs.iter().map(|t| tokens(t)).sum();
    let body = json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": n, "total_tokens": n}});
    respond(200, &[("x-request-id".into(), "req_fake_embed".into())], body.to_string())
}

fn gemini_error(status: u16, kind: &str, message: &str) -> Response {
    respond(status, &[], json!({"error": {"code": status, "message": message, "status": kind}}).to_string())
}

/// The text of a Gemini `content` (its parts' texts joined).
fn content_text(content: Option<&Value>) -> Option<String> {
    let parts = content?.get("parts")?.as_array()?;
    let texts: Vec<&str> = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
    if texts.is_empty() { None } else { Some(texts.join("")) }
}

/// `:batchEmbedContents` (`batch`) and `:embedContent` for `model`; the
/// key was checked by the caller.
pub(super) async fn gemini(inner: Arc<Inner>, model: String, batch: bool, path: String, headers: HeaderMap, req: Value) -> Response {
    let one = [req.clone()];
    let requests: &[Value] = if batch { req.get("requests").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) } else { &one };
    let full = format!("models/{model}");
    let problem = if batch && requests.is_empty() {
        Some("* BatchEmbedContentsRequest.requests: requests must not be empty".to_string())
    } else if requests.len() > 100 {
        Some("* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch".to_string())
    } else if let Some(bad) = requests.iter().filter_map(|r| r.get("model").and_then(Value::as_str)).find(|m| batch && *m != full) {
        Some(format!("Model name in the request ({bad}) does not match the model in the URL ({full})."))
    } else if batch && requests.iter().any(|r| r.get("model").is_none()) {
        Some("* BatchEmbedContentsRequest.requests[].model: required field".to_string())
    } else if requests.iter().any(|r| content_text(r.get("content")).is_none()) {
        Some("* EmbedContentRequest.content: contents must not be empty".to_string())
    } else {
        None
    };
    if let Some(p) = problem {
        record(&inner, "gemini", path, &headers, &req, &model, 400);
        return gemini_error(400, "INVALID_ARGUMENT", &p);
    }
    let act = next_act(&inner, &model);
    let status = if let Act::Error { status, .. } = &act { *status } else { 200 };
    record(&inner, "gemini", path, &headers, &req, &model, status);
    if let Act::Error { status, kind, message, headers } = &act {
        let body = json!({"error": {"code": status, "message": message, "status": kind}});
        return respond(*status, headers, body.to_string());
    }
    if let Act::Malformed = act {
        return respond(200, &[], "{\"embeddings\": [{\"values\": ".into());
    }
    let _ = reply_text(&act, &model, None).await;
    let values = |r: &Value| {
        let dims = r.get("outputDimensionality").and_then(Value::as_u64).map_or_else(|| default_dims("gemini", &model), |d| d as usize);
        json!({"values": vector(&model, &content_text(r.get("content")).unwrap_or_default(), dims)})
    };
    let body = if batch {
        json!({"embeddings": requests.iter().map(values).collect::<Vec<_>>()})
    } else {
        json!({"embedding": values(&req)})
    };
    respond(200, &[], body.to_string())
}
