//! Streamed answers against the faked providers' streaming APIs over real
//! HTTP (Server-Sent Events): OpenAI `stream: true` with
//! `stream_options.include_usage`, Anthropic's message events (text and a
//! forced tool's `input_json_delta`), Gemini `:streamGenerateContent?alt=sse`.
//! The text arrives as deltas that add up to the reply; usage and cost are
//! exactly the non-streamed ones (from the final usage record); a stream
//! cut before its end marker is retried like a transport error; the
//! simulator streams too. Deltas are published on the event bus, coalesced
//! (50 ms or 1 KiB by default), named by run, step and attempt, with the
//! offset of their text in the reply.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::fake_llm;

use std::sync::Arc;
use std::time::Duration;

use aos_compiler::ir::{Model, Program, Provider as Kind, SimOptions};
use aos_runtime::fabric::anthropic::Anthropic;
use aos_runtime::fabric::gemini::Gemini;
use aos_runtime::fabric::openai::OpenAi;
use aos_runtime::bus::{Bus, InProcessBus};
use aos_runtime::fabric::stream::{Delta, Window};
use aos_runtime::fabric::wire::Endpoint;
use aos_runtime::fabric::{Fabric, LlmCall, LlmOutcome};
use aos_runtime::testkit::*;
use fake_llm::{Act, Fake, Keys};
use serde_json::{json, Value};

const OPENAI_KEY: &str = "sk-test-openai-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";
const GEMINI_KEY: &str = "AIza-test-0123456789";

fn keys() -> Keys {
    Keys { openai: OPENAI_KEY.into(), anthropic: ANTHROPIC_KEY.into(), gemini: GEMINI_KEY.into() }
}

fn model(name: &str, kind: Kind, id: &str) -> Model {
    Model { name: name.into(), provider: kind, model_id: id.into(), input_per_m: 2.5, output_per_m: 10.0, context: 128_000, base_url: None, structured: Default::default(), sim: SimOptions::default() }
}

fn streaming_fabric(fake: &Fake, bus: &Arc<InProcessBus>) -> Fabric {
    let t = Duration::from_secs(5);
    let mut f = Fabric::simulated()
        .with_provider(Kind::Openai, Arc::new(OpenAi { endpoint: Endpoint::new("openai", fake.openai_base(), OPENAI_KEY.into(), t).unwrap() }))
        .with_provider(Kind::Anthropic, Arc::new(Anthropic { endpoint: Endpoint::new("anthropic", fake.base(), ANTHROPIC_KEY.into(), t).unwrap() }))
        .with_provider(Kind::Gemini, Arc::new(Gemini { endpoint: Endpoint::new("gemini", fake.base(), GEMINI_KEY.into(), t).unwrap() }))
        .streaming(bus.clone());
    f.retry.backoff = Duration::from_millis(5);
    // Every piece as it arrives, unless a test says otherwise.
    f.stream_window = Window::none();
    f
}

fn prog(m: Model) -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![m]);
    p
}

async fn ask(f: &Fabric, p: &Program, schema: Option<&Value>) -> LlmOutcome {
    f.call_attempt(
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
            verify: None,
            call_key: "run/step".into(),
            step: "step",
        },
        2,
    )
    .await
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Delta>) -> Vec<Delta> {
    let mut out = Vec::new();
    while let Ok(d) = rx.try_recv() {
        out.push(d);
    }
    out
}

/// (120 input tokens at $2.50/M) + (30 output tokens at $10/M), as the
/// non-streamed answer of every provider of the fake.
const COST: f64 = (120.0 * 2.5 + 30.0 * 10.0) / 1e6;

