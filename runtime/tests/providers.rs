//! The real providers against loopback servers speaking their wire formats
//! (see `support/fake_llm.rs`): request shapes, usage and cost, structured
//! output, retries honouring `retry-after`, error classes, timeouts,
//! fallback, cooldown, verification, and keys never leaking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::fake_llm;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aos_compiler::ir::{Model, Program, Provider as Kind, SimOptions, Trust, Type, Verify};
use aos_runtime::fabric::anthropic::Anthropic;
use aos_runtime::fabric::gemini::Gemini;
use aos_runtime::fabric::openai::OpenAi;
use aos_runtime::fabric::wire::Endpoint;
use aos_runtime::fabric::{Fabric, LlmCall, LlmOutcome};
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::store::Store;
use aos_runtime::testkit::*;
use aos_runtime::{RunOptions, Runtime};
use fake_llm::{Act, Fake, Keys};
use serde_json::{json, Value};

const OPENAI_KEY: &str = "sk-test-openai-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";
const GEMINI_KEY: &str = "AIza-test-0123456789";

fn keys() -> Keys {
    Keys { openai: OPENAI_KEY.into(), anthropic: ANTHROPIC_KEY.into(), gemini: GEMINI_KEY.into() }
}

fn model(name: &str, kind: Kind, id: &str, input: f64, output: f64) -> Model {
    Model { name: name.into(), provider: kind, model_id: id.into(), input_per_m: input, output_per_m: output, context: 128_000, base_url: None, structured: Default::default(), sim: SimOptions::default() }
}

/// A fabric whose three providers talk to `fake`, with the given keys.
fn fabric_with(fake: &Fake, openai_key: &str, anthropic_key: &str, gemini_key: &str, timeout: Duration) -> Fabric {
    let mut f = Fabric::simulated()
        .with_provider(Kind::Openai, Arc::new(OpenAi { endpoint: Endpoint::new("openai", fake.openai_base(), openai_key.into(), timeout).unwrap() }))
        .with_provider(Kind::Anthropic, Arc::new(Anthropic { endpoint: Endpoint::new("anthropic", fake.base(), anthropic_key.into(), timeout).unwrap() }))
        .with_provider(Kind::Gemini, Arc::new(Gemini { endpoint: Endpoint::new("gemini", fake.base(), gemini_key.into(), timeout).unwrap() }));
    f.retry.backoff = Duration::from_millis(5);
    f
}

fn fabric(fake: &Fake) -> Fabric {
    fabric_with(fake, OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY, Duration::from_secs(5))
}

fn prog(role: &str, models: Vec<Model>) -> Program {
    let mut p = program();
    with_role(&mut p, role, models);
    p
}

async fn ask(f: &Fabric, p: &Program, schema: Option<&Value>, verify: Option<&Verify>) -> LlmOutcome {
    f.call(
        p,
        LlmCall {
            role: "executor",
            prompt: "Summarise the week.".into(),
            max_tokens: 300,
            max_reply_bytes: 0,
            max_input_tokens: None,
            schema,
            validator: None,
            typed: schema.is_some(),
            verify,
            call_key: "run/step".into(),
            step: "step",
        },
    )
    .await
}

fn kinds(out: &LlmOutcome) -> Vec<String> {
    out.decisions.iter().map(|d| d.kind.clone()).collect()
}

fn summary_schema() -> Value {
    json!({"type": "object", "properties": {"title": {"type": "string"}, "items": {"type": "array", "items": {"type": "string"}}},
           "required": ["title", "items"], "additionalProperties": false})
}

