//! The response cache (`cache:` on a step, docs/language.md "Response
//! cache"): what a key covers, what an entry holds, and where entries live
//! — the store's `response_cache` table by default, Redis (`SET … EX`)
//! when the deployment configures `AOS_REDIS_URL`.
//!
//! The driver looks a key up before it calls the provider or the tool (the
//! I/O); a hit becomes an audited `cache_hit` decision, journaled as an
//! `llm.routed` record, and the step's value with zero usage: the run core
//! applies those like any other result, so replay and resume never ask the
//! cache again.

use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{CacheScope, Model, Program, Step, Tool, Trust};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::audit::canonical;
use crate::store::{BoxFuture, Store, StoreError};

/// What one cached call produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The accepted value (validated, verified).
    pub value: Value,
    /// The model that answered (LLM calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// What the call that produced the value cost: what a hit saves.
    pub cost_usd: f64,
    /// When it was stored (ms since the epoch).
    pub created_ms: u64,
}

/// Why the cache could not be read or written. Neither fails a step: a
/// lookup that fails is a miss, a write that fails is audited.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("response cache: {0}")]
    Store(#[from] StoreError),
    #[error("response cache: Redis: {0}")]
    Redis(String),
    #[error("response cache: a malformed entry: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Where entries live.
pub trait ResponseCache: Send + Sync {
    /// The live entry under `key` at `now_ms`, if there is one.
    fn get<'a>(&'a self, key: &'a str, now_ms: u64) -> BoxFuture<'a, Result<Option<CacheEntry>, CacheError>>;
    /// Stores `entry` under `key` for `ttl_ms`.
    fn put<'a>(&'a self, key: &'a str, entry: &'a CacheEntry, ttl_ms: u64, now_ms: u64) -> BoxFuture<'a, Result<(), CacheError>>;
    /// Where the entries live, for messages (`store`, `redis`).
    fn backend(&self) -> &'static str;
}

/// Entries in the store's `response_cache` table (SQLite or PostgreSQL).
pub struct StoreCache {
    store: Arc<dyn Store>,
}

impl StoreCache {
    pub fn new(store: Arc<dyn Store>) -> StoreCache {
        StoreCache { store }
    }
}

impl ResponseCache for StoreCache {
    fn get<'a>(&'a self, key: &'a str, now_ms: u64) -> BoxFuture<'a, Result<Option<CacheEntry>, CacheError>> {
        Box::pin(async move {
            match self.store.cache_get(key, now_ms).await? {
                Some(text) => Ok(Some(serde_json::from_str(&text)?)),
                None => Ok(None),
            }
        })
    }

    fn put<'a>(&'a self, key: &'a str, entry: &'a CacheEntry, ttl_ms: u64, now_ms: u64) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            let text = serde_json::to_string(entry)?;
            self.store.cache_put(key, &text, now_ms, now_ms.saturating_add(ttl_ms)).await?;
            Ok(())
        })
    }

    fn backend(&self) -> &'static str {
        "store"
    }
}

/// Entries in Redis: one string key per entry, `aos:cache:{key}`, written
/// with `SET … EX ttl` (`PX` when the TTL is not whole seconds), so Redis
/// expires them and every process of the deployment shares them.
pub struct RedisCache {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl RedisCache {
    pub fn new(url: &str) -> Result<RedisCache, CacheError> {
        let client = redis::Client::open(url).map_err(|e| CacheError::Redis(format!("AOS_REDIS_URL `{url}`: {e}")))?;
        Ok(RedisCache { client, conn: tokio::sync::Mutex::new(None) })
    }

