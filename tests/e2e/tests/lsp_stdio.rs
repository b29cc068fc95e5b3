//! Drives the real `aosc lsp` binary through a whole session over stdio,
//! with JSON-RPC framing: every feature on examples/weekly_sales_report.aos.
//! Every wait has a timeout, and the server is killed on drop, so the test
//! cannot hang.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

struct Session {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    /// Notifications received while waiting for something else.
    pending: Vec<Value>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Session {
    fn start() -> Session {
        let mut child = Command::new(aos_e2e::aosc())
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aosc lsp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut len = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        len = n.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; len.expect("a Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let value: Value = serde_json::from_slice(&body).expect("a JSON message");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Session { child, stdin, rx, next_id: 1, pending: Vec::new() }
    }

    fn send(&mut self, msg: &Value) {
        let body = serde_json::to_string(msg).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn recv(&mut self, deadline: Instant) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("timed out waiting for the server"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output"),
        }
    }

    /// Sends a request and returns its result (panics on an error reply).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let msg = self.recv(deadline);
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                if let Some(err) = msg.get("error") {
                    panic!("{method} failed: {err}");
                }
                return msg.get("result").cloned().unwrap_or(Value::Null);
            }
            if msg.get("id").is_some() && msg.get("method").is_some() {
                // A request from the server (none expected): answer null.
                let reply = json!({ "jsonrpc": "2.0", "id": msg["id"], "result": null });
                self.send(&reply);
                continue;
            }
            self.pending.push(msg);
        }
    }

    /// Waits for `textDocument/publishDiagnostics` for `uri` that satisfies
    /// `pred`.
    fn diagnostics(&mut self, uri: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        let is_it = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri && pred(&m["params"])
        };
        if let Some(i) = self.pending.iter().position(is_it) {
            return self.pending.remove(i)["params"].clone();
        }
        loop {
            let msg = self.recv(deadline);
            if is_it(&msg) {
                return msg["params"].clone();
            }
        }
    }
}

/// The 0-based (line, UTF-16 column) of the `nth` occurrence of `needle`,
/// plus `shift` characters.
fn pos(text: &str, needle: &str, nth: usize, shift: usize) -> Value {
    let offset = text.match_indices(needle).nth(nth).expect("needle in text").0 + shift;
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let col = before.rsplit('\n').next().unwrap().encode_utf16().count();
    json!({ "line": line, "character": col })
}