#[tokio::test]
async fn each_provider_streams_deltas_that_add_up_with_exact_usage() {
    let fake = Fake::start(keys()).await;
    let bus = Arc::new(InProcessBus::new());
    let f = streaming_fabric(&fake, &bus);
    for (kind, id) in [(Kind::Openai, "gpt-4o"), (Kind::Anthropic, "claude-sonnet-4"), (Kind::Gemini, "gemini-2.5-flash")] {
        let mut rx = bus.subscribe_deltas();
        let out = ask(&f, &prog(model("m", kind, id)), None).await;
        let expected = format!("A fine answer from {id}.");
        assert_eq!(out.result, Some(json!(expected)), "{id}: {:?}", out.error);
        let deltas = drain(&mut rx);
        assert!(deltas.len() >= 4, "{id}: a delta per word: {deltas:?}");
        assert_eq!(deltas.iter().map(|d| d.text.as_str()).collect::<String>(), expected, "{id}");
        assert!(deltas.iter().all(|d| (d.run_id.as_str(), d.step.as_str(), d.item, d.attempt, d.model.as_str()) == ("run", "step", None, 2, "m")));
        // Each piece says where its text starts in the reply.
        let mut at = 0;
        for d in &deltas {
            assert_eq!(d.offset, at, "{id}: {deltas:?}");
            at += d.text.len() as u64;
        }
        assert_eq!((out.usage.input_tokens, out.usage.output_tokens), (120, 30), "{id}");
        assert_eq!(out.usage.cached_input_tokens, 20, "{id}");
        assert!((out.usage.cost_usd - COST).abs() < 1e-15, "{id}: {}", out.usage.cost_usd);
    }
    let o = &fake.seen_for("gpt-4o")[0];
    assert_eq!(o.body["stream"], true);
    assert_eq!(o.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(o.headers["accept"], "text/event-stream");
    let a = &fake.seen_for("claude-sonnet-4")[0];
    assert_eq!(a.body["stream"], true);
    let g = &fake.seen_for("gemini-2.5-flash")[0];
    assert_eq!(g.path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    assert!(g.body.get("stream").is_none());
}

#[tokio::test]
async fn a_streamed_structured_answer_is_validated_whole() {
    let fake = Fake::start(keys()).await;
    let bus = Arc::new(InProcessBus::new());
    let f = streaming_fabric(&fake, &bus);
    let schema = json!({"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"], "additionalProperties": false});
    for (kind, id) in [(Kind::Openai, "gpt-4o"), (Kind::Anthropic, "claude-sonnet-4"), (Kind::Gemini, "gemini-2.5-flash")] {
        let out = ask(&f, &prog(model("m", kind, id)), Some(&schema)).await;
        assert_eq!(out.result, Some(json!({"title": "fine"})), "{id}: {:?}", out.error);
        assert!((out.usage.cost_usd - COST).abs() < 1e-15, "{id}");
    }
    // Anthropic's forced tool streams its input as `input_json_delta`.
    assert_eq!(fake.seen_for("claude-sonnet-4")[0].body["tool_choice"]["type"], "tool");
}

#[tokio::test]
async fn a_stream_cut_midway_is_retried_and_billed_once() {
    let fake = Fake::start(keys()).await;
    let bus = Arc::new(InProcessBus::new());
    let f = streaming_fabric(&fake, &bus);
    for (kind, id) in [(Kind::Openai, "gpt-4o"), (Kind::Anthropic, "claude-sonnet-4"), (Kind::Gemini, "gemini-2.5-flash")] {
        fake.script(id, vec![Act::Cut]);
        let out = ask(&f, &prog(model("m", kind, id)), None).await;
        assert_eq!(out.result, Some(json!(format!("A fine answer from {id}."))), "{id}: {:?}", out.error);
        let retry = out.decisions.iter().find(|d| d.kind == "transport_retry").unwrap_or_else(|| panic!("{id}: no transport_retry"));
        assert!(retry.data["error"].as_str().unwrap().contains("stream was cut"), "{id}: {}", retry.data);
        assert_eq!(fake.seen_for(id).len(), 2, "{id}");
        // Only the finished stream's usage is billed.
        assert!((out.usage.cost_usd - COST).abs() < 1e-15, "{id}: {}", out.usage.cost_usd);
    }
}

#[tokio::test]
async fn the_simulator_streams_its_words() {
    let bus = Arc::new(InProcessBus::new());
    let mut f = Fabric::simulated().streaming(bus.clone());
    f.stream_window = Window::none();
    let mut rx = bus.subscribe_deltas();
    let out = ask(&f, &prog(sim_model("echo", SimOptions::default())), None).await;
    let text = out.result.unwrap();
    let deltas = drain(&mut rx);
    assert!(deltas.len() > 1);
    assert_eq!(json!(deltas.iter().map(|d| d.text.as_str()).collect::<String>()), text);
    // Without `streaming()` nothing is sent.
    let plain = Fabric::simulated();
    assert!(!plain.streams());
    ask(&plain, &prog(sim_model("echo", SimOptions::default())), None).await;
    assert!(drain(&mut rx).is_empty());
}

#[tokio::test]
async fn deltas_are_coalesced_by_time_and_size_and_the_last_one_goes_before_the_call_returns() {
    let fake = Fake::start(keys()).await;
    let bus = Arc::new(InProcessBus::new());
    let mut f = streaming_fabric(&fake, &bus);
    let mut rx = bus.subscribe_deltas();
    let expected = "A fine answer from gpt-4o.";
    // A fast stream within one window: one delta, sent before `call` returns.
    f.stream_window = Window { ms: 60_000, bytes: 1 << 20 };
    let out = ask(&f, &prog(model("m", Kind::Openai, "gpt-4o")), None).await;
    assert_eq!(out.result, Some(json!(expected)));
    let one = drain(&mut rx);
    assert_eq!(one.iter().map(|d| (d.offset, d.text.as_str())).collect::<Vec<_>>(), [(0, expected)]);
    // A window of 8 bytes: pieces of at least 8 bytes (the last may be shorter).
    f.stream_window = Window { ms: 60_000, bytes: 8 };
    ask(&f, &prog(model("m", Kind::Openai, "gpt-4o")), None).await;
    let sized = drain(&mut rx);
    assert!(sized.len() >= 2 && sized.len() < fake_llm::pieces(expected).len(), "{sized:?}");
    assert!(sized[..sized.len() - 1].iter().all(|d| d.text.len() >= 8), "{sized:?}");
    assert_eq!(sized.iter().map(|d| d.text.as_str()).collect::<String>(), expected);
    // A slow stream (an event every 40 ms) and a window of 100 ms: the held
    // text goes out when the window closes, each delta carrying 2–3 events,
    // not one per event and not one at the end.
    fake.pace_streams(Duration::from_millis(40));
    f.stream_window = Window { ms: 100, bytes: 1 << 20 };
    let out = ask(&f, &prog(model("m", Kind::Openai, "gpt-4o")), None).await;
    assert_eq!(out.result, Some(json!(expected)));
    let timed = drain(&mut rx);
    assert_eq!(timed.iter().map(|d| d.text.as_str()).collect::<String>(), expected);
    assert!(timed.len() >= 2 && timed.len() < fake_llm::pieces(expected).len(), "{timed:?}");
    assert!((out.usage.cost_usd - COST).abs() < 1e-15);
}

/// The figure in docs/benchmarks.md (*Streamed deltas as run events*): a
/// 200-word reply streamed at one event every 10 ms, with the default
/// window (50 ms / 1 KiB), becomes this many bus events. Run with
/// `cargo test -p aos-runtime --test streaming -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement: prints figures for docs/benchmarks.md"]
async fn measure_bus_events_of_a_fast_stream() {
    let fake = Fake::start(keys()).await;
    let words: Vec<String> = (0..200).map(|i| format!("word{i}")).collect();
    let reply = words.join(" ");
    fake.script("gpt-4o", vec![Act::text(&reply)]);
    fake.pace_streams(Duration::from_millis(10));
    let bus = Arc::new(InProcessBus::new());
    let mut f = streaming_fabric(&fake, &bus);
    f.stream_window = Window::default();
    let mut rx = bus.subscribe_deltas();
    let t = std::time::Instant::now();
    let out = ask(&f, &prog(model("m", Kind::Openai, "gpt-4o")), None).await;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(out.result, Some(json!(reply)));
    let deltas = drain(&mut rx);
    assert_eq!(deltas.iter().map(|d| d.text.as_str()).collect::<String>(), reply);
    let gaps: Vec<u64> = deltas.windows(2).map(|w| w[1].at_ms - w[0].at_ms).collect();
    println!(
        "provider events: {} in {secs:.2} s; bus deltas: {} ({:.1}/s); mean gap {:.0} ms, max gap {} ms; cost exact: {}",
        fake_llm::pieces(&reply).len() + 4,
        deltas.len(),
        deltas.len() as f64 / secs,
        gaps.iter().sum::<u64>() as f64 / gaps.len().max(1) as f64,
        gaps.iter().max().unwrap_or(&0),
        (out.usage.cost_usd - COST).abs() < 1e-15
    );
}
