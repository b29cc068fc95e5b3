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
//! similarity of a small built-in embedding: character trigrams of the
//! lower-cased text (key and value), hashed into [`DIMS`] buckets and
//! L2-normalised. It needs no model and is deterministic, which is what a
//! durable, replayable runtime wants. Every result says which embedding
//! ranked it (`"embedding": "local-trigram-256"`).

pub mod index;
pub mod working;

use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Tool, ToolCtx, ToolError};
use crate::store::{BoxFuture, Store};

/// Dimensions of the built-in embedding.
pub const DIMS: usize = 256;
/// The name results give the built-in embedding.
pub const LOCAL_EMBEDDING: &str = "local-trigram-256";
/// TTL of `working` entries when `ttl_s` is not given.
pub const DEFAULT_WORKING_TTL_S: u64 = 3600;
/// TTL of `session` entries.
pub const SESSION_TTL_S: u64 = 86_400;

/// The built-in embedding of a text.
pub fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    let norm: String = text.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = format!(" {norm} ").chars().collect();
    for w in chars.windows(3) {
        let gram: String = w.iter().collect();
        let h = Sha256::digest(gram.as_bytes());
        let bucket = usize::from(u16::from_le_bytes([h[0], h[1]])) % DIMS;
        let sign = if h[2] & 1 == 0 { 1.0 } else { -1.0 };
        if let Some(slot) = v.get_mut(bucket) {
            *slot += sign;
        }
    }
    let len = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if len > 0.0 {
        v.iter_mut().for_each(|x| *x /= len);
    }
    v
}

/// Cosine similarity of two normalised embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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
                    let e = embed(&text_of(key, &value));
                    m.store.memory_put(key, &value, &e).await.map_err(|e| ToolError::Failed(format!("memory.remember: {e}")))?;
                    m.index.put(key, &value, e);
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
            let hits = match layer {
                Layer::LongTerm => {
                    m.index.refresh(m.store.as_ref()).await.map_err(|e| ToolError::Failed(format!("memory.recall: {e}")))?;
                    m.index.search(query, &embed(query), k)
                }
                Layer::Working => rank_small(query, m.working.all("working").await.map_err(named)?, k),
                Layer::Session => {
                    let ns = format!("session:{}", session_of(ctx));
                    rank_small(query, m.working.all(&ns).await.map_err(named)?, k)
                }
            };
            Ok(Value::Array(
                hits.into_iter()
                    .map(|(s, key, value)| {
                        json!({
                            "key": key, "value": value,
                            "score": (f64::from(s.min(1.0)) * 1000.0).round() / 1000.0,
                            "layer": layer.as_str(), "embedding": LOCAL_EMBEDDING,
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
