//! Issue 17, with real `aosc` processes: concurrent first runs on a fresh
//! AOS_HOME (finding 5), concurrent decisions on one gate (finding 7), store
//! failures under `--json` (finding 12), and `aosc secret`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn aosc(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"));
    c.env("AOS_HOME", home)
        .env("AOS_LLM", "sim")
        .env_remove("AOS_DATABASE_URL")
        .env_remove("AOS_SECRET_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

// --- 5. concurrent first runs on a fresh AOS_HOME --------------------------

#[test]
fn twenty_concurrent_first_runs_on_a_fresh_home_all_succeed() {
    for _round in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("fresh");
        let hello = example("hello.aos");
        let children: Vec<Child> = (0..20)
            .map(|i| aosc(&home).arg("run").arg(&hello).args(["--input", &format!("name=n{i}"), "--json"]).spawn().unwrap())
            .collect();
        let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        for o in &outs {
            assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["status"], "succeeded");
        }
        let runs: Value = serde_json::from_slice(&aosc(&home).args(["runs", "--json"]).output().unwrap().stdout).unwrap();
        assert_eq!(runs.as_array().unwrap().len(), 20);
    }
}

// --- 7. one decision per gate ----------------------------------------------

const GATED: &str = r#"model echo = sim("echo") { input: $0.10/M, output: $0.40/M, context: 8192 }
role executor = [echo]

workflow gated() -> String {
  budget: $0.01
  step draft: String = llm executor("Draft a note") { max_tokens: 20 }
  step publish: String = llm executor("Polish {draft}") {
    max_tokens: 20
    approval: "editors"
  }
  return publish
}
"#;

#[test]
fn concurrent_approve_and_deny_record_exactly_one_decision() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let file = dir.path().join("gated.aos");
    std::fs::write(&file, GATED).unwrap();
    let o = aosc(&home).arg("run").arg(&file).arg("--json").output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let id = serde_json::from_slice::<Value>(&o.stdout).unwrap()["run_id"].as_str().unwrap().to_string();
    let children: Vec<(usize, Child)> = (0..8)
        .map(|i| {
            let verb = if i % 2 == 0 { "approve" } else { "deny" };
            (i, aosc(&home).args([verb, &id, "publish", "--by", &format!("p{i}")]).spawn().unwrap())
        })
        .collect();
    let mut winners = Vec::new();
    for (i, c) in children {
        let o = c.wait_with_output().unwrap();
        match o.status.code() {
            Some(0) => winners.push(i),
            Some(4) => assert!(text(&o.stderr).contains("already") && text(&o.stderr).contains("this one was not recorded"), "{}", text(&o.stderr)),
            other => panic!("exit {other:?}: {}", text(&o.stderr)),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    // The journal holds exactly that decision; resuming follows it.
    let replay = text(&aosc(&home).args(["replay", &id]).output().unwrap().stdout);
    let decisions = replay.matches("approval.granted").count() + replay.matches("approval.denied").count();
    assert_eq!(decisions, 1, "{replay}");
    let r = aosc(&home).args(["resume", &id, "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    if winners[0] % 2 == 0 {
        assert_eq!(v["status"], "succeeded", "{v}");
    } else {
        assert_eq!(v["status"], "failed", "{v}");
        assert!(v["error"].as_str().unwrap().contains(&format!("denied by p{}", winners[0])), "{v}");
    }
    // A late decision after the run went on is refused the same way.
    let late = aosc(&home).args(["approve", &id, "publish"]).output().unwrap();
    assert_eq!(late.status.code(), Some(4), "{}", text(&late.stderr));
}

// --- 12. store failures under --json ---------------------------------------

#[test]
fn store_failures_under_json_print_a_json_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // Root can write anywhere, but not under a regular file.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let home = file.join("home");
    for args in [vec!["runs", "--json"], vec!["show", "01ABC", "--json"], vec!["run", example("hello.aos").to_str().unwrap(), "--json"]] {
        let o = aosc(&home).args(&args).output().unwrap();
        assert_ne!(o.status.code(), Some(0));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: no JSON ({e}): {}", text(&o.stdout)));
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(home.to_str().unwrap()), "{args:?}: {msg}");
    }
    // SQLite's own "unable to open database file" names the file: here the
    // database path is a directory.
    let home = dir.path().join("home2");
    std::fs::create_dir_all(home.join("aos.db")).unwrap();
    let o = aosc(&home).args(["runs", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains(home.join("aos.db").to_str().unwrap()), "{msg}");
    assert!(text(&o.stderr).starts_with("error: "), "{}", text(&o.stderr));
    // Without --json, stdout stays empty.
    let o = aosc(&home).args(["runs"]).output().unwrap();
    assert!(o.stdout.is_empty());
}

// --- the secrets store -----------------------------------------------------

fn secret_set(home: &Path, name: &str, value: &str) -> Output {
    let mut c = aosc(home).args(["secret", "set", name]).stdin(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

#[test]
fn aosc_secret_sets_lists_rotates_and_removes_without_the_value_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let o = secret_set(&home, "API_TOKEN", "first-value-1234\n");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(home.join("secret.key")).unwrap().permissions().mode() & 0o777, 0o600);
    let o = secret_set(&home, "API_TOKEN", "second-value-5678");
    assert!(text(&o.stderr).contains("generation 2"), "{}", text(&o.stderr));
    let list = aosc(&home).args(["secret", "list", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["name"], "API_TOKEN");
    assert_eq!(v[0]["generation"], 2);
    assert!(!text(&list.stdout).contains("value"));
    // Too short to be redacted safely: refused.
    let o = secret_set(&home, "PIN", "1234");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("cannot be redacted safely"), "{}", text(&o.stderr));
    // A run uses the store's value (a program that writes it to its workspace).
    let prog = dir.path().join("p.aos");
    std::fs::write(
        &prog,
        "use std.file\n\nworkflow w() -> Int {\n  budget: $0.01\n  step saved = file.write(path: \"t.txt\", content: secret(\"API_TOKEN\")) { approval: \"ops\" }\n  return saved.bytes\n}\n",
    )
    .unwrap();
    let o = aosc(&home).arg("run").arg(&prog).arg("--json").output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    assert!(o.status.code() == Some(3) || o.status.code() == Some(0), "{} {}", text(&o.stdout), text(&o.stderr));
    let id = v["run_id"].as_str().unwrap().to_string();
    if o.status.code() == Some(3) {
        assert_eq!(aosc(&home).args(["approve", &id, "saved"]).output().unwrap().status.code(), Some(0));
        let r = aosc(&home).args(["resume", &id, "--json"]).output().unwrap();
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    }
    assert_eq!(std::fs::read_to_string(home.join("runs").join(&id).join("workspace/t.txt")).unwrap(), "second-value-5678");
    let o = aosc(&home).args(["secret", "rm", "API_TOKEN"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let o = aosc(&home).args(["secret", "rm", "API_TOKEN"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
}
