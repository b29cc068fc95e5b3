//! `memory.remember` / `memory.recall`, in three layers:
//!
//! - `long_term` (the default): the store's `memory` table, recalled through
//!   an in-process index ([`index::Index`]) built once from the store's rows
//!   and refreshed when the table changes.
//! - `working`: short-lived entries with a TTL, in Redis (`AOS_REDIS_URL`,
//!   shared by every process) or in this process when there is no Redis
//!   ([`working`]).
//! - `session`: the run's own scratch space, keyed by the root run, kept in
//!   the working backend (so it is gone when its TTL ends, a day by default).
//!
//! Recall is by key first (an exact key match ranks first), then by cosine
//! similarity of embeddings. `long_term` entries are embedded by the
//! program's `embedding` role when it has one (OpenAI's or Gemini's
//! embeddings API, see [`crate::fabric::embed`]), else by the built-in
//! hashing embedding; each entry is stored with the name of its embedding
//! and recall compares a query only with entries of the same embedding.
//! `working` and `session` entries are ranked with the built-in embedding
//! (they store no vectors). Every result, and the step's audited
//! `embedding` decision, says which embedding ranked it.

pub mod index;
pub mod working;

use std::sync::Arc;

use serde_json::{json, Value};

use super::{Tool, ToolCtx, ToolError};
use crate::fabric::embed::{self, Embeddings, Purpose};
use crate::fabric::FabricError;
use crate::store::{BoxFuture, Store};

pub use crate::fabric::embed::{DIMS, LOCAL_EMBEDDING};

/// TTL of `working` entries when `ttl_s` is not given.
pub const DEFAULT_WORKING_TTL_S: u64 = 3600;
/// TTL of `session` entries.
pub const SESSION_TTL_S: u64 = 86_400;

/// The built-in embedding of a text.
pub fn embed(text: &str) -> Vec<f32> {
    embed::hashing(text)
}

/// Cosine similarity of two normalised embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    index::dot(a, b)
}

/// Embeds `texts` for a call: with the program's `embedding` role inside a
/// run, with the built-in embedding outside one. What it spent and decided
/// goes to the call's record.
async fn embed_for(ctx: &ToolCtx, texts: &[String], purpose: Purpose, tool: &str) -> Result<Embeddings, ToolError> {
    let Some(m) = &ctx.models else {
        return Ok(Embeddings::local(texts, None));
    };
    let mut decisions = Vec::new();
    let r = m.fabric.embed(&m.program, texts, purpose, &mut decisions, &ctx.step).await;
    let usage = r.as_ref().map(|e| e.usage.clone()).unwrap_or_default();
    ctx.record.add(&usage, decisions);
    r.map_err(|e| match e {
        // Configuration, not a failure of this call.
        FabricError::NoEmbeddings { .. } | FabricError::EmbeddingKeyMissing { .. } => ToolError::Unavailable(format!("{tool}: {e}")),
        _ => ToolError::Failed(format!("{tool}: {e}")),
    })
}

/// Records that `working`/`session` recall ranked with the built-in embedding.
fn record_local(ctx: &ToolCtx, layer: Layer) {
    let d = embed::decision("embedding", &ctx.step, json!({"embedding": LOCAL_EMBEDDING, "dims": DIMS, "model": null, "layer": layer.as_str()}));
    ctx.record.add(&crate::events::Usage::default(), vec![d]);
}

fn text_of(key: &str, value: &Value) -> String {
    match value {
        Value::String(s) => format!("{key} {s}"),
        other => format!("{key} {other}"),
    }
}

/// A memory layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Working,
    Session,
    LongTerm,
}

