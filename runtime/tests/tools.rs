//! The standard library's tools against real services: SQLite and
//! PostgreSQL for `sql.*`, an SMTP server on loopback for `email.send`, an
//! HTTP server on loopback for `http.*` and user `http:` tools, and the
//! store for `memory.*`. Each failure mode gives a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::services as support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::store::Store;
use aos_runtime::tools::guard::Guard;
use aos_runtime::tools::{http, Tool, ToolConfig, ToolCtx, ToolError, Tools};
use serde_json::{json, Value};
use support::{Postgres, SmtpSink};

fn ctx(key: Option<&str>) -> ToolCtx {
    ToolCtx { workspace: std::env::temp_dir(), idempotency_key: key.map(str::to_string), run_id: "run1".into(), step: "s".into(), ..Default::default() }
}

/// The tools of `cfg`; the loopback servers of these tests are allowed
/// through the outbound guard unless `cfg` says otherwise.
fn tools(mut cfg: ToolConfig) -> Tools {
    cfg.http_allow.get_or_insert_with(|| "127.0.0.1".into());
    Tools::with_config(&cfg)
}

/// The call's value, or its error's message.
async fn call(t: &Tools, name: &str, args: Value) -> Result<Value, String> {
    t.get(name).unwrap().call(args, &ctx(None)).await.map_err(|e| e.to_string())
}

/// The call's error, typed.
async fn fail(t: &Tools, name: &str, args: Value) -> ToolError {
    match t.get(name).unwrap().call(args, &ctx(None)).await {
        Ok(v) => panic!("{name} succeeded: {v}"),
        Err(e) => e,
    }
}

/// Each failure says what kind it is, so that nothing downstream reads
/// the message to tell them apart.
#[tokio::test]
async fn tool_failures_are_typed_by_kind() {
    let base = http_server();
    let t = tools(ToolConfig::default());
    assert!(matches!(fail(&t, "http.get", json!({})).await, ToolError::BadInput(_)));
    assert!(matches!(fail(&t, "http.get", json!({"url": "file:///etc/passwd"})).await, ToolError::Denied(_)));
    assert!(matches!(fail(&t, "http.get", json!({"url": format!("{base}/missing")})).await, ToolError::Failed(_)));
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = fail(&t, "http.get", json!({"url": format!("http://127.0.0.1:{port}/")})).await;
    assert!(matches!(e, ToolError::Transport(_)), "{e:?}");
    let closed = tools(ToolConfig { http_allow: Some(String::new()), ..Default::default() });
    let e = fail(&closed, "http.get", json!({"url": format!("{base}/ok")})).await;
    assert!(matches!(&e, ToolError::Denied(m) if m.contains("refused:")), "{e:?}");
    let e = fail(&closed, "http.get", json!({"url": format!("http://localhost:{port}/")})).await;
    assert!(matches!(e, ToolError::Denied(_)), "{e:?}");
    let slow = http::Get(http::client_with_timeout(Duration::from_millis(300), Guard::parse("127.0.0.1")).unwrap());
    let e = slow.call(json!({"url": format!("{base}/slow")}), &ctx(None)).await.unwrap_err();
    assert!(matches!(e, ToolError::Timeout(_)), "{e:?}");
    assert!(matches!(fail(&t, "sql.query", json!({"sql": "select 1"})).await, ToolError::Unavailable(_)));
    assert!(matches!(fail(&t, "email.send", json!({"to": "a@b.c", "subject": "s", "body": "b"})).await, ToolError::Unavailable(_)));
    assert!(matches!(fail(&t, "file.read", json!({"path": "../x"})).await, ToolError::Denied(_)));
    assert!(matches!(fail(&t, "file.read", json!({})).await, ToolError::BadInput(_)));
    assert!(matches!(fail(&t, "file.read", json!({"path": "surely/not/here.txt"})).await, ToolError::Failed(_)));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let db = tools(ToolConfig { sql_url: Some(url), ..Default::default() });
    assert!(matches!(fail(&db, "sql.query", json!({"sql": "selec nothing"})).await, ToolError::Failed(_)));
    assert!(matches!(fail(&db, "sql.query", json!({"sql": "select 1", "params": 3})).await, ToolError::BadInput(_)));
}

