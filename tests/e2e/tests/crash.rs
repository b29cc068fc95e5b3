//! The crash test: `aosc run` is killed with SIGKILL at 50+ seeded random
//! instants (across runs and resumes); `aosc resume` then finishes each run.
//! Every step must be journaled as succeeded exactly once and every output
//! must equal an uninterrupted run's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aos_compiler::ir::{Effect, Expr, FanOut, Program, Risk, SimOptions};
use aos_runtime::events::Transition;
use aos_runtime::testkit::*;
use serde_json::{json, Value};

/// A multi-step pipeline: a chain, a fan-out, an external write deduplicated
/// by its idempotency key, and a join.
fn pipeline() -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions { latency_ms: 15, ..Default::default() })]);
    p.tools.insert("file.write".into(), builtin_tool("file.write", &["path", "content"], Effect::External, Risk::Medium));
    let mut wf = workflow("pipe");
    wf.params.push(param("topic", Some("tides")));
    add(&mut wf, llm("outline", "executor", interp(vec![s("Outline "), param_ref("topic")])));
    let mut each = llm("sections", "executor", interp(vec![s("Section "), var("n"), s(" of "), step_ref("outline")]));
    each.fan_out = Some(FanOut { var: "n".into(), items: lit(json!([1, 2, 3, 4, 5, 6])), max_items: Some(6), concurrency: Some(2) });
    add(&mut wf, each);
    add(&mut wf, llm("summary", "executor", interp(vec![s("Summarize "), Expr::Builtin { name: "join".into(), args: vec![step_ref("sections"), s("\n")] }])));
    let mut save = tool("save", "file.write", vec![("path", s("summary.txt")), ("content", step_ref("summary"))], Effect::External);
    save.idempotency_key = Some(interp(vec![s("save-"), param_ref("topic")]));
    save.risk = Risk::Medium; // as its tool declares (the IR verifier refuses less)
    add(&mut wf, save);
    add(&mut wf, llm("title", "executor", interp(vec![s("Title for "), step_ref("summary")])));
    wf.ret_expr = Some(Expr::Record {
        fields: vec![("title".into(), step_ref("title")), ("bytes".into(), Expr::Field { of: Box::new(step_ref("save")), field: "bytes".into() })],
    });
    p.workflows.insert("pipe".into(), wf);
    p
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn aosc(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(aos_e2e::aosc());
    c.args(args).env("AOS_HOME", home).env_remove("AOS_DATABASE_URL").stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Runs the command, SIGKILLing it after `kill_after` if it is still running.
/// Returns the JSON report when it finished by itself.
fn run_or_kill(mut cmd: Command, kill_after: Duration) -> Option<(i32, Value)> {
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            // When no JSON came, what the process said is the assertion's message.
            let v = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| serde_json::json!({"stderr": String::from_utf8_lossy(&out.stderr)}));
            return Some((status.code().unwrap_or(-1), v));
        }
        if start.elapsed() >= kill_after {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn newest_run(home: &Path) -> Option<String> {
    let out = aosc(home, &["runs", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.first()?.get("run_id")?.as_str().map(str::to_string)
}

#[test]
fn killed_runs_resume_without_repeating_steps() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipe.json");
    std::fs::write(&file, serde_json::to_string(&pipeline()).unwrap()).unwrap();
    let file = file.to_str().unwrap().to_string();

    // The reference: an uninterrupted run.
    let ref_home = dir.path().join("reference");
    let (code, reference) = run_or_kill(aosc(&ref_home, &["run", &file, "--json"]), Duration::from_secs(60)).unwrap();
    assert_eq!(code, 0, "{reference}");
    let t0 = Instant::now();
    run_or_kill(aosc(&ref_home, &["run", &file, "--json"]), Duration::from_secs(60)).unwrap();
    let full_ms = t0.elapsed().as_millis() as u64;

    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut kills = 0;
    let mut round = 0;
    let mut checked = 0;
    let deadline = Instant::now() + Duration::from_secs(100);
    while (kills < 50 || checked < 5) && Instant::now() < deadline {
        round += 1;
        let home = dir.path().join(format!("round{round}"));
        // Kill the first run somewhere in its life.
        let at = Duration::from_millis(rng.next() % (full_ms + 20));
        let first = run_or_kill(aosc(&home, &["run", &file, "--json"]), at);
        let mut report = match first {
            Some((_, v)) => Some(v),
            None => {
                kills += 1;
                None
            }
        };
        let Some(id) = newest_run(&home) else { continue };
        // Resume, killing some resumes too, until the run is done.
        let mut resumes = 0;
        while report.as_ref().is_none_or(|v| v["status"] != "succeeded") {
            resumes += 1;
            assert!(resumes < 40, "run {id} did not finish");
            let kill_resume = rng.next().is_multiple_of(3);
            let at = if kill_resume { Duration::from_millis(rng.next() % (full_ms + 20)) } else { Duration::from_secs(60) };
            match run_or_kill(aosc(&home, &["resume", &id, "--json"]), at) {
                Some((0, v)) => report = Some(v),
                Some((3, v)) => panic!("the pipeline has no gate, yet it paused: {v}"),
                Some((code, v)) => panic!("resume exited {code}: {v}"),
                None => kills += 1,
            }
        }
        let report = report.unwrap();
        assert_eq!(report["output"], reference["output"], "round {round}");
        // Every step journaled as succeeded exactly once; each item too.
        let rt = tokio::runtime::Runtime::new().unwrap();
        let journal = rt.block_on(async {
            let store = aos_runtime::store::sqlite::SqliteStore::open(&home.join("aos.db")).await.unwrap();
            use aos_runtime::store::Store;
            store.journal(&id).await.unwrap()
        });
        let mut steps: HashMap<String, u32> = HashMap::new();
        let mut items: HashMap<u32, u32> = HashMap::new();
        for e in &journal {
            match &e.transition {
                Transition::StepSucceeded { step, .. } => *steps.entry(step.clone()).or_default() += 1,
                Transition::ItemSucceeded { item, .. } => *items.entry(*item).or_default() += 1,
                _ => {}
            }
        }
        for name in ["outline", "sections", "summary", "save", "title"] {
            assert_eq!(steps.get(name), Some(&1), "round {round}: step {name} succeeded {:?} times", steps.get(name));
        }
        assert_eq!(items.len(), 6);
        assert!(items.values().all(|&n| n == 1), "round {round}: {items:?}");
        checked += 1;
    }
    assert!(kills >= 50, "only {kills} kills in time");
    eprintln!("crash test: {kills} kills over {round} runs, {checked} resumed to completion and checked (uninterrupted run {full_ms}ms)");
}
