//! `aosc run` of `.aos` pipelines that run programs in the sandbox:
//! `shell.exec` behind its approval gate, and a user `exec:` tool.
//! Needs bubblewrap (`.ci/run` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn aosc(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(args)
        .env("AOS_HOME", home)
        .env("AOS_LLM", "sim")
        .env_remove("AOS_DATABASE_URL")
        .env_remove("AOS_ALLOW_UNSANDBOXED")
        .output()
        .unwrap()
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// `STEP_ATTRS` goes into the `shell.exec` step's attribute block.
fn program(step_attrs: &str) -> String {
    format!(
        r#"use std.shell
use std.file

/// Counts words, in the sandbox.
tool text.count(text: String) -> {{ words: Int }} {{
  exec: ["python3", "-c", "import json, sys; a = json.load(sys.stdin); print(json.dumps(dict(words=len(a['text'].split()))))"]
  effect: pure
}}

workflow shout(text: String = "one two three") -> Json {{
  intent: "Count and shout a text in the sandbox"
  budget: $0.01

  step counted = text.count(text: text)

  step shouted = shell.exec(
      command: ["sh", "-c", "tr a-z A-Z | tee shouted.txt; cat /etc/shadow"],
      stdin: text) {{
    {step_attrs}
  }}

  step saved: String = file.read(path: "shouted.txt") {{ after: [shouted] }}

  return {{ words: counted.words, shouted: saved, status: shouted.status, stderr: shouted.stderr }}
}}
"#
    )
}

#[test]
fn shell_exec_needs_an_approval_gate_under_a_medium_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shout.aos");
    std::fs::write(&file, program("timeout: 30s")).unwrap();
    let o = aosc(dir.path(), &["check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("E0602"), "{text}");
    let o = aosc(dir.path(), &["run", file.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.path().join("runs").exists() || std::fs::read_dir(dir.path().join("runs")).unwrap().next().is_none());
}

#[test]
fn shell_exec_runs_sandboxed_after_approval() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shout.aos");
    std::fs::write(&file, program("approval: \"operators\"\n    timeout: 30s")).unwrap();
    let file = file.to_str().unwrap();
    let o = aosc(dir.path(), &["run", file, "--input", "text=hello sandbox world", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    assert_eq!(v["status"], "waiting_approval");
    let id = v["run_id"].as_str().unwrap().to_string();
    // Nothing ran before the approval.
    assert!(!dir.path().join("runs").join(&id).join("workspace").join("shouted.txt").exists());

    let ok = aosc(dir.path(), &["approve", &id, "shouted", "--by", "ops"]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let r = aosc(dir.path(), &["resume", &id, "--json"]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let v = stdout_json(&r);
    assert_eq!(v["status"], "succeeded", "{v}");
    let out = &v["output"];
    assert_eq!(out["words"], 3);
    // The program wrote into the run's workspace, where file.read found it.
    assert_eq!(out["shouted"], "HELLO SANDBOX WORLD");
    // It could not read /etc/shadow.
    assert_ne!(out["status"], 0);
    assert!(out["stderr"].as_str().unwrap().contains("/etc/shadow"), "{out}");

    let show = stdout_json(&aosc(dir.path(), &["show", &id, "--json"]));
    let steps = show["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["status"] == "succeeded"), "{show}");
    let audit = String::from_utf8_lossy(&aosc(dir.path(), &["audit", "verify", &id]).stdout).into_owned();
    assert!(audit.starts_with("ok:"), "{audit}");
}

#[test]
fn a_failing_exec_tool_ends_the_step_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fail.aos");
    std::fs::write(
        &file,
        r#"tool text.fail(text: String) -> String {
  exec: ["sh", "-c", "echo 'no network here' >&2; exit 4"]
  effect: pure
}

workflow failing() -> String {
  intent: "Show how an exec tool fails"
  budget: $0.01
  step f = text.fail(text: "x")
  return f
}
"#,
    )
    .unwrap();
    let o = aosc(dir.path(), &["run", file.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("exited with status 4; stderr: no network here"), "{error}");
}

#[test]
fn a_policy_keeps_shell_exec_from_untrusted_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.aos");
    std::fs::write(
        &file,
        r#"use std.shell

policy no_shell_for_strangers {
  deny when tool == "shell.exec" and trust < trusted
}

workflow touch() -> Int {
  intent: "Leave a mark in the workspace"
  budget: $0.01
  risk: high
  step t = shell.exec(command: ["sh", "-c", "echo mark > mark.txt"])
  return t.status
}
"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let o = aosc(dir.path(), &["run", file, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("no_shell_for_strangers"), "{error}");
    let id = v["run_id"].as_str().unwrap();
    assert!(!dir.path().join("runs").join(id).join("workspace").join("mark.txt").exists(), "the program ran");

    let o = aosc(dir.path(), &["run", file, "--trust", "trusted", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    assert_eq!(v["output"], 0);
    let id = v["run_id"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("runs").join(id).join("workspace").join("mark.txt")).unwrap(), "mark\n");
}
