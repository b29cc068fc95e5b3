//! Behaviour scenarios of the scheduler, governance and LLM path, all on `sim`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aos_compiler::ir::{
    Backoff, BinOp, Call, Cmp, Cond, Effect, Expr, FanOut, PolicyAction, PolicyRule, PolicyValue, Program, Risk, SimOptions, StepKind, Trust, Type, Verify,
};
use aos_runtime::events::{RunStatus, Transition};
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::testkit::*;
use aos_runtime::{RunOptions, RunReport, Runtime, Verdict};
use serde_json::{json, Value};

async fn runtime(dir: &tempfile::TempDir) -> Runtime {
    let store = SqliteStore::open(&dir.path().join("aos.db")).await.unwrap();
    Runtime::new(Arc::new(store), dir.path())
}

fn base(sim: SimOptions) -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", sim)]);
    p
}

async fn run(rt: &Runtime, p: &Program, wf: &str, inputs: Vec<(&str, Value)>) -> RunReport {
    let inputs: BTreeMap<String, Value> = inputs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    rt.run(p, wf, inputs, Trust::Basic, RunOptions::default()).await.unwrap()
}

async fn kinds(rt: &Runtime, id: &str) -> Vec<Transition> {
    rt.store.journal(id).await.unwrap().into_iter().map(|e| e.transition).collect()
}

#[tokio::test]
async fn hello_runs_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions::default());
    let mut wf = workflow("hello");
    wf.params.push(param("name", Some("world")));
    add(&mut wf, llm("greeting", "executor", interp(vec![s("Write a greeting for "), param_ref("name"), s(".")])));
    wf.ret_expr = Some(step_ref("greeting"));
    p.workflows.insert("hello".into(), wf);
    let a = run(&rt, &p, "hello", vec![("name", json!("Ada"))]).await;
    let b = run(&rt, &p, "hello", vec![("name", json!("Ada"))]).await;
    assert_eq!(a.status, RunStatus::Succeeded, "{a:?}");
    assert!(a.output.as_ref().unwrap().as_str().unwrap().starts_with("[sim:echo]"));
    assert_eq!(a.output, b.output);
    assert!(a.cost_usd > 0.0);
    let c = run(&rt, &p, "hello", vec![("name", json!("Bob"))]).await;
    assert_ne!(a.output, c.output);
}

#[tokio::test]
async fn independent_steps_run_concurrently_within_max_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions { latency_ms: 200, ..Default::default() });
    let mut wf = workflow("par");
    for i in 0..4 {
        add(&mut wf, llm(&format!("s{i}"), "executor", s(&format!("prompt {i}"))));
    }
    wf.max_concurrency = Some(2);
    p.workflows.insert("par".into(), wf.clone());
    let t = Instant::now();
    let r = run(&rt, &p, "par", vec![]).await;
    let took = t.elapsed().as_millis();
    assert_eq!(r.status, RunStatus::Succeeded);
    // 4 steps of 200ms two at a time: about 400ms, not 800ms nor 200ms.
    assert!((380..750).contains(&took), "took {took}ms");
    wf.max_concurrency = Some(4);
    p.workflows.insert("par".into(), wf);
    let t = Instant::now();
    run(&rt, &p, "par", vec![]).await;
    assert!(t.elapsed().as_millis() < 380);
}

