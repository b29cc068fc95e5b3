//! Secrets (issue 17, finding 4 and the secrets store): redaction hides a
//! secret where it could leak (journal, audit, events, stored outputs,
//! errors) and never rewrites the values a program computes with; a secret
//! too short to redact safely is refused; values come from the encrypted
//! store first, then the environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aos_compiler::ir::{Effect, Expr, Program, Risk, SimOptions, Trust};
use aos_runtime::events::RunStatus;
use aos_runtime::secrets::{Fixed, SecretStore};
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::testkit::*;
use aos_runtime::{RunOptions, RunReport, Runtime};

async fn runtime(dir: &tempfile::TempDir, secrets: &[(&str, &str)]) -> Runtime {
    let store = SqliteStore::open(&dir.path().join("aos.db")).await.unwrap();
    let mut rt = Runtime::new(Arc::new(store), dir.path());
    rt.secret_source = Arc::new(Fixed(secrets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()));
    rt
}

async fn run(rt: &Runtime, p: &Program, wf: &str) -> RunReport {
    rt.run(p, wf, BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap()
}

fn file_tools(p: &mut Program) {
    p.tools.insert("file.write".into(), builtin_tool("file.write", &["path", "content"], Effect::External, Risk::Medium));
    p.tools.insert("file.read".into(), builtin_tool("file.read", &["path"], Effect::Read, Risk::Low));
}

/// Every byte of every file under `dir`, as lossy text, with its path.
fn every_file(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push((e.path(), String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned()));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_secret_is_redacted_in_the_journal_but_flows_unchanged_through_the_program() {
    const SECRET: &str = "s3cr3t-token-value";
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir, &[("API_TOKEN", SECRET)]).await;
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    file_tools(&mut p);
    let mut wf = workflow("s");
    add(&mut wf, tool("w", "file.write", vec![("path", s("k.txt")), ("content", Expr::Secret { name: "API_TOKEN".into() })], Effect::External));
    let mut r = tool("r", "file.read", vec![("path", s("k.txt"))], Effect::Read);
    r.deps.push("w".into());
    add(&mut wf, r);
    // The program computes with the value it read: the copy must hold the
    // secret itself, not `***`.
    let mut c = tool("c", "file.write", vec![("path", s("copy.txt")), ("content", interp(vec![s("copy: "), step_ref("r")]))], Effect::External);
    c.deps.push("r".into());
    add(&mut wf, c);
    wf.ret_expr = Some(step_ref("r"));
    p.workflows.insert("s".into(), wf);
    let rep = run(&rt, &p, "s").await;
    assert_eq!(rep.status, RunStatus::Succeeded, "{rep:?}");
    let ws = dir.path().join("runs").join(&rep.run_id).join("workspace");
    assert_eq!(std::fs::read_to_string(ws.join("copy.txt")).unwrap(), format!("copy: {SECRET}"));
    // What leaves the run is redacted: the output, journal and audit.
    assert_eq!(rep.output, Some(serde_json::json!("***")));
    let journal = serde_json::to_string(&rt.store.journal(&rep.run_id).await.unwrap()).unwrap();
    let audit = serde_json::to_string(&rt.store.audit(&rep.run_id).await.unwrap().iter().map(|r| r.data.clone()).collect::<Vec<_>>()).unwrap();
    assert!(!journal.contains(SECRET), "{journal}");
    assert!(!audit.contains(SECRET), "{audit}");
    assert!(journal.contains("***"));
    // The database files hold it nowhere (the workspace holds what the
    // program itself wrote there).
    for (path, text) in every_file(dir.path()) {
        if path.starts_with(&ws) {
            continue;
        }
        assert!(!text.contains(SECRET), "{} holds the secret", path.display());
    }
}

#[tokio::test]
async fn text_that_merely_contains_a_short_secrets_letters_is_never_rewritten() {
    // The finding: with a secret `e`, another step's "hello there everyone"
    // became `h***llo th***r*** …` in the store. A secret that short is now
    // refused where it is resolved, and other text is left alone.
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(&dir, &[("SHORT", "e")]).await;
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    file_tools(&mut p);
    let mut wf = workflow("s");
    add(&mut wf, tool("w", "file.write", vec![("path", s("t.txt")), ("content", s("hello there everyone"))], Effect::External));
    let mut r = tool("r", "file.read", vec![("path", s("t.txt"))], Effect::Read);
    r.deps.push("w".into());
    add(&mut wf, r);
    let mut use_secret = tool("x", "file.write", vec![("path", s("x.txt")), ("content", Expr::Secret { name: "SHORT".into() })], Effect::External);
    use_secret.deps.push("r".into());
    add(&mut wf, use_secret);
    wf.ret_expr = Some(step_ref("r"));
    p.workflows.insert("s".into(), wf);
    let rep = run(&rt, &p, "s").await;
    assert_eq!(rep.status, RunStatus::Failed, "{rep:?}");
    let error = rep.error.unwrap();
    assert!(error.contains("secret `SHORT` is 1 characters long") && error.contains("cannot be redacted safely"), "{error}");
    let journal = serde_json::to_string(&rt.store.journal(&rep.run_id).await.unwrap()).unwrap();
    assert!(journal.contains("hello there everyone"), "{journal}");
    assert!(!dir.path().join("runs").join(&rep.run_id).join("workspace").join("x.txt").exists());
}

#[tokio::test]
async fn secrets_come_from_the_store_before_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("aos.db")).await.unwrap();
    let rt = Runtime::new(Arc::new(store), dir.path());
    // PATH is set in every test environment; the store's value wins.
    SecretStore::new(dir.path()).set("PATH", "from-the-store-123").unwrap();
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    file_tools(&mut p);
    let mut wf = workflow("s");
    add(&mut wf, tool("w", "file.write", vec![("path", s("p.txt")), ("content", Expr::Secret { name: "PATH".into() })], Effect::External));
    p.workflows.insert("s".into(), wf);
    let rep = run(&rt, &p, "s").await;
    assert_eq!(rep.status, RunStatus::Succeeded, "{rep:?}");
    let ws = dir.path().join("runs").join(&rep.run_id).join("workspace");
    assert_eq!(std::fs::read_to_string(ws.join("p.txt")).unwrap(), "from-the-store-123");
    // Removed from the store, the environment's value is used.
    SecretStore::new(dir.path()).remove("PATH").unwrap();
    let rep = run(&rt, &p, "s").await;
    let ws = dir.path().join("runs").join(&rep.run_id).join("workspace");
    assert_eq!(std::fs::read_to_string(ws.join("p.txt")).unwrap(), std::env::var("PATH").unwrap());
}
