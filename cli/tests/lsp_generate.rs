//! The language server's "Generate steps from intent" over stdio: the real
//! `aosc lsp` binary, a document whose workflow has an `intent:` and no
//! steps, and the planner a fake OpenAI-compatible server on loopback. The
//! action is offered without an edit; resolving it runs `aosc new` and
//! returns the edit, which makes the document check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::fake_llm;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use fake_llm::{Act, Fake, Keys};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);
const KEY: &str = "sk-lsp-generate";

/// The meeting-room tool catalog the planner is given (`--with`).
const TOOLS: &str = include_str!("fixtures/rooms_tools.aos");

const DOC: &str = "use \"./rooms.aos\"\n\nworkflow book_room() {\n  intent: \"Find a free meeting room from 2pm to 4pm and reserve it\"\n}\n";

struct Session {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Session {
    fn start(dir: &Path, openai_base: &str) -> Session {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aosc"))
            .arg("lsp")
            .current_dir(dir)
            .env("HOME", dir)
            .env("AOS_HOME", dir.join(".aos"))
            .env_remove("AOS_LLM")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("GEMINI_API_KEY")
            .env_remove("AOS_PLANNER_MODEL_ID")
            .env("OPENAI_API_KEY", KEY)
            .env("OPENAI_BASE_URL", openai_base)
            .env("AOS_LLM_BACKOFF_MS", "5")
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
                if tx.send(serde_json::from_slice::<Value>(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        Session { child, stdin, rx, next_id: 1 }
    }

    fn send(&mut self, msg: &Value) {
        let body = serde_json::to_string(msg).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// The whole reply (result or error) to a request.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let msg = self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("a reply in time");
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                return msg;
            }
            if msg.get("id").is_some() && msg.get("method").is_some() {
                let reply = json!({ "jsonrpc": "2.0", "id": msg["id"], "result": null });
                self.send(&reply);
            }
        }
    }
}

/// Applies LSP text edits (line/character positions; ASCII text here).
fn apply(text: &str, edits: &[Value]) -> String {
    let offset = |pos: &Value| {
        let (line, ch) = (pos["line"].as_u64().unwrap() as usize, pos["character"].as_u64().unwrap() as usize);
        text.split_inclusive('\n').take(line).map(str::len).sum::<usize>() + ch
    };
    let mut spans: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| (offset(&e["range"]["start"]), offset(&e["range"]["end"]), e["newText"].as_str().unwrap().to_string()))
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut out = text.to_string();
    for (s, e, t) in spans {
        out.replace_range(s..e, &t);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_steps_from_intent_fills_the_workflow() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rooms.aos"), TOOLS).unwrap();
    let doc_path = dir.path().join("book.aos");
    std::fs::write(&doc_path, DOC).unwrap();
    let fake = Fake::start(Keys { openai: KEY.into(), anthropic: "unused".into(), gemini: "unused".into() }).await;
    fake.script(
        "gpt-4o-mini",
        vec![Act::text(r#"{"steps":[{"tool":"Rooms.get_empty_room","args":[{"name":"start_time","value":"14:00"},{"name":"end_time","value":"16:00"}]},{"tool":"Rooms.reserve","args":[{"name":"start_time","value":"14:00"},{"name":"end_time","value":"16:00"},{"name":"room_id","value":"step1.rooms[0]"}]}]}"#)],
    );
    let base = fake.openai_base();
    let d = dir.path().to_path_buf();
    let uri = format!("file://{}", doc_path.display());
    let (actions, resolved) = tokio::task::spawn_blocking(move || {
        let mut s = Session::start(&d, &base);
        let init = s.request("initialize", json!({ "capabilities": {}, "rootUri": null, "processId": null }));
        assert_eq!(init["result"]["capabilities"]["codeActionProvider"]["resolveProvider"], true, "{init}");
        s.notify("initialized", json!({}));
        s.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "aos", "version": 1, "text": DOC } }));
        let range = json!({ "start": { "line": 3, "character": 2 }, "end": { "line": 3, "character": 2 } });
        let actions = s.request("textDocument/codeAction", json!({ "textDocument": { "uri": uri }, "range": range, "context": { "diagnostics": [] } }));
        let action = actions["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["title"] == "Generate steps from intent")
            .cloned()
            .unwrap_or_else(|| panic!("no generate action: {actions}"));
        let resolved = s.request("codeAction/resolve", action.clone());
        let _ = s.request("shutdown", Value::Null);
        (action, resolved)
    })
    .await
    .unwrap();
    assert!(actions.get("edit").is_none_or(Value::is_null), "offered with an edit: {actions}");
    let seen = fake.seen_for("gpt-4o-mini");
    assert_eq!(seen.len(), 1, "the planner was asked once");
    assert!(seen[0].body.to_string().contains("Rooms.reserve"));
    let edit = &resolved["result"]["edit"]["changes"];
    let edits = edit.as_object().unwrap().values().next().unwrap().as_array().unwrap().clone();
    let text = apply(DOC, &edits);
    assert!(text.contains("workflow book_room("), "{text}");
    assert!(text.contains("Rooms.get_empty_room(") && text.contains("Rooms.reserve("), "{text}");
    assert!(text.starts_with("use \"./rooms.aos\""), "{text}");
    // No scratch file is left beside the document.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 2 + usize::from(dir.path().join(".aos").exists()), "{left:?}");
    // The document with the edit checks.
    std::fs::write(&doc_path, &text).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_aosc")).args(["check", "book.aos"]).current_dir(dir.path()).output().unwrap();
    assert!(check.status.success(), "{text}\n{}", String::from_utf8_lossy(&check.stderr));
}

/// A failed generation is an error reply naming why, not an edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_generation_says_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rooms.aos"), TOOLS).unwrap();
    let doc = "use \"./rooms.aos\"\n\nworkflow cake() {\n  intent: \"Bake a chocolate cake\"\n}\n";
    let doc_path = dir.path().join("cake.aos");
    std::fs::write(&doc_path, doc).unwrap();
    let fake = Fake::start(Keys { openai: KEY.into(), anthropic: "unused".into(), gemini: "unused".into() }).await;
    let base = fake.openai_base();
    let d = dir.path().to_path_buf();
    let uri = format!("file://{}", doc_path.display());
    let resolved = tokio::task::spawn_blocking(move || {
        let mut s = Session::start(&d, &base);
        s.request("initialize", json!({ "capabilities": {}, "rootUri": null, "processId": null }));
        s.notify("initialized", json!({}));
        s.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "aos", "version": 1, "text": doc } }));
        let range = json!({ "start": { "line": 2, "character": 0 }, "end": { "line": 2, "character": 0 } });
        let actions = s.request("textDocument/codeAction", json!({ "textDocument": { "uri": uri }, "range": range, "context": { "diagnostics": [] } }));
        let action = actions["result"].as_array().unwrap().iter().find(|a| a["title"] == "Generate steps from intent").cloned().unwrap();
        s.request("codeAction/resolve", action)
    })
    .await
    .unwrap();
    let message = resolved["error"]["message"].as_str().unwrap_or_else(|| panic!("{resolved}"));
    assert!(message.contains("no tool on offer"), "{message}");
    assert!(fake.seen().is_empty());
}