#[tokio::test]
async fn when_false_skips_and_propagates_unless_coalesced() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions::default());
    let mut wf = workflow("w");
    let mut a = llm("a", "executor", s("a"));
    a.when = Some(lit(json!(false)));
    add(&mut wf, a);
    add(&mut wf, llm("b", "executor", interp(vec![s("uses "), step_ref("a")])));
    add(
        &mut wf,
        llm("c", "executor", interp(vec![s("tolerates "), Expr::Binary { op: BinOp::Coalesce, a: Box::new(step_ref("a")), b: Box::new(s("none")) }])),
    );
    wf.ret_expr = Some(Expr::List { items: vec![step_ref("a"), step_ref("b"), step_ref("c")] });
    p.workflows.insert("w".into(), wf);
    let r = run(&rt, &p, "w", vec![]).await;
    assert_eq!(r.status, RunStatus::Succeeded);
    let out = r.output.unwrap();
    assert_eq!(out[0], Value::Null);
    assert_eq!(out[1], Value::Null);
    assert!(out[2].is_string());
    let skipped: Vec<String> = kinds(&rt, &r.run_id)
        .await
        .into_iter()
        .filter_map(|t| match t {
            Transition::StepSkipped { step, .. } => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!(skipped, vec!["a", "b"]);
}

#[tokio::test]
async fn fan_out_respects_concurrency_and_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions { latency_ms: 100, ..Default::default() });
    let mut wf = workflow("fan");
    let mut f = llm("each", "executor", interp(vec![s("item "), var("x")]));
    f.fan_out = Some(FanOut { var: "x".into(), items: lit(json!([1, 2, 3, 4, 5, 6])), max_items: Some(10), concurrency: Some(3) });
    add(&mut wf, f);
    wf.ret_expr = Some(step_ref("each"));
    p.workflows.insert("fan".into(), wf);
    let t = Instant::now();
    let r = run(&rt, &p, "fan", vec![]).await;
    let took = t.elapsed().as_millis();
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    assert_eq!(r.output.as_ref().unwrap().as_array().unwrap().len(), 6);
    assert!((190..500).contains(&took), "6 items by 3 of 100ms took {took}ms");
    // Same items give the same answers in the same order.
    let again = run(&rt, &p, "fan", vec![]).await;
    assert_eq!(r.output, again.output);
}

#[tokio::test]
async fn retry_with_backoff_after_transport_failures() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    // fail_first 3: the router's own transport retry absorbs one per attempt
    // (2 tries per attempt), so attempt 1 fails, attempt 2 succeeds.
    let mut p = base(SimOptions { fail_first: 3, ..Default::default() });
    let mut wf = workflow("r");
    let mut a = llm("a", "executor", s("x"));
    a.retry = 2;
    a.backoff = Some(Backoff::Fixed { ms: 150 });
    add(&mut wf, a);
    wf.ret_expr = Some(step_ref("a"));
    p.workflows.insert("r".into(), wf);
    let t = Instant::now();
    let r = run(&rt, &p, "r", vec![]).await;
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    assert!(t.elapsed().as_millis() >= 150);
    let j = kinds(&rt, &r.run_id).await;
    let failed = j.iter().filter(|t| matches!(t, Transition::AttemptFailed { .. })).count();
    assert_eq!(failed, 1);
    let audit = rt.store.audit(&r.run_id).await.unwrap();
    assert!(audit.iter().any(|a| a.kind == "retry"));
}

#[tokio::test]
async fn transport_failures_without_retry_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions { fail_first: 5, ..Default::default() });
    let mut wf = workflow("r");
    add(&mut wf, llm("a", "executor", s("x")));
    p.workflows.insert("r".into(), wf);
    let r = run(&rt, &p, "r", vec![]).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert!(r.error.unwrap().contains("simulated transport failure"));
}

#[tokio::test]
async fn model_chain_falls_back_to_the_next_model() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("flaky", SimOptions { fail_first: 10, ..Default::default() }), sim_model("steady", SimOptions::default())]);
    let mut wf = workflow("f");
    add(&mut wf, llm("a", "executor", s("x")));
    wf.ret_expr = Some(step_ref("a"));
    p.workflows.insert("f".into(), wf);
    let r = run(&rt, &p, "f", vec![]).await;
    assert_eq!(r.status, RunStatus::Succeeded);
    assert!(r.output.unwrap().as_str().unwrap().starts_with("[sim:steady]"));
    let audit = rt.store.audit(&r.run_id).await.unwrap();
    assert!(audit.iter().any(|a| a.kind == "fallback" && a.data["to"] == "steady"));
}