#[tokio::test]
async fn openai_text_request_shape_usage_and_cost() {
    let fake = Fake::start(keys()).await;
    let f = fabric(&fake);
    let p = prog("executor", vec![model("gpt", Kind::Openai, "gpt-4o", 2.5, 10.0)]);
    let out = ask(&f, &p, None, None).await;
    assert_eq!(out.result, Some(json!("A fine answer from gpt-4o.")), "{:?}", out.error);
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.headers["authorization"], format!("Bearer {OPENAI_KEY}"));
    assert_eq!(r.body["model"], "gpt-4o");
    assert_eq!(r.body["messages"], json!([{"role": "user", "content": "Summarise the week."}]));
    // A compatible server (any base but api.openai.com) gets `max_tokens`.
    assert_eq!(r.body["max_tokens"], 300);
    assert!(r.body.get("response_format").is_none());
    assert_eq!((out.usage.input_tokens, out.usage.output_tokens), (120, 30));
    assert_eq!((out.usage.cached_input_tokens, out.usage.reasoning_tokens), (20, 10));
    assert!((out.usage.cost_usd - (120.0 * 2.5 + 30.0 * 10.0) / 1e6).abs() < 1e-15, "{}", out.usage.cost_usd);
    let m = out.decisions.iter().find(|d| d.kind == "model").unwrap();
    assert_eq!(m.data["answered_by"], "openai");
    assert_eq!(m.data["attempts"], 1);
}

