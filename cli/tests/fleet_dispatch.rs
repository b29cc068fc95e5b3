//! The fleet with Redis Streams dispatch (real `redis-server`s of the
//! test's own, a real PostgreSQL, real `aosc worker` processes): Redis
//! restarted mid-run, a worker killed with SIGKILL (its entries taken over
//! with XAUTOCLAIM), and run control of fleet runs (`aosc pause`, `resume`,
//! `cancel`). Gated sub-workflows on the fleet: `fleet_gates.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::redis as redis_server;
use aos_testkit::services as support;
mod fleet_support;

use std::process::Child;
use std::time::{Duration, Instant};

use fleet_support::*;
use serde_json::Value;

fn stream_ids(redis: &redis_server::RedisServer, id: &str) -> Vec<i64> {
    let out = redis.cli(&["XRANGE", &format!("aos:run:{id}"), "-", "+"]);
    // Entry ids are `{journal id}-0`; fields and values are on other lines.
    out.lines().filter_map(|l| l.strip_suffix("-0")?.parse().ok()).collect()
}

fn journal_ids(pg: &support::Postgres, db: &str, id: &str) -> Vec<i64> {
    pg.query(db, &format!("SELECT id FROM journal WHERE run_id = '{id}' ORDER BY id")).lines().map(|l| l.trim().parse().unwrap()).collect()
}

