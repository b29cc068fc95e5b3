//! The fleet with real processes: `aosc run --detach`, `aosc worker` ×N and
//! `aosc wait` on a real PostgreSQL. A worker killed with SIGKILL mid-run,
//! PostgreSQL stopped and started again mid-run, an approval gate: every
//! item succeeds exactly once by the journal and the output equals a
//! single-process `aosc run`'s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::services as support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aos_compiler::ir::{FanOut, Program, SimOptions};
use aos_runtime::testkit::*;
use serde_json::{json, Value};

/// `aosc` with the store `db` (none: SQLite under `home`), the simulator and short leases.
fn cmd(home: &Path, db: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"));
    c.args(args).env("AOS_HOME", home).env("AOS_LLM", "sim").env("AOS_LEASE_MS", "1500").env_remove("AOS_REDIS_URL");
    match db {
        Some(db) => c.env("AOS_DATABASE_URL", db),
        None => c.env_remove("AOS_DATABASE_URL"),
    };
    c
}

fn aosc(home: &Path, db: Option<&str>, args: &[&str]) -> Output {
    cmd(home, db, args).output().unwrap()
}

fn worker(home: &Path, db: &str, concurrency: u32) -> Child {
    cmd(home, Some(db), &["worker", "--concurrency", &concurrency.to_string()]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

/// SIGTERM, then the worker's exit status and stderr.
fn stop(mut w: Child) -> (Option<i32>, String) {
    let _ = Command::new("kill").args(["-TERM", &w.id().to_string()]).status();
    let out = wait_child(&mut w, Duration::from_secs(60));
    let mut err = String::new();
    if let Some(mut e) = w.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    (out, err)
}

fn wait_child(w: &mut Child, limit: Duration) -> Option<i32> {
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
fn fan_program(dir: &Path, n: usize, latency_ms: u64, gate: bool) -> String {
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
fn database(pg: &support::Postgres, name: &str) -> String {
    let dbname = format!("{name}_{}_{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos());
    pg.psql(&format!("CREATE DATABASE {dbname}"));
    format!("{}/{dbname}", pg.url.rsplit_once('/').unwrap().0)
}

fn detach(home: &Path, db: &str, prog: &str) -> String {
    let o = aosc(home, Some(db), &["run", prog, "--detach", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "queued");
    v["run_id"].as_str().unwrap().to_string()
}

fn count(pg: &support::Postgres, db: &str, id: &str, kind: &str) -> usize {
    pg.query(db, &format!("SELECT count(*) FROM journal WHERE run_id = '{id}' AND kind = '{kind}'")).parse().unwrap()
}

/// Polls until at least `n` items of run `id` succeeded.
fn until_items(pg: &support::Postgres, db: &str, id: &str, n: usize) {
    let start = Instant::now();
    while count(pg, db, id, "item.succeeded") < n {
        assert!(start.elapsed() < Duration::from_secs(120), "the workers made no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every item of the fan-out succeeded exactly once in the journal.
fn each_item_once(pg: &support::Postgres, db: &str, id: &str, n: usize) {
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
fn reference_output(prog: &str) -> Value {
    let home = tempfile::tempdir().unwrap();
    let o = aosc(home.path(), None, &["run", prog, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<Value>(&o.stdout).unwrap()["output"].clone()
}

#[test]
fn detach_and_worker_need_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let prog = fan_program(dir.path(), 3, 0, false);
    let o = aosc(dir.path(), None, &["run", &prog, "--detach"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("AOS_DATABASE_URL=postgres://") && err.contains("nothing was run"), "{err}");
    assert!(!dir.path().join("aos.db").exists(), "nothing was stored");
    let o = aosc(dir.path(), Some("sqlite://x.db"), &["worker", "--once"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs the shared store"));
    let o = aosc(dir.path(), None, &["wait", "nosuchrun", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn four_workers_one_killed_every_item_once() {
    let Some(pg) = support::Postgres::start() else { return };
    let db = database(&pg, "fleet_kill");
    let dir = tempfile::tempdir().unwrap();
    const N: usize = 500;
    let prog = fan_program(dir.path(), N, 20, false);
    let id = detach(dir.path(), &db, &prog);
    let o = aosc(dir.path(), Some(&db), &["runs", "--json"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"queued\""), "{}", String::from_utf8_lossy(&o.stdout));

    let mut workers: Vec<Child> = (0..4).map(|_| worker(dir.path(), &db, 8)).collect();
    until_items(&pg, &db, &id, 100);
    let mut victim = workers.remove(0);
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    let killed_at = count(&pg, &db, &id, "item.succeeded");
    assert!(killed_at < N, "the run ended before the kill");

    let o = aosc(dir.path(), Some(&db), &["wait", &id, "--json", "--timeout", "180"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["output"], reference_output(&prog), "the fleet's output differs from a single process's");

    each_item_once(&pg, &db, &id, N);
    // The killed worker's attempts in flight were taken over after its
    // lease and decided about as a resume would (run again: pure LLM calls).
    let interrupted = pg.query(&db, &format!("SELECT data FROM journal WHERE run_id = '{id}' AND kind = 'step.interrupted'"));
    assert!(!interrupted.is_empty(), "no attempt of the killed worker was taken over");
    assert!(interrupted.lines().all(|l| l.contains("\"retry\"")), "{interrupted}");
    assert_eq!(pg.query(&db, &format!("SELECT count(*) FROM tasks WHERE run_id = '{id}'")), "0", "tasks left behind");

    let mut took_part = 0;
    for w in workers {
        let (code, err) = stop(w);
        assert_eq!(code, Some(0), "{err}");
        assert!(err.lines().next().unwrap_or("").contains("taking steps from PostgreSQL"), "{err}");
        if !err.contains("0 attempt(s) run") {
            took_part += 1;
        }
    }
    assert!(took_part >= 2, "the work was not shared between workers");
    let o = aosc(dir.path(), Some(&db), &["audit", "verify", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn postgres_stopped_mid_run_workers_retry_and_finish() {
    // Our own server: this test stops it.
    let Some(pg) = support::Postgres::start_own() else { return };
    let db = database(&pg, "fleet_pg");
    let dir = tempfile::tempdir().unwrap();
    const N: usize = 200;
    let prog = fan_program(dir.path(), N, 20, false);
    let id = detach(dir.path(), &db, &prog);
    let workers: Vec<Child> = (0..2).map(|_| worker(dir.path(), &db, 8)).collect();
    until_items(&pg, &db, &id, 40);
    pg.stop();
    std::thread::sleep(Duration::from_secs(3));
    pg.start_again();

    let o = aosc(dir.path(), Some(&db), &["wait", &id, "--json", "--timeout", "180"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["output"], reference_output(&prog));
    each_item_once(&pg, &db, &id, N);
    let mut said = 0;
    for w in workers {
        let (code, err) = stop(w);
        assert_eq!(code, Some(0), "{err}");
        if err.contains("the store is unavailable") {
            assert!(err.contains("the store is back"), "{err}");
            said += 1;
        }
    }
    assert!(said >= 1, "no worker said that the store was unavailable");
}

#[test]
fn a_gate_waits_and_approve_continues_the_fleet_run() {
    let Some(pg) = support::Postgres::start() else { return };
    let db = database(&pg, "fleet_gate");
    let dir = tempfile::tempdir().unwrap();
    let prog = fan_program(dir.path(), 5, 0, true);
    let id = detach(dir.path(), &db, &prog);
    let w = worker(dir.path(), &db, 4);
    let o = aosc(dir.path(), Some(&db), &["wait", &id, "--json", "--timeout", "60"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "waiting_approval");
    assert!(report["error"].as_str().unwrap().contains("aosc approve"), "{report}");
    assert_eq!(count(&pg, &db, &id, "step.started"), 5, "the gated step must not start");

    let o = aosc(dir.path(), Some(&db), &["approve", &id, "publish", "--by", "ana"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = aosc(dir.path(), Some(&db), &["wait", &id, "--json", "--timeout", "60"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(count(&pg, &db, &id, "run.resumed"), 1);
    let (code, err) = stop(w);
    assert_eq!(code, Some(0), "{err}");
}

/// The fleet benchmark (docs/benchmarks.md): steps/s of 1, 2 and 4 workers
/// on a fan-out of `AOS_BENCH_ITEMS` (default 10 000) zero-latency sim
/// items, from the first worker's start to the run's end. Not a test:
/// `cargo test [--release] -p aosc --test fleet_workers -- --ignored --nocapture bench`.
#[test]
#[ignore]
fn bench_fleet_steps_per_second() {
    let Some(pg) = support::Postgres::start() else { return };
    let n: usize = std::env::var("AOS_BENCH_ITEMS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let prog = fan_program(dir.path(), n, 0, false);
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ");
    {
        let home = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let o = aosc(home.path(), None, &["run", &prog, "--json"]);
        let wall = start.elapsed().as_secs_f64();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        println!("embedded `aosc run` (SQLite): {n} items in {wall:.2} s = {:.0} steps/s (load average: {})", n as f64 / wall, load());
    }
    for workers in [1usize, 2, 4] {
        let db = database(&pg, &format!("fleet_bench{workers}"));
        let id = detach(dir.path(), &db, &prog);
        let before = load();
        let start = Instant::now();
        let ws: Vec<Child> = (0..workers).map(|_| worker(dir.path(), &db, 16)).collect();
        let o = aosc(dir.path(), Some(&db), &["wait", &id, "--json", "--timeout", "1800"]);
        let wall = start.elapsed().as_secs_f64();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        for w in ws {
            stop(w);
        }
        each_item_once(&pg, &db, &id, n);
        println!("workers {workers}: {n} items in {wall:.2} s = {:.0} steps/s (load average before: {before}; after: {})", n as f64 / wall, load());
    }
}
