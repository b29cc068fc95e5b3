//! `aosc check --cost`: the table for people, the `cost` member for tools.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn example(name: &str) -> String {
    format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn prints_the_table_on_stdout() {
    let out = Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(["check", "--cost", &example("weekly_sales_report.aos")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("workflow weekly_sales_report: worst case $0.074837 per run; budget $0.50"), "{stdout}");
    assert!(stdout.contains("summary  llm   haiku"), "{stdout}");
    assert!(stdout.contains("verified by `verifier` on `sonnet`"), "{stdout}");
}

#[test]
fn json_carries_the_cost_by_workflow() {
    let out = Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(["check", "--cost", "--format", "json", &example("hello.aos")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["diagnostics"], serde_json::json!([]));
    let hello = &v["cost"]["hello"];
    assert_eq!(hello["steps"]["greeting"]["prompt_tokens"], 2087);
    assert_eq!(hello["steps"]["greeting"]["attempts"], 2);
    assert!((hello["total_usd"].as_f64().unwrap() - 0.000_465_4).abs() < 1e-12);
}

#[test]
fn without_cost_json_is_diagnostics_only() {
    let out = Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(["check", "--format", "json", &example("hello.aos")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("cost").is_none());
}
