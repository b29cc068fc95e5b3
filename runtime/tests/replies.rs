//! Replies as the provider finished them (issue 18): never cut to a byte
//! count, a reply beyond the bound the cost proof assumed reported, the
//! `structured:` modes for servers without `json_schema`, and what a user
//! is told about a rejected `response_format` or a base URL without `/v1`.
//! Against the loopback servers of `support/fake_llm.rs` (real HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::fake_llm;

use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{Model, Program, Provider as Kind, SimOptions, Structured};
use aos_runtime::fabric::anthropic::Anthropic;
use aos_runtime::fabric::gemini::Gemini;
use aos_runtime::fabric::openai::OpenAi;
use aos_runtime::fabric::wire::Endpoint;
use aos_runtime::fabric::{Fabric, LlmCall, LlmOutcome};
use aos_runtime::testkit::*;
use fake_llm::{Act, Fake, Keys};
use serde_json::{json, Value};

const KEY: &str = "sk-test-openai-0123456789";

fn keys() -> Keys {
    Keys { openai: KEY.into(), anthropic: KEY.into(), gemini: KEY.into() }
}

fn fabric_at(fake: &Fake, openai_base: String) -> Fabric {
    let t = Duration::from_secs(5);
    let mut f = Fabric::simulated()
        .with_provider(Kind::Openai, Arc::new(OpenAi { endpoint: Endpoint::new("openai", openai_base, KEY.into(), t).unwrap() }))
        .with_provider(Kind::Anthropic, Arc::new(Anthropic { endpoint: Endpoint::new("anthropic", fake.base(), KEY.into(), t).unwrap() }))
        .with_provider(Kind::Gemini, Arc::new(Gemini { endpoint: Endpoint::new("gemini", fake.base(), KEY.into(), t).unwrap() }));
    f.retry.backoff = Duration::from_millis(5);
    f
}

fn model(kind: Kind, id: &str, structured: Structured) -> Model {
    Model {
        name: id.into(),
        provider: kind,
        model_id: id.into(),
        input_per_m: 1.0,
        output_per_m: 2.0,
        context: 128_000,
        base_url: None,
        structured,
        sim: SimOptions::default(),
    }
}

fn prog(models: Vec<Model>) -> Program {
    let mut p = program();
    with_role(&mut p, "executor", models);
    p
}

async fn ask(f: &Fabric, p: &Program, max_tokens: u64, max_reply_bytes: u64, schema: Option<&Value>) -> LlmOutcome {
    f.call(
        p,
        LlmCall {
            role: "executor",
            prompt: "Say something.".into(),
            max_tokens,
            max_reply_bytes,
            max_input_tokens: None,
            schema,
            validator: None,
            typed: schema.is_some(),
            verify: None,
            call_key: "run/step".into(),
            step: "step",
        },
    )
    .await
}

fn kinds(out: &LlmOutcome) -> Vec<String> {
    out.decisions.iter().map(|d| d.kind.clone()).collect()
}

fn city_schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}, "score": {"type": "integer"}},
           "required": ["city", "score"], "additionalProperties": false})
}

/// The reply llama-cpp-python's server gave a `max_tokens: 40` step: 79
/// bytes, 20 tokens, `finish_reason: stop`.
const LONG: &str = "Nice to meet you, buddy! A friendly greeting that'll make your day go brighter.";

#[tokio::test]
async fn a_reply_longer_than_max_tokens_bytes_comes_back_whole_on_every_provider() {
    let fake = Fake::start(keys()).await;
    let f = fabric_at(&fake, fake.openai_base());
    for kind in [Kind::Openai, Kind::Anthropic, Kind::Gemini] {
        let id = format!("{}-m", kind.as_str());
        fake.script(&id, vec![Act::text(LONG)]);
        let p = prog(vec![model(kind, &id, Structured::JsonSchema)]);
        let out = ask(&f, &p, 40, 0, None).await;
        assert_eq!(out.result, Some(json!(LONG)), "{kind:?}: {:?}", out.error);
        // 79 bytes is within the default bound of 4 × 40 bytes: nothing to report.
        assert_eq!(kinds(&out), ["model"], "{kind:?}");
    }
}

