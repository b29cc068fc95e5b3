//! Agent steps end to end (docs/language.md, *Agent steps*): compiled from
//! source, run through the real core and driver against the simulator and
//! against loopback servers speaking each provider's tool-calling wire
//! format (`aos_testkit::fake_llm`), with exact cost; every turn and tool
//! call journaled; an interrupted agent resumed without repeating a
//! completed model call or tool call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]


use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aos_compiler::ir::{Program, Provider as Kind, Trust};
use aos_runtime::bus::InProcessBus;
use aos_runtime::events::{RunStatus, Transition, Verdict};
use aos_runtime::fabric::anthropic::Anthropic;
use aos_runtime::fabric::gemini::Gemini;
use aos_runtime::fabric::openai::OpenAi;
use aos_runtime::fabric::wire::Endpoint;
use aos_runtime::fabric::Fabric;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::store::BoxFuture;
use aos_runtime::tools::{Tool, ToolCtx, ToolError, Tools};
use aos_runtime::{RunOptions, Runtime};
use aos_testkit::fake_llm::{Act, Fake, Keys};
use serde_json::{json, Value};

struct NoFiles;

impl aos_compiler::FileLoader for NoFiles {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

fn compile(src: &str) -> Program {
    let a = aos_compiler::check("agent.aos", src, &NoFiles);
    let errors: Vec<String> = a.diagnostics.iter().filter(|d| d.is_error()).map(|d| format!("{:?}: {}", d.code, d.message)).collect();
    assert!(errors.is_empty(), "{errors:?}");
    a.program.expect("a program")
}

/// A tool that answers with a fixed value and records each call's arguments.
struct Recorder {
    calls: Arc<Mutex<Vec<Value>>>,
    answer: Value,
}

impl Tool for Recorder {
    fn call<'a>(&'a self, args: Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(args);
            Ok(self.answer.clone())
        })
    }
}

async fn runtime(fabric: Fabric, tool: &str, answer: Value) -> (Runtime, Arc<Mutex<Vec<Value>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut map: HashMap<String, Arc<dyn Tool>> = HashMap::new();
    map.insert(tool.into(), Arc::new(Recorder { calls: calls.clone(), answer }));
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let home = std::env::temp_dir().join(format!("aos-agent-test-{}", std::process::id()));
    let rt = Runtime {
        cache: Arc::new(aos_runtime::cache::StoreCache::new(store.clone())),
        store,
        bus: Arc::new(InProcessBus::new()),
        fabric: Arc::new(fabric),
        tools: Arc::new(Tools::stand_ins(map)),
        home,
        secret_source: Arc::new(aos_runtime::secrets::Fixed(BTreeMap::new())),
    };
    (rt, calls)
}

fn keys() -> Keys {
    Keys { openai: "sk-test-openai-0123456789".into(), anthropic: "sk-ant-test-0123456789".into(), gemini: "AIza-test-0123456789".into() }
}

fn fake_fabric(fake: &Fake) -> Fabric {
    let k = keys();
    let t = Duration::from_secs(5);
    Fabric::simulated()
        .with_provider(Kind::Openai, Arc::new(OpenAi { endpoint: Endpoint::new("openai", fake.openai_base(), k.openai, t).unwrap() }))
        .with_provider(Kind::Anthropic, Arc::new(Anthropic { endpoint: Endpoint::new("anthropic", fake.base(), k.anthropic, t).unwrap() }))
        .with_provider(Kind::Gemini, Arc::new(Gemini { endpoint: Endpoint::new("gemini", fake.base(), k.gemini, t).unwrap() }))
}

/// A program whose `look` step is an agent of `model` with `lookup.find`.
fn agent_program(model_decl: &str, ty: &str) -> Program {
    compile(&format!(
        r#"
{model_decl}
role executor = [m]

/// Finds a customer by name.
tool lookup.find(name: String) -> Json {{ risk: low, effect: read, max_output_tokens: 500 }}

workflow find(who: String = "Ada") -> {ty} {{
  budget: $1
  step look: {ty} = agent executor("Find {{who}} and say where they live.") {{
    tools: [lookup.find]
    max_turns: 3
    max_tokens: 100
  }}
  return look
}}
"#
    ))
}

