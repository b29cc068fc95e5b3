//! `memory.*` with embeddings from the model fabric (docs/runtime.md,
//! memory): programs compiled from source whose role `embedding` names an
//! OpenAI or a Gemini model, run through the real core and driver against
//! the loopback fake of the providers' embeddings APIs
//! (`aos_testkit::fake_llm::embeddings`), on both stores. The requests the
//! server saw, the step's audited `embedding` decision, the stored rows'
//! embedding names, cost, retries, and the fallback to the built-in
//! hashing embedding only when the role lists it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{Program, Provider as Kind, Trust};
use aos_runtime::events::RunStatus;
use aos_runtime::fabric::gemini::Gemini;
use aos_runtime::fabric::openai::OpenAi;
use aos_runtime::fabric::wire::Endpoint;
use aos_runtime::fabric::Fabric;
use aos_runtime::{RunOptions, RunReport, Runtime};
use aos_testkit::both_stores;
use aos_testkit::fake_llm::{Act, Fake, Keys};
use aos_testkit::stores::{Kind as StoreKind, TestStore};
use serde_json::{json, Value};

struct NoFiles;

impl aos_compiler::FileLoader for NoFiles {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

const OPENAI_KEY: &str = "sk-test-openai-0123456789";
const GEMINI_KEY: &str = "AIza-test-0123456789";

fn keys() -> Keys {
    Keys { openai: OPENAI_KEY.into(), anthropic: "sk-ant-test-0123456789".into(), gemini: GEMINI_KEY.into() }
}

/// A fabric whose OpenAI and Gemini providers talk to `fake`.
fn fabric(fake: &Fake) -> Fabric {
    let t = Duration::from_secs(5);
    let mut f = Fabric::simulated()
        .with_provider(Kind::Openai, Arc::new(OpenAi { endpoint: Endpoint::new("openai", fake.openai_base(), OPENAI_KEY.into(), t).unwrap() }))
        .with_provider(Kind::Gemini, Arc::new(Gemini { endpoint: Endpoint::new("gemini", fake.base(), GEMINI_KEY.into(), t).unwrap() }));
    f.retry.backoff = Duration::from_millis(5);
    f.retry.retries = 1;
    f
}

/// `remember(key, value)` and `recall(query)` over the models and the
/// `embedding` role given.
fn program(models_and_role: &str) -> Program {
    let src = format!(
        r#"
use std.memory

{models_and_role}

workflow remember(key: String, value: String) -> Bool {{
  step saved = memory.remember(key: key, value: value)
  return saved
}}

workflow recall(query: String) -> List<Json> {{
  step hits = memory.recall(query: query, k: 3)
  return hits
}}
"#
    );
    let a = aos_compiler::check("memory.aos", &src, &NoFiles);
    let errors: Vec<String> = a.diagnostics.iter().filter(|d| d.is_error()).map(|d| format!("{:?}: {}", d.code, d.message)).collect();
    assert!(errors.is_empty(), "{errors:?}");
    a.program.expect("a program")
}

const OPENAI: &str = r#"
model small = openai("text-embedding-3-small") { input: $0.02/M, output: $0/M, context: 8191 }
role embedding = [small]
"#;

const GEMINI: &str = r#"
model gem = gemini("gemini-embedding-001") { input: $0.15/M, output: $0/M, context: 2048 }
role embedding = [gem]
"#;

/// The same OpenAI model, falling back to the built-in hashing embedding.
const OPENAI_THEN_HASHING: &str = r#"
model small = openai("text-embedding-3-small") { input: $0.02/M, output: $0/M, context: 8191 }
model hashing = sim("local-trigram-256")
role embedding = [small, hashing]
"#;

async fn run(rt: &Runtime, p: &Program, wf: &str, inputs: Value) -> RunReport {
    let inputs: BTreeMap<String, Value> = serde_json::from_value(inputs).unwrap();
    rt.run(p, wf, inputs, Trust::Basic, RunOptions::default()).await.unwrap()
}

async fn remember(rt: &Runtime, p: &Program, key: &str, value: &str) -> RunReport {
    run(rt, p, "remember", json!({"key": key, "value": value})).await
}

/// The data of the run's audited decisions of `kind`.
async fn decisions(rt: &Runtime, run_id: &str, kind: &str) -> Vec<Value> {
    rt.store.audit(run_id).await.unwrap().into_iter().filter(|r| r.kind == kind).map(|r| r.data).collect()
}

fn runtime(ts: &TestStore, f: Fabric) -> Runtime {
    Runtime { fabric: Arc::new(f), ..Runtime::new(ts.store(), ts.dir.path()) }
}

const NOTES: [(&str, &str); 3] = [
    ("emea-week-47", "EMEA sales grew 13% in week 47"),
    ("oncall", "Pager rotation: Ada this week, Grace next week"),
    ("k8s", "The payments pod restarts in a loop after the deploy"),
];

async fn openai_embeddings_remember_and_recall(kind: StoreKind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let fake = Fake::start(keys()).await;
    let rt = runtime(&ts, fabric(&fake));
    let p = program(OPENAI);
    let mut cost = 0.0;
    for (k, v) in NOTES {
        let r = remember(&rt, &p, k, v).await;
        assert_eq!((r.status, r.output.clone()), (RunStatus::Succeeded, Some(json!(true))), "{:?}", r.error);
        cost += r.cost_usd;
        let d = decisions(&rt, &r.run_id, "embedding").await;
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (&d[0]["embedding"], &d[0]["model"], &d[0]["dims"], &d[0]["answered_by"]),
            (&json!("openai/text-embedding-3-small"), &json!("small"), &json!(1536), &json!("openai"))
        );
    }
    let seen = fake.seen_for("text-embedding-3-small");
    assert_eq!(seen.len(), 3);
    for (s, (k, v)) in seen.iter().zip(NOTES) {
        assert_eq!((s.path.as_str(), s.status), ("/v1/embeddings", 200));
        assert_eq!(s.headers["authorization"], format!("Bearer {OPENAI_KEY}"));
        assert_eq!(s.body, json!({"model": "text-embedding-3-small", "input": [format!("{k} {v}")], "encoding_format": "float"}));
    }
    // Billed from the reported usage at the model's price.
    let tokens: u64 = NOTES.iter().map(|(k, v)| aos_testkit::fake_llm::embeddings::tokens(&format!("{k} {v}"))).sum();
    assert!((cost - tokens as f64 * 0.02 / 1e6).abs() < 1e-12, "{cost}");
    let rows = rt.store.memory_all().await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.embedding_model == "openai/text-embedding-3-small" && r.embedding.len() == 1536));

    let r = run(&rt, &p, "recall", json!({"query": "how did EMEA sales do in week 47?"})).await;
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.error);
    let hits = r.output.unwrap();
    assert_eq!(hits[0]["key"], "emea-week-47", "{hits}");
    assert!(hits.as_array().unwrap().iter().all(|h| h["embedding"] == "openai/text-embedding-3-small" && h["layer"] == "long_term"), "{hits}");
    let d = decisions(&rt, &r.run_id, "embedding").await;
    assert_eq!((&d[0]["embedding"], &d[0]["texts"]), (&json!("openai/text-embedding-3-small"), &json!(1)));
    let last = fake.seen_for("text-embedding-3-small").pop().unwrap();
    assert_eq!(last.body["input"], json!(["how did EMEA sales do in week 47?"]));
    // The record is an event of the journal too.
    let journal = serde_json::to_string(&rt.store.journal(&r.run_id).await.unwrap()).unwrap();
    assert!(journal.contains("openai/text-embedding-3-small"), "{journal}");
}

