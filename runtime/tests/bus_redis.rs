//! The Redis Streams bus and working memory against a real `redis-server`
//! of the test's own: every journal entry reaches the run's stream and
//! `aos:events`, once and in order, across a Redis restart and across
//! processes (what one could not publish, the next one does); working
//! memory entries expire after their TTL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::redis as redis_server;
use aos_testkit::stores;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{FanOut, SimOptions, Trust};
use aos_runtime::bus::redis::{RedisBus, RedisEvents};
use aos_runtime::events::RunStatus;
use aos_runtime::testkit::*;
use aos_runtime::tools::memory::working;
use aos_runtime::tools::{ToolConfig, ToolCtx, Tools};
use aos_runtime::{RunOptions, Runtime};
use redis_server::RedisServer;
use serde_json::{json, Value};
use stores::{Kind, TestStore};

/// A fan-out of `n` items of `latency_ms` each, four at a time.
fn fan(n: usize, latency_ms: u64) -> aos_compiler::ir::Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions { latency_ms, ..Default::default() })]);
    let mut wf = workflow("fan");
    let mut f = llm("each", "executor", interp(vec![s("item "), var("x")]));
    let items: Vec<Value> = (0..n).map(|i| json!(i)).collect();
    f.fan_out = Some(FanOut { var: "x".into(), items: lit(Value::Array(items)), max_items: Some(n as u64), concurrency: Some(4) });
    add(&mut wf, f);
    wf.ret_expr = Some(step_ref("each"));
    p.workflows.insert("fan".into(), wf);
    p
}

