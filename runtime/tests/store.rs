//! The `Store` contract, run against the SQLite store and the PostgreSQL
//! store alike: runs, journal, audit chain, idempotency, memory, the bus
//! publish cursor, and whole workflows run through the runtime.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::{both_stores, stores};

use std::collections::BTreeMap;

use aos_compiler::ir::{SimOptions, Trust};
use aos_runtime::audit::{Decision, Verdict};
use aos_runtime::events::{RunStatus, Transition, Usage};
use aos_runtime::store::{Batch, NewRun, StoreError};
use aos_runtime::testkit::*;
use aos_runtime::{RunOptions, Runtime};
use serde_json::json;
use stores::{Kind, TestStore};

fn new_run(id: &str, parent: Option<&str>, at_ms: u64) -> NewRun {
    NewRun {
        run_id: id.into(),
        parent: parent.map(str::to_string),
        workflow: "wf".into(),
        trust: "basic".into(),
        inputs: json!({"name": "Ada", "n": 3}),
        program: json!({"version": 1, "workflows": {"wf": {"steps": ["a", "b"]}}}).to_string(),
        at_ms,
    }
}

fn started() -> Transition {
    Transition::RunStarted { workflow: "wf".into(), inputs: json!({"name": "Ada"}), trust: "basic".into() }
}

async fn runs_journal_and_status(kind: Kind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    st.create_run(new_run("r1", None, 1_000)).await.unwrap();
    st.create_run(new_run("r2", None, 2_000)).await.unwrap();
    st.create_run(new_run("r1.child", Some("r1"), 3_000)).await.unwrap();
    let row = st.run("r1").await.unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Running);
    assert_eq!(row.inputs, json!({"name": "Ada", "n": 3}));
    let stored: serde_json::Value = serde_json::from_str(&st.program("r1").await.unwrap()).unwrap();
    assert_eq!(stored, json!({"version": 1, "workflows": {"wf": {"steps": ["a", "b"]}}}));
    assert!(matches!(st.program("nope").await, Err(StoreError::NoSuchRun(_))));
    assert!(st.run("nope").await.unwrap().is_none());
    // Top-level runs only, newest first.
    let ids: Vec<String> = st.runs().await.unwrap().into_iter().map(|r| r.run_id).collect();
    assert_eq!(ids, vec!["r2", "r1"]);

    let usage = Usage { input_tokens: 10, output_tokens: 5, cost_usd: 0.25, ..Default::default() };
    let batch = Batch {
        transitions: vec![
            started(),
            Transition::StepSucceeded { step: "a".into(), output: Some(json!("hi")), usage: usage.clone() },
            Transition::ItemSucceeded { step: "b".into(), item: 0, output: json!({"x": [1, 2.5, null]}), usage },
        ],
        ..Default::default()
    };
    st.commit("r1", batch).await.unwrap();
    let j = st.journal("r1").await.unwrap();
    assert_eq!(j.len(), 3);
    assert_eq!(j[1].transition, Transition::StepSucceeded {
        step: "a".into(),
        output: Some(json!("hi")),
        usage: Usage { input_tokens: 10, output_tokens: 5, cost_usd: 0.25, ..Default::default() }
    });
    let row = st.run("r1").await.unwrap().unwrap();
    assert!((row.cost_usd - 0.5).abs() < 1e-9, "{}", row.cost_usd);
    assert!(st.journal_bytes("r1").await.unwrap() > 100);
    assert_eq!(st.journal_bytes("r2").await.unwrap(), 0);

    // journal_since continues after the last id seen.
    let all = st.journal_since("r1", 0).await.unwrap();
    let after_first = st.journal_since("r1", all[0].0).await.unwrap();
    assert_eq!(after_first.len(), 2);
    assert!(after_first.windows(2).all(|w| w[0].0 < w[1].0));

    st.commit("r1", Batch { transitions: vec![Transition::RunFailed { error: "boom".into(), cost_usd: 0.5 }], ..Default::default() })
        .await
        .unwrap();
    let row = st.run("r1").await.unwrap().unwrap();
    assert_eq!((row.status, row.error.as_deref()), (RunStatus::Failed, Some("boom")));
    // Resuming clears the error; success records the output.
    st.commit("r1", Batch { transitions: vec![Transition::RunResumed], ..Default::default() }).await.unwrap();
    let row = st.run("r1").await.unwrap().unwrap();
    assert_eq!((row.status, row.error), (RunStatus::Running, None));
    st.commit("r1", Batch { transitions: vec![Transition::RunSucceeded { output: json!({"ok": true}), cost_usd: 0.5 }], ..Default::default() })
        .await
        .unwrap();
    let row = st.run("r1").await.unwrap().unwrap();
    assert_eq!((row.status, row.output), (RunStatus::Succeeded, Some(json!({"ok": true}))));

    // Events across runs, in id order.
    st.commit("r2", Batch { transitions: vec![started()], ..Default::default() }).await.unwrap();
    let ev = st.events_since(0, 100).await.unwrap();
    assert_eq!(ev.len(), 7);
    assert_eq!(ev.last().unwrap().1.run_id, "r2");
    assert_eq!(st.events_since(0, 2).await.unwrap().len(), 2);
}