async fn journal(rt: &Runtime, run: &str) -> Vec<Transition> {
    rt.store.journal(run).await.unwrap().into_iter().map(|e| e.transition).collect()
}

/// Runs the agent against one provider of the fake: the model calls the
/// tool (native wire format), gets its result, answers. Cost is exact:
/// two turns of the fake's reported usage at the declared prices.
async fn provider_round_trip(provider: &str, id: &str, in_tokens: u64, out_tokens: u64) {
    let fake = Fake::start(keys()).await;
    fake.script(id, vec![Act::call_tool("lookup__find", json!({"name": "Ada"})), Act::text("Ada lives in London.")]);
    let program = agent_program(&format!(r#"model m = {provider}("{id}") {{ input: $2/M, output: $8/M, context: 128000 }}"#), "String");
    let (rt, calls) = runtime(fake_fabric(&fake), "lookup.find", json!({"name": "Ada", "city": "London"})).await;
    let report = rt.run(&program, "find", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(report.output, Some(json!("Ada lives in London.")));
    assert_eq!(*calls.lock().unwrap(), vec![json!({"name": "Ada"})]);
    let want = 2.0 * (in_tokens as f64 * 2.0 + out_tokens as f64 * 8.0) / 1e6;
    assert!((report.cost_usd - want).abs() < 1e-12, "cost {} != {want}", report.cost_usd);
    let seen = fake.seen_for(id);
    assert_eq!(seen.len(), 2, "two turns");
    assert!(seen.iter().all(|s| s.status == 200), "{:?}", seen.iter().map(|s| s.status).collect::<Vec<_>>());
    let t = journal(&rt, &report.run_id).await;
    assert_eq!(t.iter().filter(|t| matches!(t, Transition::AgentTurn { .. })).count(), 2);
    let tools: Vec<&Transition> = t.iter().filter(|t| matches!(t, Transition::AgentTool { .. })).collect();
    assert_eq!(tools.len(), 1);
    assert!(matches!(tools[0], Transition::AgentTool { tool, output: Some(_), error: None, .. } if tool == "lookup.find"));
    // The step's record sums both turns, which is what the run spent.
    let step_cost: f64 = t.iter().filter_map(|t| match t { Transition::StepSucceeded { usage, .. } => Some(usage.cost_usd), _ => None }).sum();
    assert!((step_cost - want).abs() < 1e-12);
    // The audit log has each turn and the tool call.
    let audit = rt.store.audit(&report.run_id).await.unwrap();
    let kinds: Vec<&str> = audit.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "agent.turn").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "agent.tool").count(), 1, "{kinds:?}");
}

#[tokio::test]
async fn openai_tool_calls_round_trip() {
    provider_round_trip("openai", "gpt-4o", 120, 30).await;
    // The second request carried the call and its result in OpenAI's shape.
}

#[tokio::test]
async fn openai_wire_format() {
    let fake = Fake::start(keys()).await;
    fake.script("gpt-4o", vec![Act::call_tool("lookup__find", json!({"name": "Ada"})), Act::text("London")]);
    let program = agent_program(r#"model m = openai("gpt-4o") { input: $2/M, output: $8/M, context: 128000 }"#, "String");
    let (rt, _) = runtime(fake_fabric(&fake), "lookup.find", json!("Ada: London")).await;
    let report = rt.run(&program, "find", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let seen = fake.seen_for("gpt-4o");
    let first = &seen[0].body;
    assert_eq!(first["tools"][0]["type"], "function");
    assert_eq!(first["tools"][0]["function"]["name"], "lookup__find");
    assert_eq!(first["tools"][0]["function"]["description"], "Finds a customer by name.");
    assert_eq!(first["tools"][0]["function"]["parameters"]["required"], json!(["name"]));
    assert_eq!(first["tool_choice"], "auto");
    let second = &seen[1].body;
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[1]["role"], "assistant");
    let call = &msgs[1]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["arguments"], json!({"name": "Ada"}).to_string());
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], call["id"]);
    assert_eq!(msgs[2]["content"], "Ada: London");
    // The last turn (3 of 3) would have tool calling off; this one had it on.
    assert_eq!(second["tool_choice"], "auto");
}

