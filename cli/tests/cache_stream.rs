//! `aosc run` with a cached step and with `--stream`, end to end on the
//! simulator: the second run of a `cache:` step is answered from the cache
//! at $0 and `aosc show` marks it (JSON and the CACHED column); `--stream`
//! prints the answer's text on stderr as it arrives, and the report on
//! stdout is unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const PROGRAM: &str = r#"
model echo = sim("echo") { input: $1.00/M, output: $2.00/M, context: 8192 }
role executor = [echo]

workflow hello(name: String = "world") -> String {
  budget: $0.01
  step greeting: String = llm executor("Write a one-line, warm greeting for {name}.") {
    max_tokens: 60
    cache: 1h
  }
  return greeting
}
"#;

fn aosc(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(args)
        .env("AOS_HOME", home)
        .env("AOS_LLM", "sim")
        .env_remove("AOS_DATABASE_URL")
        .env_remove("AOS_REDIS_URL")
        .output()
        .unwrap()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {} / {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn a_cached_step_is_free_the_second_time_and_marked_in_show() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.aos");
    std::fs::write(&file, PROGRAM).unwrap();
    let file = file.to_string_lossy().into_owned();
    let first = json_of(&aosc(dir.path(), &["run", &file, "--input", "name=Ada", "--json"]));
    assert_eq!(first["status"], "succeeded", "{first}");
    assert!(first["cost_usd"].as_f64().unwrap() > 0.0, "{first}");
    let second = json_of(&aosc(dir.path(), &["run", &file, "--input", "name=Ada", "--json"]));
    assert_eq!(second["output"], first["output"]);
    assert_eq!(second["cost_usd"].as_f64(), Some(0.0), "{second}");
    let other = json_of(&aosc(dir.path(), &["run", &file, "--input", "name=Bob", "--json"]));
    assert!(other["cost_usd"].as_f64().unwrap() > 0.0, "another prompt misses: {other}");

    let id = second["run_id"].as_str().unwrap();
    let show = json_of(&aosc(dir.path(), &["show", id, "--json"]));
    assert_eq!(show["steps"][0]["cached"], true, "{show}");
    let saved = show["steps"][0]["cache"]["saved_usd"].as_f64().unwrap();
    assert!((saved - first["cost_usd"].as_f64().unwrap()).abs() < 1e-12, "{show}");
    let human = aosc(dir.path(), &["show", id]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("CACHED") && text.contains("hit, saved $"), "{text}");
}

#[test]
fn stream_prints_the_answer_as_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.aos");
    std::fs::write(&file, PROGRAM.replace("    cache: 1h\n", "")).unwrap();
    let file = file.to_string_lossy().into_owned();
    let o = aosc(dir.path(), &["run", &file, "--stream", "--json"]);
    let report = json_of(&o);
    assert_eq!(report["status"], "succeeded", "{report}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let answer = report["output"].as_str().unwrap();
    // The text of every `[greeting · echo]` line, in order (progress lines
    // may come between the pieces), adds up to the answer.
    let streamed: String = stderr.lines().filter_map(|l| l.strip_prefix("[greeting · echo] ")).collect();
    assert_eq!(streamed, answer, "{stderr}");
    // Without --stream (and no terminal) nothing is streamed.
    let plain = aosc(dir.path(), &["run", &file, "--json"]);
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("[greeting · echo]"));
}

#[test]
fn models_stats_shows_what_the_runs_measured() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.aos");
    std::fs::write(&file, PROGRAM.replace("    cache: 1h\n", "")).unwrap();
    let file = file.to_string_lossy().into_owned();
    let before = json_of(&aosc(dir.path(), &["models", &file, "--stats", "--json"]));
    assert!(before[0]["stats"].is_null(), "never measured: {before}");
    let mut cost = 0.0;
    for name in ["Ada", "Bob"] {
        cost += json_of(&aosc(dir.path(), &["run", &file, "--input", &format!("name={name}"), "--json"]))["cost_usd"].as_f64().unwrap();
    }
    let after = json_of(&aosc(dir.path(), &["models", &file, "--stats", "--json"]));
    let s = &after[0]["stats"];
    assert_eq!(s["calls"], 2, "{after}");
    assert_eq!(s["errors"], 0);
    assert!(s["mean_latency_ms"].as_f64().is_some());
    assert!((s["cost_per_call_usd"].as_f64().unwrap() - cost / 2.0).abs() < 1e-12, "{after}");
    let human = aosc(dir.path(), &["models", &file, "--stats"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("CALLS") && text.contains("COST/CALL"), "{text}");
}
