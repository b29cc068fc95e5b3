//! The IR of checked programs: what the runtime will run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use aos_compiler::check::{FileLoader, check};
use aos_compiler::ir::{Call, Expr, Risk, StepKind, Trigger, Type};
use serde_json::json;

struct NoFiles;

impl FileLoader for NoFiles {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
    }
}

const PROGRAM: &str = r#"
use std.sql
model m = sim("echo") { input: $0.10/M, output: $0.40/M, context: 8192 }
role executor = [m]
enum Tone { formal, casual }
type Verdict = { tone: Tone, score: Float? }
workflow classify(region: String = "EMEA", flag: Bool) -> String {
  budget: $0.50
  trigger: cron("0 9 * * MON")
  step verdict: Verdict = llm executor("Classify {rows}") { max_tokens: 50, when: flag }
  step rows = sql.query(sql: "select 1", params: [region]) { retry: 2, max_output_tokens: 100 }
  step items = for r in rows => llm executor("Say {r}") { max_items: 3, max_tokens: 10 }
  return "{(verdict ?? {tone: Tone.formal, score: null}).tone} {items}"
}
"#;

#[test]
fn lowers_steps_in_dependency_order_with_types_and_schemas() {
    let analysis = check("p.aos", PROGRAM, &NoFiles);
    assert!(analysis.diagnostics.iter().all(|d| !d.is_error()), "{:?}", analysis.diagnostics);
    let program = analysis.program.expect("a checked program has an IR");
    assert_eq!(program.roles["executor"], vec!["m".to_string()]);
    assert!(program.tools.contains_key("sql.query"));
    let wf = &program.workflows["classify"];
    assert_eq!(wf.budget_usd, Some(0.5));
    assert_eq!(wf.risk, Risk::Medium);
    assert_eq!(wf.trigger, Some(Trigger::Cron { expr: "0 9 * * MON".into() }));
    let names: Vec<&str> = wf.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["rows", "verdict", "items"]);

    let rows = &wf.steps[0];
    assert_eq!(rows.kind, StepKind::Tool);
    assert_eq!(rows.retry, 2);
    assert_eq!(rows.max_output_tokens, 100);
    let Call::Tool { tool, args } = &rows.call else { panic!("a tool call") };
    assert_eq!(tool, "sql.query");
    assert_eq!(args["params"], Expr::List { items: vec![Expr::Param { name: "region".into() }] });

    let verdict = &wf.steps[1];
    assert_eq!(verdict.deps, vec!["rows".to_string()]);
    assert!(matches!(verdict.ty, Type::Optional { .. }), "a step under `when:` is optional");
    assert_eq!(
        verdict.schema,
        Some(json!({
            "type": "object",
            "properties": {
                "tone": { "type": "string", "enum": ["formal", "casual"] },
                "score": { "anyOf": [{ "type": "number" }, { "type": "null" }] }
            },
            "required": ["tone", "score"],
            "additionalProperties": false
        }))
    );

    let items = &wf.steps[2];
    let fan = items.fan_out.as_ref().expect("a fan-out");
    assert_eq!(fan.var, "r");
    assert_eq!(fan.max_items, Some(3));
    assert_eq!(items.ty, Type::List { item: Box::new(Type::String) });
    let Call::Llm { prompt, .. } = &items.call else { panic!("an llm call") };
    let text = serde_json::to_value(prompt).unwrap().to_string();
    assert!(text.contains(r#"{"e":"var","name":"r"}"#), "{text}");
}

#[test]
fn no_ir_when_there_are_errors() {
    let analysis = check("p.aos", "workflow w() -> Int { budget: $0\n return \"x\" }", &NoFiles);
    assert!(analysis.has_errors());
    assert!(analysis.program.is_none());
}

#[test]
fn the_response_cache_is_carried_into_the_ir() {
    let src = r#"
use std.http
model m = sim("echo")
role executor = [m]
tool crm.lookup(id: String) -> Json { http: "GET http://127.0.0.1:9000/c", cache: 1h }
workflow w(id: String) -> String {
  budget: $0.10
  step page = http.get(url: "http://127.0.0.1:9000/{id}") { cache: 10m, cache_scope: shared }
  step c = crm.lookup(id: id)
  step own = crm.lookup(id: "x") { cache: 5s }
  step s = llm executor("Summarize {page} {c} {own}") { cache: 24h, cache_scope: global }
  step items = for p in [1, 2] => llm executor("Say {p} {s}") { cache: 1d }
  step plain = llm executor("Again {items}")
  return plain
}
"#;
    let analysis = check("p.aos", src, &NoFiles);
    assert!(analysis.diagnostics.iter().all(|d| !d.is_error()), "{:?}", analysis.diagnostics);
    let program = analysis.program.expect("IR");
    let wf = &program.workflows["w"];
    let cache = |name: &str| wf.steps.iter().find(|s| s.name == name).unwrap().cache;
    use aos_compiler::ir::{Cache, CacheScope};
    assert_eq!(cache("page"), Some(Cache { ttl_ms: 600_000, scope: CacheScope::Shared }));
    assert_eq!(cache("c"), Some(Cache { ttl_ms: 3_600_000, scope: CacheScope::Workflow }), "the tool's own cache");
    assert_eq!(cache("own"), Some(Cache { ttl_ms: 5_000, scope: CacheScope::Workflow }), "the step's wins");
    assert_eq!(cache("s"), Some(Cache { ttl_ms: 86_400_000, scope: CacheScope::Global }));
    assert_eq!(cache("items"), Some(Cache { ttl_ms: 86_400_000, scope: CacheScope::Workflow }));
    assert_eq!(cache("plain"), None);
    // Absent from the IR's JSON when there is none (older IR reads the same).
    let plain = serde_json::to_value(wf.steps.iter().find(|s| s.name == "plain").unwrap()).unwrap();
    assert!(plain.get("cache").is_none());
    let s = serde_json::to_value(wf.steps.iter().find(|s| s.name == "s").unwrap()).unwrap();
    assert_eq!(s["cache"], json!({"ttl_ms": 86_400_000, "scope": "global"}));
}

#[test]
fn a_roles_route_is_carried_on_its_llm_steps() {
    let src = r#"
model a = sim("a")
model b = sim("b")
model c = sim("c")
role executor = [a, b] { route: measured(latency) }
role verifier = [c]
workflow w() -> String {
  budget: $0.10
  step x = llm executor("One") { verify: verifier }
  step y = llm verifier("Two {x}")
  return y
}
"#;
    let analysis = check("p.aos", src, &NoFiles);
    assert!(analysis.diagnostics.iter().all(|d| !d.is_error()), "{:?}", analysis.diagnostics);
    let program = analysis.program.expect("IR");
    let wf = &program.workflows["w"];
    assert_eq!(wf.steps.iter().find(|s| s.name == "x").unwrap().route, Some(aos_compiler::ir::Route::Latency));
    assert_eq!(wf.steps.iter().find(|s| s.name == "y").unwrap().route, None);
    assert_eq!(program.roles["executor"], vec!["a".to_string(), "b".to_string()], "the written order in the IR");
    // The formatter keeps the block.
    let formatted = aos_compiler::format(src).expect("formats");
    assert!(formatted.contains("role executor = [a, b] { route: measured(latency) }"), "{formatted}");
}