async fn a_batch_for_an_unknown_run_is_refused_whole(kind: Kind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    let batch = Batch {
        transitions: vec![started()],
        decisions: vec![Decision::new("policy", None, json!({}))],
        idempotency: vec![("k".into(), "s".into(), json!(1))],
    };
    assert!(matches!(st.commit("ghost", batch).await, Err(StoreError::NoSuchRun(id)) if id == "ghost"));
    assert_eq!(st.idempotent_output("k").await.unwrap(), None);
    assert_eq!(ts.scalar("SELECT COUNT(*) FROM journal").await, 0);
}

async fn idempotency_keeps_the_first_output(kind: Kind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    st.create_run(new_run("r1", None, 1)).await.unwrap();
    st.create_run(new_run("r2", None, 2)).await.unwrap();
    st.commit("r1", Batch { idempotency: vec![("mail:42".into(), "send".into(), json!({"id": "m1"}))], ..Default::default() }).await.unwrap();
    st.commit("r2", Batch { idempotency: vec![("mail:42".into(), "send".into(), json!({"id": "m2"}))], ..Default::default() }).await.unwrap();
    assert_eq!(st.idempotent_output("mail:42").await.unwrap(), Some(json!({"id": "m1"})));
    assert_eq!(st.idempotent_output("mail:43").await.unwrap(), None);
}

async fn concurrent_writers_keep_one_audit_chain(kind: Kind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    st.create_run(new_run("r", None, 1)).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let d = vec![
                    Decision::new("model", Some(&format!("s{w}")), json!({"writer": w, "i": i})),
                    Decision::new("retry", Some(&format!("s{w}")), json!({"writer": w, "i": i, "second": true})),
                ];
                st.commit("r", Batch { decisions: d, ..Default::default() }).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let row = st.run("r").await.unwrap().unwrap();
    assert_eq!(row.audit_count, 160);
    let records = st.audit("r").await.unwrap();
    assert_eq!(aos_runtime::audit::verify(&records, &row.audit_head, row.audit_count), Verdict::Intact { records: 160 });
    // The two records of one batch are adjacent: a batch is one transaction.
    for pair in records.chunks(2) {
        assert_eq!(pair[0].data["writer"], pair[1].data["writer"]);
        assert_eq!(pair[1].data["second"], json!(true));
    }
}

