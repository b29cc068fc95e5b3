//! `memory.remember` / `memory.recall` over the store's `memory` table.
//!
//! Recall is by key first (an exact key match ranks first), then by cosine
//! similarity of a small built-in embedding: character trigrams of the
//! lower-cased text (key and value), hashed into [`DIMS`] buckets and
//! L2-normalised. It needs no model and is deterministic, which is what a
//! durable, replayable runtime wants; an external embedding endpoint can
//! replace [`embed`] later.

use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Tool, ToolCtx};
use crate::store::{BoxFuture, Store};

/// Dimensions of the built-in embedding.
pub const DIMS: usize = 256;

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

/// `memory.remember(key, value) -> Bool`.
pub struct Remember(pub Arc<dyn Store>);
/// `memory.recall(query, k?) -> List<Json>` of `{key, value, score}`.
pub struct Recall(pub Arc<dyn Store>);

impl Tool for Remember {
    fn call<'a>(&'a self, args: Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let key = args.get("key").and_then(Value::as_str).ok_or("missing String argument `key`")?;
            if key.is_empty() {
                return Err("memory.remember: the key is empty".into());
            }
            let value = args.get("value").cloned().unwrap_or(Value::Null);
            let e = embed(&text_of(key, &value));
            self.0.memory_put(key, &value, &e).await.map_err(|e| format!("memory.remember: {e}"))?;
            Ok(Value::Bool(true))
        })
    }
}

impl Tool for Recall {
    fn call<'a>(&'a self, args: Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let query = args.get("query").and_then(Value::as_str).ok_or("missing String argument `query`")?;
            let k = match args.get("k") {
                None | Some(Value::Null) => 5,
                Some(v) => v.as_u64().ok_or_else(|| format!("`k` must be a non-negative Int, got {v}"))? as usize,
            };
            let rows = self.0.memory_all().await.map_err(|e| format!("memory.recall: {e}"))?;
            let q = embed(query);
            let mut scored: Vec<(f32, &str, &Value)> = rows
                .iter()
                .map(|r| {
                    let s = if r.key == query { 2.0 } else { cosine(&q, &r.embedding) };
                    (s, r.key.as_str(), &r.value)
                })
                .filter(|(s, _, _)| *s > 0.05)
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            Ok(Value::Array(
                scored
                    .into_iter()
                    .take(k)
                    .map(|(s, key, value)| json!({ "key": key, "value": value, "score": (f64::from(s.min(1.0)) * 1000.0).round() / 1000.0 }))
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
}
