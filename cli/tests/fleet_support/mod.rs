//! Helpers of the fleet tests (`fleet_workers.rs`, `fleet_dispatch.rs`):
//! `aosc` processes on a PostgreSQL of the test's own (and a Redis, for
//! Redis dispatch), a fan-out program, journal checks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aos_compiler::ir::{FanOut, Program, SimOptions};
use aos_runtime::testkit::*;
use serde_json::{json, Value};

use super::support;

thread_local! {
    /// The Redis of this test thread's `aosc` processes (`AOS_REDIS_URL`), if any.
    static REDIS: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// From now on, this thread's `aosc` processes use Redis at `url`.
pub fn use_redis(url: &str) {
    REDIS.with(|r| *r.borrow_mut() = Some(url.to_string()));
}

/// The first and last lines of a worker's stderr.
pub fn first_line(err: &str) -> &str {
    err.lines().next().unwrap_or("")
}

/// A number printed before `what` in `text` (`12 attempt(s) run` → 12).
pub fn figure(text: &str, what: &str) -> u64 {
    text.find(what).and_then(|i| text[..i].trim_end().rsplit(' ').next()?.trim_start_matches('(').parse().ok()).unwrap_or(0)
}

/// `aosc` with the store `db` (none: SQLite under `home`), the simulator and short leases.
pub fn cmd(home: &Path, db: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"));
    c.args(args).env("AOS_HOME", home).env("AOS_LLM", "sim").env("AOS_LEASE_MS", "1500");
    match REDIS.with(|r| r.borrow().clone()) {
        Some(r) => c.env("AOS_REDIS_URL", r),
        None => c.env_remove("AOS_REDIS_URL"),
    };
    match db {
        Some(db) => c.env("AOS_DATABASE_URL", db),
        None => c.env_remove("AOS_DATABASE_URL"),
    };
    c
}

pub fn aosc(home: &Path, db: Option<&str>, args: &[&str]) -> Output {
    cmd(home, db, args).output().unwrap()
}

pub fn worker(home: &Path, db: &str, concurrency: u32) -> Child {
    cmd(home, Some(db), &["worker", "--concurrency", &concurrency.to_string()]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

/// SIGTERM, then the worker's exit status and stderr.
pub fn stop(mut w: Child) -> (Option<i32>, String) {
    let _ = Command::new("kill").args(["-TERM", &w.id().to_string()]).status();
    let out = wait_child(&mut w, Duration::from_secs(60));
    let mut err = String::new();
    if let Some(mut e) = w.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (out, err)
}

pub fn wait_child(w: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(s) = w.try_wait().unwrap() {
            return s.code();
        }
        if start.elapsed() > limit {
            let _ = w.kill();
            panic!("worker {} did not stop within {limit:?}", w.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fan-out of `n` items over a sim model with `latency_ms` per call.
pub fn fan_program(dir: &Path, n: usize, latency_ms: u64, gate: bool) -> String {
    let mut p: Program = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions { latency_ms, ..SimOptions::default() })]);
    let mut wf = workflow("fan");
    let items: Vec<Value> = (0..n).map(|i| json!(i)).collect();
    let mut f = llm("each", "executor", interp(vec![s("item "), var("x")]));
    f.fan_out = Some(FanOut { var: "x".into(), items: lit(Value::Array(items)), max_items: Some(n as u64 + 1), concurrency: None });
    add(&mut wf, f);
    if gate {
        let mut g = llm("publish", "executor", interp(vec![s("publish "), step_ref("each")]));
        g.approval = Some("ops".into());
        add(&mut wf, g);
        wf.ret_expr = Some(step_ref("publish"));
    } else {
        wf.ret_expr = Some(step_ref("each"));
    }
    p.workflows.insert("fan".into(), wf);
    let path = dir.join("fan.json");
    std::fs::write(&path, serde_json::to_string(&p).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

/// A database of the test's own on `pg`.
pub fn database(pg: &support::Postgres, name: &str) -> String {
    let dbname = format!("{name}_{}_{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos());
    pg.psql(&format!("CREATE DATABASE {dbname}"));
    format!("{}/{dbname}", pg.url.rsplit_once('/').unwrap().0)
}

pub fn detach(home: &Path, db: &str, prog: &str) -> String {
    let o = aosc(home, Some(db), &["run", prog, "--detach", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "queued");
    v["run_id"].as_str().unwrap().to_string()
}

pub fn count(pg: &support::Postgres, db: &str, id: &str, kind: &str) -> usize {
    pg.query(db, &format!("SELECT count(*) FROM journal WHERE run_id = '{id}' AND kind = '{kind}'")).parse().unwrap()
}

/// Polls until at least `n` items of run `id` succeeded.
pub fn until_items(pg: &support::Postgres, db: &str, id: &str, n: usize) {
    let start = Instant::now();
    while count(pg, db, id, "item.succeeded") < n {
        assert!(start.elapsed() < Duration::from_secs(120), "the workers made no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every item of the fan-out succeeded exactly once in the journal.
pub fn each_item_once(pg: &support::Postgres, db: &str, id: &str, n: usize) {
    let rows = pg.query(db, &format!("SELECT data FROM journal WHERE run_id = '{id}' AND kind = 'item.succeeded'"));
    let mut seen = vec![0u32; n];
    for line in rows.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        seen[v["item"].as_u64().unwrap() as usize] += 1;
    }
    let wrong: Vec<(usize, u32)> = seen.iter().enumerate().filter(|(_, c)| **c != 1).map(|(i, c)| (i, *c)).collect();
    assert!(wrong.is_empty(), "items not succeeded exactly once (item, times): {wrong:?}");
}

/// The output of the same program run by one `aosc run` on SQLite.
pub fn reference_output(prog: &str) -> Value {
    let home = tempfile::tempdir().unwrap();
    let o = cmd(home.path(), None, &["run", prog, "--json"]).env_remove("AOS_REDIS_URL").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<Value>(&o.stdout).unwrap()["output"].clone()
}