async fn memory_round_trips(kind: Kind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    st.memory_put("a", &json!("first"), "local-trigram-256", &[0.5, -0.25]).await.unwrap();
    st.memory_put("b", &json!({"n": 1}), "local-trigram-256", &[1.0, 0.0]).await.unwrap();
    st.memory_put("a", &json!("second"), "openai/text-embedding-3-small", &[0.0, 1.0, 0.0]).await.unwrap();
    let mut rows = st.memory_all().await.unwrap();
    rows.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(rows.len(), 2);
    // Remember replaces the value, the vector and the embedding's name.
    assert_eq!((rows[0].value.clone(), rows[0].embedding.clone()), (json!("second"), vec![0.0, 1.0, 0.0]));
    assert_eq!(rows[0].embedding_model, "openai/text-embedding-3-small");
    assert_eq!((rows[1].value.clone(), rows[1].embedding_model.as_str()), (json!({"n": 1}), "local-trigram-256"));
    assert_eq!(ts.scalar("SELECT CAST(dims AS BIGINT) FROM memory WHERE key = 'a'").await, 3);
    assert_eq!(ts.scalar("SELECT CAST(dims AS BIGINT) FROM memory WHERE key = 'b'").await, 2);
    // A row written before embeddings had names (no model given) counts
    // as the built-in hashing embedding, of 256 dimensions.
    let empty = if kind == Kind::Sqlite { "X''" } else { "''::bytea" };
    ts.exec(&format!("INSERT INTO memory (key, value, embedding, updated_at) VALUES ('old', '\"v\"', {empty}, 1)")).await;
    let old = st.memory_all().await.unwrap().into_iter().find(|r| r.key == "old").unwrap();
    assert_eq!(old.embedding_model, "local-trigram-256");
    assert_eq!(ts.scalar("SELECT CAST(dims AS BIGINT) FROM memory WHERE key = 'old'").await, 256);
}

async fn publish_cursor_moves_forward_only(kind: Kind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    st.create_run(new_run("r1", None, 1)).await.unwrap();
    st.create_run(new_run("r2", None, 2)).await.unwrap();
    assert!(st.unpublished_runs().await.unwrap().is_empty());
    st.commit("r1", Batch { transitions: vec![started(), Transition::RunResumed], ..Default::default() }).await.unwrap();
    st.commit("r2", Batch { transitions: vec![started()], ..Default::default() }).await.unwrap();
    assert_eq!(st.unpublished_runs().await.unwrap(), vec!["r1", "r2"]);
    assert_eq!(st.bus_cursor("r1").await.unwrap(), 0);
    let ids: Vec<i64> = st.journal_since("r1", 0).await.unwrap().into_iter().map(|(id, _)| id).collect();
    st.set_bus_cursor("r1", ids[1]).await.unwrap();
    st.set_bus_cursor("r1", ids[0]).await.unwrap();
    assert_eq!(st.bus_cursor("r1").await.unwrap(), ids[1]);
    assert_eq!(st.unpublished_runs().await.unwrap(), vec!["r2"]);
}

