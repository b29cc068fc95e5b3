//! The lease on a run, with real `aosc` processes: a run waiting at a gate
//! (`aosc run --wait`) and an `aosc resume` of the same run never both run
//! it; `aosc approve` says who continues; a lease left by a killed process
//! or by an expired holder does not block a resume.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aos_compiler::ir::{Program, SimOptions};
use aos_runtime::events::{Entry, Transition};
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::store::{LeaseHolder, LeaseOutcome, Store};
use aos_runtime::testkit::*;
use serde_json::Value;

/// `draft`, then `publish` behind an approval gate.
fn gated() -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    let mut wf = workflow("gated");
    add(&mut wf, llm("draft", "executor", s("Draft a note")));
    let mut publish = llm("publish", "executor", interp(vec![s("Polish "), step_ref("draft")]));
    publish.approval = Some("editor".into());
    add(&mut wf, publish);
    wf.ret_expr = Some(step_ref("publish"));
    p.workflows.insert("gated".into(), wf);
    p
}

fn aosc(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"));
    c.args(args).env("AOS_HOME", home).env_remove("AOS_DATABASE_URL").env("AOS_LLM", "sim").stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn journal(home: &Path, id: &str) -> Vec<Entry> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { SqliteStore::open(&home.join("aos.db")).await.unwrap().journal(id).await.unwrap() })
}

fn newest_run(home: &Path) -> Option<String> {
    let out = aosc(home, &["runs", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.first()?.get("run_id")?.as_str().map(str::to_string)
}

/// Waits until the newest run has asked for approval; returns its id.
fn wait_for_gate(home: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the waiting run exited early");
        if let Some(id) = newest_run(home)
            && journal(home, &id).iter().any(|e| matches!(e.transition, Transition::ApprovalRequested { .. }))
        {
            return id;
        }
        assert!(Instant::now() < deadline, "the run never reached its gate");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn counts(entries: &[Entry]) -> HashMap<&'static str, usize> {
    let mut m = HashMap::new();
    for e in entries {
        *m.entry(e.transition.kind()).or_default() += 1;
    }
    m
}

#[test]
fn a_waiting_run_and_a_resume_never_both_run_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = dir.path().join("gated.json");
    std::fs::write(&file, serde_json::to_string(&gated()).unwrap()).unwrap();
    let file = file.to_str().unwrap();

    let mut waiting = aosc(&home, &["run", file, "--wait", "--json"]).spawn().unwrap();
    let id = wait_for_gate(&home, &mut waiting);

    // A second process is refused, and told which process holds the run.
    let second: Output = aosc(&home, &["resume", &id, "--json"]).output().unwrap();
    let err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("process {}", waiting.id())), "{err}");
    assert!(err.contains("nothing was run here"), "{err}");

    // `approve` says the waiting process continues by itself.
    let approve = aosc(&home, &["approve", &id, "publish", "--by", "ana"]).output().unwrap();
    let msg = text(&approve.stderr);
    assert!(approve.status.success(), "{msg}");
    assert!(msg.contains(&format!("process {}", waiting.id())) && msg.contains("continues it by itself"), "{msg}");
    assert!(!msg.contains("continue with `aosc resume"), "{msg}");

    let out = waiting.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");

    // A resume now finds the run finished and runs nothing.
    let after = aosc(&home, &["resume", &id, "--json"]).output().unwrap();
    assert_eq!(after.status.code(), Some(0), "{}", text(&after.stderr));

    let c = counts(&journal(&home, &id));
    assert_eq!(c.get("step.started"), Some(&2), "{c:?}");
    assert_eq!(c.get("step.succeeded"), Some(&2), "{c:?}");
    assert_eq!(c.get("run.succeeded"), Some(&1), "{c:?}");
}

#[test]
fn approve_without_a_waiting_process_says_resume() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = dir.path().join("gated.json");
    std::fs::write(&file, serde_json::to_string(&gated()).unwrap()).unwrap();
    let paused = aosc(&home, &["run", file.to_str().unwrap(), "--json"]).output().unwrap();
    assert_eq!(paused.status.code(), Some(3), "{}", text(&paused.stderr));
    let id = newest_run(&home).unwrap();
    let approve = aosc(&home, &["approve", &id, "publish"]).output().unwrap();
    let msg = text(&approve.stderr);
    assert!(msg.contains(&format!("continue with `aosc resume {id}`")), "{msg}");
    let done = aosc(&home, &["resume", &id, "--json"]).output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
}

#[test]
fn a_killed_holder_does_not_block_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = dir.path().join("gated.json");
    std::fs::write(&file, serde_json::to_string(&gated()).unwrap()).unwrap();
    let mut waiting = aosc(&home, &["run", file.to_str().unwrap(), "--wait", "--json"]).spawn().unwrap();
    let id = wait_for_gate(&home, &mut waiting);
    waiting.kill().unwrap(); // SIGKILL: the lease stays in the store
    waiting.wait().unwrap();
    // Same host, dead pid: taken at once (the default lease is 15 s).
    let t = Instant::now();
    let resumed = aosc(&home, &["resume", &id, "--json"]).output().unwrap();
    assert_eq!(resumed.status.code(), Some(3), "{}", text(&resumed.stderr));
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_lease_held_elsewhere_refuses_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = dir.path().join("gated.json");
    std::fs::write(&file, serde_json::to_string(&gated()).unwrap()).unwrap();
    let paused = aosc(&home, &["run", file.to_str().unwrap(), "--json"]).output().unwrap();
    assert_eq!(paused.status.code(), Some(3));
    let id = newest_run(&home).unwrap();
    // A process on another machine takes the lease for 1.5 s and dies.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let other = LeaseHolder { token: "t-other".into(), pid: 4242, host: "elsewhere.example".into() };
    let got = rt.block_on(async {
        let store = SqliteStore::open(&home.join("aos.db")).await.unwrap();
        store.acquire_lease(&id, &other, 1500, |_| false).await.unwrap()
    });
    assert_eq!(got, LeaseOutcome::Acquired);
    let refused = aosc(&home, &["resume", &id]).output().unwrap();
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("process 4242 on host `elsewhere.example`"), "{err}");
    std::thread::sleep(Duration::from_millis(1700));
    let resumed = aosc(&home, &["resume", &id, "--json"]).output().unwrap();
    assert_eq!(resumed.status.code(), Some(3), "{}", text(&resumed.stderr));
}
