//! An agent step killed (SIGKILL) between turns: `aosc resume` replays the
//! journaled turn and tool result and does not call the tool again. The
//! tool is an `http:` tool whose server on loopback counts the requests.
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
fn an_agent_killed_between_turns_resumes_without_calling_its_tool_again() {
    let (addr, count) = counting_server(r#"{"city": "London"}"#);
    let dir = tempfile::tempdir().unwrap();
    let src = format!(
        r#"
model slow = sim("slow") {{ input: $1/M, output: $2/M, latency: 1500ms, tool_calls: 1 }}
role executor = [slow]
tool geo.find(name: String) -> Json {{ http: "POST http://{addr}/find", risk: low, effect: read, max_output_tokens: 200 }}

workflow where_is(who: String = "Ada") -> String {{
  budget: $0.10
  step answer = agent executor("Where does {{who}} live?") {{ tools: [geo.find], max_turns: 3, max_tokens: 50 }}
  return answer
}}
"#
    );
    let file = dir.path().join("agent.aos");
    std::fs::write(&file, src).unwrap();
    let home = dir.path().join("home");
    let f = file.to_str().unwrap();
    let mut child = aosc(&home, &addr, &["run", f, "--json"]).spawn().unwrap();
    // Turn 0 takes 1.5 s, then the tool is called; kill during turn 1.
    let start = Instant::now();
    while count.load(Ordering::SeqCst) == 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "the tool was never called");
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("aosc ended before the tool call: {status}: {err}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap(); // SIGKILL, mid-turn 1
    child.wait().unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let out = aosc(&home, &addr, &["runs", "--json"]).output().unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = runs.as_array().and_then(|r| r.first()).and_then(|r| r["run_id"].as_str()).unwrap().to_string();
    let out = aosc(&home, &addr, &["resume", &run, "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(count.load(Ordering::SeqCst), 1, "the completed tool call was repeated");

    let out = aosc(&home, &addr, &["show", &run, "--json"]).output().unwrap();
    let show: Value = serde_json::from_slice(&out.stdout).unwrap();
    let step = show["steps"].as_array().unwrap().iter().find(|s| s["name"] == "answer").unwrap().clone();
    let agent = step["agent"].as_array().unwrap();
    let turns: Vec<u64> = agent.iter().filter(|e| e["kind"] == "turn").map(|e| e["turn"].as_u64().unwrap()).collect();
    assert_eq!(turns, vec![0, 1], "{agent:?}");
    assert_eq!(agent.iter().filter(|e| e["kind"] == "tool").count(), 1);
    // The audit chain holds and records the tool call.
    let out = aosc(&home, &addr, &["audit", "verify", &run]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
