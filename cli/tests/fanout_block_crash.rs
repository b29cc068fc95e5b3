//! A fan-out block killed (SIGKILL) in the middle of its items: `aosc
//! resume` finishes the run without repeating a finished step of any item.
//! The block's second step is an `http:` tool whose server on loopback
//! counts the requests: one per item, whatever the crash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aos_testkit::http::counting_server;
use serde_json::Value;

fn aosc(home: &Path, allow: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"));
    c.args(args)
        .env("AOS_HOME", home)
        .env("AOS_LLM", "sim")
        .env("AOS_HTTP_ALLOW", allow)
        .env_remove("AOS_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn a_fan_out_block_killed_mid_items_resumes_without_repeating_a_finished_step() {
    let (addr, count) = counting_server(r#"{"saved": true}"#);
    let dir = tempfile::tempdir().unwrap();
    let src = format!(
        r#"
model slow = sim("slow") {{ input: $1/M, output: $2/M, latency: 700ms }}
role executor = [slow]
tool notes.save(text: String) -> Json {{ http: "POST http://{addr}/save", risk: low, effect: read, max_output_tokens: 100 }}

workflow notes(topics: List<String> = ["tides", "winds", "rain"]) -> List<String> {{
  budget: $0.10
  step saved = for t in topics => {{
    step line = llm executor("One line on {{t}}.") {{ max_tokens: 30 }}
    step stored = notes.save(text: line)
    return line
  }} {{ max_items: 3, concurrency: 1 }}
  return saved
}}
"#
    );
    let file = dir.path().join("notes.aos");
    std::fs::write(&file, src).unwrap();
    let check = aosc(dir.path(), &addr, &["check", file.to_str().unwrap()]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let home = dir.path().join("home");
    let f = file.to_str().unwrap();
    let mut child = aosc(&home, &addr, &["run", f, "--json"]).spawn().unwrap();
    // Item 0 saves after ~0.7 s; kill during item 1's model call.
    let start = Instant::now();
    while count.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "nothing was saved");
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("aosc ended early: {status}: {err}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let out = aosc(&home, &addr, &["runs", "--json"]).output().unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .find(|id| !id.contains('.'))
        .unwrap()
        .to_string();
    let out = aosc(&home, &addr, &["resume", &run, "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["output"].as_array().map(Vec::len), Some(3), "{report}");
    assert_eq!(count.load(Ordering::SeqCst), 3, "a finished save was repeated, or one is missing");
}