async fn gemini_embeddings_remember_and_recall(kind: StoreKind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let fake = Fake::start(keys()).await;
    let rt = runtime(&ts, fabric(&fake));
    let p = program(GEMINI);
    for (k, v) in NOTES {
        let r = remember(&rt, &p, k, v).await;
        assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.error);
        assert!(r.cost_usd > 0.0);
    }
    let r = run(&rt, &p, "recall", json!({"query": "who is on the pager rotation"})).await;
    let hits = r.output.unwrap();
    assert_eq!((&hits[0]["key"], &hits[0]["embedding"]), (&json!("oncall"), &json!("gemini/gemini-embedding-001")), "{hits}");
    let d = decisions(&rt, &r.run_id, "embedding").await;
    assert_eq!((&d[0]["model"], &d[0]["dims"], &d[0]["tokens_reported"]), (&json!("gem"), &json!(3072), &json!(false)));
    let seen = fake.seen_for("gemini-embedding-001");
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents" && s.status == 200));
    assert!(seen.iter().all(|s| s.headers["x-goog-api-key"] == GEMINI_KEY && !s.path.contains("key=")));
    assert_eq!(
        seen[0].body,
        json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "emea-week-47 EMEA sales grew 13% in week 47"}]}, "taskType": "RETRIEVAL_DOCUMENT"}]})
    );
    assert_eq!(seen[3].body["requests"][0]["taskType"], "RETRIEVAL_QUERY");
}

