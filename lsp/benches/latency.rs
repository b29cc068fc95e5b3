//! Latency of diagnostics: time from `didChange` to `publishDiagnostics` on
//! a generated 10k-line file, through the real server and its JSON-RPC
//! framing (over an in-memory pipe), plus the time of the check alone, and
//! then the time of hovers on steps across the file.
//!
//! `cargo run --release -p aos-lsp --bin aos-lsp-bench [LINES] [EDITS]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use aos_lsp::{DocLoader, Snapshot};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A program of about `lines` lines: shared declarations, then workflows.
fn program(lines: usize) -> String {
    let mut s = String::from(
        "use std.email\n\nmodel m = sim(\"x\") { input: $1/M, output: $2/M, context: 100000 }\nrole executor = [m]\n\
         type Row = { id: String, total: Float }\ntool crm.lookup(id: String) -> Row { risk: low }\n\n",
    );
    let mut i = 0;
    while s.lines().count() < lines {
        s.push_str(&format!(
            "/// Workflow number {i}.\nworkflow w{i}(topic: String = \"x\") -> String {{\n  intent: \"workflow {i}\"\n  budget: $5\n  risk: medium\n\n  \
             step a: Row = crm.lookup(id: topic) {{\n    retry: 2\n    timeout: 30s\n  }}\n  \
             step b = llm executor(\"Summarize {{a.id}} about {{topic}}\") {{\n    max_tokens: 200\n  }}\n  \
             step c = llm executor(\"\"\"\n    Review {{b}}\n    and {{a.total}}\n    \"\"\") {{ max_tokens: 300 }}\n  \
             return c\n}}\n\n"
        ));
        i += 1;
    }
    s
}

fn frame(v: &Value) -> Vec<u8> {
    let body = serde_json::to_string(v).unwrap();
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name}: n={} p50={:.1} ms p95={:.1} ms max={:.1} ms",
        v.len(),
        percentile(&v, 0.5).as_secs_f64() * 1e3,
        percentile(&v, 0.95).as_secs_f64() * 1e3,
        v.last().unwrap().as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lines: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let edits: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(40);
    let text = program(lines);
    println!("program: {} lines, {} bytes", text.lines().count(), text.len());

    // The check alone (what the server does per edit, minus the protocol).
    let mut alone = Vec::new();
    for _ in 0..edits.min(20) {
        let t = Instant::now();
        let snap = Snapshot::new("/bench/big.aos", &text, &DocLoader::default());
        let published = aos_lsp::features::diagnostics::publish(&snap);
        alone.push(t.elapsed());
        assert!(published.iter().all(|(_, d)| d.iter().all(|d| d.severity != Some(aos_lsp::lsp_types::DiagnosticSeverity::ERROR))), "{published:?}");
    }
    report("check + convert (in process)", alone);

    let (client, server) = tokio::io::duplex(1 << 22);
    let (server_read, server_write) = tokio::io::split(server);
    tokio::spawn(async move { aos_lsp::serve(server_read, server_write).await; });
    let (client_read, mut client_write) = tokio::io::split(client);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let mut r = BufReader::new(client_read);
        loop {
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(n) = line.strip_prefix("Content-Length: ") {
                    len = n.parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).await.unwrap();
            if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
        }
    });
    let uri = "file:///bench/big.aos";
    client_write
        .write_all(&frame(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}})))
        .await
        .unwrap();
    client_write.write_all(&frame(&json!({"jsonrpc":"2.0","method":"initialized","params":{}}))).await.unwrap();
    client_write
        .write_all(&frame(&json!({"jsonrpc":"2.0","method":"textDocument/didOpen","params":{
            "textDocument":{"uri":uri,"languageId":"aos","version":1,"text":text}}})))
        .await
        .unwrap();
    let wait = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, version: i64| loop {
        let m = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("timeout").expect("closed");
        if m["method"] == "textDocument/publishDiagnostics" && m["params"]["version"] == version {
            return m;
        }
    };
    wait(&mut rx, 1).await;

    // Each edit changes the intent of one workflow (the line is 3 + 21·k);
    // edits are spaced beyond the debounce, as when a user types and pauses.
    let intent_lines: Vec<usize> =
        text.lines().enumerate().filter(|(_, l)| l.trim_start().starts_with("intent:")).map(|(i, _)| i).collect();
    let mut latencies = Vec::new();
    for k in 0..edits {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let line = intent_lines[k % intent_lines.len()];
        let version = k as i64 + 2;
        let change = json!({"jsonrpc":"2.0","method":"textDocument/didChange","params":{
            "textDocument":{"uri":uri,"version":version},
            "contentChanges":[{"range":{"start":{"line":line,"character":11},"end":{"line":line,"character":11}},"text":"x"}]}});
        let t = Instant::now();
        client_write.write_all(&frame(&change)).await.unwrap();
        let m = wait(&mut rx, version).await;
        latencies.push(t.elapsed());
        assert!(m["params"]["diagnostics"].as_array().unwrap().is_empty(), "{m}");
    }
    report("didChange -> publishDiagnostics (server, JSON-RPC)", latencies);

    // Hovers on the LLM step `b` of workflows across the file (its risk
    // and worst-case cost), each answered before the next is sent.
    let step_lines: Vec<usize> =
        text.lines().enumerate().filter(|(_, l)| l.trim_start().starts_with("step b = llm")).map(|(i, _)| i).collect();
    let mut hovers = Vec::new();
    for k in 0..edits {
        let line = step_lines[(k * 37) % step_lines.len()];
        let id = 1000 + k as i64;
        let request = json!({"jsonrpc":"2.0","id":id,"method":"textDocument/hover","params":{
            "textDocument":{"uri":uri},"position":{"line":line,"character":7}}});
        let t = Instant::now();
        client_write.write_all(&frame(&request)).await.unwrap();
        let m = loop {
            let m = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("timeout").expect("closed");
            if m["id"] == id {
                break m;
            }
        };
        hovers.push(t.elapsed());
        let value = m["result"]["contents"]["value"].as_str().unwrap_or_default();
        assert!(value.contains("worst-case cost"), "{m}");
    }
    report("hover on a step (server, JSON-RPC)", hovers);
}