#[tokio::test]
async fn multi_byte_replies_are_never_cut_inside_or_between_characters() {
    let fake = Fake::start(keys()).await;
    let f = fabric_at(&fake, fake.openai_base());
    // 3 and 4 bytes a character: 10 tokens could never hold this in bytes.
    let text = "日本語のテキスト🙂🙂 — Grüße, naïve café";
    fake.script("gpt", vec![Act::text(text)]);
    let p = prog(vec![model(Kind::Openai, "gpt", Structured::JsonSchema)]);
    let out = ask(&f, &p, 10, 0, None).await;
    assert_eq!(out.result, Some(json!(text)));
    // Beyond the proof's 40 bytes: reported, with the figures, not cut.
    let over = out.decisions.iter().find(|d| d.kind == "reply_over_bound").expect("reported");
    assert_eq!(over.data["bytes"], text.len());
    assert_eq!(over.data["max_reply_bytes"], 40);
    assert_eq!(over.data["max_tokens"], 10);
    assert_eq!(over.data["output_tokens"], 30);
    assert_eq!(over.data["model"], "gpt");
    // The spend is what the provider billed, however long the reply.
    assert_eq!(out.usage.output_tokens, 30);
}

#[tokio::test]
async fn a_declared_reply_bound_is_what_the_report_measures_against() {
    let fake = Fake::start(keys()).await;
    let f = fabric_at(&fake, fake.openai_base());
    let p = prog(vec![model(Kind::Openai, "gpt", Structured::JsonSchema)]);
    fake.script("gpt", vec![Act::text(LONG), Act::text(LONG)]);
    let within = ask(&f, &p, 40, LONG.len() as u64, None).await;
    assert_eq!(kinds(&within), ["model"]);
    let over = ask(&f, &p, 40, LONG.len() as u64 - 1, None).await;
    assert_eq!(kinds(&over), ["model", "reply_over_bound"]);
    assert_eq!(over.result, Some(json!(LONG)));
}

#[tokio::test]
async fn a_long_json_reply_validates_whole() {
    let fake = Fake::start(keys()).await;
    let f = fabric_at(&fake, fake.openai_base());
    let schema = json!({"type": "object", "properties": {"items": {"type": "array", "items": {"type": "string"}}},
                        "required": ["items"], "additionalProperties": false});
    let items: Vec<String> = (0..40).map(|i| format!("item number {i} — «détail»")).collect();
    let reply = json!({"items": items}).to_string();
    assert!(reply.len() > 4 * 30);
    fake.script("gpt", vec![Act::Text(reply.clone())]);
    let p = prog(vec![model(Kind::Openai, "gpt", Structured::JsonSchema)]);
    let out = ask(&f, &p, 30, 0, Some(&schema)).await;
    assert_eq!(out.result, Some(json!({"items": items})), "{:?}", out.error);
    // One billed attempt: no repair of a valid reply.
    assert_eq!(kinds(&out), ["model", "reply_over_bound"]);
    assert_eq!(fake.seen_for("gpt").len(), 1);
}