/// A 5xx is retried and then answers; a 4xx is not retried and fails the
/// step, writing nothing: without a hashing model in the role nothing
/// falls back.
async fn provider_errors_retry_and_fail_without_fallback(kind: StoreKind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let fake = Fake::start(keys()).await;
    let rt = runtime(&ts, fabric(&fake));
    let p = program(OPENAI);
    fake.script("text-embedding-3-small", vec![Act::server_error("openai")]);
    let r = remember(&rt, &p, "a", "first note").await;
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.error);
    let statuses: Vec<u16> = fake.seen_for("text-embedding-3-small").iter().map(|s| s.status).collect();
    assert_eq!(statuses, vec![500, 200]);
    let retries = decisions(&rt, &r.run_id, "transport_retry").await;
    assert_eq!((retries.len(), &retries[0]["role"]), (1, &json!("embedding")), "{retries:?}");
    assert_eq!(decisions(&rt, &r.run_id, "embedding").await[0]["attempts"], 2);

    // Two 500s exhaust the one retry; then a 400 is not retried.
    for acts in [vec![Act::server_error("openai"), Act::server_error("openai")], vec![Act::Error { status: 400, kind: "invalid_request_error".into(), message: "bad input".into(), headers: vec![] }]] {
        let before = fake.seen_for("text-embedding-3-small").len();
        let n = acts.len();
        fake.script("text-embedding-3-small", acts);
        let r = remember(&rt, &p, "b", "second note").await;
        assert_eq!(r.status, RunStatus::Failed);
        let err = r.error.unwrap();
        assert!(err.contains("embedding model `small` failed after") && err.contains("openai: HTTP"), "{err}");
        assert_eq!(fake.seen_for("text-embedding-3-small").len() - before, n);
        assert!(decisions(&rt, &r.run_id, "embedding").await.is_empty());
        assert_eq!(decisions(&rt, &r.run_id, "model_failed").await.len(), 1);
    }
    let keys: Vec<String> = rt.store.memory_all().await.unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(keys, vec!["a"]);
}

/// With `[small, hashing]`, a failing provider falls back to the built-in
/// embedding, audited; entries of the two embeddings are never compared:
/// a recall through OpenAI does not see the hashed entry, one through the
/// fallback sees only it.
async fn fallback_to_hashing_only_when_configured(kind: StoreKind) {
    let Some(ts) = TestStore::open(kind).await else { return };
    let fake = Fake::start(keys()).await;
    let rt = runtime(&ts, fabric(&fake));
    let p = program(OPENAI_THEN_HASHING);
    assert_eq!(remember(&rt, &p, "emea", "EMEA sales grew 13% in week 47").await.status, RunStatus::Succeeded);
    fake.script("text-embedding-3-small", vec![Act::insufficient_quota()]);
    let r = remember(&rt, &p, "emea-hashed", "EMEA sales fell 2% in week 48").await;
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.error);
    let fb = decisions(&rt, &r.run_id, "fallback").await;
    assert_eq!((&fb[0]["from"], &fb[0]["to"]), (&json!("small"), &json!("hashing")), "{fb:?}");
    let d = decisions(&rt, &r.run_id, "embedding").await;
    assert_eq!((&d[0]["embedding"], &d[0]["model"], &d[0]["answered_by"]), (&json!("local-trigram-256"), &json!("hashing"), &json!("sim")));
    let mut rows = rt.store.memory_all().await.unwrap();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    let spaces: Vec<(&str, usize)> = rows.iter().map(|r| (r.embedding_model.as_str(), r.embedding.len())).collect();
    assert_eq!(spaces, vec![("openai/text-embedding-3-small", 1536), ("local-trigram-256", 256)]);

    let r = run(&rt, &p, "recall", json!({"query": "EMEA sales"})).await;
    let keys: Vec<Value> = r.output.unwrap().as_array().unwrap().iter().map(|h| h["key"].clone()).collect();
    assert_eq!(keys, vec![json!("emea")]);
    fake.script("text-embedding-3-small", vec![Act::insufficient_quota()]);
    let r = run(&rt, &p, "recall", json!({"query": "EMEA sales"})).await;
    let hits = r.output.unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    assert_eq!((&hits[0]["key"], &hits[0]["embedding"]), (&json!("emea-hashed"), &json!("local-trigram-256")));
}

both_stores!(
    openai_embeddings_remember_and_recall,
    gemini_embeddings_remember_and_recall,
    provider_errors_retry_and_fail_without_fallback,
    fallback_to_hashing_only_when_configured,
);

