//! The shared event bus: Redis Streams. With `AOS_REDIS_URL`, every
//! journaled transition is added (XADD) to the run's own stream
//! `aos:run:{run_id}` and to `aos:events` (capped with `MAXLEN ~`).
//!
//! The journal in the store stays the source of truth. Publishing is not
//! "send this event" but "bring run R's stream up to its journal": a
//! background task reads the run's journal past its publish cursor (kept in
//! the store, [`crate::store::Store::bus_cursor`]), adds those entries, then
//! moves the cursor. An entry's id in the run stream is its journal id
//! (`{id}-0`), so adding it twice is refused by Redis and counted as done:
//! a crash between XADD and the cursor update duplicates nothing. While
//! Redis is unreachable the run stays pending and is retried with backoff;
//! a later process publishes whatever an earlier one could not (every
//! process sweeps [`crate::store::Store::unpublished_runs`] when it starts).
//! A run's stream therefore has no gap after Redis restarts, provided Redis
//! keeps its data across the restart (AOF or RDB persistence; without it the
//! streams restart empty and only entries after the cursor are added).
//!
//! Streamed answers ([`Delta`]s) go to a stream of their own per run,
//! `aos:run:{run_id}:deltas` (`MAXLEN ~` [`DELTAS_MAXLEN`], expiring
//! [`DELTAS_TTL_S`] after its last write), never to the journal or to the
//! run's stream: they are a live view, sent once, lost while Redis is down.
//! A delta is added before any journal entry read from the store after it
//! was published, so a reader that reads a run's stream, then its deltas,
//! has every delta that came before the entries it read
//! ([`super::live::Merge`] puts them in order).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::dispatch::{Dispatch, TaskRef};
use super::{Bus, InProcessBus};
use crate::events::Entry;
use crate::fabric::stream::Delta;
use crate::store::{BoxFuture, Store};

/// The stream of every run's events.
pub const ALL_EVENTS: &str = "aos:events";
/// About how many entries `aos:events` keeps (`MAXLEN ~`).
pub const ALL_EVENTS_MAXLEN: u64 = 100_000;
/// Journal entries sent in one script call.
const CHUNK: i64 = 512;

/// The stream of one run.
pub fn run_stream(run_id: &str) -> String {
    format!("aos:run:{run_id}")
}

/// The stream of one run's streamed answers.
pub fn deltas_stream(run_id: &str) -> String {
    format!("aos:run:{run_id}:deltas")
}

/// About how many deltas a run's delta stream keeps (`MAXLEN ~`).
pub const DELTAS_MAXLEN: u64 = 10_000;
/// A run's delta stream expires this long after its last write.
pub const DELTAS_TTL_S: u64 = 24 * 3600;
/// How long [`RedisEvents::next_live`] blocks at most in one read.
const LIVE_BLOCK_MS: u64 = 300;
/// Deltas waiting for Redis at most (older ones are dropped while it is down).
const DELTAS_QUEUED: usize = 10_000;

/// Adds journal entries to the run stream (id = journal id) and, for each
/// one the run stream did not have yet, to `aos:events`. Atomic in Redis.
/// KEYS: run stream, all-events stream. ARGV: maxlen, run_id, then
/// (journal id, at_ms, kind, data) per entry. Returns how many were new.
const PUBLISH_LUA: &str = r#"
local n = 0
for i = 3, #ARGV, 4 do
  local ok = redis.pcall('XADD', KEYS[1], ARGV[i] .. '-0', 'at_ms', ARGV[i+1], 'kind', ARGV[i+2], 'data', ARGV[i+3])
  if type(ok) == 'table' and ok.err then
    if not string.find(ok.err, 'equal or smaller', 1, true) then
      return redis.error_reply(ok.err)
    end
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'run_id', ARGV[2], 'journal_id', ARGV[i], 'at_ms', ARGV[i+1], 'kind', ARGV[i+2], 'data', ARGV[i+3])
    n = n + 1
  end
end
return n
"#;

enum Msg {
    Dirty(String),
    Delta(Delta),
    Dispatch(Vec<TaskRef>),
    Flush(oneshot::Sender<bool>),
}

/// The Redis Streams bus. Local subscribers (progress on a terminal) are
/// served in-process as before; Redis is written by a background task.
pub struct RedisBus {
    local: InProcessBus,
    tx: mpsc::UnboundedSender<Msg>,
}

/// A reply to a wrong URL, before anything runs.
#[derive(Debug, thiserror::Error)]
#[error("AOS_REDIS_URL `{url}`: {reason}")]
pub struct BadRedisUrl {
    pub url: String,
    pub reason: String,
}