/// Every event of a run's stream, read the way `aosc events` reads it.
async fn stream(url: &str, run: Option<&str>) -> Vec<Value> {
    let mut r = RedisEvents::open(url, run).await.unwrap();
    let mut all = Vec::new();
    loop {
        let batch = r.next(None).await.unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// The run's stream equals its journal: same ids, kinds and transitions, in order.
async fn assert_stream_is_journal(ts: &TestStore, url: &str, run: &str) {
    let journal = ts.store().journal_since(run, 0).await.unwrap();
    let events = stream(url, Some(run)).await;
    assert_eq!(events.len(), journal.len(), "stream has {} events, journal {}", events.len(), journal.len());
    for ((id, e), ev) in journal.iter().zip(&events) {
        assert_eq!(ev["id"], json!(id));
        assert_eq!(ev["kind"], e.transition.kind());
        assert_eq!(ev["transition"], serde_json::to_value(&e.transition).unwrap());
    }
    let all: Vec<Value> = stream(url, None).await.into_iter().filter(|e| e["run_id"] == run).collect();
    let ids: Vec<Value> = all.iter().map(|e| e["id"].clone()).collect();
    let want: Vec<Value> = journal.iter().map(|(id, _)| json!(id)).collect();
    assert_eq!(ids, want, "aos:events holds each entry once, in order");
}

async fn every_event_reaches_both_streams(kind: Kind) {
    let Some(redis) = RedisServer::start() else { return };
    let Some(ts) = TestStore::open(kind).await else { return };
    let mut rt = Runtime::new(ts.store(), ts.dir.path());
    rt.bus = Arc::new(RedisBus::start(&redis.url(), ts.store()).unwrap());
    let r = rt.run(&fan(20, 0), "fan", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert!(rt.bus.flush(Duration::from_secs(10)).await);
    assert_stream_is_journal(&ts, &redis.url(), &r.run_id).await;
    assert!(ts.store().unpublished_runs().await.unwrap().is_empty());
}

async fn a_redis_restart_mid_run_leaves_no_gap(kind: Kind) {
    let Some(mut redis) = RedisServer::start() else { return };
    let Some(ts) = TestStore::open(kind).await else { return };
    let mut rt = Runtime::new(ts.store(), ts.dir.path());
    rt.bus = Arc::new(RedisBus::start(&redis.url(), ts.store()).unwrap());
    let p = fan(80, 25);
    let run = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.run(&p, "fan", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    redis.down();
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.up();
    let r = run.await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(r.output.as_ref().unwrap().as_array().unwrap().len(), 80);
    assert!(rt.bus.flush(Duration::from_secs(15)).await, "the bus did not catch up after Redis came back");
    assert_stream_is_journal(&ts, &redis.url(), &r.run_id).await;
}

async fn what_one_process_could_not_publish_the_next_one_does(kind: Kind) {
    let Some(redis) = RedisServer::start() else { return };
    let Some(ts) = TestStore::open(kind).await else { return };
    // The first "process" runs with Redis unreachable (nothing on its port).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut rt = Runtime::new(ts.store(), ts.dir.path());
    rt.bus = Arc::new(RedisBus::start(&format!("redis://127.0.0.1:{dead}/"), ts.store()).unwrap());
    let r = rt.run(&fan(5, 0), "fan", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded);
    assert!(!rt.bus.flush(Duration::from_millis(300)).await, "nothing can be flushed to a dead Redis");
    assert_eq!(ts.store().unpublished_runs().await.unwrap(), vec![r.run_id.clone()]);
    drop(rt);
    // The next one, with Redis up, publishes the backlog when it starts.
    let bus = RedisBus::start(&redis.url(), ts.store()).unwrap();
    assert!(aos_runtime::bus::Bus::flush(&bus, Duration::from_secs(10)).await);
    assert_stream_is_journal(&ts, &redis.url(), &r.run_id).await;
    // Publishing again adds nothing: entry ids are journal ids.
    let again = RedisBus::start(&redis.url(), ts.store()).unwrap();
    ts.store().set_bus_cursor(&r.run_id, 0).await.ok();
    aos_runtime::bus::Bus::notify(&again, &r.run_id);
    assert!(aos_runtime::bus::Bus::flush(&again, Duration::from_secs(10)).await);
    assert_stream_is_journal(&ts, &redis.url(), &r.run_id).await;
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_event_reaches_both_streams() {
        super::every_event_reaches_both_streams(super::Kind::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redis_restart_mid_run_leaves_no_gap() {
        super::a_redis_restart_mid_run_leaves_no_gap(super::Kind::Sqlite).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_one_process_could_not_publish_the_next_one_does() {
        super::what_one_process_could_not_publish_the_next_one_does(super::Kind::Sqlite).await
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_event_reaches_both_streams() {
        super::every_event_reaches_both_streams(super::Kind::Postgres).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redis_restart_mid_run_leaves_no_gap() {
        super::a_redis_restart_mid_run_leaves_no_gap(super::Kind::Postgres).await
    }
}

async fn call(t: &Tools, name: &str, args: Value, run: &str) -> Result<Value, String> {
    let ctx = ToolCtx { run_id: run.into(), step: "s".into(), ..Default::default() };
    t.get(name).unwrap().call(args, &ctx).await.map_err(|e| e.to_string())
}

async fn working_entries_expire_after_their_ttl(w: Arc<dyn working::Working>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(aos_runtime::store::sqlite::SqliteStore::open(&dir.path().join("aos.db")).await.unwrap());
    let t = Tools::with_config(&ToolConfig::default()).with_memory(store, w);
    let remember = |k: &str, v: Value, extra: Value| {
        let mut args = json!({"key": k, "value": v, "layer": "working"});
        args.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        args
    };
    call(&t, "memory.remember", remember("draft", json!("EMEA draft summary"), json!({"ttl_s": 1})), "r1").await.unwrap();
    call(&t, "memory.remember", remember("plan", json!("EMEA weekly plan"), json!({})), "r1").await.unwrap();
    let hits = call(&t, "memory.recall", json!({"query": "EMEA draft", "layer": "working"}), "r2").await.unwrap();
    let keys: Vec<&str> = hits.as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["draft", "plan"], "{hits}");
    assert_eq!(hits[0]["layer"], "working");
    assert_eq!(hits[0]["embedding"], "local-trigram-256");
    // Long-term memory does not see working entries.
    assert_eq!(call(&t, "memory.recall", json!({"query": "draft"}), "r1").await.unwrap(), json!([]));
    // Session memory is the run's own (sub-runs share their root's).
    call(&t, "memory.remember", json!({"key": "note", "value": "mine", "layer": "session"}), "r1").await.unwrap();
    let mine = call(&t, "memory.recall", json!({"query": "note", "layer": "session"}), "r1.child").await.unwrap();
    assert_eq!(mine[0]["value"], "mine");
    assert_eq!(call(&t, "memory.recall", json!({"query": "note", "layer": "session"}), "r2").await.unwrap(), json!([]));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let hits = call(&t, "memory.recall", json!({"query": "EMEA draft", "layer": "working"}), "r2").await.unwrap();
    let keys: Vec<&str> = hits.as_array().unwrap().iter().map(|h| h["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["plan"], "the 1 s entry is gone, the 1 h one stays: {hits}");
    let e = call(&t, "memory.remember", json!({"key": "k", "value": 1, "layer": "session", "ttl_s": 5}), "r1").await.unwrap_err();
    assert!(e.contains("`ttl_s` applies to the `working` layer only"), "{e}");
}

#[tokio::test]
async fn working_memory_in_redis_expires() {
    let Some(redis) = RedisServer::start() else { return };
    working_entries_expire_after_their_ttl(Arc::new(working::Redis::new(&redis.url()).unwrap())).await;
    // Redis holds the TTL itself.
    let keys = redis.cli(&["--scan", "--pattern", "aos:mem:*"]);
    assert!(keys.contains("aos:mem:working:plan"), "{keys}");
    let ttl: i64 = redis.cli(&["TTL", "aos:mem:working:plan"]).parse().unwrap();
    assert!((3500..=3600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn working_memory_in_process_expires() {
    working_entries_expire_after_their_ttl(Arc::new(working::InProcess::default())).await;
}

/// The task stream's take-over (`aosc worker` with Redis dispatch): entries
/// delivered to a consumer that never acknowledges them (a worker killed
/// with SIGKILL) are taken over by another consumer with XAUTOCLAIM once
/// idle for the given time, and not before; acknowledged entries are not.
/// (`cli/tests/fleet_dispatch.rs` kills a real worker, whose tasks may all
/// have been kept for itself rather than delivered by the stream.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_consumers_task_entries_are_taken_over_after_they_idle() {
    use aos_runtime::bus::dispatch::{Dispatch, TaskRef};
    let Some(redis) = RedisServer::start() else { return };
    let d = Dispatch::new(&redis.url()).unwrap();
    let tasks: Vec<TaskRef> = (0..3).map(|i| TaskRef { run_id: "R".into(), step: 0, item: i }).collect();
    d.add(&tasks).await.unwrap();
    let got = d.read("dead", 10, Duration::from_millis(500)).await.unwrap();
    assert_eq!(got.iter().map(|e| e.task.clone().unwrap()).collect::<Vec<_>>(), tasks);
    // The first one was committed (acknowledged); the others stay pending.
    d.ack(&[got[0].id.clone()]).await.unwrap();
    let idle = Duration::from_millis(400);
    assert!(d.autoclaim("alive", idle, 10).await.unwrap().is_empty(), "taken over before they were idle");
    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    let taken = d.autoclaim("alive", idle, 10).await.unwrap();
    let ids: Vec<&str> = taken.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, vec![got[1].id.as_str(), got[2].id.as_str()]);
    let pending = redis.cli(&["XPENDING", "aos:tasks", "aos:workers", "-", "+", "10", "alive"]);
    assert_eq!(pending.lines().filter(|l| l.trim() == "alive").count(), 2, "{pending}");
}
