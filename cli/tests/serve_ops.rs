//! `aosc serve` operations: the OpenAPI document, Prometheus metrics checked
//! by `promtool`, JSON logs, and cron and event triggers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use serve_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_valid_and_covers_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &["--no-auth"]);
    let text = client().get(format!("{}/v1/openapi.json", srv.base)).send().await.unwrap().text().await.unwrap();
    let spec = oas3::from_json(&text).unwrap_or_else(|e| panic!("not a valid OpenAPI 3.1 document: {e}\n{text}"));
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let paths = spec.paths.unwrap();
    for (path, method) in [
        ("/v1/runs", "post"),
        ("/v1/runs", "get"),
        ("/v1/runs/{id}", "get"),
        ("/v1/runs/{id}/approve", "post"),
        ("/v1/runs/{id}/deny", "post"),
        ("/v1/runs/{id}/cancel", "post"),
        ("/v1/runs/{id}/pause", "post"),
        ("/v1/runs/{id}/resume", "post"),
        ("/v1/runs/{id}/events", "get"),
        ("/v1/check", "post"),
        ("/v1/events/{name}", "post"),
    ] {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} is not documented"));
        let op = match method {
            "get" => item.get.as_ref(),
            _ => item.post.as_ref(),
        };
        assert!(op.is_some(), "{method} {path} is not documented");
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["components"]["schemas"]["CreateRun"]["properties"]["source"].is_object(), "{v}");
    assert_eq!(v["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

fn promtool() -> Option<&'static str> {
    if std::process::Command::new("promtool").arg("--version").output().is_ok() {
        return Some("promtool");
    }
    assert!(std::env::var_os("CI").is_none(), "promtool is missing in CI (apt-get install prometheus)");
    eprintln!("SKIPPED: promtool is not installed (Debian package `prometheus`); the metrics text is not linted");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_runs_steps_tokens_and_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &["--no-auth"]);
    let c = client();
    let base = &srv.base;
    let hello = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello.aos")).unwrap();
    let id = create(&c, base, "", &hello).await;
    wait_for(&c, base, "", &id, |s| s == "succeeded").await;
    let g = create(&c, base, "", GATED).await;
    wait_for(&c, base, "", &g, |s| s == "waiting_approval").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let r = c.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for needle in [
        "aos_runs{status=\"succeeded\"} 1",
        "aos_runs{status=\"waiting_approval\"} 1",
        "aos_approvals_waiting 1",
        "aos_queue_depth 0",
        "aos_step_duration_seconds_count{kind=\"llm\"} 2",
        "aos_llm_tokens_total{direction=\"output\",model=\"echo\",provider=\"sim\"}",
        "aos_llm_cost_usd_total{model=\"echo\",provider=\"sim\"}",
        "aos_provider_errors_total{class=\"transport\"} 0",
        "aos_retries_total{kind=\"attempt\"} 0",
        "aos_runs_finished_total{status=\"succeeded\"} 1",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    if let Some(tool) = promtool() {
        let path = dir.path().join("metrics.txt");
        std::fs::write(&path, &text).unwrap();
        let o = std::process::Command::new("sh").arg("-c").arg(format!("{tool} check metrics < {}", path.display())).output().unwrap();
        assert!(o.status.success(), "promtool: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    }

    // The Grafana dashboard queries only series the server exposes.
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana/aosc-serve.json")).unwrap()).unwrap();
    let mut queried = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("aos_")) {
                queried += 1;
                assert!(text.contains(&format!("\n{word}")), "the dashboard queries `{word}`, which /metrics does not expose");
            }
        }
    }
    assert!(queried >= 8);

    // JSON logs: the lines about a run's transitions carry its id and step.
    let log = std::fs::read_to_string(&srv.log).unwrap();
    let lines: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "no JSON log lines in {log}");
    let step_lines: Vec<&Value> = lines.iter().filter(|l| l["event"] == "step.succeeded" && l["run_id"] == id.as_str()).collect();
    assert_eq!(step_lines.len(), 1, "{log}");
    assert_eq!(step_lines[0]["step"], "greeting");
}

const CRON: &str = r#"
model echo = sim("echo") { input: $0.10/M, output: $0.40/M, context: 8192 }

role executor = [echo]

workflow tick() -> String {
  intent: "Say something every second"
  budget: $0.01
  trigger: cron("* * * * * *")

  step say: String = llm executor("Say tick.") {
    max_tokens: 10
  }

  return say
}

workflow on_deploy(service: String) -> String {
  intent: "Announce a deployment"
  budget: $0.01
  trigger: event("deploy")

  step say: String = llm executor("Announce the deployment of {service}.") {
    max_tokens: 20
  }

  return say
}
"#;

async fn runs_of(c: &reqwest::Client, base: &str, wf: &str) -> Vec<Value> {
    let v: Value = c.get(format!("{base}/v1/runs?workflow={wf}&limit=500")).send().await.unwrap().json().await.unwrap();
    v["runs"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_ticks_fire_once_across_servers_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let progs = dir.path().join("programs");
    std::fs::create_dir_all(&progs).unwrap();
    std::fs::write(progs.join("ops.aos"), CRON).unwrap();
    let p = progs.to_str().unwrap();
    let c = client();

    // Two servers on one store: every tick is claimed by one of them only.
    let a = start(dir.path(), &["--no-auth", "--programs", p]);
    let b = start(dir.path(), &["--no-auth", "--programs", p]);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    drop(b);
    drop(a);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("aos.db").display())).await.unwrap();
    let ticks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cron_ticks").fetch_one(&pool).await.unwrap();
    let srv = start(dir.path(), &["--no-auth"]);
    let runs = runs_of(&c, &srv.base, "tick").await;
    drop(srv);
    assert!(ticks >= 2, "at least two ticks in 3.5 s, got {ticks}");
    assert_eq!(runs.len() as i64, ticks, "one run per tick, never two");

    // Down for 2.5 s: on start, the latest missed tick fires once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let srv = start(dir.path(), &["--no-auth", "--programs", p]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = std::fs::read_to_string(&srv.log).unwrap();
    let missed = log.lines().filter(|l| l.contains("missed while down")).count();
    assert_eq!(missed, 1, "{log}");
    let after = runs_of(&c, &srv.base, "tick").await;
    let ticks2: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cron_ticks").fetch_one(&pool).await.unwrap();
    assert_eq!(after.len() as i64, ticks2);
    assert!(after.len() as i64 >= ticks + 2, "the missed tick and a new one: {} then {}", ticks, after.len());
    // Every run of the schedule succeeds.
    let deadline = Instant::now() + Duration::from_secs(20);
    for r in &after {
        let id = r["run_id"].as_str().unwrap();
        wait_for(&c, &srv.base, "", id, |s| s == "succeeded" || Instant::now() > deadline).await;
    }

    // An event starts the workflows waiting for it, with the body as inputs.
    let r = c.post(format!("{}/v1/events/deploy", srv.base)).json(&json!({"service": "billing"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let v: Value = r.json().await.unwrap();
    let id = v["runs"][0].as_str().unwrap().to_string();
    let run = wait_for(&c, &srv.base, "", &id, |s| s == "succeeded").await;
    assert_eq!(run["inputs"]["service"], "billing");
    let r = c.post(format!("{}/v1/events/nobody-listens", srv.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