impl RedisBus {
    /// Starts the publisher for `url` over `store` (needs a tokio runtime).
    /// Redis need not be up: what cannot be published now is published when
    /// it is reachable.
    pub fn start(url: &str, store: Arc<dyn Store>) -> Result<RedisBus, BadRedisUrl> {
        let client = redis::Client::open(url).map_err(|e| BadRedisUrl { url: url.to_string(), reason: e.to_string() })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let dispatch = Dispatch::new(url).map_err(|e| BadRedisUrl { url: url.to_string(), reason: e.to_string() })?;
        let publisher = Publisher {
            client,
            conn: None,
            store,
            script: redis::Script::new(PUBLISH_LUA),
            said_down: false,
            dispatch,
            to_dispatch: Vec::new(),
            pending: BTreeSet::new(),
            waiters: Vec::new(),
            deltas: Vec::new(),
        };
        tokio::spawn(publisher.run(rx));
        Ok(RedisBus { local: InProcessBus::new(), tx })
    }
}

impl Bus for RedisBus {
    fn publish(&self, entry: Entry) {
        let _ = self.tx.send(Msg::Dirty(entry.run_id.clone()));
        self.local.publish(entry);
    }

    fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.local.subscribe()
    }

    fn publish_delta(&self, delta: Delta) {
        let _ = self.tx.send(Msg::Delta(delta.clone()));
        self.local.publish_delta(delta);
    }

    fn subscribe_deltas(&self) -> broadcast::Receiver<Delta> {
        self.local.subscribe_deltas()
    }

    fn notify(&self, run_id: &str) {
        let _ = self.tx.send(Msg::Dirty(run_id.to_string()));
    }

    fn dispatch(&self, tasks: Vec<TaskRef>) {
        let _ = self.tx.send(Msg::Dispatch(tasks));
    }

    fn flush<'a>(&'a self, timeout: Duration) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            if self.tx.send(Msg::Flush(tx)).is_err() {
                return false;
            }
            matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(true)))
        })
    }
}