/// Without the provider's key an embedding model is an error that says
/// what to do; it is never answered by the simulator's hashing behind the
/// program's back.
#[tokio::test]
async fn a_missing_key_is_an_error_not_the_hashing_embedding() {
    let ts = TestStore::open(StoreKind::Sqlite).await.unwrap();
    let rt = runtime(&ts, Fabric::simulated());
    let r = remember(&rt, &program(OPENAI), "a", "note").await;
    assert_eq!(r.status, RunStatus::Failed);
    let err = r.error.unwrap();
    assert!(err.contains("model `small` of the `embedding` role needs OPENAI_API_KEY"), "{err}");
    assert!(rt.store.memory_all().await.unwrap().is_empty());
    // Anthropic has no embeddings API.
    let p = program("model c = anthropic(\"claude-haiku-3.5\") { input: $0.80/M, output: $4/M, context: 200000 }\nrole embedding = [c]");
    let err = remember(&rt, &p, "a", "note").await.error.unwrap();
    assert!(err.contains("model `c` (anthropic) offers no embeddings"), "{err}");
}

/// A program without the role keeps the built-in embedding, and says so.
#[tokio::test]
async fn without_the_role_memory_uses_the_hashing_embedding() {
    let ts = TestStore::open(StoreKind::Sqlite).await.unwrap();
    let fake = Fake::start(keys()).await;
    let rt = runtime(&ts, fabric(&fake));
    let p = program("");
    let r = remember(&rt, &p, "emea", "EMEA sales grew").await;
    assert_eq!(r.status, RunStatus::Succeeded, "{:?}", r.error);
    let d = decisions(&rt, &r.run_id, "embedding").await;
    assert_eq!((&d[0]["embedding"], &d[0]["model"], r.cost_usd), (&json!("local-trigram-256"), &Value::Null, 0.0));
    let hits = run(&rt, &p, "recall", json!({"query": "EMEA sales"})).await.output.unwrap();
    assert_eq!((&hits[0]["key"], &hits[0]["embedding"]), (&json!("emea"), &json!("local-trigram-256")));
    assert!(fake.seen().is_empty());
}

/// `aosc run` says before the run that memory steps will fail without the
/// embedding model's key, and does not list the model among those the
/// simulator answers.
#[test]
fn the_missing_key_is_said_before_the_run() {
    let notes = Fabric::simulated().notes(&program(OPENAI)).join("\n");
    assert!(notes.contains("warning: model `small` of the `embedding` role needs OPENAI_API_KEY"), "{notes}");
    assert!(!notes.contains("run on the offline simulator"), "{notes}");
}

/// The fake rejects what the providers document as rejected, and answers
/// the other shapes they offer (`dimensions`, `:embedContent`).
#[tokio::test]
async fn the_fake_embeddings_endpoints_are_faithful() {
    let fake = Fake::start(keys()).await;
    let http = reqwest::Client::new();
    let post = |url: String, key: (&'static str, String), body: Value| {
        let req = http.post(url).header(key.0, key.1).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let openai = format!("{}/embeddings", fake.openai_base());
    let bearer = ("authorization", format!("Bearer {OPENAI_KEY}"));
    let (st, body) = post(openai.clone(), bearer.clone(), json!({"model": "text-embedding-3-small", "input": "hi", "dimensions": 256})).await;
    assert_eq!((st, body["data"][0]["embedding"].as_array().unwrap().len(), &body["object"]), (200, 256, &json!("list")));
    let (st, body) = post(openai.clone(), bearer.clone(), json!({"model": "text-embedding-3-small", "input": []})).await;
    assert_eq!((st, &body["error"]["type"]), (400, &json!("invalid_request_error")));
    let (st, _) = post(openai.clone(), bearer, json!({"model": "text-embedding-ada-002", "input": "hi", "dimensions": 256})).await;
    assert_eq!(st, 400);
    let (st, body) = post(openai, ("authorization", "Bearer wrong".into()), json!({"model": "text-embedding-3-small", "input": "hi"})).await;
    assert_eq!((st, &body["error"]["code"]), (401, &json!("invalid_api_key")));

    let gkey = ("x-goog-api-key", GEMINI_KEY.to_string());
    let base = format!("{}/v1beta/models/text-embedding-004", fake.base());
    let (st, body) = post(format!("{base}:embedContent"), gkey.clone(), json!({"content": {"parts": [{"text": "hi"}]}})).await;
    assert_eq!((st, body["embedding"]["values"].as_array().unwrap().len()), (200, 768));
    let other = json!({"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hi"}]}}]});
    let (st, body) = post(format!("{base}:batchEmbedContents"), gkey, other).await;
    assert_eq!((st, &body["error"]["status"]), (400, &json!("INVALID_ARGUMENT")));
    // Similar texts get similar vectors, the same text the same one.
    let v = |t: &str| aos_testkit::fake_llm::embeddings::vector("m", t, 64);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert_eq!(v("EMEA sales"), v("EMEA sales"));
    assert!(dot(&v("EMEA sales week"), &v("emea sales")) > dot(&v("EMEA sales week"), &v("pager rotation")) + 0.2);
}
