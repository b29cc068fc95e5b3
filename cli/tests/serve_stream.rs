//! Streamed answers as run events, end to end: a real `aosc serve` on
//! loopback runs a workflow whose LLM step is answered by the faked OpenAI
//! API streaming slowly over real HTTP; an SSE client reads the run's event
//! stream and gets `llm.delta` events, in order, after the step's
//! `step.started` and before its `step.succeeded`, whose texts add up to the
//! step's output; the run's cost is the provider's final usage record at the
//! model's prices. With Redis, `aosc events RUN --json` (another process)
//! reads the same deltas from `aos:run:RUN:deltas`, in the same order, and
//! the journal holds none of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod serve_support;

use std::time::Duration;

use aos_testkit::fake_llm::{Act, Fake, Keys};
use aos_testkit::redis::RedisServer;
use serde_json::{json, Value};
use serve_support::*;

const KEY: &str = "sk-test-openai-0123456789";
const STORY: &str = "Once upon a time a small robot learned to paint the sea at dawn, and every wave it painted sang.";

/// `warm` (the simulator, slow) gives the SSE client time to connect before
/// `tale` streams from the faked OpenAI API.
const PROGRAM: &str = r#"
model warm = sim("warm") { input: $1.00/M, output: $2.00/M, context: 8192, latency: 800ms }
model gpt = openai("gpt-4o") { input: $2.50/M, output: $10.00/M, context: 128000 }
role starter = [warm]
role writer = [gpt]

workflow story() -> String {
  budget: $0.05
  step opening: String = llm starter("Say hello.") {
    max_tokens: 20
  }
  step tale: String = llm writer("Tell a short story after: {opening}") {
    max_tokens: 200
  }
  return tale
}
"#;

fn keys() -> Keys {
    Keys { openai: KEY.into(), anthropic: "unused-anthropic".into(), gemini: "unused-gemini".into() }
}

/// One parsed Server-Sent Event: `id`, `event`, `data` as JSON.
#[derive(Debug)]
struct Sse {
    id: Option<String>,
    event: String,
    data: Value,
}

/// Reads the whole event stream (it ends with the run).
async fn read_sse(resp: reqwest::Response) -> Vec<Sse> {
    let mut resp = resp;
    let mut buf = String::new();
    let mut out = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), resp.chunk()).await.expect("the event stream stalled").unwrap() {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if !data.is_empty() {
                out.push(Sse { id, event, data: serde_json::from_str(&data).unwrap() });
            }
        }
    }
    out
}