struct Publisher {
    client: redis::Client,
    conn: Option<redis::aio::MultiplexedConnection>,
    store: Arc<dyn Store>,
    script: redis::Script,
    said_down: bool,
    dispatch: Dispatch,
    /// Ready fleet tasks to add to the task stream.
    to_dispatch: Vec<TaskRef>,
    /// Runs whose streams are behind their journals.
    pending: BTreeSet<String>,
    waiters: Vec<oneshot::Sender<bool>>,
    /// Deltas to add before anything else.
    deltas: Vec<Delta>,
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        // What earlier processes could not publish.
        match self.store.unpublished_runs().await {
            Ok(runs) => self.pending.extend(runs),
            Err(e) => tracing::warn!("event bus: cannot list unpublished runs: {e}"),
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.pending.is_empty() && self.to_dispatch.is_empty() && self.deltas.is_empty() {
                for w in self.waiters.drain(..) {
                    let _ = w.send(true);
                }
                match rx.recv().await {
                    Some(m) => self.take(m),
                    None => return,
                }
            }
            self.take_queued(&mut rx);
            self.send_dispatch().await;
            let mut failed = self.send_deltas().await.is_err();
            let runs: Vec<String> = if failed { Vec::new() } else { self.pending.iter().cloned().collect() };
            for run in runs {
                match self.publish_run(&run, &mut rx).await {
                    Ok(()) => {
                        self.pending.remove(&run);
                    }
                    Err(e) => {
                        failed = true;
                        self.conn = None;
                        if !self.said_down {
                            eprintln!("warning: event bus: cannot publish to Redis ({e}); events are kept in the journal and published when Redis is back");
                            self.said_down = true;
                        }
                        break;
                    }
                }
            }
            if failed {
                // Wait, but keep taking messages (a flush must not hang).
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        m = rx.recv() => match m {
                            Some(m) => self.take(m),
                            None => return,
                        },
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            } else {
                if self.said_down {
                    eprintln!("event bus: Redis is reachable again; the journal's events were published");
                    self.said_down = false;
                }
                backoff = Duration::from_millis(100);
            }
        }
    }

    /// Takes every message already queued.
    fn take_queued(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>) {
        while let Ok(m) = rx.try_recv() {
            self.take(m);
        }
    }

    /// Adds the queued deltas to their runs' delta streams. While Redis is
    /// down they wait (the newest [`DELTAS_QUEUED`]); they are never
    /// retried from anywhere else.
    async fn send_deltas(&mut self) -> Result<(), String> {
        if self.deltas.is_empty() {
            return Ok(());
        }
        if self.deltas.len() > DELTAS_QUEUED {
            let extra = self.deltas.len() - DELTAS_QUEUED;
            self.deltas.drain(..extra);
        }
        let mut conn = match self.connection().await {
            Ok(c) => c,
            Err(e) => {
                self.conn = None;
                return Err(e);
            }
        };
        let mut pipe = redis::pipe();
        let mut keys = BTreeSet::new();
        for d in &self.deltas {
            let key = deltas_stream(&d.run_id);
            let data = serde_json::to_string(d).map_err(|e| e.to_string())?;
            pipe.cmd("XADD").arg(&key).arg("MAXLEN").arg("~").arg(DELTAS_MAXLEN).arg("*").arg("data").arg(data).ignore();
            keys.insert(key);
        }
        for k in keys {
            pipe.cmd("EXPIRE").arg(k).arg(DELTAS_TTL_S).ignore();
        }
        match tokio::time::timeout(Duration::from_secs(5), pipe.query_async::<()>(&mut conn)).await {
            Ok(Ok(())) => {
                self.deltas.clear();
                Ok(())
            }
            Ok(Err(e)) => {
                self.conn = None;
                Err(e.to_string())
            }
            Err(_) => {
                self.conn = None;
                Err("no answer in 5s".into())
            }
        }
    }

    /// Adds the ready tasks to the task stream, once: a task whose entry is
    /// lost is found by the workers' sweep of the task table.
    async fn send_dispatch(&mut self) {
        if self.to_dispatch.is_empty() {
            return;
        }
        let tasks = std::mem::take(&mut self.to_dispatch);
        if let Err(e) = self.dispatch.add(&tasks).await {
            eprintln!("warning: cannot add {} ready task(s) to Redis ({e}); the workers find them in PostgreSQL", tasks.len());
        }
    }

    fn take(&mut self, m: Msg) {
        match m {
            Msg::Dirty(run) => {
                self.pending.insert(run);
            }
            Msg::Delta(d) => self.deltas.push(d),
            Msg::Dispatch(t) => self.to_dispatch.extend(t),
            Msg::Flush(w) => self.waiters.push(w),
        }
    }

    async fn connection(&mut self) -> Result<redis::aio::MultiplexedConnection, String> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(Duration::from_secs(2), self.client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "no answer in 2s".to_string())?
            .map_err(|e| e.to_string())?;
        self.conn = Some(c.clone());
        Ok(c)
    }

    /// Brings `run`'s streams up to its journal. The deltas published
    /// before the entries were read go out first.
    async fn publish_run(&mut self, run: &str, rx: &mut mpsc::UnboundedReceiver<Msg>) -> Result<(), String> {
        loop {
            let cursor = self.store.bus_cursor(run).await.map_err(|e| e.to_string())?;
            let entries = self.store.journal_since(run, cursor).await.map_err(|e| e.to_string())?;
            if entries.is_empty() {
                return Ok(());
            }
            self.take_queued(rx);
            self.send_deltas().await?;
            let mut conn = self.connection().await?;
            let key = run_stream(run);
            for chunk in entries.chunks(CHUNK as usize) {
                let mut inv = self.script.key(&key);
                inv.key(ALL_EVENTS).arg(ALL_EVENTS_MAXLEN).arg(run);
                for (id, e) in chunk {
                    let data = serde_json::to_string(&e.transition).map_err(|e| e.to_string())?;
                    inv.arg(*id).arg(e.at_ms).arg(e.transition.kind()).arg(data);
                }
                let timed = tokio::time::timeout(Duration::from_secs(5), inv.invoke_async::<i64>(&mut conn)).await;
                match timed {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => return Err("no answer in 5s".into()),
                }
                if let Some((last, _)) = chunk.last() {
                    self.store.set_bus_cursor(run, *last).await.map_err(|e| e.to_string())?;
                }
            }
        }
    }
}

/// One event as `aosc events --json` prints it, from Redis or the store.
pub fn event_json(journal_id: i64, run_id: &str, at_ms: u64, kind: &str, transition: Value) -> Value {
    json!({ "id": journal_id, "run_id": run_id, "at_ms": at_ms, "kind": kind, "transition": transition })
}

/// Reads events back from Redis: the run's stream, or `aos:events`; for a
/// run, its streamed deltas too ([`RedisEvents::next_live`]).
pub struct RedisEvents {
    conn: redis::aio::MultiplexedConnection,
    key: String,
    last: String,
    /// The run's delta stream and the last delta read.
    deltas: Option<(String, String)>,
}

impl RedisEvents {
    /// Connects for reading `run_id`'s stream (or every run's).
    pub async fn open(url: &str, run_id: Option<&str>) -> Result<RedisEvents, String> {
        let client = redis::Client::open(url).map_err(|e| format!("AOS_REDIS_URL `{url}`: {e}"))?;
        let conn = tokio::time::timeout(Duration::from_secs(5), client.get_multiplexed_async_connection())
            .await
            .map_err(|_| format!("Redis at `{url}`: no answer in 5s"))?
            .map_err(|e| format!("Redis at `{url}`: {e}"))?;
        Ok(RedisEvents {
            conn,
            key: run_id.map(run_stream).unwrap_or_else(|| ALL_EVENTS.to_string()),
            last: "0-0".into(),
            deltas: run_id.map(|r| (deltas_stream(r), "0-0".to_string())),
        })
    }