#[tokio::test]
async fn sql_on_sqlite_binds_parameters_and_maps_types() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let t = tools(ToolConfig { sql_url: Some(url), ..Default::default() });
    call(&t, "sql.execute", json!({"sql": "create table s (region text, total real, n integer, note text)"})).await.unwrap();
    let r = call(&t, "sql.execute", json!({"sql": "insert into s values ($1, $2, $3, $4), ('US', 2.5, 1, null)", "params": ["EMEA", 10.25, 3, "it's"]}))
        .await
        .unwrap();
    assert_eq!(r, json!({"rows_affected": 2}));
    let rows = call(&t, "sql.query", json!({"sql": "select * from s where region = $1", "params": ["EMEA"]})).await.unwrap();
    assert_eq!(rows, json!([{"region": "EMEA", "total": 10.25, "n": 3, "note": "it's"}]));
    // A parameter is data, never SQL.
    let rows = call(&t, "sql.query", json!({"sql": "select * from s where region = $1", "params": ["x' or '1'='1"]})).await.unwrap();
    assert_eq!(rows, json!([]));
    let e = call(&t, "sql.query", json!({"sql": "selec nothing"})).await.unwrap_err();
    assert!(e.starts_with("the database refused the SQL:") && e.contains("syntax error"), "{e}");
}

#[tokio::test]
async fn sql_without_a_database_says_how_to_configure_one() {
    let t = tools(ToolConfig::default());
    let e = call(&t, "sql.query", json!({"sql": "select 1"})).await.unwrap_err();
    assert!(e.contains("set AOS_SQL_URL"), "{e}");
    let t = tools(ToolConfig { sql_url: Some("mysql://x".into()), ..Default::default() });
    assert!(call(&t, "sql.query", json!({"sql": "select 1"})).await.unwrap_err().contains("expected a postgres:// or sqlite://"));
}

#[tokio::test]
async fn sql_reports_an_unreachable_postgres() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = tools(ToolConfig { sql_url: Some(format!("postgres://u:pw@127.0.0.1:{port}/db")), ..Default::default() });
    let e = call(&t, "sql.query", json!({"sql": "select 1"})).await.unwrap_err();
    assert!(e.starts_with("cannot connect to the SQL database `postgres://u:***@127.0.0.1:"), "{e}");
    assert!(!e.contains("pw"), "the password leaked: {e}");
}

#[tokio::test]
async fn sql_on_postgres_maps_types() {
    let Some(pg) = Postgres::start() else { return };
    pg.psql(
        "drop table if exists t_types; create table t_types (id int4, big int8, price numeric(12,2), f float8, ok bool, \
         d date, ts timestamptz, doc jsonb, name varchar(20), u uuid); \
         insert into t_types values (1, 9000000000, 1234.50, 0.25, true, '2026-11-23', '2026-11-23 09:00:00+00', \
         '{\"a\": [1, 2]}', 'EMEA', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), (2, null, -0.05, null, false, null, null, null, null, null);",
    );
    let t = tools(ToolConfig { sql_url: Some(pg.url.clone()), ..Default::default() });
    let rows = call(&t, "sql.query", json!({"sql": "select * from t_types where id >= $1 order by id", "params": [1]})).await.unwrap();
    assert_eq!(
        rows,
        json!([
            {"id": 1, "big": 9000000000i64, "price": 1234.5, "f": 0.25, "ok": true, "d": "2026-11-23", "ts": "2026-11-23T09:00:00Z",
             "doc": {"a": [1, 2]}, "name": "EMEA", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
            {"id": 2, "big": null, "price": -0.05, "f": null, "ok": false, "d": null, "ts": null, "doc": null, "name": null, "u": null}
        ])
    );
    let rows = call(&t, "sql.query", json!({"sql": "select name from t_types where name = $1", "params": ["x' or '1'='1"]})).await.unwrap();
    assert_eq!(rows, json!([]));
    let r = call(&t, "sql.execute", json!({"sql": "update t_types set ok = $1 where id = $2", "params": [true, 2]})).await.unwrap();
    assert_eq!(r, json!({"rows_affected": 1}));
    let e = call(&t, "sql.query", json!({"sql": "select nope from t_types"})).await.unwrap_err();
    assert!(e.contains("the database refused the SQL") && e.contains("nope"), "{e}");
    let e = call(&t, "sql.query", json!({"sql": "select point(1,2) as p"})).await.unwrap_err();
    assert!(e.contains("column `p` has type POINT") && e.contains("cast it"), "{e}");
}

#[tokio::test]
async fn email_is_delivered_over_smtp_with_a_key_derived_message_id() {
    let sink = SmtpSink::start(false);
    let t = tools(ToolConfig { smtp_url: Some(sink.url()), smtp_from: Some("reports@example.com".into()), ..Default::default() });
    let send = t.get("email.send").unwrap();
    let args = json!({"to": "a@example.com, b@example.com", "subject": "Weekly", "body": "Sales are up.\n.\nA line with a dot."});
    let a = send.call(args.clone(), &ctx(Some("weekly/EMEA"))).await.unwrap();
    let b = send.call(args, &ctx(Some("weekly/EMEA"))).await.unwrap();
    assert_eq!(a, b, "the same key gives the same Message-ID");
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].to, vec!["<a@example.com>", "<b@example.com>"]);
    assert_eq!(got[0].header("Message-ID").unwrap(), a["message_id"].as_str().unwrap());
    assert!(got[0].body().contains("Sales are up.\r\n.\r\nA line with a dot."), "{:?}", got[0].body());
}