#[tokio::test]
async fn json_object_mode_puts_the_schema_in_the_prompt_and_validates_the_reply() {
    let fake = Fake::start(keys()).await;
    fake.without_json_schema("llama");
    let f = fabric_at(&fake, fake.openai_base());
    let p = prog(vec![model(Kind::Openai, "llama", Structured::JsonObject)]);
    // A reply in a code fence, as small models write it: accepted.
    fake.script("llama", vec![Act::text("```json\n{\"city\": \"Paris\", \"score\": 4}\n```")]);
    let out = ask(&f, &p, 30, 0, Some(&city_schema())).await;
    assert_eq!(out.result, Some(json!({"city": "Paris", "score": 4})), "{:?}", out.error);
    let body = &fake.seen_for("llama")[0].body;
    // Off api.openai.com the schema rides along (llama-cpp-python makes a grammar of it).
    assert_eq!(body["response_format"], json!({"type": "json_object", "schema": city_schema()}));
    let prompt = body["messages"][0]["content"].as_str().unwrap();
    assert!(prompt.starts_with("Say something.\n\n"), "{prompt}");
    assert!(prompt.contains(&city_schema().to_string()), "{prompt}");

    // Validated as in every mode: a reply off the schema is repaired once.
    fake.script("llama", vec![Act::text(r#"{"city": "Paris"}"#), Act::text(r#"{"city": "Lyon", "score": 2}"#)]);
    let out = ask(&f, &p, 30, 0, Some(&city_schema())).await;
    assert_eq!(out.result, Some(json!({"city": "Lyon", "score": 2})));
    assert_eq!(kinds(&out), ["model", "repair", "model"]);
}

#[tokio::test]
async fn json_object_mode_wraps_a_root_that_is_not_an_object() {
    let fake = Fake::start(keys()).await;
    let f = fabric_at(&fake, fake.openai_base());
    let schema = json!({"type": "array", "items": {"type": "integer"}});
    fake.script("llama", vec![Act::text(r#"{"value": [1, 2, 3]}"#)]);
    let p = prog(vec![model(Kind::Openai, "llama", Structured::JsonObject)]);
    let out = ask(&f, &p, 30, 0, Some(&schema)).await;
    assert_eq!(out.result, Some(json!([1, 2, 3])), "{:?}", out.error);
}

#[tokio::test]
async fn prompt_mode_sends_no_response_format_on_any_provider() {
    let fake = Fake::start(keys()).await;
    let f = fabric_at(&fake, fake.openai_base());
    for kind in [Kind::Openai, Kind::Anthropic, Kind::Gemini] {
        let id = format!("{}-p", kind.as_str());
        fake.script(&id, vec![Act::text(r#"{"city": "Rome", "score": 5}"#)]);
        let p = prog(vec![model(kind, &id, Structured::Prompt)]);
        let out = ask(&f, &p, 30, 0, Some(&city_schema())).await;
        assert_eq!(out.result, Some(json!({"city": "Rome", "score": 5})), "{kind:?}: {:?}", out.error);
        let body = &fake.seen_for(&id)[0].body;
        assert!(body.get("response_format").is_none(), "{body}");
        assert!(body.get("tools").is_none(), "{body}");
        assert!(body.pointer("/generationConfig/responseJsonSchema").is_none(), "{body}");
        assert!(body.to_string().contains("validates against this JSON Schema"), "{body}");
    }
}

#[tokio::test]
async fn a_server_rejecting_json_schema_is_not_retried_and_the_error_names_the_attribute() {
    let fake = Fake::start(keys()).await;
    fake.without_json_schema("llama");
    let f = fabric_at(&fake, fake.openai_base());
    let p = prog(vec![model(Kind::Openai, "llama", Structured::JsonSchema)]);
    let out = ask(&f, &p, 30, 0, Some(&city_schema())).await;
    // One request, no transport retries (HTTP 500 is otherwise retried).
    assert_eq!(fake.seen_for("llama").len(), 1);
    assert_eq!(kinds(&out), ["model_failed"]);
    let e = out.error.unwrap().to_string();
    assert!(e.contains("HTTP 500"), "{e}");
    assert!(e.contains("structured: \"json_object\""), "{e}");
    assert!(e.contains("model `llama`"), "{e}");
}

#[tokio::test]
async fn a_base_url_without_v1_names_the_url_and_suggests_v1() {
    let fake = Fake::start(keys()).await;
    // The fake serves OpenAI under /v1 only, as real servers do.
    let f = fabric_at(&fake, fake.base());
    let p = prog(vec![model(Kind::Openai, "gpt", Structured::JsonSchema)]);
    let out = ask(&f, &p, 30, 0, None).await;
    let e = out.error.unwrap().to_string();
    let url = format!("{}/chat/completions", fake.base());
    assert!(e.contains("HTTP 404"), "{e}");
    assert!(e.contains(&format!("POST {url}")), "{e}");
    assert!(e.contains(&format!("try the base URL `{}/v1`", fake.base())), "{e}");
    // With /v1 it works.
    let ok = fabric_at(&fake, fake.openai_base());
    assert!(ask(&ok, &p, 30, 0, None).await.result.is_some());
}
