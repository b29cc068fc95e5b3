//! The response cache (`cache:`) against the faked provider server over
//! real HTTP: a second identical run is answered from the cache at $0 and
//! the server sees one request; another trust level, another workflow or an
//! expired entry miss; `cache_scope: shared` shares across workflows; a
//! `read` tool is cached like an LLM call; and with Redis the entries live
//! there, expiring by Redis's own TTL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::fake_llm;
use aos_testkit::redis as redis_server;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{Cache, CacheScope, Effect, Model, Program, Provider as Kind, SimOptions, Trust};
use aos_runtime::cache::RedisCache;
use aos_runtime::events::{RunStatus, Transition};
use aos_runtime::fabric::openai::OpenAi;
use aos_runtime::fabric::wire::Endpoint;
use aos_runtime::fabric::Fabric;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::testkit::*;
use aos_runtime::tools::{Tool, ToolCtx, Tools};
use aos_runtime::{RunOptions, RunReport, Runtime};
use fake_llm::{Fake, Keys};
use serde_json::{json, Value};

const KEY: &str = "sk-test-openai-0123456789";

fn keys() -> Keys {
    Keys { openai: KEY.into(), anthropic: "a".into(), gemini: "g".into() }
}

fn gpt() -> Model {
    Model {
        name: "gpt".into(),
        provider: Kind::Openai,
        model_id: "gpt-4o".into(),
        input_per_m: 2.5,
        output_per_m: 10.0,
        context: 128_000,
        base_url: None,
        structured: Default::default(),
        sim: SimOptions::default(),
    }
}

/// Workflows `w` and `other`, each one LLM step `s` with the same prompt
/// and the given cache.
fn prog(cache: Option<Cache>) -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![gpt()]);
    for name in ["w", "other"] {
        let mut wf = workflow(name);
        let mut st = llm("s", "executor", s("Summarise the week."));
        st.cache = cache;
        add(&mut wf, st);
        wf.ret_expr = Some(step_ref("s"));
        p.workflows.insert(name.into(), wf);
    }
    p
}

struct Setup {
    fake: Fake,
    rt: Runtime,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fake = Fake::start(keys()).await;
    let f = Fabric::simulated()
        .with_provider(Kind::Openai, Arc::new(OpenAi { endpoint: Endpoint::new("openai", fake.openai_base(), KEY.into(), Duration::from_secs(5)).unwrap() }));
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("aos.db")).await.unwrap());
    let rt = Runtime { fabric: Arc::new(f), ..Runtime::new(store, dir.path()) };
    Setup { fake, rt, _dir: dir }
}

async fn run(rt: &Runtime, p: &Program, wf: &str, trust: Trust) -> RunReport {
    let r = rt.run(p, wf, BTreeMap::new(), trust, RunOptions::default()).await.unwrap();
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.error);
    r
}

const ONE_CALL_USD: f64 = (120.0 * 2.5 + 30.0 * 10.0) / 1e6;

fn day() -> Option<Cache> {
    Some(Cache { ttl_ms: 86_400_000, scope: CacheScope::Workflow })
}