fn typed_step(p: &mut Program, malformed_first: u32) {
    p.models.get_mut("echo").unwrap().sim.malformed_first = malformed_first;
    let mut wf = workflow("t");
    let mut a = llm("a", "executor", s("give me a record"));
    a.ty = Type::Record { name: None, fields: vec![("title".into(), Type::String), ("n".into(), Type::Int)] };
    a.schema = Some(json!({"type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}}, "required": ["title", "n"], "additionalProperties": false}));
    add(&mut wf, a);
    wf.ret_expr = Some(step_ref("a"));
    p.workflows.insert("t".into(), wf);
}

#[tokio::test]
async fn malformed_reply_is_repaired_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions::default());
    typed_step(&mut p, 1);
    let r = run(&rt, &p, "t", vec![]).await;
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    let out = r.output.unwrap();
    assert!(out["title"].is_string() && out["n"].is_i64());
    let audit = rt.store.audit(&r.run_id).await.unwrap();
    assert!(audit.iter().any(|a| a.kind == "repair"));

    let mut p = base(SimOptions::default());
    typed_step(&mut p, 2);
    let r = run(&rt, &p, "t", vec![]).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert!(r.error.unwrap().contains("not valid JSON"));
}

#[tokio::test]
async fn verification_below_min_confidence_fails_and_above_passes() {
    for (confidence, ok) in [(0.4, false), (0.95, true)] {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(&dir).await;
        let mut p = base(SimOptions::default());
        with_role(&mut p, "verifier", vec![sim_model("judge", SimOptions { confidence: Some(confidence), ..Default::default() })]);
        let mut wf = workflow("v");
        let mut a = llm("a", "executor", s("summarize"));
        a.verify = Some(Verify { role: "verifier".into(), min_confidence: Some(0.7) });
        add(&mut wf, a);
        p.workflows.insert("v".into(), wf);
        let r = run(&rt, &p, "v", vec![]).await;
        assert_eq!(r.status == RunStatus::Succeeded, ok, "{r:?}");
        if !ok {
            assert!(r.error.unwrap().contains("below min_confidence 0.70"));
        }
        let audit = rt.store.audit(&r.run_id).await.unwrap();
        assert!(audit.iter().any(|a| a.kind == "verify"));
    }
}

#[tokio::test]
async fn fallback_call_runs_when_retries_are_spent() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions::default());
    let mut wf = workflow("fb");
    let mut a = tool("a", "shell.exec", vec![("command", s("ls"))], Effect::External);
    a.retry = 1;
    a.fallback = Some(Call::Llm { role: "executor".into(), prompt: s("fallback answer"), agent: None });
    add(&mut wf, a);
    wf.ret_expr = Some(step_ref("a"));
    p.workflows.insert("fb".into(), wf);
    let r = run(&rt, &p, "fb", vec![]).await;
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    assert!(r.output.unwrap().as_str().unwrap().starts_with("[sim:echo]"));
    let j = kinds(&rt, &r.run_id).await;
    // `command` must be a list: both attempts fail before anything runs.
    assert_eq!(j.iter().filter(|t| matches!(t, Transition::AttemptFailed { error, .. } if error.contains("must be a list of strings"))).count(), 2);
    assert!(j.iter().any(|t| matches!(t, Transition::AttemptStarted { fallback: true, attempt: 3, .. })));
}

#[tokio::test]
async fn timeout_fails_a_slow_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions { latency_ms: 500, ..Default::default() });
    let mut wf = workflow("to");
    let mut a = llm("a", "executor", s("slow"));
    a.timeout_ms = Some(100);
    add(&mut wf, a);
    p.workflows.insert("to".into(), wf);
    let t = Instant::now();
    let r = run(&rt, &p, "to", vec![]).await;
    assert!(t.elapsed().as_millis() < 450);
    assert_eq!(r.status, RunStatus::Failed);
    assert!(r.error.unwrap().contains("timed out after 100ms"));
}