impl Layer {
    fn parse(args: &Value) -> Result<Layer, ToolError> {
        match args.get("layer") {
            None | Some(Value::Null) => Ok(Layer::LongTerm),
            Some(Value::String(s)) => match s.as_str() {
                "working" => Ok(Layer::Working),
                "session" => Ok(Layer::Session),
                "long_term" => Ok(Layer::LongTerm),
                other => Err(ToolError::BadInput(format!("unknown memory layer `{other}` (expected `working`, `session` or `long_term`)"))),
            },
            Some(v) => Err(ToolError::BadInput(format!("`layer` must be a String, got {v}"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Working => "working",
            Layer::Session => "session",
            Layer::LongTerm => "long_term",
        }
    }
}

/// The root run of a (sub-)run id: sub-runs share their root's session.
fn session_of(ctx: &ToolCtx) -> String {
    ctx.run_id.split('.').next().unwrap_or(&ctx.run_id).to_string()
}

/// What both memory tools share: the store (long-term), its index, and the
/// working backend.
pub struct Memory {
    pub store: Arc<dyn Store>,
    pub index: index::Index,
    pub working: Arc<dyn working::Working>,
}

impl Memory {
    pub fn new(store: Arc<dyn Store>, working: Arc<dyn working::Working>) -> Arc<Memory> {
        Arc::new(Memory { store, index: index::Index::default(), working })
    }
}

/// `memory.remember(key, value, layer?, ttl_s?) -> Bool`.
pub struct Remember(pub Arc<Memory>);
/// `memory.recall(query, k?, layer?) -> List<Json>` of `{key, value, score, layer, embedding}`.
pub struct Recall(pub Arc<Memory>);

impl Tool for Remember {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let key = args.get("key").and_then(Value::as_str).ok_or_else(|| ToolError::BadInput("missing String argument `key`".into()))?;
            if key.is_empty() {
                return Err(ToolError::BadInput("memory.remember: the key is empty".into()));
            }
            let named = |e: ToolError| e.map(|e| format!("memory.remember: {e}"));
            let layer = Layer::parse(&args).map_err(named)?;
            let ttl = match args.get("ttl_s") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64() {
                    Some(n) if n > 0 => Some(n),
                    _ => return Err(ToolError::BadInput(format!("memory.remember: `ttl_s` must be a positive Int, got {v}"))),
                },
            };
            if ttl.is_some() && layer != Layer::Working {
                return Err(ToolError::BadInput(format!("memory.remember: `ttl_s` applies to the `working` layer only, not `{}`", layer.as_str())));
            }
            let value = args.get("value").cloned().unwrap_or(Value::Null);
            let m = &self.0;
            match layer {
                Layer::LongTerm => {
                    let e = embed_for(ctx, &[text_of(key, &value)], Purpose::Document, "memory.remember").await?;
                    let v = e.vectors.first().map(Vec::as_slice).unwrap_or_default();
                    m.store.memory_put(key, &value, &e.embedding, v).await.map_err(|e| ToolError::Failed(format!("memory.remember: {e}")))?;
                    m.index.put(key, &value, &e.embedding, v);
                }
                Layer::Working => {
                    m.working.put("working", key, &value, ttl.unwrap_or(DEFAULT_WORKING_TTL_S)).await.map_err(named)?;
                }
                Layer::Session => {
                    let ns = format!("session:{}", session_of(ctx));
                    m.working.put(&ns, key, &value, SESSION_TTL_S).await.map_err(named)?;
                }
            }
            Ok(Value::Bool(true))
        })
    }
}

/// Ranks `(key, value)` pairs against a query (small layers: no index).
fn rank_small(query: &str, rows: Vec<(String, Value)>, k: usize) -> Vec<(f32, String, Value)> {
    let q = embed(query);
    let mut scored: Vec<(f32, String, Value)> = rows
        .into_iter()
        .map(|(key, value)| {
            let s = if key == query { 2.0 } else { cosine(&q, &embed(&text_of(&key, &value))) };
            (s, key, value)
        })
        .filter(|(s, _, _)| *s > index::MIN_SCORE)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.truncate(k);
    scored
}

impl Tool for Recall {
    fn call<'a>(&'a self, args: Value, ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let query = args.get("query").and_then(Value::as_str).ok_or_else(|| ToolError::BadInput("missing String argument `query`".into()))?;
            let k = match args.get("k") {
                None | Some(Value::Null) => 5,
                Some(v) => v.as_u64().ok_or_else(|| ToolError::BadInput(format!("`k` must be a non-negative Int, got {v}")))? as usize,
            };
            let named = |e: ToolError| e.map(|e| format!("memory.recall: {e}"));
            let layer = Layer::parse(&args).map_err(named)?;
            let m = &self.0;
            let (hits, embedding) = match layer {
                Layer::LongTerm => {
                    let e = embed_for(ctx, &[query.to_string()], Purpose::Query, "memory.recall").await?;
                    m.index.refresh(m.store.as_ref()).await.map_err(|e| ToolError::Failed(format!("memory.recall: {e}")))?;
                    let q = e.vectors.first().map(Vec::as_slice).unwrap_or_default();
                    (m.index.search(&e.embedding, query, q, k), e.embedding)
                }
                Layer::Working => {
                    record_local(ctx, layer);
                    (rank_small(query, m.working.all("working").await.map_err(named)?, k), LOCAL_EMBEDDING.to_string())
                }
                Layer::Session => {
                    record_local(ctx, layer);
                    let ns = format!("session:{}", session_of(ctx));
                    (rank_small(query, m.working.all(&ns).await.map_err(named)?, k), LOCAL_EMBEDDING.to_string())
                }
            };
            Ok(Value::Array(
                hits.into_iter()
                    .map(|(s, key, value)| {
                        json!({
                            "key": key, "value": value,
                            "score": (f64::from(s.min(1.0)) * 1000.0).round() / 1000.0,
                            "layer": layer.as_str(), "embedding": embedding,
                        })
                    })
                    .collect(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn similar_texts_score_higher() {
        let q = embed("weekly sales EMEA");
        let near = embed("emea sales for the week");
        let far = embed("kubernetes pod restart loop");
        assert!(cosine(&q, &near) > cosine(&q, &far) + 0.1);
        assert!((cosine(&q, &q) - 1.0).abs() < 1e-4);
        assert_eq!(embed("").iter().filter(|x| **x != 0.0).count(), 0);
    }

    #[test]
    fn layers_parse_and_bad_ones_are_named() {
        assert_eq!(Layer::parse(&json!({})).unwrap(), Layer::LongTerm);
        assert_eq!(Layer::parse(&json!({"layer": "working"})).unwrap(), Layer::Working);
        assert_eq!(Layer::parse(&json!({"layer": "session"})).unwrap(), Layer::Session);
        let e = Layer::parse(&json!({"layer": "short"})).unwrap_err().to_string();
        assert!(e.contains("unknown memory layer `short`"), "{e}");
    }
}
