//! SIGTERM is handled as SIGINT: a real `aosc run` stops cleanly, prints
//! its `--json` object, leaves the run resumable, and a resume finishes it
//! without repeating a step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aos_compiler::ir::{Program, SimOptions};
use aos_runtime::events::Transition;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::store::Store;
use aos_runtime::testkit::*;
use serde_json::Value;

/// Ten chained steps of 150 ms each.
fn slow_chain() -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("slow", SimOptions { latency_ms: 150, ..Default::default() })]);
    let mut wf = workflow("slow");
    for i in 0..10 {
        let prompt = if i == 0 { s("start") } else { interp(vec![s("after "), step_ref(&format!("s{}", i - 1))]) };
        add(&mut wf, llm(&format!("s{i}"), "executor", prompt));
    }
    wf.ret_expr = Some(step_ref("s9"));
    p.workflows.insert("slow".into(), wf);
    p
}

fn aosc(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"));
    c.args(args).env("AOS_HOME", home).env_remove("AOS_DATABASE_URL").env("AOS_LLM", "sim").stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

fn stop(sig: &str) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = dir.path().join("slow.json");
    std::fs::write(&file, serde_json::to_string(&slow_chain()).unwrap()).unwrap();
    let child = aosc(&home, &["run", file.to_str().unwrap(), "--json"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let t = Instant::now();
    let killed = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(t.elapsed() < Duration::from_secs(5), "stopping took {:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(1), "{sig}: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{sig}: no JSON ({e}): {stderr}"));
    assert_eq!(report["status"], "cancelled", "{report}");
    assert!(stderr.contains("stopping cleanly"), "{stderr}");
    let id = report["run_id"].as_str().unwrap().to_string();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let row = rt.block_on(async { SqliteStore::open(&home.join("aos.db")).await.unwrap().run(&id).await.unwrap().unwrap() });
    assert_eq!(row.status.as_str(), "cancelled");

    let resumed = aosc(&home, &["resume", &id, "--json"]).output().unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", String::from_utf8_lossy(&resumed.stderr));
    let journal = rt.block_on(async { SqliteStore::open(&home.join("aos.db")).await.unwrap().journal(&id).await.unwrap() });
    let mut done: HashMap<String, u32> = HashMap::new();
    for e in &journal {
        if let Transition::StepSucceeded { step, .. } = &e.transition {
            *done.entry(step.clone()).or_default() += 1;
        }
    }
    assert_eq!(done.len(), 10, "{done:?}");
    assert!(done.values().all(|&n| n == 1), "{done:?}");
}

#[test]
fn sigterm_stops_cleanly_and_the_run_resumes() {
    stop("-TERM");
}

#[test]
fn sigint_stops_cleanly_and_the_run_resumes() {
    stop("-INT");
}