#[tokio::test]
async fn email_failures_are_clear() {
    let sink = SmtpSink::start(true);
    let t = tools(ToolConfig { smtp_url: Some(sink.url()), smtp_from: Some("reports@example.com".into()), ..Default::default() });
    let args = json!({"to": "a@example.com", "subject": "s", "body": "b"});
    let e = call(&t, "email.send", args.clone()).await.unwrap_err();
    assert!(e.contains("did not accept the email") && e.contains("550"), "{e}");
    assert!(sink.received().is_empty());
    let e = call(&tools(ToolConfig::default()), "email.send", args.clone()).await.unwrap_err();
    assert!(e.contains("set AOS_SMTP_URL"), "{e}");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = tools(ToolConfig { smtp_url: Some(format!("smtp://127.0.0.1:{port}")), smtp_from: Some("r@example.com".into()), ..Default::default() });
    let e = call(&t, "email.send", args).await.unwrap_err();
    assert!(e.contains(&format!("SMTP relay 127.0.0.1:{port} did not accept")), "{e}");
}

/// A loopback HTTP/1.1 server: `/ok` 200 text, `/json` JSON echo of the
/// request (method, target, body), `/missing` 404, `/loop` redirects to
/// itself, `/big` 2 MiB, `/slow` answers after 3 s.
fn http_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
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
                let mut first = head.lines().next().unwrap().split(' ');
                let (method, target) = (first.next().unwrap().to_string(), first.next().unwrap().to_string());
                let reply = |status: &str, ctype: &str, body: &str, extra: &str| {
                    format!("HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}", body.len())
                };
                let out = match target.split('?').next().unwrap() {
                    "/ok" => reply("200 OK", "text/plain", "hello", ""),
                    "/json" => reply("200 OK", "application/json", &json!({"method": method, "target": target, "body": body}).to_string(), ""),
                    "/loop" => reply("302 Found", "text/plain", "", "location: /loop\r\n"),
                    "/hop" => {
                        let to = target.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
                        reply("302 Found", "text/plain", "", &format!("location: {to}\r\n"))
                    }
                    "/big" => reply("200 OK", "text/plain", &"x".repeat(2 << 20), ""),
                    "/slow" => {
                        std::thread::sleep(Duration::from_secs(3));
                        reply("200 OK", "text/plain", "late", "")
                    }
                    _ => reply("404 Not Found", "text/plain", "no such page", ""),
                };
                let _ = s.write_all(out.as_bytes());
            });
        }
    });
    base
}

