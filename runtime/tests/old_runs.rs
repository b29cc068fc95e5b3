//! Runs whose journal holds an IR written before steps carried `typed` and
//! `needs` and before policy values were typed: they still resume, with
//! the missing facts computed once when the program is loaded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aos_compiler::ir::{Cmp, Cond, Effect, Expr, PolicyAction, PolicyRule, PolicyValue, Program, Risk, SimOptions, Trust, Type};
use aos_runtime::events::RunStatus;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::testkit::*;
use aos_runtime::{RunOptions, Runtime, Verdict};
use serde_json::{json, Value};

/// A gate, then the steps whose behaviour depends on the facts old IR
/// lacks: a typed LLM step (its reply is JSON), a step skipped because
/// one it needs is skipped, and a policy rule on trust and kind.
fn program_with_gate() -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    p.tools.insert("file.write".into(), builtin_tool("file.write", &["path", "content"], Effect::External, Risk::Medium));
    p.rules.push(PolicyRule {
        policy: "house_rules".into(),
        text: "deny when kind == workflow and trust < trusted".into(),
        action: PolicyAction::Deny,
        cond: Cond::And {
            a: Box::new(Cond::Compare { cmp: Cmp::Eq, value: PolicyValue::Kind(aos_compiler::ir::StepKind::Workflow) }),
            b: Box::new(Cond::Compare { cmp: Cmp::Lt, value: PolicyValue::Trust(Trust::Trusted) }),
        },
    });
    let mut wf = workflow("g");
    let mut save = tool("save", "file.write", vec![("path", s("out/a.txt")), ("content", s("x"))], Effect::External);
    save.approval = Some("leads".into());
    add(&mut wf, save);
    let mut numbers = llm("numbers", "executor", interp(vec![s("three numbers after "), step_ref("save")]));
    numbers.ty = Type::List { item: Box::new(Type::Int) };
    numbers.schema = Some(json!({"type": "array", "items": {"type": "integer"}}));
    add(&mut wf, numbers);
    let mut off = llm("off", "executor", interp(vec![s("never "), step_ref("save")]));
    off.when = Some(lit(json!(false)));
    off.ty = Type::Optional { inner: Box::new(Type::String) };
    add(&mut wf, off);
    let mut uses_off = llm("uses_off", "executor", interp(vec![s("uses "), step_ref("off")]));
    uses_off.ty = Type::Optional { inner: Box::new(Type::String) };
    add(&mut wf, uses_off);
    wf.ret_expr = Some(Expr::List { items: vec![step_ref("numbers"), step_ref("uses_off")] });
    p.workflows.insert("g".into(), wf);
    p
}

/// The IR as written before `typed`/`needs` and typed policy values.
fn old_format(p: &Program) -> String {
    let mut v = serde_json::to_value(p).unwrap();
    for wf in v["workflows"].as_object_mut().unwrap().values_mut() {
        for step in wf["steps"].as_array_mut().unwrap() {
            let step = step.as_object_mut().unwrap();
            assert!(step.remove("typed").is_some() && step.remove("needs").is_some(), "today's IR carries both");
        }
    }
    fn untype(c: &mut Value) {
        if c["op"] == "compare" {
            let (fact, text) = c["value"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).unwrap();
            c["fact"] = json!(fact);
            c["value"] = json!(text);
        }
        for k in ["a", "b"] {
            if c.get(k).is_some() {
                untype(&mut c[k]);
            }
        }
    }
    for r in v["rules"].as_array_mut().unwrap() {
        untype(&mut r["cond"]);
    }
    v.to_string()
}

async fn gated_then_resumed(old: bool) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("aos.db");
    let store = SqliteStore::open(&db).await.unwrap();
    let rt = Runtime::new(Arc::new(store), dir.path());
    let p = program_with_gate();
    let r = rt.run(&p, "g", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    assert_eq!(r.status, RunStatus::WaitingApproval, "{r:?}");
    if old {
        // The run as a binary of before would have journaled it.
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        let text = old_format(&p);
        assert!(!text.contains("\"typed\"") && !text.contains("\"needs\"") && text.contains("\"fact\":\"trust\""));
        let n = sqlx::query("UPDATE run_programs SET program = ? WHERE run_id = ?").bind(&text).bind(&r.run_id).execute(&pool).await.unwrap();
        assert_eq!(n.rows_affected(), 1);
        pool.close().await;
    }
    rt.decide(&r.run_id, "save", Verdict::Approve, "ana", None).await.unwrap();
    let done = rt.execute(&r.run_id, RunOptions::default()).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{done:?}");
    (done.output.unwrap(), r.run_id)
}

#[tokio::test]
async fn a_run_journaled_with_old_ir_resumes_as_today() {
    let (today, _) = gated_then_resumed(false).await;
    let (old, _) = gated_then_resumed(true).await;
    // The typed step's reply is parsed as JSON (a list of integers), not
    // kept as text, and the step that needs a skipped step is skipped.
    assert!(today[0].as_array().is_some_and(|a| a.iter().all(Value::is_i64)), "{today}");
    assert_eq!(today[1], Value::Null);
    assert_eq!(old, today);
}

#[test]
fn old_ir_gets_the_facts_the_checker_computes() {
    let p = program_with_gate();
    let loaded: Program = serde_json::from_str(&old_format(&p)).unwrap();
    assert_eq!(loaded, p);
    let steps = &loaded.workflows["g"].steps;
    let numbers = steps.iter().find(|s| s.name == "numbers").unwrap();
    assert!(numbers.typed);
    assert_eq!(numbers.needs, ["save"]);
    let uses_off = steps.iter().find(|s| s.name == "uses_off").unwrap();
    assert!(!uses_off.typed);
    assert_eq!(uses_off.needs, ["off"]);
}