#[tokio::test]
async fn the_second_identical_run_is_a_free_hit_and_the_provider_sees_one_request() {
    let t = setup().await;
    let p = prog(day());
    let first = run(&t.rt, &p, "w", Trust::Basic).await;
    assert!((first.cost_usd - ONE_CALL_USD).abs() < 1e-15, "{}", first.cost_usd);
    let second = run(&t.rt, &p, "w", Trust::Basic).await;
    assert_eq!(second.output, first.output);
    assert_eq!(second.cost_usd, 0.0);
    assert_eq!(t.fake.seen().len(), 1, "the provider answered once");

    // Journaled: an `llm.routed` cache_hit record with what it saved, then
    // the value with zero usage.
    let journal = t.rt.store.journal(&second.run_id).await.unwrap();
    let hit = journal
        .iter()
        .find_map(|e| match &e.transition {
            Transition::Routed { kind, data, .. } if kind == "cache_hit" => Some(data.clone()),
            _ => None,
        })
        .expect("a cache_hit record");
    assert!((hit["saved_usd"].as_f64().unwrap() - ONE_CALL_USD).abs() < 1e-15, "{hit}");
    assert_eq!(hit["model"], "gpt");
    assert!(journal.iter().any(|e| matches!(&e.transition,
        Transition::StepSucceeded { usage, output: Some(_), .. } if usage.cost_usd == 0.0 && usage.input_tokens == 0)));
    let audit = t.rt.store.audit(&second.run_id).await.unwrap();
    assert!(audit.iter().any(|r| r.kind == "cache_hit"));

    // `aosc show --json` marks the step.
    let show = t.rt.show(&second.run_id).await.unwrap();
    assert_eq!(show["steps"][0]["cached"], true, "{show}");
    assert_eq!(show["steps"][0]["cache"]["hits"], 1);
    let first_show = t.rt.show(&first.run_id).await.unwrap();
    assert!(first_show["steps"][0].get("cached").is_none(), "{first_show}");

    // Replaying the journal gives the same value without the cache.
    let replayed = t.rt.execute(&second.run_id, RunOptions::default()).await.unwrap();
    assert_eq!(replayed.output, first.output);
    assert_eq!(t.fake.seen().len(), 1);
}

#[tokio::test]
async fn another_trust_level_or_workflow_misses_unless_the_scope_says_so() {
    let t = setup().await;
    let p = prog(day());
    run(&t.rt, &p, "w", Trust::Basic).await;
    let trusted = run(&t.rt, &p, "w", Trust::Trusted).await;
    assert!(trusted.cost_usd > 0.0);
    assert_eq!(t.fake.seen().len(), 2, "another trust level is a miss");
    let other = run(&t.rt, &p, "other", Trust::Basic).await;
    assert!(other.cost_usd > 0.0);
    assert_eq!(t.fake.seen().len(), 3, "another workflow is a miss");

    // `shared`: any workflow at the same trust level, never another trust.
    let shared = prog(Some(Cache { ttl_ms: 86_400_000, scope: CacheScope::Shared }));
    run(&t.rt, &shared, "w", Trust::Basic).await;
    assert_eq!(t.fake.seen().len(), 4);
    assert_eq!(run(&t.rt, &shared, "other", Trust::Basic).await.cost_usd, 0.0);
    assert_eq!(t.fake.seen().len(), 4, "shared across workflows");
    assert!(run(&t.rt, &shared, "other", Trust::Admin).await.cost_usd > 0.0);
    assert_eq!(t.fake.seen().len(), 5, "never across trust levels");

    // `global`: anyone.
    let global = prog(Some(Cache { ttl_ms: 86_400_000, scope: CacheScope::Global }));
    run(&t.rt, &global, "w", Trust::Untrusted).await;
    assert_eq!(run(&t.rt, &global, "other", Trust::Admin).await.cost_usd, 0.0);
    assert_eq!(t.fake.seen().len(), 6);
}