    /// The next events, then the deltas added up to now (read in that
    /// order: every delta that came before an event read is among them);
    /// with `block_ms`, waits that long for either when there are none.
    /// Without a run (`aos:events`) there are no deltas.
    pub async fn next_live(&mut self, block_ms: Option<u64>) -> Result<(Vec<Value>, Vec<Delta>), String> {
        let Some((dkey, dlast)) = self.deltas.clone() else {
            return Ok((self.next(block_ms).await?, Vec::new()));
        };
        if let Some(ms) = block_ms {
            // Only waits: what is there is read below, in order. (Short
            // enough to stay within the connection's response timeout.)
            let mut c = redis::cmd("XREAD");
            c.arg("COUNT").arg(1).arg("BLOCK").arg(ms.min(LIVE_BLOCK_MS)).arg("STREAMS").arg(&self.key).arg(&dkey).arg(&self.last).arg(&dlast);
            let _: redis::Value = c.query_async(&mut self.conn).await.map_err(|e| format!("Redis: {e}"))?;
        }
        let events = self.next(None).await?;
        let mut deltas = Vec::new();
        let mut last = dlast;
        loop {
            let mut c = redis::cmd("XREAD");
            c.arg("COUNT").arg(500).arg("STREAMS").arg(&dkey).arg(&last);
            let reply: redis::Value = c.query_async(&mut self.conn).await.map_err(|e| format!("Redis: {e}"))?;
            let got = stream_entries(&reply);
            let n = got.len();
            for (id, fields) in got {
                if let Some(d) = fields.iter().find(|(f, _)| f == "data").and_then(|(_, v)| serde_json::from_str::<Delta>(v).ok()) {
                    deltas.push(d);
                }
                last = id;
            }
            if n < 500 {
                break;
            }
        }
        self.deltas = Some((dkey, last));
        Ok((events, deltas))
    }

    /// The next events after the last read; with `block_ms`, waits that long
    /// for one when there are none.
    pub async fn next(&mut self, block_ms: Option<u64>) -> Result<Vec<Value>, String> {
        let mut c = redis::cmd("XREAD");
        c.arg("COUNT").arg(500);
        if let Some(ms) = block_ms {
            c.arg("BLOCK").arg(ms);
        }
        c.arg("STREAMS").arg(&self.key).arg(&self.last);
        let reply: redis::Value = c.query_async(&mut self.conn).await.map_err(|e| format!("Redis: {e}"))?;
        let mut out = Vec::new();
        for (id, fields) in stream_entries(&reply) {
            let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone()).unwrap_or_default();
            let run_id = if self.key == ALL_EVENTS { get("run_id") } else { self.key.trim_start_matches("aos:run:").to_string() };
            let journal_id: i64 = if self.key == ALL_EVENTS {
                get("journal_id").parse().unwrap_or(0)
            } else {
                id.split('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
            };
            let transition: Value = serde_json::from_str(&get("data")).unwrap_or(Value::Null);
            out.push(event_json(journal_id, &run_id, get("at_ms").parse().unwrap_or(0), &get("kind"), transition));
            self.last = id;
        }
        Ok(out)
    }
}

/// `(entry id, [(field, value)])` of an XREAD reply (RESP2 or RESP3 shape).
fn stream_entries(reply: &redis::Value) -> Vec<(String, Vec<(String, String)>)> {
    use redis::Value as V;
    fn text(v: &V) -> String {
        match v {
            V::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            V::SimpleString(s) => s.clone(),
            V::Int(i) => i.to_string(),
            _ => String::new(),
        }
    }
    fn entries(v: &V, out: &mut Vec<(String, Vec<(String, String)>)>) {
        if let V::Array(items) = v {
            for item in items {
                if let V::Array(pair) = item {
                    if let (Some(id), Some(V::Array(kv))) = (pair.first(), pair.get(1)) {
                        let fields = kv.chunks(2).filter_map(|c| Some((text(c.first()?), text(c.get(1)?)))).collect();
                        out.push((text(id), fields));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    match reply {
        // RESP2: [[key, [entries]]]
        V::Array(streams) => {
            for s in streams {
                if let V::Array(kv) = s {
                    if let Some(e) = kv.get(1) {
                        entries(e, &mut out);
                    }
                }
            }
        }
        // RESP3: {key: [entries]}
        V::Map(m) => {
            for (_, e) in m {
                entries(e, &mut out);
            }
        }
        _ => {}
    }
    out
}
