//! The shared planes from the command line: `aosc run`, `runs`, `show`,
//! `audit verify` and `events` against a PostgreSQL store (a database of
//! the test's own) and a Redis of the test's own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::redis as redis_server;
use aos_testkit::services as support;

use std::path::Path;
use std::process::{Command, Output};

use aos_compiler::ir::{FanOut, Program, SimOptions};
use aos_runtime::testkit::*;
use serde_json::{json, Value};

fn aosc(home: &Path, db: &str, redis: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"));
    c.args(args).env("AOS_HOME", home).env("AOS_DATABASE_URL", db);
    match redis {
        Some(r) => c.env("AOS_REDIS_URL", r),
        None => c.env_remove("AOS_REDIS_URL"),
    };
    c.output().unwrap()
}

fn fan_program(dir: &Path) -> String {
    let mut p: Program = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    let mut wf = workflow("fan");
    let mut f = llm("each", "executor", interp(vec![s("item "), var("x")]));
    f.fan_out = Some(FanOut { var: "x".into(), items: lit(json!([1, 2, 3, 4, 5])), max_items: Some(10), concurrency: Some(2) });
    add(&mut wf, f);
    wf.ret_expr = Some(step_ref("each"));
    p.workflows.insert("fan".into(), wf);
    let path = dir.join("fan.json");
    std::fs::write(&path, serde_json::to_string(&p).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn runs_show_audit_and_events_work_against_postgres_and_redis() {
    let Some(pg) = support::Postgres::start() else { return };
    let Some(redis) = redis_server::RedisServer::start() else { return };
    let dbname = format!("fleet_{}_{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos());
    pg.psql(&format!("CREATE DATABASE {dbname}"));
    let db = format!("{}/{dbname}", pg.url.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let prog = fan_program(dir.path());

    let o = aosc(dir.path(), &db, Some(&redis.url()), &["run", &prog, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = report["run_id"].as_str().unwrap().to_string();
    assert_eq!(report["status"], "succeeded");
    // Nothing went to the SQLite file under AOS_HOME.
    assert!(!dir.path().join("aos.db").exists());

    // Another process (another machine, as far as the store knows) sees it.
    let o = aosc(dir.path(), &db, None, &["runs", "--json"]);
    let runs: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(runs[0]["run_id"], id.as_str());
    let o = aosc(dir.path(), &db, None, &["show", &id, "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let o = aosc(dir.path(), &db, None, &["audit", "verify", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));

    // Events from the store and from Redis are the same.
    let from_store = lines(&aosc(dir.path(), &db, None, &["events", &id, "--json"]));
    let from_redis = lines(&aosc(dir.path(), &db, Some(&redis.url()), &["events", &id, "--json"]));
    assert!(from_store.len() >= 5 + 4, "{from_store:?}");
    assert_eq!(from_store, from_redis);
    assert_eq!(from_store.first().unwrap()["kind"], "run.started");
    assert_eq!(from_store.last().unwrap()["kind"], "run.succeeded");
    // Followed, a finished run's events end with it.
    let followed = lines(&aosc(dir.path(), &db, Some(&redis.url()), &["events", &id, "--follow", "--json"]));
    assert_eq!(followed, from_redis);
    // Every run's events: this run's are among them.
    let all = lines(&aosc(dir.path(), &db, None, &["events", "--json"]));
    assert_eq!(all.iter().filter(|e| e["run_id"] == id.as_str()).count(), from_store.len());
    let plain = aosc(dir.path(), &db, None, &["events", &id]);
    assert!(String::from_utf8_lossy(&plain.stdout).contains("item.succeeded each item 4"), "{}", String::from_utf8_lossy(&plain.stdout));
    let o = aosc(dir.path(), &db, None, &["events", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}
