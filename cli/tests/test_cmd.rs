//! `aosc test` as a user runs it: the examples pass; a failing test prints
//! the expected and actual values and exits 1; the JUnit report parses and
//! says the same; a test block that does not check is not run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn aosc(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(args)
        .current_dir(root())
        .env("AOS_HOME", home)
        // Real keys in the environment must change nothing: tests never call providers.
        .env("OPENAI_API_KEY", "sk-not-used")
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

const PROGRAM: &str = r#"use std.sql
model m = openai("gpt-4o-mini") { input: $0.15/M, output: $0.60/M, context: 128000 }
role executor = [m]

workflow top(region: String) -> List<String> {
  budget: $0.05
  step rows = sql.query(sql: "select name from t where region = $1", params: [region])
  step names: List<String> = llm executor("The names in {take(rows, 2)}") { max_tokens: 50 }
  step short = llm executor("Shorten {names}") { max_tokens: 20, when: len(names) > 5 }
  return take(names, 2)
}

test "takes the first two names" {
  given tool sql.query returns [{ name: "Ada" }, { name: "Grace" }, { name: "Edsger" }]
  given llm executor replies ["Ada", "Grace", "Edsger"]
  run top(region: "EU")
  expect output == ["Ada", "Grace"]
  expect ran [rows, names]
  expect skipped [short]
  expect cost <= $0.0001
}

test "a wrong expectation" {
  given tool sql.query returns []
  given llm executor replies ["Ada"]
  run top(region: "EU")
  expect output == ["Grace"]
  expect ran [short]
}

test "an unscripted tool fails the run" {
  given llm executor replies ["Ada"]
  run top(region: "EU")
  expect error "no result for tool `sql.query`"
}
"#;

#[test]
fn the_examples_pass() {
    let home = tempfile::tempdir().unwrap();
    let out = aosc(&["test", "examples/"], home.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok   examples/hello.aos:"), "{stdout}");
    assert!(stdout.contains("the approved report is sent"), "{stdout}");
    assert!(stdout.trim_end().ends_with(" passed, 0 failed"), "{stdout}");
    // Nothing was written under AOS_HOME.
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
}

#[test]
fn a_failure_shows_expected_and_actual_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("top.aos");
    std::fs::write(&file, PROGRAM).unwrap();
    let junit = dir.path().join("report.xml");
    let out = aosc(&["test", file.to_str().unwrap(), "--junit", junit.to_str().unwrap()], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ok   ") && stdout.contains("takes the first two names"), "{stdout}");
    assert!(stdout.contains("FAIL ") && stdout.contains("a wrong expectation"), "{stdout}");
    // The diff: expected then actual.
    let diff = stdout.split("a wrong expectation").nth(1).unwrap();
    assert!(diff.contains("expect output == [\"Grace\"]"), "{diff}");
    assert!(diff.contains("-   \"Grace\""), "{diff}");
    assert!(diff.contains("+   \"Ada\""), "{diff}");
    assert!(diff.contains("- ran [short]"), "{diff}");
    assert!(stdout.contains("2 passed, 1 failed"), "{stdout}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suites = doc.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    assert_eq!(suites.attribute("tests"), Some("3"));
    assert_eq!(suites.attribute("failures"), Some("1"));
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 3);
    let failed: Vec<_> = cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("failure"))).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attribute("name"), Some("a wrong expectation"));
    let line = PROGRAM.lines().position(|l| l.starts_with("test \"a wrong expectation\"")).unwrap() + 1;
    assert_eq!(failed[0].attribute("line"), Some(line.to_string().as_str()));
    let failure = failed[0].children().find(|n| n.has_tag_name("failure")).unwrap();
    assert!(failure.text().unwrap().contains("actual:   [\n  \"Ada\"\n]"), "{:?}", failure.text());

    // --filter runs only the matching test; --json says what ran.
    let out = aosc(&["test", file.to_str().unwrap(), "--filter", "first two", "--json"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["passed"], 1);
    assert_eq!(v["tests"][0]["skipped"], serde_json::json!(["short"]));
    assert_eq!(v["tests"][0]["output"], serde_json::json!(["Ada", "Grace"]));
}

#[test]
fn cost_is_exact_at_the_models_prices() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("top.aos");
    std::fs::write(&file, PROGRAM).unwrap();
    let out = aosc(&["test", file.to_str().unwrap(), "--filter", "first two", "--json"], dir.path());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The prompt `The names in [{"name":"Ada"},{"name":"Grace"}]` and the
    // reply `["Ada","Grace","Edsger"]`, counted with the model's token
    // bound, at $0.15/M in and $0.60/M out.
    let prompt = r#"The names in [{"name":"Ada"},{"name":"Grace"}]"#;
    let reply = r#"["Ada","Grace","Edsger"]"#;
    let model = aos_compiler::ir::Model {
        name: "m".into(),
        provider: aos_compiler::ir::Provider::Openai,
        model_id: "gpt-4o-mini".into(),
        input_per_m: 0.15,
        output_per_m: 0.60,
        context: 128_000,
        base_url: None,
        structured: Default::default(),
        sim: Default::default(),
    };
    let (i, o) = (aos_runtime::tokens::count_for(&model, prompt), aos_runtime::tokens::count_for(&model, reply));
    let want = aos_compiler::cost::Usd::of_tokens(i, 0.15).plus(aos_compiler::cost::Usd::of_tokens(o, 0.60));
    assert_eq!(v["tests"][0]["cost_usd"], serde_json::json!(aos_runtime::testrun::exact(want)), "{v}");
}

#[test]
fn a_test_that_does_not_check_is_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.aos");
    std::fs::write(&file, PROGRAM.replace("given llm executor replies [\"Ada\"]\n  run", "given llm executr replies [\"Ada\"]\n  run")).unwrap();
    let out = aosc(&["test", file.to_str().unwrap()], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("E0801") && stderr.contains("did you mean `executor`?"), "{stderr}");
    assert!(stderr.contains("its tests were not run"), "{stderr}");
}