#[tokio::test]
async fn anthropic_tool_use_round_trip() {
    // Anthropic reports input 100 + cache read 20: 120 input tokens.
    provider_round_trip("anthropic", "claude-sonnet-4-5", 120, 30).await;
}

#[tokio::test]
async fn anthropic_wire_format() {
    let fake = Fake::start(keys()).await;
    fake.script("claude-x", vec![Act::call_tool("lookup__find", json!({"name": "Ada"})), Act::text("London")]);
    let program = agent_program(r#"model m = anthropic("claude-x") { input: $3/M, output: $15/M, context: 128000 }"#, "String");
    let (rt, _) = runtime(fake_fabric(&fake), "lookup.find", json!({"city": "London"})).await;
    let report = rt.run(&program, "find", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let seen = fake.seen_for("claude-x");
    assert_eq!(seen[0].body["tools"][0]["name"], "lookup__find");
    assert_eq!(seen[0].body["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(seen[0].body["tool_choice"], json!({"type": "auto"}));
    let msgs = seen[1].body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    let blocks = msgs[1]["content"].as_array().unwrap();
    assert_eq!(blocks[0], json!({"type": "text", "text": "Let me check."}));
    assert_eq!(blocks[1]["type"], "tool_use");
    assert_eq!(blocks[1]["input"], json!({"name": "Ada"}));
    let result = &msgs[2]["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], blocks[1]["id"]);
    assert_eq!(result["content"], json!({"city": "London"}).to_string());
    assert_eq!(result["is_error"], false);
}

#[tokio::test]
async fn gemini_function_calling_round_trip() {
    // Gemini: promptTokenCount 120; candidates 20 + thoughts 10 = 30 output.
    provider_round_trip("gemini", "gemini-2.5-flash", 120, 30).await;
}

#[tokio::test]
async fn gemini_wire_format() {
    let fake = Fake::start(keys()).await;
    fake.script("gemini-x", vec![Act::call_tool("lookup__find", json!({"name": "Ada"})), Act::text("London")]);
    let program = agent_program(r#"model m = gemini("gemini-x") { input: $1/M, output: $4/M, context: 128000 }"#, "String");
    let (rt, _) = runtime(fake_fabric(&fake), "lookup.find", json!("London")).await;
    let report = rt.run(&program, "find", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let seen = fake.seen_for("gemini-x");
    let decl = &seen[0].body["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "lookup__find");
    assert_eq!(decl["parametersJsonSchema"]["properties"]["name"], json!({"type": "string"}));
    assert_eq!(seen[0].body["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
    let contents = seen[1].body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3);
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(contents[1]["parts"][0]["functionCall"], json!({"name": "lookup__find", "args": {"name": "Ada"}}));
    assert_eq!(contents[2]["parts"][0]["functionResponse"], json!({"name": "lookup__find", "response": {"result": "London"}}));
}

#[tokio::test]
async fn the_last_turn_has_tool_calling_off_and_a_model_that_still_calls_fails_the_step() {
    let fake = Fake::start(keys()).await;
    let call = || Act::call_tool("lookup__find", json!({"name": "Ada"}));
    fake.script("gpt-4o", vec![call(), call(), call()]);
    let program = agent_program(r#"model m = openai("gpt-4o") { input: $2/M, output: $8/M, context: 128000 }"#, "String");
    let (rt, calls) = runtime(fake_fabric(&fake), "lookup.find", json!("x")).await;
    let report = rt.run(&program, "find", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    assert!(report.error.as_deref().unwrap_or("").contains("max_turns: 3"), "{:?}", report.error);
    let seen = fake.seen_for("gpt-4o");
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].body["tool_choice"], "none");
    // Two tool calls ran (`max_tool_calls` defaults to max_turns - 1).
    assert_eq!(calls.lock().unwrap().len(), 2);
    // Three billed turns, counted in the failure.
    let want = 3.0 * (120.0 * 2.0 + 30.0 * 8.0) / 1e6;
    assert!((report.cost_usd - want).abs() < 1e-12, "{} != {want}", report.cost_usd);
}

#[tokio::test]
async fn a_typed_agent_under_sim_calls_its_tool_then_answers_in_shape() {
    let program = agent_program(r#"model m = sim("m") { input: $1/M, output: $2/M, tool_calls: 2 }"#, "{ city: String, sure: Bool }");
    let (rt, calls) = runtime(Fabric::simulated(), "lookup.find", json!({"city": "London"})).await;
    let report = rt.run(&program, "find", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let out = report.output.unwrap();
    assert!(out["city"].is_string() && out["sure"].is_boolean(), "{out}");
    // `tool_calls: 2`: two turns called the tool, the third answered.
    assert_eq!(calls.lock().unwrap().len(), 2);
    let t = journal(&rt, &report.run_id).await;
    let usages: f64 = t.iter().filter_map(|t| match t { Transition::AgentTurn { usage, .. } => Some(usage.cost_usd), _ => None }).sum();
    assert!(usages > 0.0 && (report.cost_usd - usages).abs() < 1e-12, "{} vs {usages}", report.cost_usd);
    // Within the checker's bound.
    let bound = program.workflows["find"].cost_bound_usd;
    assert!(report.cost_usd <= bound, "{} > {bound}", report.cost_usd);
}

#[tokio::test]
async fn an_interrupted_agent_resumes_without_repeating_a_turn_or_a_tool_call() {
    // A slow model: each turn takes 300 ms. The tool interrupts the run
    // while the second turn waits for the model.
    let program = agent_program(r#"model m = sim("m") { input: $1/M, output: $2/M, tool_calls: 1, latency: 300ms }"#, "String");
    let (tx, rx) = tokio::sync::watch::channel(false);
    struct Interrupting {
        calls: Arc<Mutex<Vec<Value>>>,
        tx: Arc<tokio::sync::watch::Sender<bool>>,
    }
    impl Tool for Interrupting {
        fn call<'a>(&'a self, args: Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
            Box::pin(async move {
                self.calls.lock().unwrap().push(args);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = tx.send(true);
                });
                Ok(json!("London"))
            })
        }
    }
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (mut rt, _) = runtime(Fabric::simulated(), "lookup.find", json!(null)).await;
    let mut map: HashMap<String, Arc<dyn Tool>> = HashMap::new();
    map.insert("lookup.find".into(), Arc::new(Interrupting { calls: calls.clone(), tx: Arc::new(tx) }));
    rt.tools = Arc::new(Tools::stand_ins(map));
    let run = rt.create(&program, "find", BTreeMap::new(), Trust::Basic).await.unwrap();
    let first = rt.execute(&run, RunOptions { interrupt: Some(rx), ..RunOptions::default() }).await.unwrap();
    assert_eq!(first.status, RunStatus::Cancelled, "{:?}", first.error);
    let before = journal(&rt, &run).await;
    assert_eq!(before.iter().filter(|t| matches!(t, Transition::AgentTurn { .. })).count(), 1);
    assert_eq!(before.iter().filter(|t| matches!(t, Transition::AgentTool { .. })).count(), 1);
    // Resume with a fresh fabric (as a new process would have).
    rt.fabric = Arc::new(Fabric::simulated());
    let done = rt.execute(&run, RunOptions::default()).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{:?}", done.error);
    assert_eq!(calls.lock().unwrap().len(), 1, "the tool call was not repeated");
    let after = journal(&rt, &run).await;
    let turns: Vec<u32> = after.iter().filter_map(|t| match t { Transition::AgentTurn { turn, .. } => Some(*turn), _ => None }).collect();
    assert_eq!(turns, vec![0, 1], "turn 0 was not asked again");
    assert_eq!(after.iter().filter(|t| matches!(t, Transition::AgentTool { .. })).count(), 1);
    // Each turn counted once: the run's cost is the two turns' usage.
    let sum: f64 = after.iter().filter_map(|t| match t { Transition::AgentTurn { usage, .. } => Some(usage.cost_usd), _ => None }).sum();
    assert!((done.cost_usd - sum).abs() < 1e-12, "{} vs {sum}", done.cost_usd);
}

/// `look` as an agent whose answers `checker` verifies, with a `fallback:`
/// (a workflow: an `llm` fallback would be verified too).
fn verified_program(executor: &str, checker: &str) -> Program {
    compile(&format!(
        r#"
{executor}
{checker}
model spare = sim("spare") {{ input: $1/M, output: $2/M }}
role executor = [m]
role checker = [judge]
role backup = [spare]

/// Finds a customer by name.
tool lookup.find(name: String) -> Json {{ risk: low, effect: read, max_output_tokens: 500 }}

workflow find(who: String = "Ada") -> String {{
  budget: $1
  step look: String = agent executor("Find {{who}} and say where they live.") {{
    tools: [lookup.find]
    max_turns: 3
    max_tokens: 100
    verify: checker
    min_confidence: 0.8
    fallback: apology(who: who)
  }}
  return look
}}

workflow apology(who: String) -> String {{
  budget: $1
  step say: String = llm backup("Say that {{who}} could not be found.") {{
    max_tokens: 30
  }}
  return say
}}
"#
    ))
}

fn verdicts(t: &[Transition]) -> Vec<Option<Verdict>> {
    t.iter().filter_map(|t| match t { Transition::AgentTurn { verdict, .. } => Some(verdict.clone()), _ => None }).collect()
}

#[tokio::test]
async fn an_agents_answer_is_verified_and_a_rejected_one_goes_back_then_the_fallback_answers() {
    let m = r#"model m = sim("m") { input: $1/M, output: $2/M, tool_calls: 1 }"#;
    // A sure verifier accepts the first answer (turn 1, after the tool call).
    let sure = verified_program(m, r#"model judge = sim("judge") { input: $1/M, output: $2/M, confidence: 0.95 }"#);
    let (rt, calls) = runtime(Fabric::simulated(), "lookup.find", json!({"city": "London"})).await;
    let report = rt.run(&sure, "find", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(calls.lock().unwrap().len(), 1);
    let t = journal(&rt, &report.run_id).await;
    assert_eq!(verdicts(&t), vec![None, Some(Verdict::Accepted)]);
    assert!(!t.iter().any(|t| matches!(t, Transition::AttemptStarted { fallback: true, .. })));
    // The turns' records carry the verification's usage: they are the cost.
    let turns: f64 = t.iter().filter_map(|t| match t { Transition::AgentTurn { usage, .. } => Some(usage.cost_usd), _ => None }).sum();
    assert!((report.cost_usd - turns).abs() < 1e-12, "{} vs {turns}", report.cost_usd);
    let audit = rt.store.audit(&report.run_id).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.kind == "verify").count(), 1);
    assert!(report.cost_usd <= sure.workflows["find"].cost_bound_usd);

    // An unsure one rejects every answer: the reasons go back to the agent,
    // the last turn's rejection fails the attempt, the fallback answers.
    let unsure = verified_program(m, r#"model judge = sim("judge") { input: $1/M, output: $2/M, confidence: 0.2 }"#);
    let (rt, _) = runtime(Fabric::simulated(), "lookup.find", json!({"city": "London"})).await;
    let report = rt.run(&unsure, "find", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let t = journal(&rt, &report.run_id).await;
    let v = verdicts(&t);
    assert_eq!(v.len(), 3);
    assert_eq!(v[0], None);
    assert!(v[1..].iter().all(|v| matches!(v, Some(Verdict::Rejected(why)) if why.contains("below min_confidence 0.80"))), "{v:?}");
    let failed = t.iter().find_map(|t| match t { Transition::AttemptFailed { error, usage, .. } => Some((error.clone(), usage.cost_usd)), _ => None }).unwrap();
    assert!(failed.0.contains("verification by `checker`"), "{}", failed.0);
    assert!(t.iter().any(|t| matches!(t, Transition::AttemptStarted { fallback: true, .. })));
    let fallback_cost = t.iter().find_map(|t| match t { Transition::StepSucceeded { usage, .. } => Some(usage.cost_usd), _ => None }).unwrap();
    assert!((report.cost_usd - (failed.1 + fallback_cost)).abs() < 1e-12, "{} vs {} + {}", report.cost_usd, failed.1, fallback_cost);
    // Within the checker's bound, which counts a verification per turn and the fallback.
    let bound = unsure.workflows["find"].cost_bound_usd;
    assert!(report.cost_usd <= bound, "{} > {bound}", report.cost_usd);
}

#[tokio::test]
async fn a_verified_agent_against_the_faked_providers_has_exact_cost() {
    let fake = Fake::start(keys()).await;
    fake.script("gpt-4o", vec![Act::call_tool("lookup__find", json!({"name": "Ada"})), Act::text("Ada lives in Paris."), Act::text("Ada lives in London.")]);
    fake.script(
        "claude-sonnet-4",
        vec![
            Act::text(r#"{"agreement": false, "confidence": 0.9, "problems": ["the tool says London"]}"#),
            Act::text(r#"{"agreement": true, "confidence": 0.95, "problems": []}"#),
        ],
    );
    let program = verified_program(
        r#"model m = openai("gpt-4o") { input: $2/M, output: $8/M, context: 128000 }"#,
        r#"model judge = anthropic("claude-sonnet-4") { input: $3/M, output: $15/M, context: 200000 }"#,
    );
    let (rt, calls) = runtime(fake_fabric(&fake), "lookup.find", json!({"name": "Ada", "city": "London"})).await;
    let report = rt.run(&program, "find", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(report.output, Some(json!("Ada lives in London.")));
    assert_eq!(calls.lock().unwrap().len(), 1);
    let t = journal(&rt, &report.run_id).await;
    let v = verdicts(&t);
    assert_eq!(v.len(), 3);
    assert!(matches!(&v[1], Some(Verdict::Rejected(why)) if why.contains("disagreed") && why.contains("the tool says London")), "{v:?}");
    assert_eq!(v[2], Some(Verdict::Accepted));
    // The rejection went back to the model as a turn of its own.
    let third = &fake.seen_for("gpt-4o")[2];
    assert!(third.body.to_string().contains("rejected by a reviewer"), "{}", third.body);
    // Three turns of gpt-4o and two verdicts of claude, each 120 in / 30 out.
    let want = 3.0 * (120.0 * 2.0 + 30.0 * 8.0) / 1e6 + 2.0 * (120.0 * 3.0 + 30.0 * 15.0) / 1e6;
    assert!((report.cost_usd - want).abs() < 1e-12, "cost {} != {want}", report.cost_usd);
    assert!(report.cost_usd <= program.workflows["find"].cost_bound_usd);
}

/// The checker bounds an agent's turns each with a verification: adding
/// `verify:` adds `max_turns` verifications, where it adds (1 + 1 repair)
/// to an `llm` step of the same prompt and reply bound; a `fallback:` adds
/// its own bound.
#[test]
fn the_cost_bound_counts_a_verification_per_turn_and_the_fallback() {
    let bound = |step: &str| {
        let p = compile(&format!(
            r#"
use std.http
model m = sim("m") {{ input: $10/M, output: $30/M, context: 1000000 }}
model j = sim("j") {{ input: $7/M, output: $20/M, context: 1000000 }}
role executor = [m]
role checker = [j]

workflow w(url: String) -> String {{
  budget: $100
  {step}
  return look
}}
"#
        ));
        p.workflows["w"].cost_bound_usd
    };
    let agent = |extra: &str| bound(&format!("step look: String = agent executor(\"Check {{url}}\") {{ tools: [http.get]\n max_turns: 3\n max_tokens: 100\n {extra} }}"));
    let llm = |extra: &str| bound(&format!("step look: String = llm executor(\"Check {{url}}\") {{ max_tokens: 100\n {extra} }}"));
    let per_verification = (llm("verify: checker") - llm("")) / 2.0;
    assert!(per_verification > 0.0);
    let added = agent("verify: checker") - agent("");
    assert!((added - 3.0 * per_verification).abs() < 1e-9, "{added} vs 3 × {per_verification}");
    // An `llm` fallback is bounded like an `llm` step: (1 + 1 repair) attempts.
    let fallback = llm("");
    let with_fallback = agent("fallback: llm executor(\"Check {url}\")") - agent("");
    assert!((with_fallback - fallback).abs() < 1e-9, "{with_fallback} vs {fallback}");
    // With both, the `llm` fallback is bounded with its verifications too
    // (the runtime verifies a fallback's reply as the step's own).
    let both = agent("verify: checker\n fallback: llm executor(\"Check {url}\")") - agent("");
    let want = 3.0 * per_verification + llm("verify: checker");
    assert!((both - want).abs() < 1e-9, "{both} vs {want}");
}
