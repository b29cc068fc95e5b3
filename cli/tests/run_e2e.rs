//! `aosc run`, `resume`, `approve`, `deny`, `runs`, `show`, `replay` and
//! `audit verify` end to end, on IR JSON programs and a temporary AOS_HOME.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use aos_compiler::ir::{Effect, Expr, Program, Risk, SimOptions};
use aos_runtime::testkit::*;
use serde_json::{json, Value};

fn aosc(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(args)
        .env("AOS_HOME", home)
        .env_remove("AOS_DATABASE_URL")
        .output()
        .unwrap()
}

fn write_program(dir: &Path, p: &Program) -> String {
    let path = dir.join("prog.json");
    std::fs::write(&path, serde_json::to_string(p).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

fn hello() -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    let mut wf = workflow("hello");
    wf.params.push(param("name", Some("world")));
    add(&mut wf, llm("greeting", "executor", interp(vec![s("Greet "), param_ref("name")])));
    wf.ret_expr = Some(step_ref("greeting"));
    p.workflows.insert("hello".into(), wf);
    p
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn run_json_prints_exactly_the_contract_object() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_program(dir.path(), &hello());
    let o = aosc(dir.path(), &["run", &file, "--input", "name=Ada", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["cost_usd", "error", "output", "run_id", "status"]);
    assert_eq!(v["status"], "succeeded");
    assert!(v["output"].as_str().unwrap().starts_with("[sim:echo]"));
    assert!(v["error"].is_null());
    let id = v["run_id"].as_str().unwrap().to_string();

    let runs = stdout_json(&aosc(dir.path(), &["runs", "--json"]));
    assert_eq!(runs[0]["run_id"], id.as_str());
    assert_eq!(runs[0]["workflow"], "hello");
    let show = stdout_json(&aosc(dir.path(), &["show", &id, "--json"]));
    assert_eq!(show["steps"][0]["name"], "greeting");
    assert_eq!(show["steps"][0]["status"], "succeeded");
    assert_eq!(show["steps"][0]["attempts"], 1);
    assert!(show["steps"][0]["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let replay = aosc(dir.path(), &["replay", &id]);
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(text.contains("run.started") && text.contains("step.succeeded greeting") && text.contains("run.succeeded"), "{text}");
    let audit = aosc(dir.path(), &["audit", "verify", &id]);
    assert_eq!(audit.status.code(), Some(0));
}

#[test]
fn inputs_are_json_when_they_parse_and_bad_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_program(dir.path(), &hello());
    let o = aosc(dir.path(), &["run", &file, "--input", "nope=1", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no parameter `nope`"));
    // A value of the wrong type is refused, naming the parameter and its type.
    let o = aosc(dir.path(), &["run", &file, "--input", "name=[1,2]", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("input `name`") && err.contains("must be String"), "{err}");
    // A number given to a textual parameter is taken as its text.
    let o = aosc(dir.path(), &["run", &file, "--input", "name=5", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let show = stdout_json(&aosc(dir.path(), &["show", stdout_json(&o)["run_id"].as_str().unwrap(), "--json"]));
    assert_eq!(show["inputs"]["name"], json!("5"));
}

#[test]
fn a_file_that_does_not_check_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.aos");
    std::fs::write(&path, "workflow w( {").unwrap();
    let o = aosc(dir.path(), &["run", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_unreachable_postgres_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let o = Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(["runs"])
        .env("AOS_DATABASE_URL", "postgres://aos:hunter2@127.0.0.1:1/aos")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot connect to PostgreSQL at `postgres://aos@127.0.0.1:1/aos`"), "{err}");
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    drop(dir);
}

fn gated() -> Program {
    let mut p = hello();
    p.tools.insert("file.write".into(), builtin_tool("file.write", &["path", "content"], Effect::External, Risk::Medium));
    let wf = p.workflows.get_mut("hello").unwrap();
    let mut w = tool("save", "file.write", vec![("path", s("greeting.txt")), ("content", step_ref("greeting"))], Effect::External);
    w.approval = Some("leads".into());
    // As the checker computes it: at least the tool's risk.
    w.risk = Risk::Medium;
    add(wf, w);
    wf.ret_expr = Some(Expr::Field { of: Box::new(step_ref("save")), field: "bytes".into() });
    p
}

#[test]
fn approval_gate_exits_3_then_approve_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_program(dir.path(), &gated());
    let o = aosc(dir.path(), &["run", &file, "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    assert_eq!(v["status"], "waiting_approval");
    let id = v["run_id"].as_str().unwrap().to_string();
    let bad = aosc(dir.path(), &["approve", &id, "greeting"]);
    assert_eq!(bad.status.code(), Some(1));
    let ok = aosc(dir.path(), &["approve", &id, "save", "--by", "ana", "--note", "fine"]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let r = aosc(dir.path(), &["resume", &id, "--json"]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let v = stdout_json(&r);
    assert_eq!(v["status"], "succeeded");
    assert!(v["output"].as_u64().unwrap() > 0);
    let audit = String::from_utf8_lossy(&aosc(dir.path(), &["audit", "verify", &id]).stdout).into_owned();
    assert!(audit.starts_with("ok:"), "{audit}");
}

#[test]
fn deny_fails_the_run_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_program(dir.path(), &gated());
    let v = stdout_json(&aosc(dir.path(), &["run", &file, "--json"]));
    let id = v["run_id"].as_str().unwrap().to_string();
    assert_eq!(aosc(dir.path(), &["deny", &id, "save", "--by", "bo"]).status.code(), Some(0));
    let r = aosc(dir.path(), &["resume", &id, "--json"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(stdout_json(&r)["error"].as_str().unwrap().contains("denied by bo"));
}

#[test]
fn wait_continues_when_another_process_approves() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_program(dir.path(), &gated());
    let child = Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(["run", &file, "--json", "--wait"])
        .env("AOS_HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the gate, then approve from this process.
    let mut id = String::new();
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let runs = stdout_json(&aosc(dir.path(), &["runs", "--json"]));
        if let Some(r) = runs.as_array().and_then(|a| a.first()) {
            id = r["run_id"].as_str().unwrap().to_string();
            let show = stdout_json(&aosc(dir.path(), &["show", &id, "--json"]));
            if show["steps"].as_array().unwrap().iter().any(|s| s["status"] == "waiting_approval") {
                break;
            }
        }
    }
    assert_eq!(aosc(dir.path(), &["approve", &id, "save"]).status.code(), Some(0));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["status"], "succeeded");
}

#[test]
fn tampered_audit_exits_1_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_program(dir.path(), &gated());
    let id = stdout_json(&aosc(dir.path(), &["run", &file, "--json"]))["run_id"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = aos_runtime::store::sqlite::SqliteStore::open(&dir.path().join("aos.db")).await.unwrap();
        sqlx::query("UPDATE audit SET data = '{}' WHERE run_id = ? AND seq = 1").bind(&id).execute(store.pool()).await.unwrap();
    });
    let o = aosc(dir.path(), &["audit", "verify", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("audit record 1"));
}

#[test]
fn every_command_has_help_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["run", "resume", "approve", "deny", "runs", "show", "replay", "audit"] {
        let o = aosc(dir.path(), &[cmd, "--help"]);
        assert_eq!(o.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&o.stdout).contains("Examples:"), "{cmd}");
    }
}