#[test]
fn a_whole_session_over_stdio() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/weekly_sales_report.aos");
    let path = path.canonicalize().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let uri = format!("file://{}", path.display());
    let doc = json!({ "uri": uri });
    let mut s = Session::start();

    let init = s.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    let caps = &init["capabilities"];
    for cap in [
        "hoverProvider",
        "definitionProvider",
        "referencesProvider",
        "renameProvider",
        "completionProvider",
        "documentSymbolProvider",
        "documentFormattingProvider",
        "codeActionProvider",
        "semanticTokensProvider",
        "codeLensProvider",
    ] {
        assert!(!caps[cap].is_null(), "capability {cap} missing: {caps}");
    }
    s.notify("initialized", json!({}));

    // Open: the example is clean.
    s.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "aos", "version": 1, "text": text } }),
    );
    let first = s.diagnostics(&uri, |_| true);
    let errors: Vec<&Value> = first["diagnostics"].as_array().unwrap().iter().filter(|d| d["severity"] == 1).collect();
    assert!(errors.is_empty(), "the example should check clean: {errors:?}");

    // An edit that misspells a step: E0101 with the version of the edit.
    let at = pos(&text, "body: summary", 0, "body: ".len());
    let end = json!({ "line": at["line"], "character": at["character"].as_u64().unwrap() + "summary".len() as u64 });
    s.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": uri, "version": 2 },
            "contentChanges": [{ "range": { "start": at, "end": end }, "text": "sumary" }]
        }),
    );
    let diags = s.diagnostics(&uri, |p| p["version"] == 2);
    let list = diags["diagnostics"].as_array().unwrap();
    let e0101 = list.iter().find(|d| d["code"] == "E0101").unwrap_or_else(|| panic!("no E0101 in {list:?}"));
    assert_eq!(e0101["range"]["start"], at);
    assert!(e0101["message"].as_str().unwrap().contains("sumary"), "{e0101}");

    // Quick fix: the "did you mean" of that diagnostic.
    let actions =
        s.request("textDocument/codeAction", json!({ "textDocument": doc, "range": e0101["range"], "context": { "diagnostics": [] } }));
    let fix = actions.as_array().unwrap().iter().find(|a| a["title"] == "change to `summary`").expect("a did-you-mean fix");
    assert_eq!(fix["edit"]["changes"][&uri][0]["newText"], "summary");

    // Hover on the step `summary`: its type and its cost.
    let h = s.request("textDocument/hover", json!({ "textDocument": doc, "position": pos(&text, "step summary", 0, 6) }));
    let md = h["contents"]["value"].as_str().unwrap();
    assert!(md.contains("step summary: String"), "{md}");
    assert!(md.contains("LLM step"), "{md}");

    // Definition of `rows` inside the prompt's interpolation.
    let d = s.request("textDocument/definition", json!({ "textDocument": doc, "position": pos(&text, "{rows}", 0, 1) }));
    assert_eq!(d["uri"], uri);
    assert_eq!(d["range"]["start"], pos(&text, "step rows", 0, 5));

    // References of the parameter `region`: declaration, `params: [region]`,
    // three interpolations (prompt, subject, idempotency key).
    let r = s.request(
        "textDocument/references",
        json!({ "textDocument": doc, "position": pos(&text, "(region: String", 0, 1), "context": { "includeDeclaration": true } }),
    );
    assert_eq!(r.as_array().unwrap().len(), 5, "{r}");

    // Completion after `email.`.
    let c = s.request("textDocument/completion", json!({ "textDocument": doc, "position": pos(&text, "email.send", 0, 6) }));
    let labels: Vec<&str> = c.as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["send"]);

    // Rename the step `rows` (declaration, the prompt's and the
    // idempotency key's interpolations, and the two test blocks'
    // `expect ran [rows, …]`).
    let w = s.request(
        "textDocument/rename",
        json!({ "textDocument": doc, "position": pos(&text, "step rows", 0, 5), "newName": "lines" }),
    );
    let edits = w["changes"][&uri].as_array().unwrap();
    assert_eq!(edits.len(), 5, "{w}");
    assert!(edits.iter().all(|e| e["newText"] == "lines"));

    // Renaming a stdlib tool is refused.
    let id = s.next_id;
    s.next_id += 1;
    s.send(&json!({ "jsonrpc": "2.0", "id": id, "method": "textDocument/rename",
        "params": { "textDocument": doc, "position": pos(&text, "email.send", 0, 0), "newName": "mail.send" } }));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let m = s.recv(deadline);
        if m["id"] == id {
            assert!(m["error"]["message"].as_str().unwrap().contains("standard library"), "{m}");
            break;
        }
    }

    // Symbols and semantic tokens.
    let syms = s.request("textDocument/documentSymbol", json!({ "textDocument": doc }));
    let wf = syms.as_array().unwrap().iter().find(|s| s["name"] == "weekly_sales_report").unwrap();
    let steps: Vec<&str> = wf["children"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(steps, ["rows", "summary", "sent"]);
    let toks = s.request("textDocument/semanticTokens/full", json!({ "textDocument": doc }));
    assert!(toks["data"].as_array().unwrap().len() > 50);

    // A "Run test" lens above each test block; running what it says passes.
    let lenses = s.request("textDocument/codeLens", json!({ "textDocument": doc }));
    let lenses = lenses.as_array().unwrap();
    assert_eq!(lenses.len(), text.matches("\ntest \"").count(), "{lenses:?}");
    let first = &lenses[0];
    assert_eq!(first["command"]["title"], "▶ Run test");
    assert_eq!(first["command"]["command"], "aos.runTest");
    let args = first["command"]["arguments"].as_array().unwrap();
    assert_eq!(args[1], "the approved report is sent");
    assert!(args[2].as_str().unwrap().starts_with("aosc test '"), "{args:?}");
    let line = first["range"]["start"]["line"].as_u64().unwrap() as usize;
    assert!(text.lines().nth(line).unwrap().starts_with("test \"the approved report is sent\""));
    let run = std::process::Command::new(aos_e2e::aosc())
        .args(["test", args[0].as_str().unwrap(), "--filter", args[1].as_str().unwrap()])
        .env("AOS_HOME", std::env::temp_dir().join("aos-lsp-lens-home-unused"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success() && out.contains("1 passed, 0 failed"), "{out}");

    // Formatting: an unformatted document gets one whole-document edit.
    let messy = text.replace("budget: $0.50", "budget:     $0.50");
    s.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{ "text": messy }] }),
    );
    let f = s.request("textDocument/formatting", json!({ "textDocument": doc, "options": { "tabSize": 2, "insertSpaces": true } }));
    let f = f.as_array().unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["newText"].as_str().unwrap(), text);
    s.diagnostics(&uri, |p| p["version"] == 3 && p["diagnostics"].as_array().unwrap().is_empty());

    // Shutdown and exit: the process ends by itself.
    assert_eq!(s.request("shutdown", Value::Null), Value::Null);
    s.notify("exit", Value::Null);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "aosc lsp did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}
