//! Routing by measured statistics against the faked provider server: the
//! driver records each call's latency, errors and cost in the store; once
//! both models of a `route: measured(latency)` chain have enough samples,
//! the slow model written first is asked after the fast one. Models with
//! too few samples keep the written order. Exploration: a model never
//! measured, written behind another, is asked first on a fraction ε of
//! calls (never with ε = 0, always with ε = 1), and so gets measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::fake_llm;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{Model, Program, Provider as Kind, Route, SimOptions, Trust};
use aos_runtime::events::{RunStatus, Transition};
use aos_runtime::fabric::openai::OpenAi;
use aos_runtime::fabric::wire::Endpoint;
use aos_runtime::fabric::Fabric;
use aos_runtime::stats::Explore;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::testkit::*;
use aos_runtime::{RunOptions, Runtime};
use fake_llm::{Act, Fake, Keys};
use serde_json::Value;

const KEY: &str = "sk-test-openai-0123456789";

fn model(name: &str, id: &str) -> Model {
    Model { name: name.into(), provider: Kind::Openai, model_id: id.into(), input_per_m: 1.0, output_per_m: 2.0, context: 128_000, base_url: None, structured: Default::default(), sim: SimOptions::default() }
}

/// `executor = [slow, fast] { route: measured(latency) }` for workflow
/// `w`, and `probe = [fast]` for workflow `p` (which measures `fast`).
fn prog() -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![model("slow", "slow-model"), model("fast", "fast-model")]);
    p.roles.insert("probe".into(), vec!["fast".into()]);
    let mut w = workflow("w");
    let mut st = llm("s", "executor", s("Summarise the week."));
    st.route = Some(Route::Latency);
    add(&mut w, st);
    w.ret_expr = Some(step_ref("s"));
    p.workflows.insert("w".into(), w);
    let mut probe = workflow("p");
    add(&mut probe, llm("s", "probe", s("Summarise the week.")));
    probe.ret_expr = Some(step_ref("s"));
    p.workflows.insert("p".into(), probe);
    p
}

async fn run(rt: &Runtime, p: &Program, wf: &str) -> (String, Option<Value>) {
    let r = rt.run(p, wf, BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.error);
    let journal = rt.store.journal(&r.run_id).await.unwrap();
    let route = journal.iter().find_map(|e| match &e.transition {
        Transition::Routed { kind, data, .. } if kind == "route" => Some(data.clone()),
        _ => None,
    });
    (r.output.unwrap().as_str().unwrap().to_string(), route)
}

#[tokio::test]
async fn a_slow_model_is_routed_after_a_fast_one_once_both_are_measured() {
    let fake = Fake::start(Keys { openai: KEY.into(), anthropic: "a".into(), gemini: "g".into() }).await;
    fake.script("slow-model", vec![Act::Slow(Duration::from_millis(120)); 20]);
    let mut f = Fabric::simulated()
        .with_provider(Kind::Openai, Arc::new(OpenAi { endpoint: Endpoint::new("openai", fake.openai_base(), KEY.into(), Duration::from_secs(5)).unwrap() }));
    // The measured order itself (exploration has a test of its own).
    f.explore = Explore::off();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("aos.db")).await.unwrap());
    let rt = Runtime { fabric: Arc::new(f), ..Runtime::new(store, dir.path()) };
    let p = prog();

    // Too few samples: the written order, the slow model answers.
    for _ in 0..3 {
        let (out, route) = run(&rt, &p, "w").await;
        assert_eq!(out, "A fine answer from slow-model.");
        let route = route.expect("a route decision");
        assert_eq!(route["order"], serde_json::json!(["slow", "fast"]), "{route}");
    }
    // The fast model gets measured through another role.
    for _ in 0..3 {
        run(&rt, &p, "p").await;
    }
    let stats = rt.store.model_stats().await.unwrap();
    let of = |k: &str| stats.iter().find(|s| s.key == k).cloned().unwrap();
    let (slow, fast) = (of("openai|slow-model|"), of("openai|fast-model|"));
    assert_eq!((slow.calls, fast.calls), (3, 3));
    assert!(slow.mean_latency_ms().unwrap() >= 120.0, "{slow:?}");
    assert!(fast.mean_latency_ms().unwrap() < slow.mean_latency_ms().unwrap());
    assert!((slow.cost_per_call().unwrap() - (120.0 * 1.0 + 30.0 * 2.0) / 1e6).abs() < 1e-15);

    // Now the fast model is asked first.
    let before = fake.seen_for("slow-model").len();
    let (out, route) = run(&rt, &p, "w").await;
    assert_eq!(out, "A fine answer from fast-model.");
    let route = route.unwrap();
    assert_eq!(route["order"], serde_json::json!(["fast", "slow"]), "{route}");
    assert_eq!(route["written"], serde_json::json!(["slow", "fast"]));
    assert_eq!(fake.seen_for("slow-model").len(), before, "the slow model was not asked");
}

