//! Runs every valid program of the shared conformance suite under the
//! simulator (`AOS_LLM=sim`): every workflow of every file, with inputs
//! generated from its parameter types. Each run must succeed or stop at
//! the approval gate (exit 3). A program that needs an outside service
//! gets a real one on loopback (an HTTP server for `http.get` and user
//! `http:` tools); those needing a service this test cannot provide
//! (PostgreSQL, SMTP) are skipped with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use aos_compiler::ir::{Program, Type};
use serde_json::{json, Value};

fn shared() -> PathBuf {
    match std::env::var("AOS_SHARED") {
        Ok(p) => PathBuf::from(p),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// A loopback HTTP server answering every request with a small JSON body.
fn http_server(listener: TcpListener) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let body = r#"{"ok":true,"text":"a page about tides"}"#;
            let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        }
    });
}

/// A value of type `t` (`url` parameters get the loopback server).
fn sample(name: &str, t: &Type, url: &str) -> Value {
    match t {
        Type::String | Type::Secret if name.contains("url") => json!(url),
        Type::String | Type::Secret => json!(format!("{name} sample")),
        Type::Int | Type::Duration => json!(2),
        Type::Float | Type::Money => json!(1.5),
        Type::Bool => json!(true),
        Type::Json => json!({"k": "v"}),
        Type::Null => Value::Null,
        Type::List { item } => Value::Array(vec![sample(name, item, url), sample(name, item, url), sample(name, item, url)]),
        Type::Optional { inner } => sample(name, inner, url),
        Type::Record { fields, .. } => Value::Object(fields.iter().map(|(n, t)| (n.clone(), sample(n, t, url))).collect()),
        Type::Enum { variants, .. } => json!(variants.first().cloned().unwrap_or_default()),
    }
}

/// Why a program cannot run here, if it cannot.
fn needs_service(p: &Program) -> Option<String> {
    for t in p.tools.keys() {
        if t.starts_with("sql.") && std::env::var("AOS_SQL_URL").is_err() {
            return Some(format!("tool `{t}` needs PostgreSQL (AOS_SQL_URL is not set)"));
        }
        if t.starts_with("email.") && std::env::var("AOS_SMTP_URL").is_err() {
            return Some(format!("tool `{t}` needs an SMTP server (AOS_SMTP_URL is not set)"));
        }
    }
    None
}

#[test]
fn every_valid_conformance_program_runs_under_sim() {
    let dir = shared().join("conformance/valid");
    if !dir.is_dir() {
        assert!(std::env::var("CI").is_err(), "the conformance suite is not at {}", dir.display());
        eprintln!("SKIPPED: the conformance suite is not at {} (set AOS_SHARED)", dir.display());
        return;
    }
    // User tools of the suite post to 127.0.0.1:9000; any other URL is a parameter.
    let fixed = TcpListener::bind("127.0.0.1:9000").ok();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/page", listener.local_addr().unwrap());
    http_server(listener);
    let have_fixed = fixed.is_some();
    if let Some(l) = fixed {
        http_server(l);
    }
    // The cases: `valid/*.aos`, and files of its folders that say `// expect: ok`
    // (the others are imported by a case).
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for sub in std::fs::read_dir(&path).unwrap() {
                let sub = sub.unwrap().path();
                let text = std::fs::read_to_string(&sub).unwrap_or_default();
                if sub.extension().is_some_and(|e| e == "aos") && text.lines().next().is_some_and(|l| l.contains("expect: ok")) {
                    files.push(sub);
                }
            }
        } else if path.extension().is_some_and(|e| e == "aos") {
            files.push(path);
        }
    }
    files.sort();
    assert!(!files.is_empty());
    let (mut ran, mut skipped, mut failures) = (0, Vec::new(), Vec::new());
    for file in &files {
        let home = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_aosc")).args(["check", "--emit-ir"]).arg(file).output().unwrap();
        assert!(out.status.success(), "{} does not check: {}", file.display(), String::from_utf8_lossy(&out.stderr));
        let program: Program = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(why) = needs_service(&program) {
            skipped.push(format!("{}: {why}", file.display()));
            continue;
        }
        let fixed_port = program.tools.values().any(|t| matches!(&t.implementation, aos_compiler::ir::ToolImpl::Http { url, .. } if url.contains(":9000")));
        if fixed_port && !have_fixed {
            skipped.push(format!("{}: its tool posts to 127.0.0.1:9000, which is in use", file.display()));
            continue;
        }
        for (name, wf) in &program.workflows {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_aosc"));
            cmd.arg("run").arg(file).args(["--workflow", name, "--json"]);
            for p in wf.params.iter().filter(|p| p.default.is_none()) {
                cmd.arg("--input").arg(format!("{}={}", p.name, sample(&p.name, &p.ty, &url)));
            }
            let out = cmd
                .env("AOS_HOME", home.path())
                .env("AOS_LLM", "sim")
                // Secrets shorter than 8 characters are refused (issue 17).
                .env("BILLING_TOKEN", "tok-123-billing")
                // The suite's tools and URLs are on loopback: allowed through
                // the outbound guard.
                .env("AOS_HTTP_ALLOW", "127.0.0.1")
                .env_remove("AOS_DATABASE_URL")
                .output()
                .unwrap();
            let code = out.status.code().unwrap_or(-1);
            let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            ran += 1;
            if code != 0 && code != 3 {
                failures.push(format!("{} workflow `{name}`: exit {code}: {report} {}", file.display(), String::from_utf8_lossy(&out.stderr)));
            } else if code == 0 {
                assert_eq!(report["status"], "succeeded", "{}: {report}", file.display());
            } else {
                assert_eq!(report["status"], "waiting_approval", "{}: {report}", file.display());
            }
        }
    }
    for s in &skipped {
        eprintln!("SKIPPED {s}");
    }
    assert!(failures.is_empty(), "{} of {ran} runs failed:\n{}", failures.len(), failures.join("\n"));
    assert!(ran >= files.len() - skipped.len(), "ran {ran}");
}
