//! `aosc new` with the embedded planner (cargo feature `local-model`):
//! SmolLM2-135M-Instruct run in process by llama.cpp, on a few intents,
//! each bounded in time. The programs it writes must check, and the weekly
//! sales intent of the issue's "done when" must run, with `AOS_LLM=sim`,
//! a SQLite sales table and an SMTP relay address, up to its approval gate.
//!
//! The model file comes from `AOS_PLANNER_MODEL` (`.ci/new-local-model.sh`
//! exports it). Built without the feature, or without the file, the tests
//! say loudly that they skip; under `CI` a missing file fails them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One intent may take this long (a 135M model on one thread of a loaded
/// 2-core machine; the repair rounds included).
const LIMIT: Duration = Duration::from_secs(240);

const TOOLS: &str = r#"
/// Finds the meeting rooms free between two times.
///
/// Returns a JSON object with:
/// - rooms: the free rooms
tool Rooms.get_empty_room(start_time: String, end_time: String) -> Json {
  http: "POST http://127.0.0.1:9/rooms/empty"
  risk: low
  effect: read
  max_output_tokens: 400
}

/// Reserves (books) a meeting room for a time slot.
tool Rooms.reserve(room_id: String, start_time: String, end_time: String) -> Json {
  http: "POST http://127.0.0.1:9/rooms/reserve"
  risk: medium
  effect: external
  max_output_tokens: 400
}

/// The weather forecast of a city for the next days.
///
/// Returns a JSON object with:
/// - results: one forecast a day
tool Weather.forecast_weather(location: String, days: Int) -> Json {
  http: "POST http://127.0.0.1:9/weather/forecast"
  risk: low
  effect: read
  max_output_tokens: 400
}
"#;

/// The model file, or `None` after saying loudly why the test skips.
fn model() -> Option<PathBuf> {
    if !cfg!(feature = "local-model") {
        eprintln!("SKIPPED: aosc was built without the `local-model` feature (`cargo test -p aosc --features local-model --test new_local`)");
        return None;
    }
    match std::env::var_os("AOS_PLANNER_MODEL").map(PathBuf::from).filter(|p| p.is_file()) {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => panic!("AOS_PLANNER_MODEL names no file under CI (.ci/new-local-model.sh sets it)"),
        None => {
            eprintln!("SKIPPED: set AOS_PLANNER_MODEL to SmolLM2-135M-Instruct.Q4_1.gguf to run the embedded-planner tests");
            None
        }
    }
}

/// `aosc ARGS` in `dir` with no provider keys, killed after `LIMIT`.
fn aosc(dir: &Path, gguf: &Path, args: &[&str]) -> (Output, Duration) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"));
    c.args(args).current_dir(dir).env("AOS_HOME", dir.join(".aos")).env("HOME", dir).env("AOS_PLANNER_MODEL", gguf);
    for var in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AOS_PLANNER_MODEL_ID", "AOS_LLM"] {
        c.env_remove(var);
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = c.spawn().unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("`aosc {}` took over {LIMIT:?}; stderr:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

fn checks(dir: &Path, file: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_aosc")).args(["check", file]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{file} does not check:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_embedded_planner_writes_programs_that_check() {
    let Some(gguf) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tools.aos"), TOOLS).unwrap();
    let intents = [
        ("rooms.aos", "Find a free meeting room from 2pm to 4pm today and reserve it for me."),
        ("weather.aos", "What will the weather be like in Paris over the next three days?"),
    ];
    for (file, intent) in intents {
        let (out, took) = aosc(dir.path(), &gguf, &["new", intent, "--with", "tools.aos", "-o", file, "--json", "--max-rounds", "2"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{file}: {took:.1?}\n{stderr}");
        assert!(stderr.contains("planner: local model"), "{stderr}");
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["checked"], true, "{v}");
        checks(dir.path(), file);
    }
    // The rooms program books a room the search found.
    let text = std::fs::read_to_string(dir.path().join("rooms.aos")).unwrap();
    assert!(text.contains("Rooms.get_empty_room(") && text.contains("Rooms.reserve("), "{text}");
}

/// The issue's "done when", with no keys and the embedded model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_sales_intent_runs_to_its_approval_gate() {
    let Some(gguf) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let intent = "Every Monday, summarize last week's EMEA sales from the sales table and email the summary to the sales lead after approval";
    let d = dir.path().to_path_buf();
    let (out, took) = tokio::task::spawn_blocking(move || aosc(&d, &gguf, &["new", intent, "-o", "weekly.aos"])).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("weekly.aos: {took:.1?}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("approval \"owner\" (demanded by policy)"), "{stderr}");
    checks(dir.path(), "weekly.aos");

    let db = dir.path().join("sales.db");
    let url = format!("sqlite:{}?mode=rwc", db.display());
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("create table sales (region text, total real, week text)").execute(&mut conn).await.unwrap();
        sqlx::query("insert into sales values ('EMEA', 125000.5, '2026-W47'), ('APAC', 77000, '2026-W47')").execute(&mut conn).await.unwrap();
    }
    // Values the plan did not give are the workflow's inputs.
    let mut args = vec!["run".to_string(), "weekly.aos".into(), "--json".into()];
    for line in stderr.lines().filter_map(|l| l.trim().strip_prefix("inputs: ")) {
        for name in line.split(", ") {
            args.push("--input".into());
            args.push(format!("{name}=sales-lead@example.com"));
        }
    }
    let d = dir.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_aosc"))
            .args(&args)
            .current_dir(&d)
            .env("AOS_HOME", d.join(".aos"))
            .env("AOS_LLM", "sim")
            .env("AOS_SQL_URL", &url)
            .env_remove("AOS_DATABASE_URL")
            .env("AOS_SMTP_URL", "smtp://127.0.0.1:9")
            .env("AOS_SMTP_FROM", "reports@example.com")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    // Exit 3: paused at the approval gate, nothing sent.
    assert_eq!(run.status.code(), Some(3), "{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
}