#[tokio::test]
async fn http_tools_bound_time_size_and_redirects() {
    let base = http_server();
    let t = tools(ToolConfig::default());
    assert_eq!(call(&t, "http.get", json!({"url": format!("{base}/ok")})).await.unwrap(), json!("hello"));
    let e = call(&t, "http.get", json!({"url": format!("{base}/missing")})).await.unwrap_err();
    assert!(e.contains("answered HTTP 404: no such page"), "{e}");
    let e = call(&t, "http.get", json!({"url": format!("{base}/loop")})).await.unwrap_err();
    assert!(e.contains("redirected more than 5 times"), "{e}");
    let e = call(&t, "http.get", json!({"url": format!("{base}/big")})).await.unwrap_err();
    assert!(e.contains("larger than the 1024 KiB bound"), "{e}");
    let e = call(&t, "http.get", json!({"url": "file:///etc/passwd"})).await.unwrap_err();
    assert!(e.contains("only http:// and https://"), "{e}");
    let r = call(&t, "http.request", json!({"method": "post", "url": format!("{base}/json"), "body": {"a": 1}})).await.unwrap();
    assert_eq!(r["status"], 200);
    let echoed: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!((echoed["method"].as_str(), echoed["body"].as_str()), (Some("POST"), Some("{\"a\":1}")));
    let r = call(&t, "http.request", json!({"method": "GET", "url": format!("{base}/missing")})).await.unwrap();
    assert_eq!(r["status"], 404);

    let slow = http::Get(http::client_with_timeout(Duration::from_millis(500), Guard::parse("127.0.0.1")).unwrap());
    let e = slow.call(json!({"url": format!("{base}/slow")}), &ctx(None)).await.unwrap_err().to_string();
    assert!(e.contains("timed out"), "{e}");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = call(&t, "http.get", json!({"url": format!("http://127.0.0.1:{port}/")})).await.unwrap_err();
    assert!(e.starts_with("cannot connect to"), "{e}");
}

/// The outbound guard (issue 17): loopback, private, link-local and
/// metadata addresses are refused (after DNS resolution, and on every
/// redirect) unless allowed by AOS_HTTP_ALLOW; with the allow they work.
#[tokio::test]
async fn the_outbound_guard_refuses_internal_addresses_unless_allowed() {
    let base = http_server();
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let closed = tools(ToolConfig { http_allow: Some(String::new()), ..Default::default() });
    for url in [
        format!("{base}/ok"),
        format!("http://localhost:{port}/ok"),
        format!("http://2130706433:{port}/ok"),
        format!("http://0x7f.1:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://[::1]:9/".to_string(),
    ] {
        let e = call(&closed, "http.get", json!({"url": url})).await.unwrap_err();
        assert!(e.contains("refused:") && e.contains("AOS_HTTP_ALLOW="), "{url}: {e}");
    }
    let e = call(&closed, "http.get", json!({"url": "http://169.254.169.254/x"})).await.unwrap_err();
    assert!(e.contains("cloud metadata"), "{e}");
    let e = call(&closed, "http.request", json!({"method": "POST", "url": format!("{base}/json")})).await.unwrap_err();
    assert!(e.contains(&format!("AOS_HTTP_ALLOW=127.0.0.1:{port}")), "{e}");
    let e = closed.call_http("crm.lookup", "POST", &format!("{base}/json"), json!({})).await.unwrap_err().to_string();
    assert!(e.contains("is a loopback address"), "{e}");

    // Allowed: exactly that address and port.
    let open = tools(ToolConfig { http_allow: Some(format!("127.0.0.1:{port}")), ..Default::default() });
    assert_eq!(call(&open, "http.get", json!({"url": format!("{base}/ok")})).await.unwrap(), json!("hello"));
    assert!(open.call_http("crm.lookup", "POST", &format!("{base}/json"), json!({})).await.is_ok());
    // A redirect from the allowed server to another internal port is refused.
    let other = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = call(&open, "http.get", json!({"url": format!("{base}/hop?http://127.0.0.1:{other}/ok")})).await.unwrap_err();
    assert!(e.contains("redirect") && e.contains("loopback"), "{e}");
    let e = call(&open, "http.get", json!({"url": format!("{base}/hop?http://169.254.169.254/")})).await.unwrap_err();
    assert!(e.contains("cloud metadata"), "{e}");
    // A redirect to a name that resolves to an internal address is refused
    // by the resolver when the connection is made.
    let e = call(&open, "http.get", json!({"url": format!("{base}/hop?http://localhost:{other}/ok")})).await.unwrap_err();
    assert!(e.contains("loopback"), "{e}");
    // A name is allowed by name.
    let named = tools(ToolConfig { http_allow: Some(format!("localhost:{port}")), ..Default::default() });
    assert_eq!(call(&named, "http.get", json!({"url": format!("http://localhost:{port}/ok")})).await.unwrap(), json!("hello"));
}

#[tokio::test]
async fn user_http_tools_send_their_arguments_as_json() {
    let base = http_server();
    let t = tools(ToolConfig::default());
    let v = t.call_http("crm.lookup", "POST", &format!("{base}/json"), json!({"id": 7, "name": "Ada"})).await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(serde_json::from_str::<Value>(v["body"].as_str().unwrap()).unwrap(), json!({"id": 7, "name": "Ada"}));
    let v = t.call_http("crm.find", "GET", &format!("{base}/json"), json!({"q": "a b", "n": 2})).await.unwrap();
    assert_eq!(v["target"], "/json?n=2&q=a+b");
    let e = t.call_http("crm.gone", "GET", &format!("{base}/missing"), json!({})).await.unwrap_err().to_string();
    assert!(e.starts_with("tool `crm.gone` (GET ") && e.contains("HTTP 404"), "{e}");
}

#[tokio::test]
async fn memory_recalls_by_key_and_by_similarity() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("aos.db")).await.unwrap());
    let t = Tools::with_config(&ToolConfig::default()).with_store(store.clone());
    for (k, v) in [
        ("emea-week-47", json!("EMEA sales grew 12% in week 47")),
        ("apac-week-47", json!("APAC sales were flat in week 47")),
        ("oncall", json!({"team": "platform", "pager": "kubernetes restarts"})),
    ] {
        assert_eq!(call(&t, "memory.remember", json!({"key": k, "value": v})).await.unwrap(), json!(true));
    }
    call(&t, "memory.remember", json!({"key": "emea-week-47", "value": "EMEA sales grew 13% in week 47"})).await.unwrap();
    let by_key = call(&t, "memory.recall", json!({"query": "oncall", "k": 1})).await.unwrap();
    assert_eq!(by_key[0]["key"], "oncall");
    assert_eq!(by_key[0]["value"]["team"], "platform");
    let similar = call(&t, "memory.recall", json!({"query": "how did EMEA sales do?"})).await.unwrap();
    assert_eq!(similar[0]["key"], "emea-week-47", "{similar}");
    assert_eq!(similar[0]["value"], "EMEA sales grew 13% in week 47");
    // Persisted in the store: a new tool set over the same store sees it.
    let again = Tools::with_config(&ToolConfig::default()).with_store(store);
    assert_eq!(call(&again, "memory.recall", json!({"query": "emea-week-47"})).await.unwrap()[0]["key"], "emea-week-47");
}

