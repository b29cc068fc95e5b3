//! The response cache around a call (`cache:`): the lookup before it and
//! the write after it are the driver's I/O; a hit is reported to the core
//! as an audited `cache_hit` decision (journaled as `llm.routed`) and a
//! value with zero usage.

use aos_compiler::ir::Cache;
use serde_json::{json, Value};

use super::attempt::Attempt;
use crate::audit::Decision;
use crate::cache::{Asker, CacheEntry};
use crate::ids::now_ms;

impl Attempt<'_> {
    /// Who asks, as the step's `cache_scope:` keeps it in the key.
    pub fn asker(&self, cache: Cache) -> Asker<'_> {
        Asker { scope: cache.scope, workflow: &self.sh.ctx.wf.name, trust: self.sh.ctx.trust }
    }

    /// The cached value under `key`, recording the hit; `None` on a miss
    /// (or when the cache cannot be read: audited, and the call goes on).
    pub async fn cached(&mut self, key: &str) -> Option<Value> {
        let cache = self.sh.rt.cache.clone();
        let step = self.step.name.clone();
        match cache.get(key, now_ms()).await {
            Ok(Some(entry)) => {
                self.decisions.push(Decision::new(
                    "cache_hit",
                    Some(&step),
                    json!({"key": key, "model": entry.model, "saved_usd": entry.cost_usd, "stored_ms": entry.created_ms,
                           "backend": cache.backend()}),
                ));
                Some(entry.value)
            }
            Ok(None) => None,
            Err(e) => {
                self.decisions.push(Decision::new("cache_error", Some(&step), json!({"key": key, "error": e.to_string()})));
                None
            }
        }
    }

    /// Stores an accepted value under `key` for the step's TTL.
    pub async fn remember(&mut self, cache: Cache, key: &str, value: &Value, model: Option<String>) {
        let entry = CacheEntry { value: value.clone(), model, cost_usd: self.usage.cost_usd, created_ms: now_ms() };
        let store = self.sh.rt.cache.clone();
        if let Err(e) = store.put(key, &entry, cache.ttl_ms, entry.created_ms).await {
            self.decisions.push(Decision::new("cache_error", Some(&self.step.name), json!({"key": key, "error": e.to_string()})));
        }
    }
}