fn gated() -> Program {
    let mut p = base(SimOptions::default());
    p.tools.insert("file.write".into(), builtin_tool("file.write", &["path", "content"], Effect::External, Risk::Medium));
    let mut wf = workflow("g");
    add(&mut wf, llm("draft", "executor", s("draft")));
    let mut w = tool("save", "file.write", vec![("path", s("out/report.txt")), ("content", step_ref("draft"))], Effect::External);
    w.approval = Some("leads".into());
    add(&mut wf, w);
    wf.ret_expr = Some(Expr::Field { of: Box::new(step_ref("save")), field: "bytes".into() });
    p.workflows.insert("g".into(), wf);
    p
}

#[tokio::test]
async fn approval_gate_pauses_then_approve_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let p = gated();
    let r = run(&rt, &p, "g", vec![]).await;
    assert_eq!(r.status, RunStatus::WaitingApproval);
    assert!(r.error.as_ref().unwrap().contains("aosc approve"));
    assert_eq!(rt.store.run(&r.run_id).await.unwrap().unwrap().status, RunStatus::WaitingApproval);
    rt.decide(&r.run_id, "save", Verdict::Approve, "ana", Some("looks right")).await.unwrap();
    let done = rt.execute(&r.run_id, RunOptions::default()).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{done:?}");
    assert!(done.output.unwrap().as_u64().unwrap() > 0);
    assert!(dir.path().join("runs").join(&r.run_id).join("workspace/out/report.txt").exists());
    // The draft step ran exactly once across the pause.
    let j = kinds(&rt, &r.run_id).await;
    assert_eq!(j.iter().filter(|t| matches!(t, Transition::StepSucceeded { step, .. } if step == "draft")).count(), 1);
}

#[tokio::test]
async fn approval_denied_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let r = run(&rt, &gated(), "g", vec![]).await;
    rt.decide(&r.run_id, "save", Verdict::Deny, "ana", Some("not today")).await.unwrap();
    let done = rt.execute(&r.run_id, RunOptions::default()).await.unwrap();
    assert_eq!(done.status, RunStatus::Failed);
    assert!(done.error.unwrap().contains("denied by ana: not today"));
    assert!(rt.decide(&r.run_id, "draft", Verdict::Approve, "x", None).await.is_err());
}

#[tokio::test]
async fn budget_stops_before_a_step_that_no_longer_fits() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions::default());
    let mut wf = workflow("b");
    let mut a = llm("a", "executor", s("first"));
    a.cost.usd = 0.004;
    add(&mut wf, a);
    let mut b = llm("b", "executor", interp(vec![s("second "), step_ref("a")]));
    b.cost.usd = 0.01;
    add(&mut wf, b);
    wf.budget_usd = Some(0.01);
    p.workflows.insert("b".into(), wf);
    let r = run(&rt, &p, "b", vec![]).await;
    assert_eq!(r.status, RunStatus::Failed);
    let e = r.error.unwrap();
    assert!(e.contains("step `b` may cost up to $0.010000, which no longer fits"), "{e}");
    let audit = rt.store.audit(&r.run_id).await.unwrap();
    assert!(audit.iter().any(|a| a.kind == "budget" && a.data["fits"] == false));
}

#[tokio::test]
async fn dynamic_policy_denies_by_trust() {
    let mut p = base(SimOptions::default());
    p.rules.push(PolicyRule {
        policy: "house_rules".into(),
        text: "deny when kind == llm and trust < trusted".into(),
        action: PolicyAction::Deny,
        cond: Cond::And {
            a: Box::new(Cond::Compare { cmp: Cmp::Eq, value: PolicyValue::Kind(StepKind::Llm) }),
            b: Box::new(Cond::Compare { cmp: Cmp::Lt, value: PolicyValue::Trust(Trust::Trusted) }),
        },
    });
    let mut wf = workflow("d");
    add(&mut wf, llm("a", "executor", s("x")));
    p.workflows.insert("d".into(), wf);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let r = run(&rt, &p, "d", vec![]).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert!(r.error.unwrap().contains("denied by policy `house_rules`"));
    let audit = rt.store.audit(&r.run_id).await.unwrap();
    assert!(audit.iter().any(|a| a.kind == "policy" && a.data["matched"] == true));
    let ok = rt.run(&p, "d", BTreeMap::new(), Trust::Trusted, RunOptions::default()).await.unwrap();
    assert_eq!(ok.status, RunStatus::Succeeded);
}