async fn a_workflow_runs_and_resumes_its_answer(kind: Kind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let rt = Runtime::new(ts.store(), ts.dir.path());
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    let mut wf = workflow("hello");
    wf.params.push(param("name", Some("world")));
    add(&mut wf, llm("greeting", "executor", interp(vec![s("Write a greeting for "), param_ref("name"), s(".")])));
    wf.ret_expr = Some(step_ref("greeting"));
    p.workflows.insert("hello".into(), wf);
    let inputs: BTreeMap<String, serde_json::Value> = [("name".to_string(), json!("Ada"))].into();
    let r = rt.run(&p, "hello", inputs, Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    assert!(r.output.as_ref().unwrap().as_str().unwrap().starts_with("[sim:echo]"));
    // A finished run executed again reports the same result and runs nothing.
    let n = rt.store.journal(&r.run_id).await.unwrap().len();
    let again = rt.execute(&r.run_id, RunOptions::default()).await.unwrap();
    assert_eq!(again, r);
    assert_eq!(rt.store.journal(&r.run_id).await.unwrap().len(), n);
    assert!(matches!(rt.verify_audit(&r.run_id).await.unwrap(), Verdict::Intact { .. }));
}

async fn serve_tables_tokens_ticks_control_and_pauses(kind: Kind) {
    use aos_runtime::store::TokenRow;
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    let tok = |name: &str, hash: &str| TokenRow {
        name: name.into(),
        hash: hash.into(),
        trust: "trusted".into(),
        groups: vec!["ops".into(), "reviewers".into()],
        created_at: "2026-12-01T00:00:00.000Z".into(),
        revoked_at: None,
    };
    st.token_create(tok("ana", "h1")).await.unwrap();
    st.token_create(tok("bo", "h2")).await.unwrap();
    assert!(matches!(st.token_create(tok("ana", "h3")).await, Err(StoreError::Unsupported(_))), "a name is used once");
    let found = st.token_by_hash("h1").await.unwrap().unwrap();
    assert_eq!(found, tok("ana", "h1"));
    assert!(st.token_revoke("ana").await.unwrap());
    assert!(!st.token_revoke("ana").await.unwrap(), "revoked once");
    assert!(st.token_by_hash("h1").await.unwrap().is_none(), "a revoked token no longer authenticates");
    let names: Vec<String> = st.tokens().await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, vec!["ana", "bo"]);

    assert!(st.claim_tick("prog/wf", 60_000).await.unwrap());
    assert!(!st.claim_tick("prog/wf", 60_000).await.unwrap(), "a tick fires once");
    assert!(st.claim_tick("prog/wf", 120_000).await.unwrap());
    assert_eq!(st.last_tick("prog/wf").await.unwrap(), Some(120_000));
    assert_eq!(st.last_tick("other").await.unwrap(), None);

    st.request_control("r1", "cancel", "ana").await.unwrap();
    st.request_control("r2", "pause", "bo").await.unwrap();
    let mut got = st.take_control().await.unwrap();
    got.sort();
    assert_eq!(got, vec![("r1".into(), "cancel".into(), "ana".into()), ("r2".into(), "pause".into(), "bo".into())]);
    assert!(st.take_control().await.unwrap().is_empty(), "a request is taken once");

    assert_eq!(st.paused("r1").await.unwrap(), None);
    st.set_paused("r1", Some("ana")).await.unwrap();
    assert_eq!(st.paused("r1").await.unwrap().as_deref(), Some("ana"));
    st.set_paused("r1", None).await.unwrap();
    assert_eq!(st.paused("r1").await.unwrap(), None);
}

/// Finding 7 of issue 17: concurrent approve/deny on one gate. Exactly one
/// is recorded; every other gets the typed refusal naming the first.
async fn one_decision_per_gate(kind: Kind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    st.create_run(new_run("g", None, 1)).await.unwrap();
    let ask = Transition::ApprovalRequested { step: "send".into(), group: "ops".into(), reason: "external".into() };
    st.commit("g", Batch { transitions: vec![started(), ask], ..Default::default() }).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let st = st.clone();
        tasks.push(tokio::spawn(async move {
            let by = format!("w{w}");
            let t = if w % 2 == 0 {
                Transition::ApprovalGranted { step: "send".into(), by: by.clone(), note: None }
            } else {
                Transition::ApprovalDenied { step: "send".into(), by: by.clone(), note: None }
            };
            let d = Decision::new("approval", Some("send"), json!({"by": by}));
            st.commit_decision("g", "send", Batch { transitions: vec![t], decisions: vec![d], ..Default::default() }).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::AlreadyDecided { step, .. }) => assert_eq!(step, "send"),
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(ok, 1);
    let decisions = st
        .journal("g")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.transition, Transition::ApprovalGranted { .. } | Transition::ApprovalDenied { .. }))
        .count();
    assert_eq!(decisions, 1);
    assert_eq!(st.run("g").await.unwrap().unwrap().audit_count, 1);
    // A step that never asked is not waiting.
    let t = Transition::ApprovalGranted { step: "other".into(), by: "x".into(), note: None };
    assert!(matches!(
        st.commit_decision("g", "other", Batch { transitions: vec![t], ..Default::default() }).await,
        Err(StoreError::NotWaiting { .. })
    ));
}