    async fn conn(&self) -> Result<redis::aio::MultiplexedConnection, CacheError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(Duration::from_secs(5), self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| CacheError::Redis("no answer in 5s".into()))?
            .map_err(|e| CacheError::Redis(e.to_string()))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn failed(&self, e: &redis::RedisError) -> CacheError {
        *self.conn.lock().await = None;
        CacheError::Redis(e.to_string())
    }
}

/// The Redis key of a cache key.
pub fn redis_key(key: &str) -> String {
    format!("aos:cache:{key}")
}

impl ResponseCache for RedisCache {
    fn get<'a>(&'a self, key: &'a str, _now_ms: u64) -> BoxFuture<'a, Result<Option<CacheEntry>, CacheError>> {
        Box::pin(async move {
            let mut c = self.conn().await?;
            let r: Result<Option<String>, redis::RedisError> = redis::cmd("GET").arg(redis_key(key)).query_async(&mut c).await;
            match r {
                Ok(Some(text)) => Ok(Some(serde_json::from_str(&text)?)),
                Ok(None) => Ok(None),
                Err(e) => Err(self.failed(&e).await),
            }
        })
    }

    fn put<'a>(&'a self, key: &'a str, entry: &'a CacheEntry, ttl_ms: u64, _now_ms: u64) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            let text = serde_json::to_string(entry)?;
            let mut c = self.conn().await?;
            let mut cmd = redis::cmd("SET");
            cmd.arg(redis_key(key)).arg(text);
            if ttl_ms.is_multiple_of(1000) {
                cmd.arg("EX").arg(ttl_ms / 1000);
            } else {
                cmd.arg("PX").arg(ttl_ms.max(1));
            }
            let r: Result<(), redis::RedisError> = cmd.query_async(&mut c).await;
            match r {
                Ok(()) => Ok(()),
                Err(e) => Err(self.failed(&e).await),
            }
        })
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// Who is asking: the part of a key the step's `cache_scope:` keeps.
#[derive(Clone, Copy, Debug)]
pub struct Asker<'a> {
    pub scope: CacheScope,
    pub workflow: &'a str,
    pub trust: Trust,
}

impl Asker<'_> {
    fn scope_json(self) -> Value {
        match self.scope {
            CacheScope::Workflow => json!({"workflow": self.workflow, "trust": self.trust}),
            CacheScope::Shared => json!({"trust": self.trust}),
            CacheScope::Global => json!({}),
        }
    }
}

/// What of a model decides its replies (not its prices).
fn model_json(m: &Model) -> Value {
    json!({"provider": m.provider, "model_id": m.model_id, "base_url": m.base_url, "structured": m.structured, "sim": m.sim})
}

fn chain_json(program: &Program, role: &str) -> Value {
    let chain = program.roles.get(role).map(Vec::as_slice).unwrap_or_default();
    Value::Array(chain.iter().map(|n| program.models.get(n).map_or(json!({"missing": n}), model_json)).collect())
}

fn digest(v: &Value) -> String {
    hex::encode(Sha256::digest(canonical(v).as_bytes()))
}

/// The key of an LLM call of `step`: the role's chain, the rendered prompt,
/// the schema, the sampling settings, the verification, and the scope.
pub fn llm_key(program: &Program, asker: Asker<'_>, step: &Step, role: &str, prompt: &str) -> String {
    let verify = step.verify.as_ref().map(|v| json!({"chain": chain_json(program, &v.role), "min_confidence": v.min_confidence}));
    digest(&json!({
        "v": 1, "kind": "llm", "scope": asker.scope_json(),
        "chain": chain_json(program, role), "prompt": prompt, "schema": step.schema, "typed": step.typed,
        "max_tokens": step.max_tokens, "max_input_tokens": step.max_input_tokens, "verify": verify,
    }))
}

/// The key of a tool call: the tool, its declaration (endpoint, program,
/// output bound), the evaluated arguments, and the scope.
pub fn tool_key(asker: Asker<'_>, tool: &str, decl: Option<&Tool>, args: &Value, max_output_tokens: u64) -> String {
    let decl = decl.map(|d| json!({"implementation": d.implementation, "ret": d.ret}));
    digest(&json!({
        "v": 1, "kind": "tool", "scope": asker.scope_json(), "tool": tool, "decl": decl,
        "args": args, "max_output_tokens": max_output_tokens,
    }))
}