#[tokio::test]
async fn structured_output_uses_each_native_mode() {
    let fake = Fake::start(keys()).await;
    let f = fabric(&fake);
    let schema = summary_schema();
    for (name, kind, id) in [("o", Kind::Openai, "gpt-4o"), ("a", Kind::Anthropic, "claude-sonnet-4"), ("g", Kind::Gemini, "gemini-2.5-flash")] {
        let p = prog("executor", vec![model(name, kind, id, 1.0, 2.0)]);
        let out = ask(&f, &p, Some(&schema), None).await;
        assert_eq!(out.result, Some(json!({"title": "fine", "items": ["fine"]})), "{name}: {:?}", out.error);
        assert!((out.usage.cost_usd - (120.0 * 1.0 + 30.0 * 2.0) / 1e6).abs() < 1e-15, "{name}");
    }
    let o = &fake.seen_for("gpt-4o")[0];
    assert_eq!(o.body["response_format"]["type"], "json_schema");
    assert_eq!(o.body["response_format"]["json_schema"]["name"], "answer");
    assert_eq!(o.body["response_format"]["json_schema"]["schema"], schema);
    assert_eq!(o.body["response_format"]["json_schema"]["strict"], true);

    let a = &fake.seen_for("claude-sonnet-4")[0];
    assert_eq!(a.path, "/v1/messages");
    assert_eq!(a.headers["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(a.headers["anthropic-version"], "2023-06-01");
    assert!(!a.headers.contains_key("authorization"));
    assert_eq!(a.body["max_tokens"], 300);
    assert_eq!(a.body["tools"][0]["name"], "answer");
    assert_eq!(a.body["tools"][0]["input_schema"], schema);
    assert_eq!(a.body["tool_choice"], json!({"type": "tool", "name": "answer"}));
    assert_eq!(a.body["messages"], json!([{"role": "user", "content": "Summarise the week."}]));

    let g = &fake.seen_for("gemini-2.5-flash")[0];
    assert_eq!(g.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(g.headers["x-goog-api-key"], GEMINI_KEY);
    assert_eq!(g.body["contents"], json!([{"role": "user", "parts": [{"text": "Summarise the week."}]}]));
    assert_eq!(g.body["generationConfig"]["maxOutputTokens"], 300);
    assert_eq!(g.body["generationConfig"]["responseMimeType"], "application/json");
    assert_eq!(g.body["generationConfig"]["responseJsonSchema"], schema);
}

#[tokio::test]
async fn non_object_schemas_are_wrapped_where_a_root_object_is_required() {
    let fake = Fake::start(keys()).await;
    let f = fabric(&fake);
    let schema = json!({"type": "array", "items": {"type": "string"}});
    for (name, kind, id) in [("o", Kind::Openai, "gpt-4o"), ("a", Kind::Anthropic, "claude"), ("g", Kind::Gemini, "gemini")] {
        let p = prog("executor", vec![model(name, kind, id, 1.0, 2.0)]);
        let out = ask(&f, &p, Some(&schema), None).await;
        assert_eq!(out.result, Some(json!(["fine"])), "{name}: {:?}", out.error);
    }
    let wrapped = json!({"type": "object", "properties": {"value": schema}, "required": ["value"], "additionalProperties": false});
    assert_eq!(fake.seen_for("gpt-4o")[0].body["response_format"]["json_schema"]["schema"], wrapped);
    assert_eq!(fake.seen_for("claude")[0].body["tools"][0]["input_schema"], wrapped);
    // Gemini takes any root.
    assert_eq!(fake.seen_for("gemini")[0].body["generationConfig"]["responseJsonSchema"], schema);
}

#[tokio::test]
async fn rate_limit_429_waits_for_retry_after_then_succeeds() {
    let fake = Fake::start(keys()).await;
    let f = fabric(&fake);
    for (name, kind, id) in [("o", Kind::Openai, "gpt-4o"), ("a", Kind::Anthropic, "claude"), ("g", Kind::Gemini, "gemini")] {
        fake.script(id, vec![Act::rate_limited(kind.as_str(), 400)]);
        let p = prog("executor", vec![model(name, kind, id, 1.0, 2.0)]);
        let t = Instant::now();
        let out = ask(&f, &p, None, None).await;
        let took = t.elapsed();
        assert!(out.result.is_some(), "{name}: {:?}", out.error);
        assert!(took >= Duration::from_millis(400), "{name}: retried after {took:?}, before retry-after-ms");
        let r = out.decisions.iter().find(|d| d.kind == "transport_retry").unwrap();
        assert_eq!(r.data["retry_after_ms"], 400, "{name}");
        assert_eq!(r.data["wait_ms"], 400, "{name}");
        assert!(r.data["error"].as_str().unwrap().contains("HTTP 429"), "{name}");
        assert_eq!(fake.seen_for(id).len(), 2, "{name}");
        // Failed attempts are not billed.
        assert!((out.usage.cost_usd - (120.0 + 60.0) / 1e6).abs() < 1e-15);
    }
}

#[tokio::test]
async fn server_errors_500_and_529_are_retried_with_backoff() {
    let fake = Fake::start(keys()).await;
    let f = fabric(&fake);
    fake.script("gpt-4o", vec![Act::server_error("openai")]);
    fake.script("claude", vec![Act::overloaded(), Act::overloaded()]);
    fake.script("gemini", vec![Act::server_error("gemini")]);
    for (name, kind, id, tries) in [("o", Kind::Openai, "gpt-4o", 2), ("a", Kind::Anthropic, "claude", 3), ("g", Kind::Gemini, "gemini", 2)] {
        let p = prog("executor", vec![model(name, kind, id, 1.0, 2.0)]);
        let out = ask(&f, &p, None, None).await;
        assert!(out.result.is_some(), "{name}: {:?}", out.error);
        assert_eq!(fake.seen_for(id).len(), tries, "{name}");
        let retries: Vec<_> = out.decisions.iter().filter(|d| d.kind == "transport_retry").collect();
        assert_eq!(retries.len(), tries - 1);
        assert!(retries[0].data["retry_after_ms"].is_null());
    }
    let out_529 = fake.seen_for("claude");
    assert_eq!(out_529[0].status, 529);
}

#[tokio::test]
async fn malformed_bodies_are_retried_then_the_chain_moves_on() {
    let fake = Fake::start(keys()).await;
    let f = fabric(&fake);
    fake.script("gpt-4o", vec![Act::Malformed, Act::Malformed, Act::Malformed]);
    fake.script("claude", vec![Act::Malformed]);
    let p = prog("executor", vec![model("o", Kind::Openai, "gpt-4o", 1.0, 2.0), model("a", Kind::Anthropic, "claude", 3.0, 15.0)]);
    let out = ask(&f, &p, None, None).await;
    assert!(out.result.is_some(), "{:?}", out.error);
    assert_eq!(fake.seen_for("gpt-4o").len(), 3, "1 + 2 retries");
    assert_eq!(fake.seen_for("claude").len(), 2);
    let fb = out.decisions.iter().find(|d| d.kind == "fallback").unwrap();
    assert_eq!(fb.data["from"], "o");
    assert_eq!(fb.data["to"], "a");
    assert!(fb.data["because"].as_str().unwrap().contains("malformed response body"), "{}", fb.data);
    // Only the answering model is billed, at its own prices.
    assert!((out.usage.cost_usd - (120.0 * 3.0 + 30.0 * 15.0) / 1e6).abs() < 1e-15);
}

#[tokio::test]
async fn a_reply_slower_than_the_timeout_is_a_transport_error() {
    let fake = Fake::start(keys()).await;
    let mut f = fabric_with(&fake, OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY, Duration::from_millis(300));
    f.retry.retries = 0;
    fake.script("gemini-slow", vec![Act::Slow(Duration::from_secs(2))]);
    let p = prog("executor", vec![model("slow", Kind::Gemini, "gemini-slow", 1.0, 2.0), model("fast", Kind::Openai, "gpt-4o", 1.0, 2.0)]);
    let t = Instant::now();
    let out = ask(&f, &p, None, None).await;
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    assert!(out.result.is_some(), "{:?}", out.error);
    let fb = out.decisions.iter().find(|d| d.kind == "fallback").unwrap();
    assert_eq!(fb.data["because"], "gemini: no response within 300ms");
}

#[tokio::test]
async fn wrong_keys_are_not_retried_and_never_leak() {
    let fake = Fake::start(keys()).await;
    let wrong = ["sk-WRONG-openai-key-999", "sk-ant-WRONG-999", "AIza-WRONG-999"];
    let f = fabric_with(&fake, wrong[0], wrong[1], wrong[2], Duration::from_secs(5));
    let p = prog(
        "executor",
        vec![model("o", Kind::Openai, "gpt-4o", 1.0, 2.0), model("a", Kind::Anthropic, "claude", 1.0, 2.0), model("g", Kind::Gemini, "gemini", 1.0, 2.0)],
    );
    let out = ask(&f, &p, None, None).await;
    let err = out.error.clone().unwrap().to_string();
    assert!(err.contains("every model of role `executor` failed"), "{err}");
    assert!(err.contains("gemini: HTTP 400 INVALID_ARGUMENT: API key not valid"), "{err}");
    for id in ["gpt-4o", "claude", "gemini"] {
        assert_eq!(fake.seen_for(id).len(), 1, "{id}: a bad key is not retried");
    }
    assert_eq!(fake.seen_for("gpt-4o")[0].status, 401);
    assert_eq!(fake.seen_for("claude")[0].status, 401);
    let failed: Vec<_> = out.decisions.iter().filter(|d| d.kind == "model_failed").collect();
    assert_eq!(failed.len(), 3);
    assert!(failed[0].data["error"].as_str().unwrap().contains("HTTP 401 invalid_request_error: Incorrect API key provided: ***"), "{}", failed[0].data);
    assert!(failed[1].data["error"].as_str().unwrap().contains("HTTP 401 authentication_error: invalid x-api-key"));
    let everything = format!("{err} {}", serde_json::to_string(&out.decisions.iter().map(|d| &d.data).collect::<Vec<_>>()).unwrap());
    for k in wrong.iter().chain([OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY].iter()) {
        assert!(!everything.contains(k), "key {k} leaked: {everything}");
    }
}

#[tokio::test]
async fn quota_errors_are_not_retried() {
    let fake = Fake::start(keys()).await;
    let f = fabric(&fake);
    fake.script("gpt-4o", vec![Act::insufficient_quota()]);
    fake.script("claude", vec![Act::SpendLimit]);
    let p = prog(
        "executor",
        vec![model("o", Kind::Openai, "gpt-4o", 1.0, 2.0), model("a", Kind::Anthropic, "claude", 1.0, 2.0), model("g", Kind::Gemini, "gemini", 1.0, 2.0)],
    );
    let out = ask(&f, &p, None, None).await;
    assert!(out.result.is_some());
    assert_eq!(fake.seen_for("gpt-4o").len(), 1);
    assert_eq!(fake.seen_for("claude").len(), 1);
    let failed: Vec<String> = out.decisions.iter().filter(|d| d.kind == "model_failed").map(|d| d.data["error"].as_str().unwrap().to_string()).collect();
    assert_eq!(failed.len(), 2);
    assert!(failed[0].contains("insufficient_quota") && failed[0].contains("not retried"), "{}", failed[0]);
    assert!(failed[1].contains("HTTP 429 rate_limit_error") && failed[1].contains("not retried"), "{}", failed[1]);
    assert!(!kinds(&out).contains(&"transport_retry".to_string()));
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_moves_on_and_cools_down() {
    let fake = Fake::start(keys()).await;
    let mut f = fabric(&fake);
    f.retry.max_retry_after = Duration::from_millis(200);
    fake.script("claude", vec![Act::rate_limited("anthropic", 5_000)]);
    let p = prog("executor", vec![model("a", Kind::Anthropic, "claude", 1.0, 2.0), model("o", Kind::Openai, "gpt-4o", 1.0, 2.0)]);
    let t = Instant::now();
    let out = ask(&f, &p, None, None).await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(out.result.is_some());
    assert_eq!(kinds(&out), ["model_failed", "cooldown", "fallback", "model"]);
    // The next call skips the cooling model without asking it.
    let out = ask(&f, &p, None, None).await;
    assert!(out.result.is_some());
    assert_eq!(kinds(&out), ["cooldown", "model"]);
    assert_eq!(out.decisions[0].data["skipped"], true);
    assert_eq!(fake.seen_for("claude").len(), 1);
}

#[tokio::test]
async fn a_model_that_keeps_failing_cools_down() {
    let fake = Fake::start(keys()).await;
    let mut f = fabric(&fake);
    f.retry.retries = 0;
    fake.script("gpt-4o", vec![Act::server_error("openai"), Act::server_error("openai"), Act::server_error("openai")]);
    let p = prog("executor", vec![model("o", Kind::Openai, "gpt-4o", 1.0, 2.0), model("g", Kind::Gemini, "gemini", 1.0, 2.0)]);
    assert_eq!(kinds(&ask(&f, &p, None, None).await), ["model_failed", "fallback", "model"]);
    assert_eq!(kinds(&ask(&f, &p, None, None).await), ["model_failed", "cooldown", "fallback", "model"]);
    assert_eq!(kinds(&ask(&f, &p, None, None).await), ["cooldown", "model"]);
    assert_eq!(fake.seen_for("gpt-4o").len(), 2);
}

#[tokio::test]
async fn verification_asks_for_a_typed_verdict_and_reasks_with_its_problems() {
    let fake = Fake::start(keys()).await;
    let f = fabric(&fake);
    let mut p = prog("executor", vec![model("o", Kind::Openai, "gpt-4o", 1.0, 2.0)]);
    with_role(&mut p, "verifier", vec![model("judge", Kind::Anthropic, "claude-judge", 3.0, 15.0)]);
    let verify = Verify { role: "verifier".into(), min_confidence: Some(0.7) };
    // Low, then high: the step is re-asked once with the problems.
    fake.script("gpt-4o", vec![Act::text("Revenue fell."), Act::text("Revenue rose 4%.")]);
    fake.script(
        "claude-judge",
        vec![
            Act::text(r#"{"agreement": false, "confidence": 0.3, "problems": ["the figures say revenue rose"]}"#),
            Act::text(r#"{"agreement": true, "confidence": 0.9, "problems": []}"#),
        ],
    );
    let out = ask(&f, &p, None, Some(&verify)).await;
    assert_eq!(out.result, Some(json!("Revenue rose 4%.")), "{:?}", out.error);
    let judge = fake.seen_for("claude-judge");
    assert_eq!(judge[0].body["tool_choice"]["name"], "answer");
    assert_eq!(judge[0].body["tools"][0]["input_schema"]["required"], json!(["agreement", "confidence", "problems"]));
    assert_eq!(judge[0].body["max_tokens"], 256);
    let second = &fake.seen_for("gpt-4o")[1];
    let prompt = second.body["messages"][0]["content"].as_str().unwrap();
    assert!(prompt.contains("- the figures say revenue rose"), "{prompt}");
    let v: Vec<_> = out.decisions.iter().filter(|d| d.kind == "verify").collect();
    assert_eq!(v[0].data["accepted"], false);
    assert_eq!(v[0].data["agreement"], false);
    assert_eq!(v[1].data["confidence"], 0.9);
    // Two answers and two verdicts, each at its model's prices.
    let expected = 2.0 * (120.0 * 1.0 + 30.0 * 2.0) / 1e6 + 2.0 * (120.0 * 3.0 + 30.0 * 15.0) / 1e6;
    assert!((out.usage.cost_usd - expected).abs() < 1e-15);

    // Low twice: the error holds both replies.
    fake.script("gpt-4o", vec![Act::text("first try"), Act::text("second try")]);
    fake.script(
        "claude-judge",
        vec![
            Act::text(r#"{"agreement": true, "confidence": 0.4, "problems": ["vague"]}"#),
            Act::text(r#"{"agreement": true, "confidence": 0.5, "problems": ["still vague"]}"#),
        ],
    );
    let out = ask(&f, &p, None, Some(&verify)).await;
    let err = out.error.unwrap().to_string();
    assert!(err.contains("confidence 0.50, below min_confidence 0.70 (problems: still vague)"), "{err}");
    assert!(err.contains("reply 1: first try") && err.contains("reply 2: second try"), "{err}");
}

#[tokio::test]
async fn keys_never_reach_the_journal_audit_or_events() {
    let fake = Fake::start(keys()).await;
    let mut f = fabric(&fake);
    f.retry.retries = 1;
    fake.script("gpt-4o", vec![Act::rate_limited("openai", 10)]);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("aos.db")).await.unwrap());
    let rt = Runtime { fabric: Arc::new(f), ..Runtime::new(store.clone(), dir.path()) };
    let mut events = rt.bus.subscribe();
    let mut p = prog("executor", vec![model("o", Kind::Openai, "gpt-4o", 1.0, 2.0)]);
    let mut wf = workflow("w");
    let mut st = llm("s", "executor", s("hello"));
    st.ty = Type::String;
    add(&mut wf, st);
    wf.ret_expr = Some(step_ref("s"));
    p.workflows.insert("w".into(), wf);
    let r = rt.run(&p, "w", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(r.output, Some(json!("A fine answer from gpt-4o.")), "{:?}", r.error);
    let journal = serde_json::to_string(&store.journal(&r.run_id).await.unwrap()).unwrap();
    let audit = serde_json::to_string(&store.audit(&r.run_id).await.unwrap()).unwrap();
    let show = rt.show(&r.run_id).await.unwrap().to_string();
    let mut published = String::new();
    while let Ok(e) = events.try_recv() {
        published.push_str(&serde_json::to_string(&e).unwrap());
    }
    assert!(audit.contains("transport_retry") && published.contains("routed"), "{published}");
    for text in [&journal, &audit, &show, &published] {
        for k in [OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY] {
            assert!(!text.contains(k));
        }
    }
}

#[tokio::test]
async fn verdict_logprobs_lower_a_confident_verifier() {
    let fake = Fake::start(keys()).await;
    let timeout = Duration::from_secs(5);
    let mut f = Fabric::simulated()
        .with_provider(Kind::Openai, Arc::new(OpenAi { endpoint: Endpoint::new("openai", fake.openai_base(), OPENAI_KEY.into(), timeout).unwrap().with_logprobs(true) }))
        .with_provider(Kind::Gemini, Arc::new(Gemini { endpoint: Endpoint::new("gemini", fake.base(), GEMINI_KEY.into(), timeout).unwrap().with_logprobs(true) }));
    f.retry.backoff = Duration::from_millis(5);
    let verify = Verify { role: "verifier".into(), min_confidence: Some(0.7) };
    let high = r#"{"agreement": true, "confidence": 0.95, "problems": []}"#;
    for (judge, id) in [("oj", "gpt-judge"), ("gj", "gemini-judge")] {
        let kind = if judge == "oj" { Kind::Openai } else { Kind::Gemini };
        let mut p = prog("executor", vec![model("w", Kind::Anthropic, "unused", 1.0, 2.0), model("s", Kind::Sim, "s", 0.0, 0.0)]);
        p.roles.insert("executor".into(), vec!["s".into()]);
        with_role(&mut p, "verifier", vec![model(judge, kind, id, 1.0, 2.0)]);
        fake.script(id, vec![Act::text(high), Act::text(high)]);
        let out = ask(&f, &p, None, Some(&verify)).await;
        // Stated 0.95, but the `true` token had probability 0.6.
        let err = out.error.unwrap_or_else(|| panic!("{judge}: accepted")).to_string();
        assert!(err.contains("confidence 0.60, below min_confidence 0.70"), "{judge}: {err}");
        let v = out.decisions.iter().find(|d| d.kind == "verify").unwrap();
        assert_eq!(v.data["stated_confidence"], 0.95);
        assert!((v.data["logprob_confidence"].as_f64().unwrap() - 0.6).abs() < 1e-9);
        let seen = fake.seen_for(id);
        assert_eq!(seen.len(), 2);
        if judge == "oj" {
            assert_eq!(seen[0].body["logprobs"], true);
        } else {
            assert_eq!(seen[0].body["generationConfig"]["responseLogprobs"], true);
        }
    }
    // Answers (not verdicts) never ask for log-probabilities.
    let p = prog("executor", vec![model("o", Kind::Openai, "gpt-4o", 1.0, 2.0)]);
    assert!(ask(&f, &p, None, None).await.result.is_some());
    assert!(fake.seen_for("gpt-4o")[0].body.get("logprobs").is_none());
}

#[test]
fn openai_public_endpoint_gets_max_completion_tokens() {
    use aos_runtime::fabric::{openai, Purpose, Request};
    let req = Request {
        model: model("o", Kind::Openai, "o3-mini", 1.0, 2.0),
        prompt: "hi".into(),
        max_tokens: 77,
        schema: Some(json!({"type": "object", "properties": {"a": {"type": "string"}}})),
        call_key: "k".into(),
        purpose: Purpose::Answer,
        role: "executor".into(),
        stream: None,
        conversation: None,
    };
    let (body, wrapped) = openai::body(&req, openai::DEFAULT_BASE_URL, false);
    assert_eq!(body["max_completion_tokens"], 77);
    assert!(body.get("max_tokens").is_none());
    assert!(!wrapped);
    // `a` is optional here, which strict mode cannot express.
    assert_eq!(body["response_format"]["json_schema"]["strict"], false);
}

#[tokio::test]
async fn a_bad_request_moves_on_without_cooling_the_model_but_a_bad_key_cools_it() {
    let fake = Fake::start(keys()).await;
    let f = fabric(&fake);
    let bad = Act::Error { status: 400, kind: "invalid_request_error".into(), message: "Invalid schema for response_format".into(), headers: vec![] };
    fake.script("gpt-4o", vec![bad]);
    let p = prog("executor", vec![model("o", Kind::Openai, "gpt-4o", 1.0, 2.0), model("g", Kind::Gemini, "gemini", 1.0, 2.0)]);
    assert_eq!(kinds(&ask(&f, &p, None, None).await), ["model_failed", "fallback", "model"]);
    // The next call asks it again.
    assert_eq!(kinds(&ask(&f, &p, None, None).await), ["model"]);

    let wrong = fabric_with(&fake, "sk-wrong-123456", ANTHROPIC_KEY, GEMINI_KEY, Duration::from_secs(5));
    assert_eq!(kinds(&ask(&wrong, &p, None, None).await), ["model_failed", "cooldown", "fallback", "model"]);
    assert_eq!(kinds(&ask(&wrong, &p, None, None).await), ["cooldown", "model"]);
}
