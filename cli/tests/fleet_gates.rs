//! Gated sub-workflows on the fleet: a workflow call whose callee waits at
//! an approval gate, a call two levels deep, and a fan-out block whose items
//! each wait at a gate (`fixtures/fleet_gates.aos`), run by real `aosc
//! worker` processes on a real PostgreSQL (polling it, and with Redis
//! Streams dispatch on a `redis-server` of the test's own). The run pauses
//! with the reasons an embedded `aosc run` gives, `aosc approve` of a
//! sub-run's gate lets the workers continue it, and the run ends with the
//! embedded run's output; no finished step of a sub-run runs again. A
//! denied gate fails the run with the embedded run's error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::redis as redis_server;
use aos_testkit::services as support;
mod fleet_support;

use std::process::Child;

use fleet_support::*;
use serde_json::Value;

fn program() -> String {
    format!("{}/tests/fixtures/fleet_gates.aos", env!("CARGO_MANIFEST_DIR"))
}

/// Every gate of the program, as (sub-run suffix, step).
const GATES: [(&str, &str); 5] = [("lead", "publish"), ("deep.inner", "publish"), ("notes.0", "sent"), ("notes.1", "sent"), ("notes.2", "sent")];

fn json_of(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn approve(home: &std::path::Path, db: Option<&str>, run: &str, step: &str) -> String {
    decide(home, db, "approve", run, step)
}

fn decide(home: &std::path::Path, db: Option<&str>, verdict: &str, run: &str, step: &str) -> String {
    let o = aosc(home, db, &[verdict, run, step, "--by", "ana"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The embedded run of the program: its first pause's reasons (with its run
/// id as `RUN`) and its output once every gate is approved and it is resumed.
fn embedded() -> (String, Value) {
    let (reasons, done) = embedded_with(None);
    assert_eq!(done["status"], "succeeded");
    (reasons, done["output"].clone())
}

/// The embedded run, every gate approved but `deny` (denied), then resumed:
/// its first pause's reasons and its last report (run ids as `RUN`).
fn embedded_with(deny: Option<(&str, &str)>) -> (String, Value) {
    let home = tempfile::tempdir().unwrap();
    let o = cmd(home.path(), None, &["run", &program(), "--workflow", "gated_calls", "--json"]).env_remove("AOS_REDIS_URL").output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let paused = json_of(&o);
    let id = paused["run_id"].as_str().unwrap().to_string();
    for (sub, step) in GATES {
        let verdict = if deny == Some((sub, step)) { "deny" } else { "approve" };
        decide(home.path(), None, verdict, &format!("{id}.{sub}"), step);
    }
    let o = aosc(home.path(), None, &["resume", &id, "--json"]);
    let done: Value = serde_json::from_str(&String::from_utf8_lossy(&o.stdout).replace(&id, "RUN")).unwrap();
    assert_eq!(Some(crate_exit(&done)), o.status.code(), "{}", String::from_utf8_lossy(&o.stderr));
    (paused["error"].as_str().unwrap().replace(&id, "RUN"), done)
}

/// The exit status `aosc run` gives a report.
fn crate_exit(report: &Value) -> i32 {
    match report["status"].as_str() {
        Some("succeeded") => 0,
        Some("waiting_approval") => 3,
        _ => 1,
    }
}

fn wait(home: &std::path::Path, db: &str, id: &str, code: i32) -> Value {
    let o = aosc(home, Some(db), &["wait", id, "--json", "--timeout", "120"]);
    assert_eq!(o.status.code(), Some(code), "{}", String::from_utf8_lossy(&o.stderr));
    json_of(&o)
}

fn gated_sub_workflows_on_the_fleet(redis: Option<&redis_server::RedisServer>) {
    let Some(pg) = support::Postgres::start() else { return };
    if let Some(r) = redis {
        use_redis(&r.url());
    }
    let (reasons, output) = embedded();
    let db = database(&pg, "fleet_gates");
    let dir = tempfile::tempdir().unwrap();
    let o = aosc(dir.path(), Some(&db), &["run", &program(), "--workflow", "gated_calls", "--detach", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let id = json_of(&o)["run_id"].as_str().unwrap().to_string();
    let workers: Vec<Child> = (0..2).map(|_| worker(dir.path(), &db, 4)).collect();

    // Every gated sub-run pauses; the run pauses with the embedded run's reasons.
    let report = wait(dir.path(), &db, &id, 3);
    assert_eq!(report["status"], "waiting_approval");
    assert_eq!(report["error"].as_str().unwrap().replace(&id, "RUN"), reasons);
    for (sub, _) in GATES {
        let status = pg.query(&db, &format!("SELECT status FROM runs WHERE run_id = '{id}.{sub}'"));
        assert_eq!(status, "waiting_approval", "sub-run {sub}");
    }

    // Without --json: the reasons, and that the workers continue it (a
    // fleet run is not resumed by hand).
    let o = aosc(dir.path(), Some(&db), &["wait", &id]);
    assert_eq!(o.status.code(), Some(3));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains(&format!("aosc approve {id}.notes.2 sent")) && said.contains("then: the workers continue it"), "{said}");
    assert!(!said.contains("then: aosc resume"), "{said}");

    // One gate decided: the workers continue that sub-run, and the run
    // pauses again at the others.
    let said = approve(dir.path(), Some(&db), &format!("{id}.lead"), "publish");
    assert!(said.contains("the workers continue it") && said.contains(&format!("aosc wait {id}")), "{said}");
    let report = wait(dir.path(), &db, &id, 3);
    let why = report["error"].as_str().unwrap();
    assert!(!why.contains(&format!("`{id}.lead`")) && why.contains(&format!("aosc approve {id}.deep.inner publish")), "{why}");
    assert_eq!(pg.query(&db, &format!("SELECT status FROM runs WHERE run_id = '{id}.lead'")), "succeeded");

    // The others, from "another machine" (another process on the store).
    for (sub, step) in &GATES[1..] {
        approve(dir.path(), Some(&db), &format!("{id}.{sub}"), step);
    }
    let report = wait(dir.path(), &db, &id, 0);
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["output"], output, "the fleet's output differs from the embedded run's");

    // No finished step of a sub-run ran again; each gated step ran once,
    // after its approval.
    for (sub, step) in GATES {
        let run = format!("{id}.{sub}");
        let first = "draft";
        let started = |s: &str| pg.query(&db, &format!("SELECT count(*) FROM journal WHERE run_id = '{run}' AND kind = 'step.started' AND data LIKE '%\"step\":\"{s}\"%'"));
        assert_eq!(started(first), "1", "{run}: `{first}` ran again");
        assert_eq!(started(step), "1", "{run}: `{step}`");
        assert_eq!(pg.query(&db, &format!("SELECT status FROM runs WHERE run_id = '{run}'")), "succeeded");
    }
    // The parked attempts were run again as a resume does.
    let interrupted = pg.query(&db, &format!("SELECT data FROM journal WHERE run_id = '{id}' AND kind = 'step.interrupted'"));
    assert!(interrupted.lines().count() >= 5 && interrupted.lines().all(|l| l.contains("\"retry\"")), "{interrupted}");
    // Paused at least twice (once more between approvals, when the workers
    // got there first).
    assert!(count(&pg, &db, &id, "run.paused") >= 2);
    assert_eq!(pg.query(&db, &format!("SELECT count(*) FROM tasks WHERE run_id = '{id}'")), "0", "tasks left behind");
    let o = aosc(dir.path(), Some(&db), &["audit", "verify", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    for w in workers {
        let (code, err) = stop(w);
        assert_eq!(code, Some(0), "{err}");
        let from = if redis.is_some() { "taking steps from Redis Streams" } else { "taking steps from PostgreSQL" };
        assert!(first_line(&err).contains(from), "{err}");
    }
}

#[test]
fn gated_sub_workflows_pause_and_continue_with_postgres_polling() {
    gated_sub_workflows_on_the_fleet(None);
}

#[test]
fn gated_sub_workflows_pause_and_continue_with_redis_dispatch() {
    let Some(redis) = redis_server::RedisServer::start() else { return };
    gated_sub_workflows_on_the_fleet(Some(&redis));
}

/// A denied gate in one item of the fan-out block fails the run, with the
/// embedded run's error, whatever the order of the other decisions.
#[test]
fn a_denied_sub_run_gate_fails_the_run_as_the_embedded_run_does() {
    let Some(pg) = support::Postgres::start() else { return };
    let (_, reference) = embedded_with(Some(("notes.1", "sent")));
    assert_eq!(reference["status"], "failed");
    let db = database(&pg, "fleet_gates_deny");
    let dir = tempfile::tempdir().unwrap();
    let o = aosc(dir.path(), Some(&db), &["run", &program(), "--workflow", "gated_calls", "--detach", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let id = json_of(&o)["run_id"].as_str().unwrap().to_string();
    let w = worker(dir.path(), &db, 4);
    wait(dir.path(), &db, &id, 3);
    for (sub, step) in GATES {
        let verdict = if sub == "notes.1" { "deny" } else { "approve" };
        decide(dir.path(), Some(&db), verdict, &format!("{id}.{sub}"), step);
    }
    let report = wait(dir.path(), &db, &id, 1);
    assert_eq!(report["status"], "failed");
    assert_eq!(report["error"].as_str().unwrap().replace(&id, "RUN"), reference["error"].as_str().unwrap(), "{report}");
    assert_eq!(pg.query(&db, &format!("SELECT count(*) FROM tasks WHERE run_id = '{id}'")), "0", "tasks left behind");
    let (code, err) = stop(w);
    assert_eq!(code, Some(0), "{err}");
}