async fn runtime_exploring(fake: &Fake, epsilon: f64, dir: &std::path::Path) -> Runtime {
    let mut f = Fabric::simulated()
        .with_provider(Kind::Openai, Arc::new(OpenAi { endpoint: Endpoint::new("openai", fake.openai_base(), KEY.into(), Duration::from_secs(5)).unwrap() }));
    f.explore = Explore { epsilon, seed: 42 };
    let store = Arc::new(SqliteStore::open(&dir.join("aos.db")).await.unwrap());
    Runtime { fabric: Arc::new(f), ..Runtime::new(store, dir) }
}

#[tokio::test]
async fn a_model_never_measured_behind_another_is_explored_and_then_measured() {
    let fake = Fake::start(Keys { openai: KEY.into(), anthropic: "a".into(), gemini: "g".into() }).await;
    let p = prog();
    // ε = 0: the model written second is never asked, so never measured.
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_exploring(&fake, 0.0, dir.path()).await;
    for _ in 0..5 {
        let (out, route) = run(&rt, &p, "w").await;
        assert_eq!(out, "A fine answer from slow-model.");
        assert!(route.unwrap()["explored"].is_null());
    }
    assert!(fake.seen_for("fast-model").is_empty());
    assert!(rt.store.model_stats().await.unwrap().iter().all(|s| s.key != "openai|fast-model|"));

    // ε = 1: the unmeasured model is asked first until it has its samples,
    // then the measured order (here: the unmeasured `slow` written first)
    // takes over; the cost is the explored model's, exactly.
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_exploring(&fake, 1.0, dir.path()).await;
    for _ in 0..3 {
        let r = rt.run(&p, "w", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
        assert_eq!(r.output.unwrap(), "A fine answer from fast-model.");
        assert!((r.cost_usd - (120.0 * 1.0 + 30.0 * 2.0) / 1e6).abs() < 1e-15, "{}", r.cost_usd);
        let journal = rt.store.journal(&r.run_id).await.unwrap();
        let route = journal.iter().find_map(|e| match &e.transition {
            Transition::Routed { kind, data, .. } if kind == "route" => Some(data.clone()),
            _ => None,
        });
        let route = route.unwrap();
        assert_eq!(route["explored"], "fast", "{route}");
        assert_eq!(route["order"], serde_json::json!(["fast", "slow"]));
        assert_eq!(route["written"], serde_json::json!(["slow", "fast"]));
    }
    let stats = rt.store.model_stats().await.unwrap();
    assert_eq!(stats.iter().find(|s| s.key == "openai|fast-model|").unwrap().calls, 3);
    let (out, route) = run(&rt, &p, "w").await;
    assert_eq!(out, "A fine answer from slow-model.", "fast is measured now; slow keeps its written place");
    assert!(route.unwrap()["explored"].is_null());
}