/// Checks the deltas of `step` in `events` (kind, step per event): all
/// between the step's start and its success, offsets contiguous; returns
/// their text.
fn deltas_of(kinds: &[(String, Option<String>)], deltas: &[Value], step: &str) -> String {
    let at = |kind: &str| kinds.iter().position(|(k, s)| k == kind && s.as_deref() == Some(step)).unwrap_or_else(|| panic!("no {kind} of {step}: {kinds:?}"));
    let (start, end) = (at("step.started"), at("step.succeeded"));
    let mut text = String::new();
    let mut n = 0;
    for (i, (k, s)) in kinds.iter().enumerate() {
        if k == "llm.delta" && s.as_deref() == Some(step) {
            assert!(start < i && i < end, "a delta of {step} outside its attempt: {kinds:?}");
            let d = &deltas[n];
            n += 1;
            assert_eq!(d["attempt"], 1);
            assert_eq!(d["offset"].as_u64().unwrap(), text.len() as u64, "offsets are contiguous: {d}");
            text.push_str(d["text"].as_str().unwrap());
        } else if k == "llm.delta" {
            n += 1;
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_forwards_streamed_deltas_in_order_before_the_step_completes() {
    let fake = Fake::start(keys()).await;
    fake.script("gpt-4o", vec![Act::text(STORY)]);
    // One event every 40 ms: about a second for the story's 20 words.
    fake.pace_streams(Duration::from_millis(40));
    let home = tempfile::tempdir().unwrap();
    let base_url = fake.openai_base();
    let env = [("OPENAI_API_KEY", KEY), ("OPENAI_BASE_URL", base_url.as_str()), ("AOS_LLM", ""), ("AOS_REDIS_URL", ""), ("ANTHROPIC_API_KEY", ""), ("GEMINI_API_KEY", "")];
    let server = start_env(home.path(), &["--no-auth"], &env);
    let c = client();
    let id = create(&c, &server.base, "", PROGRAM).await;
    let resp = c.get(format!("{}/v1/runs/{id}/events", server.base)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let events = read_sse(resp).await;

    let kinds: Vec<(String, Option<String>)> = events.iter().map(|e| (e.event.clone(), e.data["step"].as_str().map(str::to_string))).collect();
    let deltas: Vec<Value> = events.iter().filter(|e| e.event == "llm.delta").map(|e| e.data["delta"].clone()).collect();
    assert!(events.iter().filter(|e| e.event == "llm.delta").all(|e| e.id.is_none() && e.data["kind"] == "llm.delta" && e.data["run_id"] == id.as_str()));
    assert!(events.iter().filter(|e| e.event != "llm.delta").all(|e| e.id.is_some()), "journal events keep their ids");

    let run: Value = c.get(format!("{}/v1/runs/{id}", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    let tale = deltas_of(&kinds, &deltas, "tale");
    assert_eq!(tale, STORY);
    assert_eq!(run["output"], json!(STORY));
    // Coalesced: fewer deltas than the provider's pieces, more than one.
    let tale_deltas = deltas.iter().filter(|d| d["step"] == "tale").count();
    assert!(tale_deltas >= 3 && tale_deltas < STORY.split(' ').count(), "{tale_deltas} deltas: {deltas:?}");
    assert!(deltas.iter().filter(|d| d["step"] == "tale").all(|d| d["model"] == "gpt"));
    // The simulator's step streams too, and its text is its output.
    let opening = deltas_of(&kinds, &deltas, "opening");
    let step = |name: &str| run["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap_or_else(|| panic!("no step {name}: {run}"));
    assert_eq!(json!(opening), step("opening")["output"]);
    // Cost: the faked provider's final usage record (120 in, 30 out) at
    // $2.50/M and $10/M, exactly; the run's cost adds the simulator's step.
    let tale_cost = (120.0 * 2.5 + 30.0 * 10.0) / 1e6;
    assert_eq!(step("tale")["cost_usd"].as_f64(), Some(tale_cost), "{run}");
    assert_eq!((step("tale")["usage"]["input_tokens"].as_u64(), step("tale")["usage"]["output_tokens"].as_u64()), (Some(120), Some(30)));
    let total = tale_cost + step("opening")["cost_usd"].as_f64().unwrap();
    assert!((run["cost_usd"].as_f64().unwrap() - total).abs() < 1e-12, "{run}");
    let seen = fake.seen_for("gpt-4o");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["stream"], true);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_another_process_reads_the_deltas_and_the_journal_has_none() {
    let Some(redis) = RedisServer::start() else { return };
    let fake = Fake::start(keys()).await;
    fake.script("gpt-4o", vec![Act::text(STORY)]);
    fake.pace_streams(Duration::from_millis(20));
    let home = tempfile::tempdir().unwrap();
    let base_url = fake.openai_base();
    let url = redis.url();
    let env = [("OPENAI_API_KEY", KEY), ("OPENAI_BASE_URL", base_url.as_str()), ("AOS_LLM", ""), ("AOS_REDIS_URL", url.as_str()), ("ANTHROPIC_API_KEY", ""), ("GEMINI_API_KEY", "")];
    let server = start_env(home.path(), &["--no-auth"], &env);
    let c = client();
    let id = create(&c, &server.base, "", PROGRAM).await;
    // `aosc events RUN --follow --json`, started while the run is young.
    let events_cmd = |follow: bool, redis_url: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_aosc"));
        cmd.args(["events", &id, "--json"]).env("AOS_HOME", home.path()).env_remove("AOS_DATABASE_URL");
        if follow {
            cmd.arg("--follow");
        }
        if redis_url.is_empty() {
            cmd.env_remove("AOS_REDIS_URL");
        } else {
            cmd.env("AOS_REDIS_URL", redis_url);
        }
        cmd
    };
    let follow = tokio::task::spawn_blocking({
        let mut cmd = events_cmd(true, &url);
        move || cmd.output().unwrap()
    });
    let run = wait_for(&c, &server.base, "", &id, |s| s == "succeeded" || s == "failed").await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let followed = tokio::time::timeout(Duration::from_secs(30), follow).await.unwrap().unwrap();
    assert!(followed.status.success(), "{}", String::from_utf8_lossy(&followed.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&followed.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<(String, Option<String>)> =
        lines.iter().map(|e| (e["kind"].as_str().unwrap().to_string(), e["transition"]["step"].as_str().or(e["delta"]["step"].as_str()).map(str::to_string))).collect();
    let deltas: Vec<Value> = lines.iter().filter(|e| e["kind"] == "llm.delta").map(|e| e["delta"].clone()).collect();
    assert_eq!(deltas_of(&kinds, &deltas, "tale"), STORY, "{kinds:?}");
    assert!(lines.iter().filter(|e| e["kind"] == "llm.delta").all(|e| e["id"].is_null()));
    // Read again after the run: the same order.
    let again = events_cmd(false, &url).output().unwrap();
    let again: Vec<Value> = String::from_utf8_lossy(&again.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(again.iter().map(|e| e["kind"].clone()).collect::<Vec<_>>(), lines.iter().map(|e| e["kind"].clone()).collect::<Vec<_>>());
    // The journal (read without Redis) has no delta, and the run's stream
    // in Redis holds exactly the journal's entries.
    let journal = events_cmd(false, "").output().unwrap();
    let journal: Vec<Value> = String::from_utf8_lossy(&journal.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!journal.is_empty() && journal.iter().all(|e| e["kind"] != "llm.delta"));
    assert_eq!(journal.len(), lines.len() - deltas.len());
    let xlen = redis.cli(&["XLEN", &format!("aos:run:{id}")]);
    assert_eq!(xlen, journal.len().to_string());
    let ttl: i64 = redis.cli(&["TTL", &format!("aos:run:{id}:deltas")]).parse().unwrap();
    assert!(ttl > 0 && ttl <= 24 * 3600, "the delta stream expires: {ttl}");
    drop(server);
}