/// Waits until the run's stream holds exactly its journal (the workers
/// publish in the background).
fn stream_matches_journal(redis: &redis_server::RedisServer, pg: &support::Postgres, db: &str, id: &str) {
    let journal = journal_ids(pg, db, id);
    let start = Instant::now();
    loop {
        let stream = stream_ids(redis, id);
        if stream == journal {
            return;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let missing: Vec<&i64> = journal.iter().filter(|j| !stream.contains(j)).take(20).collect();
            panic!("the run's stream has {} entries, its journal {}; missing (first 20): {missing:?}", stream.len(), journal.len());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop_all(workers: Vec<Child>) -> Vec<String> {
    workers
        .into_iter()
        .map(|w| {
            let (code, err) = stop(w);
            assert_eq!(code, Some(0), "{err}");
            err
        })
        .collect()
}

#[test]
fn redis_restarted_mid_fan_out_every_item_once_and_no_event_gap() {
    let Some(pg) = support::Postgres::start() else { return };
    let Some(mut redis) = redis_server::RedisServer::start() else { return };
    use_redis(&redis.url());
    let db = database(&pg, "fleet_redis_restart");
    let dir = tempfile::tempdir().unwrap();
    const N: usize = 300;
    let prog = fan_program(dir.path(), N, 20, false);
    let id = detach(dir.path(), &db, &prog);
    let workers: Vec<Child> = (0..3).map(|_| worker(dir.path(), &db, 8)).collect();
    until_items(&pg, &db, &id, 60);
    redis.down();
    let at_stop = count(&pg, &db, &id, "item.succeeded");
    std::thread::sleep(Duration::from_secs(2));
    let while_down = count(&pg, &db, &id, "item.succeeded");
    redis.up();
    let up_at = std::time::Instant::now();

    let o = aosc(dir.path(), Some(&db), &["wait", &id, "--json", "--timeout", "180"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["output"], reference_output(&prog), "the fleet's output differs from a single process's");
    each_item_once(&pg, &db, &id, N);
    assert!(while_down > at_stop, "the workers made no progress while Redis was down ({at_stop} → {while_down})");

    // A worker that lost Redis tries it again once a second and says when it
    // is back; on a loaded machine the run can end before that try. Redis has
    // been up for 5 s before the workers are stopped.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(up_at.elapsed()));
    let errs = stop_all(workers);
    let mut from_stream = 0;
    let mut said = 0;
    for err in &errs {
        assert!(first_line(err).contains("taking steps from Redis Streams (aos:tasks group aos:workers"), "{err}");
        from_stream += figure(err, "from the Redis stream");
        if err.contains("Redis dispatch is unavailable") {
            assert!(err.contains("Redis dispatch is back"), "{err}");
            said += 1;
        }
    }
    assert!(said >= 1, "no worker said that Redis was unavailable: {errs:#?}");
    assert!(from_stream > 0, "no task came through the Redis stream: {errs:#?}");
    // Every event of the run is in its stream, none twice, in order.
    stream_matches_journal(&redis, &pg, &db, &id);
    // Every entry of the task stream was acknowledged or is about a task
    // that is gone (nothing is left pending for a live task).
    assert_eq!(pg.query(&db, &format!("SELECT count(*) FROM tasks WHERE run_id = '{id}'")), "0", "tasks left behind");
}

#[test]
fn a_killed_workers_claims_are_taken_over() {
    let Some(pg) = support::Postgres::start() else { return };
    let Some(redis) = redis_server::RedisServer::start() else { return };
    use_redis(&redis.url());
    let db = database(&pg, "fleet_redis_kill");
    let dir = tempfile::tempdir().unwrap();
    const N: usize = 500;
    let prog = fan_program(dir.path(), N, 20, false);
    let id = detach(dir.path(), &db, &prog);
    // A worker keeps what its own commits launch when it has room; the
    // rest goes through the stream. The victim has more room than the
    // others, so it holds tasks delivered by the stream when it is killed.
    let mut workers: Vec<Child> = (0..4).map(|i| worker(dir.path(), &db, if i == 0 { 8 } else { 1 })).collect();
    until_items(&pg, &db, &id, 100);
    let mut victim = workers.remove(0);
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    // The stream entries it held when it died (its consumer is its worker id).
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(victim.stderr.take().unwrap()), &mut first).unwrap();
    let consumer = first.trim_start_matches("worker ").split(": taking").next().unwrap().to_string();
    let held = redis.cli(&["XPENDING", "aos:tasks", "aos:workers", "-", "+", "1000", &consumer]).lines().filter(|l| l.trim() == consumer).count();
    assert!(count(&pg, &db, &id, "item.succeeded") < N, "the run ended before the kill");

    let o = aosc(dir.path(), Some(&db), &["wait", &id, "--json", "--timeout", "180"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["output"], reference_output(&prog));
    each_item_once(&pg, &db, &id, N);
    let interrupted = pg.query(&db, &format!("SELECT data FROM journal WHERE run_id = '{id}' AND kind = 'step.interrupted'"));
    assert!(!interrupted.is_empty(), "no attempt of the killed worker was taken over");
    assert!(interrupted.lines().all(|l| l.contains("\"retry\"")), "{interrupted}");

    let errs = stop_all(workers);
    // Its claims were taken over after their lease: the entries it held by
    // XAUTOCLAIM, the tasks it had kept for itself (never in the stream)
    // by the sweep of expired claims.
    let autoclaimed: u64 = errs.iter().map(|e| figure(e, "by XAUTOCLAIM")).sum();
    let reclaimed: u64 = errs.iter().map(|e| figure(e, "step(s) taken over")).sum();
    assert!(reclaimed > 0, "no claim of the killed worker was taken over: {errs:#?}");
    if held > 0 {
        assert!(autoclaimed > 0, "the killed worker held {held} entries; none was taken over with XAUTOCLAIM: {errs:#?}");
    }
    eprintln!("the killed worker held {held} stream entries; {autoclaimed} taken over by XAUTOCLAIM, {reclaimed} claims in all");
    let took_part = errs.iter().filter(|e| !e.contains(" 0 attempt(s) run")).count();
    assert!(took_part >= 2, "the work was not shared: {errs:#?}");
    assert_eq!(pg.query(&db, &format!("SELECT count(*) FROM tasks WHERE run_id = '{id}'")), "0", "tasks left behind");
    // The killed worker's consumer holds nothing any more.
    let pending = redis.cli(&["XPENDING", "aos:tasks", "aos:workers"]);
    assert!(pending.starts_with('0'), "entries still pending: {pending}");
}

#[test]
fn pause_holds_resume_continues_cancel_ends_a_fleet_run() {
    let Some(pg) = support::Postgres::start() else { return };
    let redis = redis_server::RedisServer::start();
    if let Some(r) = &redis {
        use_redis(&r.url());
    }
    let db = database(&pg, "fleet_control");
    let dir = tempfile::tempdir().unwrap();
    const N: usize = 200;
    let prog = fan_program(dir.path(), N, 20, false);
    let id = detach(dir.path(), &db, &prog);
    let workers: Vec<Child> = (0..2).map(|_| worker(dir.path(), &db, 8)).collect();
    until_items(&pg, &db, &id, 20);

    let o = aosc(dir.path(), Some(&db), &["pause", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("aosc resume {id}")), "{}", String::from_utf8_lossy(&o.stderr));
    // The attempts in flight finish and are committed; then nothing starts.
    std::thread::sleep(Duration::from_millis(1500));
    let (started, done) = (count(&pg, &db, &id, "step.started"), count(&pg, &db, &id, "item.succeeded"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(count(&pg, &db, &id, "step.started"), started, "a paused run started new steps");
    assert_eq!(count(&pg, &db, &id, "item.succeeded"), done);
    assert!(done < N, "the run ended before the pause took effect");
    let o = aosc(dir.path(), Some(&db), &["pause", &id]);
    assert_eq!(o.status.code(), Some(1), "a second pause is refused");
    assert!(String::from_utf8_lossy(&o.stderr).contains("paused already"), "{}", String::from_utf8_lossy(&o.stderr));

    let o = aosc(dir.path(), Some(&db), &["resume", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the workers continue it"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = aosc(dir.path(), Some(&db), &["wait", &id, "--json", "--timeout", "180"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["output"], reference_output(&prog));
    each_item_once(&pg, &db, &id, N);
    let kinds = pg.query(&db, &format!("SELECT kind FROM audit WHERE run_id = '{id}' ORDER BY seq"));
    assert!(kinds.lines().any(|k| k.trim() == "pause") && kinds.lines().any(|k| k.trim() == "resume"), "{kinds}");

    // Cancel: the run ends cancelled, its tasks are gone, nothing more runs.
    let id2 = detach(dir.path(), &db, &prog);
    until_items(&pg, &db, &id2, 20);
    let o = aosc(dir.path(), Some(&db), &["cancel", &id2, "--by", "ana"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = aosc(dir.path(), Some(&db), &["wait", &id2, "--json", "--timeout", "60"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "cancelled");
    std::thread::sleep(Duration::from_millis(1000));
    let after = count(&pg, &db, &id2, "step.started");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(count(&pg, &db, &id2, "step.started"), after, "a cancelled run started new steps");
    assert_eq!(pg.query(&db, &format!("SELECT count(*) FROM tasks WHERE run_id = '{id2}'")), "0", "tasks left behind");
    assert_eq!(pg.query(&db, &format!("SELECT status FROM runs WHERE run_id = '{id2}'")), "cancelled");
    let o = aosc(dir.path(), Some(&db), &["cancel", &id2]);
    assert_eq!(o.status.code(), Some(1), "cancelling an ended run is refused");
    let o = aosc(dir.path(), Some(&db), &["audit", "verify", &id2]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    stop_all(workers);
}