#[tokio::test]
async fn an_expired_entry_misses_and_a_changed_prompt_misses() {
    let t = setup().await;
    let p = prog(Some(Cache { ttl_ms: 300, scope: CacheScope::Workflow }));
    run(&t.rt, &p, "w", Trust::Basic).await;
    assert_eq!(run(&t.rt, &p, "w", Trust::Basic).await.cost_usd, 0.0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(run(&t.rt, &p, "w", Trust::Basic).await.cost_usd > 0.0, "expired");
    assert_eq!(t.fake.seen().len(), 2);

    let mut changed = prog(day());
    if let Some(wf) = changed.workflows.get_mut("w") {
        wf.steps[0].max_tokens = 77;
    }
    // (The TTL is not part of the key: this run may hit the last entry.)
    run(&t.rt, &prog(day()), "w", Trust::Basic).await;
    let before = t.fake.seen().len();
    assert!(run(&t.rt, &changed, "w", Trust::Basic).await.cost_usd > 0.0);
    assert_eq!(t.fake.seen().len(), before + 1, "other sampling settings are another key");
}

#[tokio::test]
async fn a_step_without_cache_always_asks() {
    let t = setup().await;
    let p = prog(None);
    run(&t.rt, &p, "w", Trust::Basic).await;
    run(&t.rt, &p, "w", Trust::Basic).await;
    assert_eq!(t.fake.seen().len(), 2);
}

/// A `read` tool that counts its calls.
struct Counting(Arc<AtomicU32>);

impl Tool for Counting {
    fn call<'a>(&'a self, args: Value, _ctx: &'a ToolCtx) -> aos_runtime::store::BoxFuture<'a, Result<Value, aos_runtime::tools::ToolError>> {
        Box::pin(async move {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(json!({"q": args["q"], "call": n}))
        })
    }
}

#[tokio::test]
async fn a_read_tool_is_cached_by_its_arguments() {
    let calls = Arc::new(AtomicU32::new(0));
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("aos.db")).await.unwrap());
    let mut tools: HashMap<String, Arc<dyn Tool>> = HashMap::new();
    tools.insert("crm.lookup".into(), Arc::new(Counting(calls.clone())));
    let rt = Runtime { tools: Arc::new(Tools::stand_ins(tools)), ..Runtime::new(store, dir.path()) };
    let mut p = program();
    p.tools.insert("crm.lookup".into(), builtin_tool("crm.lookup", &["q"], Effect::Read, aos_compiler::ir::Risk::Low));
    let mut wf = workflow("w");
    wf.params.push(param("q", None));
    let mut st = tool("t", "crm.lookup", vec![("q", param_ref("q"))], Effect::Read);
    st.ty = aos_compiler::ir::Type::Json;
    st.cache = day();
    add(&mut wf, st);
    wf.ret_expr = Some(step_ref("t"));
    p.workflows.insert("w".into(), wf);
    let go = |q: &str| {
        let inputs = BTreeMap::from([("q".to_string(), json!(q))]);
        let (rt, p) = (&rt, &p);
        async move { rt.run(p, "w", inputs, Trust::Basic, RunOptions::default()).await.unwrap() }
    };
    let a = go("acme").await;
    let b = go("acme").await;
    assert_eq!(a.output, Some(json!({"q": "acme", "call": 1})), "{:?}", a.error);
    assert_eq!(b.output, a.output, "answered from the cache");
    let c = go("globex").await;
    assert_eq!(c.output, Some(json!({"q": "globex", "call": 2})), "other arguments, another key");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn with_redis_the_entries_live_in_redis_with_its_ttl() {
    let Some(server) = redis_server::RedisServer::start() else { return };
    let mut t = setup().await;
    t.rt.cache = Arc::new(RedisCache::new(&server.url()).unwrap());
    let p = prog(Some(Cache { ttl_ms: 2_000, scope: CacheScope::Workflow }));
    run(&t.rt, &p, "w", Trust::Basic).await;
    assert_eq!(run(&t.rt, &p, "w", Trust::Basic).await.cost_usd, 0.0);
    assert_eq!(t.fake.seen().len(), 1);
    // One key under aos:cache:, with Redis's own expiry (SET … EX 2).
    let keys = server.cli(&["--scan", "--pattern", "aos:cache:*"]);
    let key = keys.lines().next().expect("a cache key in Redis").to_string();
    let ttl: i64 = server.cli(&["ttl", &key]).parse().unwrap();
    assert!((1..=2).contains(&ttl), "ttl {ttl}");
    // Not in the store: the store's table stays empty.
    assert!(t.rt.store.cache_get(key.trim_start_matches("aos:cache:"), 0).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(run(&t.rt, &p, "w", Trust::Basic).await.cost_usd > 0.0, "Redis expired it");
    assert_eq!(t.fake.seen().len(), 2);
}