/// The response cache's rows: a live entry is served, an expired one is not
/// (and is dropped when a newer one is written), a write replaces.
async fn response_cache_serves_live_entries_only(kind: Kind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    assert_eq!(st.cache_get("k1", 1_000).await.unwrap(), None);
    st.cache_put("k1", r#"{"value":"a"}"#, 1_000, 2_000).await.unwrap();
    assert_eq!(st.cache_get("k1", 1_999).await.unwrap().as_deref(), Some(r#"{"value":"a"}"#));
    assert_eq!(st.cache_get("k1", 2_000).await.unwrap(), None, "expired at its expiry");
    st.cache_put("k1", r#"{"value":"b"}"#, 2_500, 9_000).await.unwrap();
    assert_eq!(st.cache_get("k1", 3_000).await.unwrap().as_deref(), Some(r#"{"value":"b"}"#));
    st.cache_put("k2", r#"{"value":"c"}"#, 3_000, u64::MAX).await.unwrap();
    assert_eq!(st.cache_get("k2", 4_000_000_000_000).await.unwrap().as_deref(), Some(r#"{"value":"c"}"#));
    // Writing at 9 000 drops k1 (expired then); k2 lives on.
    st.cache_put("k3", "{}", 9_000, 10_000).await.unwrap();
    assert_eq!(st.cache_get("k1", 0).await.unwrap(), None);
    assert!(st.cache_get("k2", 9_500).await.unwrap().is_some());
}

/// Model statistics add up per key.
async fn model_stats_add_up(kind: Kind) {
    use aos_runtime::stats::Sample;
    let Some(ts) = TestStore::open(kind).await else { return };
    let st = ts.store();
    assert!(st.model_stats().await.unwrap().is_empty());
    let ok = |ms: u64, cost: f64, verified: Option<bool>| Sample { key: "openai|gpt-4o|".into(), ok: true, latency_ms: ms, cost_usd: cost, verified };
    st.record_model_sample(&ok(100, 0.25, Some(true)), 1_000).await.unwrap();
    st.record_model_sample(&ok(300, 0.5, Some(false)), 2_000).await.unwrap();
    st.record_model_sample(&Sample { key: "openai|gpt-4o|".into(), ok: false, latency_ms: 0, cost_usd: 0.0, verified: None }, 3_000).await.unwrap();
    st.record_model_sample(&ok(7, 0.0, None), 4_000).await.unwrap();
    let mut other = ok(7, 0.0, None);
    other.key = "sim|echo|".into();
    st.record_model_sample(&other, 5_000).await.unwrap();
    let all = st.model_stats().await.unwrap();
    assert_eq!(all.len(), 2);
    let g = all.iter().find(|s| s.key == "openai|gpt-4o|").unwrap();
    assert_eq!((g.calls, g.errors, g.latency_ms_total, g.verified, g.verified_ok, g.updated_ms), (4, 1, 407, 2, 1, 4_000));
    assert!((g.cost_usd_total - 0.75).abs() < 1e-12);
    assert_eq!(g.pass_rate(), Some(0.5));
}

both_stores!(
    model_stats_add_up,
    response_cache_serves_live_entries_only,
    one_decision_per_gate,
    runs_journal_and_status,
    a_batch_for_an_unknown_run_is_refused_whole,
    idempotency_keeps_the_first_output,
    concurrent_writers_keep_one_audit_chain,
    memory_round_trips,
    publish_cursor_moves_forward_only,
    a_workflow_runs_and_resumes_its_answer,
    serve_tables_tokens_ticks_control_and_pauses,
);
