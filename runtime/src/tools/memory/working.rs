//! Where `working` and `session` memory live: Redis when `AOS_REDIS_URL` is
//! set (every process sees the same entries, Redis expires them), else a map
//! in this process that drops entries past their TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::store::BoxFuture;
use crate::tools::ToolError;

/// Short-lived key/value entries in namespaces (`working`, `session:RUN`).
pub trait Working: Send + Sync {
    fn put<'a>(&'a self, ns: &'a str, key: &'a str, value: &'a Value, ttl_s: u64) -> BoxFuture<'a, Result<(), ToolError>>;
    /// Every live entry of a namespace.
    fn all<'a>(&'a self, ns: &'a str) -> BoxFuture<'a, Result<Vec<(String, Value)>, ToolError>>;
}

/// Working memory in this process.
#[derive(Default)]
pub struct InProcess {
    map: Mutex<HashMap<String, HashMap<String, (Value, Instant)>>>,
}

impl Working for InProcess {
    fn put<'a>(&'a self, ns: &'a str, key: &'a str, value: &'a Value, ttl_s: u64) -> BoxFuture<'a, Result<(), ToolError>> {
        Box::pin(async move {
            let until = Instant::now() + Duration::from_secs(ttl_s);
            let mut m = self.map.lock().map_err(|_| ToolError::Unavailable("working memory is unavailable".into()))?;
            m.entry(ns.to_string()).or_default().insert(key.to_string(), (value.clone(), until));
            Ok(())
        })
    }

    fn all<'a>(&'a self, ns: &'a str) -> BoxFuture<'a, Result<Vec<(String, Value)>, ToolError>> {
        Box::pin(async move {
            let now = Instant::now();
            let mut m = self.map.lock().map_err(|_| ToolError::Unavailable("working memory is unavailable".into()))?;
            let Some(entries) = m.get_mut(ns) else { return Ok(Vec::new()) };
            entries.retain(|_, (_, until)| *until > now);
            Ok(entries.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect())
        })
    }
}

/// Working memory in Redis: one hash field-less string key per entry,
/// `aos:mem:{ns}:{key}`, set with `EX ttl`, so Redis expires it.
pub struct Redis {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl Redis {
    pub fn new(url: &str) -> Result<Redis, ToolError> {
        let client = redis::Client::open(url).map_err(|e| ToolError::Unavailable(format!("AOS_REDIS_URL `{url}`: {e}")))?;
        Ok(Redis { client, conn: tokio::sync::Mutex::new(None) })
    }

    async fn conn(&self) -> Result<redis::aio::MultiplexedConnection, ToolError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(Duration::from_secs(5), self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| ToolError::Timeout("working memory: Redis did not answer in 5s".into()))?
            .map_err(redis_error)?;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn forget_conn(&self) {
        *self.conn.lock().await = None;
    }
}

fn redis_error(e: redis::RedisError) -> ToolError {
    ToolError::Transport(format!("working memory: Redis: {e}"))
}

fn prefix(ns: &str) -> String {
    format!("aos:mem:{ns}:")
}

impl Working for Redis {
    fn put<'a>(&'a self, ns: &'a str, key: &'a str, value: &'a Value, ttl_s: u64) -> BoxFuture<'a, Result<(), ToolError>> {
        Box::pin(async move {
            let mut c = self.conn().await?;
            let r: Result<(), redis::RedisError> =
                redis::cmd("SET").arg(format!("{}{key}", prefix(ns))).arg(value.to_string()).arg("EX").arg(ttl_s).query_async(&mut c).await;
            if let Err(e) = r {
                self.forget_conn().await;
                return Err(redis_error(e));
            }
            Ok(())
        })
    }

    fn all<'a>(&'a self, ns: &'a str) -> BoxFuture<'a, Result<Vec<(String, Value)>, ToolError>> {
        Box::pin(async move {
            let mut c = self.conn().await?;
            let p = prefix(ns);
            let mut keys: Vec<String> = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let r: Result<(u64, Vec<String>), redis::RedisError> =
                    redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(format!("{p}*")).arg("COUNT").arg(1000).query_async(&mut c).await;
                let (next, batch) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        self.forget_conn().await;
                        return Err(redis_error(e));
                    }
                };
                keys.extend(batch);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut c).await.map_err(redis_error)?;
            Ok(keys
                .iter()
                .zip(values)
                // An entry that expired between SCAN and MGET is gone.
                .filter_map(|(k, v)| Some((k.strip_prefix(&p)?.to_string(), serde_json::from_str(&v?).ok()?)))
                .collect())
        })
    }
}
