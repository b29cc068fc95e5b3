//! The secrets canary (issue 17): a secret set with `aosc secret set` goes
//! through 1,000 runs (its value sent by a tool and echoed back into the
//! step's output, and into an error) and never appears in plaintext
//! anywhere under AOS_HOME, in the commands' output (`show`, `replay`,
//! `events`, `runs`, `audit`), or in their errors: every byte is read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use aos_compiler::ir::{Program, Trust};
use aos_runtime::events::RunStatus;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::tools::{ToolConfig, Tools};
use aos_runtime::{RunOptions, Runtime};
use serde_json::{json, Value};

const CANARY: &str = "CANARY-7f3a9c1e-do-not-leak";

/// A loopback server echoing each request's body back as JSON (status 200),
/// or as the body of a 500 for `/fail`.
fn echo_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((h, b)) = text.split_once("\r\n\r\n") {
                        let len: usize = h
                            .lines()
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                            .unwrap_or(0);
                        if b.len() >= len {
                            break (h.to_string(), b.to_string());
                        }
                    }
                };
                let status = if head.starts_with("POST /fail") { "500 Internal Server Error" } else { "200 OK" };
                let out = json!({"echo": serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)}).to_string();
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{out}", out.len())
                        .as_bytes(),
                );
            });
        }
    });
    format!("http://{addr}")
}

fn program_source(base: &str) -> String {
    format!(
        r#"tool vault.use(token: Secret, n: Int) -> Json {{
  http: "POST {base}/use"
  risk: low
}}

tool vault.fail(token: Secret) -> Json {{
  http: "POST {base}/fail"
  risk: low
}}

workflow ok(n: Int = 1) -> Json {{
  budget: $0
  step used = vault.use(token: secret("CANARY_TOKEN"), n: n)
  return used
}}

workflow bad() -> Json {{
  budget: $0
  step failed = vault.fail(token: secret("CANARY_TOKEN"))
  return failed
}}
"#
    )
}

fn aosc(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(args)
        .env("AOS_HOME", home)
        .env("AOS_LLM", "sim")
        .env("AOS_HTTP_ALLOW", "127.0.0.1")
        .env_remove("AOS_DATABASE_URL")
        .env_remove("AOS_SECRET_KEY")
        .env_remove("CANARY_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn all_bytes(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            all_bytes(&e.path(), out);
        } else if t.is_file() {
            out.push((e.path().display().to_string(), std::fs::read(e.path()).unwrap()));
        }
    }
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_canary_secret_through_1000_runs_never_appears_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let base = echo_server();
    let src = dir.path().join("canary.aos");
    std::fs::write(&src, program_source(&base)).unwrap();

    // The secret, from stdin.
    let mut c = Command::new(env!("CARGO_BIN_EXE_aosc"))
        .args(["secret", "set", "CANARY_TOKEN"])
        .env("AOS_HOME", &home)
        .env_remove("AOS_SECRET_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(CANARY.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let ir = aosc(&home, &["check", "--emit-ir", src.to_str().unwrap()]);
    assert!(ir.status.success(), "{}", String::from_utf8_lossy(&ir.stderr));
    let program: Program = serde_json::from_slice(&ir.stdout).unwrap();

    // 1,000 runs in-process, through the same store and secrets store.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ok_ids, bad_id) = rt.block_on(async {
        let store: Arc<dyn aos_runtime::store::Store> = Arc::new(SqliteStore::open(&home.join("aos.db")).await.unwrap());
        let mut r = Runtime::new(store.clone(), &home);
        r.tools = Arc::new(Tools::with_config(&ToolConfig { http_allow: Some("127.0.0.1".into()), ..Default::default() }).with_store(store));
        let mut ids = Vec::new();
        for n in 0..1000 {
            let inputs: BTreeMap<String, Value> = [("n".to_string(), json!(n))].into();
            let rep = r.run(&program, "ok", inputs, Trust::Basic, RunOptions::default()).await.unwrap();
            assert_eq!(rep.status, RunStatus::Succeeded, "{rep:?}");
            // The tool got the real value (the echo), the report shows `***`.
            assert_eq!(rep.output.as_ref().unwrap()["echo"]["token"], "***", "{rep:?}");
            ids.push(rep.run_id);
        }
        let bad = r.run(&program, "bad", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
        assert_eq!(bad.status, RunStatus::Failed);
        assert!(bad.error.as_deref().unwrap().contains("***"), "{bad:?}");
        (ids, bad.run_id)
    });

    // The commands, on the CLI (their stdout and stderr, errors included).
    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    let mut record = |what: String, o: Output| {
        seen.push((format!("{what} (stdout)"), o.stdout));
        seen.push((format!("{what} (stderr)"), o.stderr));
    };
    let file = src.to_str().unwrap();
    record("run ok".into(), aosc(&home, &["run", file, "--workflow", "ok", "--json"]));
    record("run bad".into(), aosc(&home, &["run", file, "--workflow", "bad", "--json"]));
    record("run bad human".into(), aosc(&home, &["run", file, "--workflow", "bad"]));
    record("runs".into(), aosc(&home, &["runs", "--json"]));
    for id in ok_ids.iter().step_by(100).chain([&bad_id]) {
        for args in [vec!["show", id], vec!["show", id, "--json"], vec!["replay", id], vec!["events", id], vec!["audit", "verify", id]] {
            record(args.join(" "), aosc(&home, &args));
        }
    }
    record("resume bad".into(), aosc(&home, &["resume", &bad_id, "--json"]));
    record("secret list".into(), aosc(&home, &["secret", "list"]));
    assert!(seen.iter().any(|(_, b)| holds(b, b"***")), "nothing was redacted: the canary never flowed");

    // Every byte under AOS_HOME: the database, its WAL, workspaces, the
    // secrets store.
    all_bytes(&home, &mut seen);
    let files = seen.len();
    for (what, bytes) in &seen {
        assert!(!holds(bytes, CANARY.as_bytes()), "the canary is in plaintext in {what}");
    }
    assert!(files > 20, "{files}");
}
