//! The fleet with real processes: `aosc run --detach`, `aosc worker` ×N and
//! `aosc wait` on a real PostgreSQL. A worker killed with SIGKILL mid-run,
//! PostgreSQL stopped and started again mid-run, an approval gate: every
//! item succeeds exactly once by the journal and the output equals a
//! single-process `aosc run`'s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::redis as redis_server;
use aos_testkit::services as support;
mod fleet_support;

use std::process::Child;
use std::time::{Duration, Instant};

use fleet_support::*;
use serde_json::Value;

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
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("the workers continue it") && said.contains(&format!("aosc wait {id}")), "{said}");
    assert!(!said.contains("aosc resume"), "a fleet run is not resumed by hand: {said}");
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
/// items, from the first worker's start to the run's end, with workers
/// polling PostgreSQL and with Redis Streams dispatch (a `redis-server` of
/// the bench's own), beside one embedded `aosc run` on SQLite. Not a test:
/// `cargo test [--release] -p aosc --test fleet_workers -- --ignored --nocapture bench`.
#[test]
#[ignore]
fn bench_fleet_steps_per_second() {
    let Some(pg) = support::Postgres::start() else { return };
    let redis = redis_server::RedisServer::start();
    let n: usize = std::env::var("AOS_BENCH_ITEMS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let concurrency: u32 = std::env::var("AOS_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let dir = tempfile::tempdir().unwrap();
    let prog = fan_program(dir.path(), n, 0, false);
    // `max_concurrency` of the workflow (attempts in flight across the
    // fleet; default 32) from AOS_BENCH_MAX_CONCURRENCY.
    if let Some(m) = std::env::var("AOS_BENCH_MAX_CONCURRENCY").ok().and_then(|v| v.parse::<u32>().ok()) {
        let mut p: aos_compiler::ir::Program = serde_json::from_str(&std::fs::read_to_string(&prog).unwrap()).unwrap();
        p.workflows.get_mut("fan").unwrap().max_concurrency = Some(m);
        std::fs::write(&prog, serde_json::to_string(&p).unwrap()).unwrap();
        println!("max_concurrency {m}");
    }
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ");
    {
        let home = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let o = aosc(home.path(), None, &["run", &prog, "--json"]);
        let wall = start.elapsed().as_secs_f64();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        println!("embedded `aosc run` (SQLite): {n} items in {wall:.2} s = {:.0} steps/s (load average: {})", n as f64 / wall, load());
    }
    let mut modes = vec![("PostgreSQL polling", None)];
    if let Some(r) = &redis {
        modes.push(("Redis Streams dispatch", Some(r.url())));
    }
    for (mode, url) in modes {
        if let Some(u) = &url {
            use_redis(u);
        }
        for workers in [1usize, 2, 4] {
            let db = database(&pg, &format!("fleet_bench{workers}"));
            let id = detach(dir.path(), &db, &prog);
            let before = load();
            let start = Instant::now();
            let ws: Vec<Child> = (0..workers).map(|_| worker(dir.path(), &db, concurrency)).collect();
            let o = aosc(dir.path(), Some(&db), &["wait", &id, "--json", "--timeout", "1800"]);
            let wall = start.elapsed().as_secs_f64();
            assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
            let mut commits = 0;
            for w in ws {
                commits += figure(&stop(w).1, "commit(s)");
            }
            each_item_once(&pg, &db, &id, n);
            println!(
                "{mode}, workers {workers}: {n} items in {wall:.2} s = {:.0} steps/s, {commits} commits (load average before: {before}; after: {})",
                n as f64 / wall,
                load()
            );
        }
    }
}