/// Issue 17: SMTP upgrades to TLS when the relay offers STARTTLS (the
/// sink records a TLS ClientHello after its "go ahead"), and never sends
/// the mail in plaintext then; `AOS_SMTP_TLS=none` keeps a local relay's
/// plaintext; a relay without STARTTLS still gets the mail by default.
#[tokio::test]
async fn email_uses_starttls_when_the_relay_offers_it() {
    let sink = SmtpSink::offering_starttls();
    let args = json!({"to": "a@example.com", "subject": "s", "body": "secret figures"});
    let t = tools(ToolConfig { smtp_url: Some(sink.url()), smtp_from: Some("r@example.com".into()), ..Default::default() });
    let e = call(&t, "email.send", args.clone()).await.unwrap_err();
    assert!(e.contains("did not accept the email"), "{e}");
    let seen = sink.after_starttls.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "the client did not ask for STARTTLS");
    assert_eq!(&seen[0][..2], &[0x16, 0x03], "not a TLS handshake: {:?}", seen[0]);
    assert!(sink.received().is_empty());
    let t = tools(ToolConfig { smtp_url: Some(sink.url()), smtp_from: Some("r@example.com".into()), smtp_tls: Some("none".into()), ..Default::default() });
    call(&t, "email.send", args.clone()).await.unwrap();
    assert_eq!(sink.received().len(), 1);
    assert_eq!(sink.after_starttls.lock().unwrap().len(), 1);
    let plain = SmtpSink::start(false);
    let t = tools(ToolConfig { smtp_url: Some(plain.url()), smtp_from: Some("r@example.com".into()), smtp_tls: Some("required".into()), ..Default::default() });
    assert!(call(&t, "email.send", args.clone()).await.is_err());
    assert!(plain.received().is_empty());
}

#[tokio::test]
async fn email_bodies_that_are_not_ascii_arrive_intact() {
    let sink = SmtpSink::start(false);
    let t = tools(ToolConfig { smtp_url: Some(sink.url()), smtp_from: Some("reports@example.com".into()), ..Default::default() });
    let body = "• Umsatz in München: 12 % über Plan\n• 東京: 横ばい\n";
    call(&t, "email.send", json!({"to": "a@example.com", "subject": "Überblick", "body": body})).await.unwrap();
    let got = sink.received();
    assert_eq!(got[0].body().replace("\r\n", "\n"), body);
}
