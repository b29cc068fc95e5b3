//! `aosc serve` end to end: a real server process on loopback, driven over
//! HTTP with tokens made by `aosc token create`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::time::Duration;

use serde_json::{json, Value};
use serve_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_run_waits_and_only_its_group_may_approve() {
    let dir = tempfile::tempdir().unwrap();
    let ops = make_token(dir.path(), "ana", "basic", Some("ops,reviewers"));
    let other = make_token(dir.path(), "bob", "trusted", Some("sales"));
    let srv = start(dir.path(), &[]);
    let c = client();
    let base = &srv.base;

    let id = create(&c, base, &other, GATED).await;
    let run = wait_for(&c, base, &other, &id, |s| s == "waiting_approval").await;
    assert_eq!(run["trust"], "trusted", "the token's trust is the run's");
    assert_eq!(run["steps"][1]["name"], "publish");
    assert_eq!(run["steps"][1]["status"], "waiting_approval");

    // Bob is not in `ops`: 403 with a JSON body, and nothing changes.
    let r = c.post(format!("{base}/v1/runs/{id}/approve")).bearer_auth(&other).json(&json!({"step": "publish"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().unwrap().contains("`ops`"), "{body}");

    // A step that is not waiting: 409.
    let r = c.post(format!("{base}/v1/runs/{id}/approve")).bearer_auth(&ops).json(&json!({"step": "draft"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 409);

    // Ana is in `ops`: the run continues and succeeds.
    let r = c
        .post(format!("{base}/v1/runs/{id}/approve"))
        .bearer_auth(&ops)
        .json(&json!({"step": "publish", "by": "Ana", "note": "looks right"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let run = wait_for(&c, base, &ops, &id, |s| s == "succeeded").await;
    assert!(run["output"].as_str().unwrap().starts_with("[sim:echo]"), "{run}");

    // The audit log names the token that approved, and its chain is intact.
    let o = aosc(dir.path(), &["audit", "verify", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let timeline = String::from_utf8_lossy(&aosc(dir.path(), &["replay", &id]).stdout).into_owned();
    assert!(timeline.contains("Ana (token ana)"), "{timeline}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let tok = make_token(dir.path(), "ci", "basic", None);
    let srv = start(dir.path(), &[]);
    let c = client();
    let base = &srv.base;

    let r = c.get(format!("{base}/v1/runs")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let r = c.get(format!("{base}/v1/runs")).bearer_auth("aos_not_a_token").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c.get(format!("{base}/v1/runs")).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // The store keeps only a hash: the token's text is nowhere in the list.
    let list = aosc(dir.path(), &["token", "list", "--json"]);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(listed.contains("\"ci\"") && !listed.contains(&tok), "{listed}");

    // A basic token may not cancel.
    let id = create(&c, base, &tok, GATED).await;
    wait_for(&c, base, &tok, &id, |s| s == "waiting_approval").await;
    let r = c.post(format!("{base}/v1/runs/{id}/cancel")).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);

    assert!(aosc(dir.path(), &["token", "revoke", "ci"]).status.success());
    let r = c.get(format!("{base}/v1/runs")).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(!aosc(dir.path(), &["token", "revoke", "ci"]).status.success(), "revoking twice is an error");
}

#[test]
fn no_auth_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let o = aosc(dir.path(), &["serve", "--no-auth", "--addr", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("loopback"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_get_422_with_diagnostics_and_check_reports_cost() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &["--no-auth"]);
    let c = client();
    let base = &srv.base;

    let broken = GATED.replace("return publish", "return nothing_here");
    let r = c.post(format!("{base}/v1/runs")).json(&json!({"source": broken})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    let d = body["diagnostics"].as_array().unwrap().iter().find(|d| d["severity"] == "error").unwrap_or_else(|| panic!("no error in {body}"));
    assert!(d["code"].as_str().unwrap().starts_with('E'), "{body}");
    assert!(d["line"].as_u64().unwrap() > 1 && d["column"].as_u64().unwrap() >= 1, "{body}");

    // Unknown inputs are the caller's error, before anything runs.
    let r = c.post(format!("{base}/v1/runs")).json(&json!({"source": GATED, "inputs": {"nope": 1}})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);

    let v: Value = c.post(format!("{base}/v1/check")).json(&json!({"source": GATED})).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["diagnostics"], json!([]));
    assert!(v["cost"]["gated"].is_object(), "{v}");

    // A source may not read the server's files.
    let r = c.post(format!("{base}/v1/runs")).json(&json!({"source": format!("use \"/etc/passwd\"\n{GATED}")})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_list_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &["--no-auth"]);
    let c = client();
    let base = &srv.base;
    let hello = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello.aos")).unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create(&c, base, "", &hello).await);
    }
    let gated = create(&c, base, "", GATED).await;
    for id in &ids {
        wait_for(&c, base, "", id, |s| s == "succeeded").await;
    }
    wait_for(&c, base, "", &gated, |s| s == "waiting_approval").await;

    let v: Value = c.get(format!("{base}/v1/runs?status=succeeded&limit=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["total"], 3);
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert_eq!(v["next_offset"], 2);
    let v2: Value = c.get(format!("{base}/v1/runs?status=succeeded&limit=2&offset=2")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v2["runs"].as_array().unwrap().len(), 1);
    assert!(v2["next_offset"].is_null());
    let v: Value = c.get(format!("{base}/v1/runs?workflow=gated")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["runs"][0]["run_id"], gated.as_str());
    let r = c.get(format!("{base}/v1/runs?status=bogus")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = c.get(format!("{base}/v1/runs/NOPE")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// Reads a whole SSE response (the stream ends with the run) into (id, event, data).
async fn read_events(c: &reqwest::Client, url: &str, last: Option<&str>) -> Vec<(String, String, Value)> {
    let mut req = c.get(url);
    if let Some(l) = last {
        req = req.header("Last-Event-ID", l);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut id, mut ev, mut data) = (String::new(), String::new(), String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().into();
            } else if let Some(v) = line.strip_prefix("event:") {
                ev = v.trim().into();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim());
            }
        }
        if !data.is_empty() {
            out.push((id, ev, serde_json::from_str(&data).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_every_transition_and_resume_with_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &["--no-auth"]);
    let c = client();
    let base = &srv.base;
    let id = create(&c, base, "", GATED).await;
    // Open the stream while the run is live, approve, and read to the end.
    let url = format!("{base}/v1/runs/{id}/events");
    let reader = tokio::spawn({
        let c = c.clone();
        let url = url.clone();
        async move { read_events(&c, &url, None).await }
    });
    wait_for(&c, base, "", &id, |s| s == "waiting_approval").await;
    let r = c.post(format!("{base}/v1/runs/{id}/approve")).json(&json!({"step": "publish"})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let all = tokio::time::timeout(Duration::from_secs(30), reader).await.unwrap().unwrap();
    // Streamed answers come as `llm.delta` events without an id (not
    // journaled; cli/tests/serve_stream.rs): the journal's events are the rest.
    let (deltas, all): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, k, _)| k == "llm.delta");
    assert!(deltas.iter().all(|(id, _, _)| id.is_empty()), "{deltas:?}");
    let kinds: Vec<&str> = all.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"run.started"));
    assert_eq!(kinds.last(), Some(&"run.succeeded"), "{kinds:?}");
    for k in ["approval.requested", "run.paused", "approval.granted", "run.resumed", "step.succeeded"] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let ids: Vec<i64> = all.iter().map(|(i, _, _)| i.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    assert_eq!(all[0].2["run_id"], id.as_str());

    // Reconnecting after the 3rd event yields exactly the rest.
    let rest = read_events(&c, &url, Some(&all[2].0)).await;
    assert_eq!(rest.len(), all.len() - 3);
    assert_eq!(rest[0].0, all[3].0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_step_and_the_run_ends_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let admin = make_token(dir.path(), "root", "admin", None);
    let srv = start(dir.path(), &[]);
    let c = client();
    let base = &srv.base;
    let id = create(&c, base, &admin, SLOW).await;
    // Wait until the 60 s step is running.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = c.get(format!("{base}/v1/runs/{id}")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        if v["steps"][0]["status"] == "running" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t0 = std::time::Instant::now();
    let r = c.post(format!("{base}/v1/runs/{id}/cancel")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "cancelled", "{v}");
    assert!(t0.elapsed() < Duration::from_secs(10), "cancel took {:?}", t0.elapsed());
    // Cancelling again is refused: the run has ended.
    let r = c.post(format!("{base}/v1/runs/{id}/cancel")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let o = aosc(dir.path(), &["audit", "verify", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // `aosc cancel` from another process: a run waiting at a gate.
    let g = create(&c, base, &admin, GATED).await;
    wait_for(&c, base, &admin, &g, |s| s == "waiting_approval").await;
    let o = aosc(dir.path(), &["cancel", &g, "--by", "ops-oncall"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for(&c, base, &admin, &g, |s| s == "cancelled").await;

    // `aosc cancel` of a run executing in the server goes through the store.
    let s2 = create(&c, base, &admin, SLOW).await;
    wait_for(&c, base, &admin, &s2, |s| s == "running").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let o = aosc(dir.path(), &["cancel", &s2]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_for(&c, base, &admin, &s2, |s| s == "cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_continue_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &["--no-auth"]);
    let c = client();
    let base = &srv.base;
    let src = SLOW.replace("latency: 60s", "latency: 1500ms");
    let id = create(&c, base, "", &src).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = c.post(format!("{base}/v1/runs/{id}/pause")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    wait_for(&c, base, "", &id, |s| s == "paused").await;
    let r = c.post(format!("{base}/v1/runs/{id}/resume")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v = wait_for(&c, base, "", &id, |s| s == "succeeded").await;
    assert_eq!(v["steps"][0]["attempts"], 2, "the interrupted attempt ran again: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_run_stays_paused_across_a_restart_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let src = SLOW.replace("latency: 60s", "latency: 1500ms");
    let c = client();
    let id = {
        let srv = start(dir.path(), &["--no-auth"]);
        let id = create(&c, &srv.base, "", &src).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = c.post(format!("{}/v1/runs/{id}/pause", srv.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        wait_for(&c, &srv.base, "", &id, |s| s == "paused").await;
        id
        // The server is killed here (SIGKILL): nothing is shut down cleanly.
    };
    let srv = start(dir.path(), &["--no-auth"]);
    let base = &srv.base;
    let v: Value = c.get(format!("{base}/v1/runs/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["status"], "paused", "the pause was forgotten by the restart: {v}");
    let r = c.post(format!("{base}/v1/runs/{id}/resume")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let v = wait_for(&c, base, "", &id, |s| s == "succeeded").await;
    assert_eq!(v["steps"][0]["status"], "succeeded", "{v}");
}

const PRIORITIES: &str = r#"
model slow = sim("slow") { input: $0.10/M, output: $0.40/M, context: 8192, latency: 700ms }

role executor = [slow]

workflow blocker() -> String {
  budget: $0.01
  step s: String = llm executor("Hold the only slot.") { max_tokens: 20 }
  return s
}

workflow low() -> String {
  budget: $0.01
  priority: 1
  step s: String = llm executor("Low.") { max_tokens: 20 }
  return s
}

workflow high() -> String {
  budget: $0.01
  priority: 10
  step s: String = llm executor("High.") { max_tokens: 20 }
  return s
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_of_higher_priority_takes_the_free_slot_first() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path(), &["--no-auth", "--max-runs", "1"]);
    let c = client();
    let base = &srv.base;
    let create_wf = |wf: &'static str| {
        let c = c.clone();
        let url = format!("{base}/v1/runs");
        async move {
            let r = c.post(url).json(&json!({"source": PRIORITIES, "workflow": wf, "inputs": {}})).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 201);
            r.json::<Value>().await.unwrap()["run_id"].as_str().unwrap().to_string()
        }
    };
    let blocker = create_wf("blocker").await;
    // The blocker holds the only slot; then `low` queues before `high`.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = c.get(format!("{base}/v1/runs/{blocker}")).send().await.unwrap().json().await.unwrap();
        if v["steps"][0]["status"] == "running" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let low = create_wf("low").await;
    let high = create_wf("high").await;
    wait_for(&c, base, "", &high, |s| s == "succeeded").await;
    let v: Value = c.get(format!("{base}/v1/runs/{low}")).send().await.unwrap().json().await.unwrap();
    assert_ne!(v["status"], "succeeded", "the earlier, lower-priority run went first: {v}");
    wait_for(&c, base, "", &low, |s| s == "succeeded").await;
}