#[tokio::test]
async fn sub_workflow_runs_as_a_child_run() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions::default());
    let mut inner = workflow("inner");
    inner.params.push(param("topic", None));
    add(&mut inner, llm("w", "executor", interp(vec![s("about "), param_ref("topic")])));
    inner.ret_expr = Some(step_ref("w"));
    p.workflows.insert("inner".into(), inner);
    let mut outer = workflow("outer");
    add(&mut outer, call("sub", "inner", vec![("topic", s("tides"))]));
    outer.ret_expr = Some(step_ref("sub"));
    p.workflows.insert("outer".into(), outer);
    let r = run(&rt, &p, "outer", vec![]).await;
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    let child = rt.store.run(&format!("{}.sub", r.run_id)).await.unwrap().unwrap();
    assert_eq!(child.output, r.output);
    assert!(r.cost_usd > 0.0 && (r.cost_usd - child.cost_usd).abs() < 1e-12);
}

#[tokio::test]
async fn inputs_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions::default());
    let mut wf = workflow("i");
    wf.params.push(param("name", None));
    wf.max_param_tokens = 8;
    add(&mut wf, llm("a", "executor", param_ref("name")));
    p.workflows.insert("i".into(), wf);
    let e = rt.run(&p, "i", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap_err();
    assert!(e.to_string().contains("missing input `name`"));
    let big = BTreeMap::from([("name".to_string(), json!("a very long name indeed"))]);
    let e = rt.run(&p, "i", big, Trust::Basic, RunOptions::default()).await.unwrap_err();
    assert!(e.to_string().contains("more than max_param_tokens (8)"));
    assert!(rt.store.runs().await.unwrap().is_empty());
}

#[tokio::test]
async fn file_tools_stay_in_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir).await;
    let mut p = base(SimOptions::default());
    p.tools.insert("file.read".into(), builtin_tool("file.read", &["path"], Effect::Read, Risk::Low));
    let mut wf = workflow("f");
    add(&mut wf, tool("a", "file.read", vec![("path", s("../../etc/passwd"))], Effect::Read));
    p.workflows.insert("f".into(), wf);
    let r = run(&rt, &p, "f", vec![]).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert!(r.error.unwrap().contains("leaves the run's workspace"));
}

#[tokio::test]
async fn secrets_are_redacted_from_journal_and_audit() {
    let home = "a-secret-home-value".to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut rt = runtime(&dir).await;
    rt.secret_source = Arc::new(aos_runtime::secrets::Fixed([("HOME".to_string(), home.clone())].into()));
    let mut p = base(SimOptions::default());
    p.tools.insert("file.write".into(), builtin_tool("file.write", &["path", "content"], Effect::External, Risk::Medium));
    let mut wf = workflow("s");
    add(&mut wf, tool("w", "file.write", vec![("path", s("k.txt")), ("content", Expr::Secret { name: "HOME".into() })], Effect::External));
    add(&mut wf, tool("r", "file.read", vec![("path", s("k.txt"))], Effect::Read));
    wf.steps[1].deps.push("w".into());
    p.tools.insert("file.read".into(), builtin_tool("file.read", &["path"], Effect::Read, Risk::Low));
    wf.ret_expr = Some(step_ref("r"));
    p.workflows.insert("s".into(), wf);
    let r = run(&rt, &p, "s", vec![]).await;
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    let journal = serde_json::to_string(&rt.store.journal(&r.run_id).await.unwrap()).unwrap();
    assert!(!journal.contains(&format!("\"{home}\"")), "{journal}");
    assert!(journal.contains("***"));
}
