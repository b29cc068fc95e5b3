//! The seed scenario end to end through `aosc`: `examples/weekly_sales_report.aos`
//! against a real PostgreSQL (a `sales` table), the summary on `sim`
//! (verified by a second model), the approval gate, and the email delivered
//! to a real SMTP server on loopback. Also: each external tool's failure
//! mode ends the step with a clear error that `aosc show` displays.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::services as support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{Postgres, SmtpSink};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/weekly_sales_report.aos");

fn aosc(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(aos_e2e::aosc());
    // The HTTP servers of these tests are on loopback: allowed through the
    // outbound guard.
    c.args(args).env("AOS_HOME", home).env("AOS_LLM", "sim").env("AOS_HTTP_ALLOW", "127.0.0.1").env_remove("AOS_DATABASE_URL");
    for k in ["AOS_SQL_URL", "AOS_SMTP_URL", "AOS_SMTP_FROM"] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: stdout {} stderr {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

fn step<'a>(show: &'a Value, name: &str) -> &'a Value {
    show["steps"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no step {name} in {show}"))
}

#[test]
fn weekly_sales_report_end_to_end() {
    let Some(pg) = Postgres::start() else { return };
    pg.psql(
        "drop table if exists sales; \
         create table sales (region text not null, total numeric(12,2) not null, week text not null); \
         insert into sales values ('EMEA', 125000.50, '2026-W47'), ('EMEA', 98000.25, '2026-W46'), \
         ('APAC', 77000.00, '2026-W47'), ('AMER', 210000.00, '2026-W47');",
    );
    let sink = SmtpSink::start(false);
    let home = tempfile::tempdir().unwrap();
    let smtp = sink.url();
    let env = [("AOS_SQL_URL", pg.url.as_str()), ("AOS_SMTP_URL", smtp.as_str()), ("AOS_SMTP_FROM", "reports@example.com")];

    // The run queries one region, summarizes, verifies, and stops at the gate.
    let o = aosc(home.path(), &env, &["run", EXAMPLE, "--input", "region=EMEA", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let v = json_of(&o);
    assert_eq!(v["status"], "waiting_approval");
    let id = v["run_id"].as_str().unwrap().to_string();
    assert!(sink.received().is_empty(), "nothing is sent before approval");

    let show = json_of(&aosc(home.path(), &env, &["show", &id, "--json"]));
    let rows = step(&show, "rows")["output"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["region"] == "EMEA"));
    assert!(rows.iter().any(|r| r["total"] == 125000.5 && r["week"] == "2026-W47"));
    let summary = step(&show, "summary")["output"].as_str().unwrap().to_string();
    assert!(summary.starts_with("[sim:") && summary.len() > 20, "{summary}");
    assert_eq!(step(&show, "sent")["status"], "waiting_approval");

    let a = aosc(home.path(), &env, &["approve", &id, "sent", "--by", "sales-lead"]);
    assert_eq!(a.status.code(), Some(0), "{}", String::from_utf8_lossy(&a.stderr));
    let r = aosc(home.path(), &env, &["resume", &id, "--json"]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let v = json_of(&r);
    assert_eq!(v["status"], "succeeded");
    let message_id = v["output"].as_str().unwrap().to_string();

    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, "<reports@example.com>");
    assert_eq!(got[0].to, vec!["<sales@example.com>"]);
    assert_eq!(got[0].header("Subject").unwrap(), "Weekly sales: EMEA");
    assert_eq!(got[0].header("Message-ID").unwrap(), message_id);
    let body = got[0].body().replace("\r\n", "\n");
    assert!(body.trim_end().contains(summary.trim_end()), "the mail holds the summary:\n{body}\n---\n{summary}");

    let audit = aosc(home.path(), &env, &["audit", "verify", &id]);
    assert_eq!(audit.status.code(), Some(0), "{}", String::from_utf8_lossy(&audit.stdout));

    // Resuming the finished run sends nothing more.
    let again = aosc(home.path(), &env, &["resume", &id, "--json"]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(json_of(&again)["output"], message_id.as_str());
    assert_eq!(sink.received().len(), 1);

    // A new run over the same figures has the same idempotency key: once
    // approved, the send is deduplicated and returns the first Message-ID.
    let o = aosc(home.path(), &env, &["run", EXAMPLE, "--input", "region=EMEA", "--json"]);
    assert_eq!(o.status.code(), Some(3));
    let id2 = json_of(&o)["run_id"].as_str().unwrap().to_string();
    assert_eq!(aosc(home.path(), &env, &["approve", &id2, "sent"]).status.code(), Some(0));
    let r = aosc(home.path(), &env, &["resume", &id2, "--json"]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(json_of(&r)["output"], message_id.as_str());
    assert_eq!(sink.received().len(), 1, "the repeated run sent nothing");
}

const FAILING: &str = r#"
use std.sql
use std.email
use std.http

workflow q() -> Int {
  budget: $0.10
  step rows: List<Json> = sql.query(sql: "select * from nowhere where id = $1", params: [1])
  return len(rows)
}

workflow mail() -> String {
  budget: $0.10
  risk: high
  step sent = email.send(to: "a@example.com", subject: "s", body: "b") { idempotency_key: "fail-test" }
  return sent.message_id
}

workflow fetch(url: String) -> String {
  budget: $0.10
  step page = http.get(url: url) { timeout: 1s }
  return page
}
"#;

fn failed_step_error(home: &Path, env: &[(&str, &str)], file: &str, wf: &str, inputs: &[&str]) -> String {
    let mut args = vec!["run", file, "--workflow", wf, "--json"];
    args.extend_from_slice(inputs);
    let o = aosc(home, env, &args);
    assert_eq!(o.status.code(), Some(1), "{} {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let id = json_of(&o)["run_id"].as_str().unwrap().to_string();
    let human = String::from_utf8_lossy(&aosc(home, env, &["show", &id]).stdout).into_owned();
    let show = json_of(&aosc(home, env, &["show", &id, "--json"]));
    assert_eq!(show["status"], "failed");
    let err = show["error"].as_str().unwrap_or_default().to_string();
    assert!(human.contains(err.lines().next().unwrap_or("")), "`aosc show` displays the error:\n{human}");
    err
}

#[test]
fn tool_failures_end_the_step_with_a_clear_error_in_show() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("failing.aos");
    std::fs::write(&file, FAILING).unwrap();
    let file = file.to_string_lossy().into_owned();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    let url = format!("postgres://postgres@127.0.0.1:{closed}/postgres");
    let e = failed_step_error(home.path(), &[("AOS_SQL_URL", &url)], &file, "q", &[]);
    assert!(e.contains("cannot connect to the SQL database"), "{e}");

    if let Some(pg) = Postgres::start() {
        let e = failed_step_error(home.path(), &[("AOS_SQL_URL", &pg.url)], &file, "q", &[]);
        assert!(e.contains("the database refused the SQL") && e.contains("nowhere"), "{e}");
    }

    let sink = SmtpSink::start(true);
    let smtp = sink.url();
    let e = failed_step_error(home.path(), &[("AOS_SMTP_URL", &smtp), ("AOS_SMTP_FROM", "r@example.com")], &file, "mail", &[]);
    assert!(e.contains("did not accept the email") && e.contains("550"), "{e}");

    // An HTTP server that accepts and never answers: the step's timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("url=http://{}/", silent.local_addr().unwrap());
    let e = failed_step_error(home.path(), &[], &file, "fetch", &["--input", &url]);
    assert!(e.contains("timed out"), "{e}");
    drop(silent);
}

/// A loopback HTTP server answering every request with a JSON echo of its
/// request line and body.
fn echo_server() -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (String::new(), String::new());
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
            let line = head.lines().next().unwrap_or("").to_string();
            let out = serde_json::json!({"request": line, "body": serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)}).to_string();
            let _ = s.write_all(
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{out}", out.len()).as_bytes(),
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn user_http_tools_and_memory_through_aosc() {
    let home = tempfile::tempdir().unwrap();
    let base = echo_server();
    let src = format!(
        r#"
use std.memory

tool crm.lookup(customer_id: String) -> Json {{
  http: "POST {base}/lookup"
  risk: low
}}

workflow enrich(id: String = "c-42") -> Json {{
  budget: $0.10
  step found = crm.lookup(customer_id: id)
  step saved = memory.remember(key: "customer {{id}}", value: found)
  return found
}}

workflow recall(q: String) -> List<Json> {{
  budget: $0.10
  step hits = memory.recall(query: q, k: 1)
  return hits
}}
"#
    );
    let file = home.path().join("crm.aos");
    std::fs::write(&file, src).unwrap();
    let file = file.to_string_lossy().into_owned();
    let o = aosc(home.path(), &[], &["run", &file, "--workflow", "enrich", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let out = json_of(&o)["output"].clone();
    assert_eq!(out["request"], "POST /lookup HTTP/1.1");
    assert_eq!(out["body"], serde_json::json!({"customer_id": "c-42"}));
    let o = aosc(home.path(), &[], &["run", &file, "--workflow", "recall", "--input", "q=customer c-42", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let hits = json_of(&o)["output"].clone();
    assert_eq!(hits[0]["key"], "customer c-42");
    assert_eq!(hits[0]["value"]["body"]["customer_id"], "c-42");
}
