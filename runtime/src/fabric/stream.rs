//! Streaming replies: the three providers' streaming APIs read as
//! Server-Sent Events, the text handed out as [`Delta`]s while it arrives,
//! and the whole reply rebuilt in the provider's non-streaming shape, so
//! that each provider's own `parse` reads the text and the usage (exact:
//! from the stream's final usage record).
//!
//! - OpenAI: `stream: true` with `stream_options.include_usage`; chunks
//!   carry `choices[0].delta.content`, the last one `usage`, then
//!   `data: [DONE]`.
//! - Anthropic: `stream: true`; events `message_start` (input usage),
//!   `content_block_start`, `content_block_delta` (`text_delta`,
//!   `input_json_delta`), `content_block_stop`, `message_delta` (output
//!   usage), `message_stop`; an `error` event mid-stream.
//! - Gemini: `:streamGenerateContent?alt=sse`; each event is a
//!   `GenerateContentResponse` chunk, the last with a `finishReason` and
//!   the final `usageMetadata`.
//!
//! A stream that ends before its end marker (`[DONE]`, `message_stop`, a
//! `finishReason`) was cut: a transport error, retried like any other.
//! The text goes to the event bus as [`Delta`]s, coalesced by a
//! [`Window`] (50 ms or 1 KiB), the last one sent before the call returns,
//! so before the step's result is journaled. Deltas are never journaled:
//! the journal keeps the final reply only.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::wire::{self, Endpoint};
use super::ProviderError;
use crate::bus::Bus;

/// The kind of a streamed piece of an answer on the bus and in event
/// streams (`aosc serve`'s SSE, `aosc events`). Never journaled.
pub const DELTA_KIND: &str = "llm.delta";

/// A piece of an LLM answer as it streams, published on the event bus
/// ([`Bus::publish_delta`]); never journaled: the journal keeps the final
/// reply (the step's result).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// The run the step belongs to.
    pub run_id: String,
    pub step: String,
    /// The fan-out item, if the step fans out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<u32>,
    /// The step's attempt (as in `step.started`).
    pub attempt: u32,
    /// The model answering (the program's name for it).
    pub model: String,
    /// Where `text` starts in the reply being streamed, in bytes. A reply
    /// that starts again (a transport retry, the next model of the chain, a
    /// repair) starts again at 0: drop what came before.
    pub offset: u64,
    pub text: String,
    /// When the piece was sent (ms since the epoch).
    pub at_ms: u64,
}

impl Delta {
    /// `RUN/STEP` or `RUN/STEP/ITEM` (the call key of the step's attempt).
    pub fn call_key(&self) -> String {
        match self.item {
            Some(i) => format!("{}/{}/{i}", self.run_id, self.step),
            None => format!("{}/{}", self.run_id, self.step),
        }
    }
}

/// How streamed text is coalesced before it is published: a delta goes out
/// once `ms` have passed since its first byte arrived or it holds `bytes`
/// bytes, and always when the reply ends, so the bus carries tens of
/// events a second at most, whatever the provider's token rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub ms: u64,
    pub bytes: usize,
}

impl Default for Window {
    fn default() -> Self {
        Window { ms: 50, bytes: 1024 }
    }
}

impl Window {
    /// Every piece as it arrives (tests that count pieces).
    pub fn none() -> Window {
        Window { ms: 0, bytes: 0 }
    }
}

/// Where a streamed call's text goes: the bus, named by the step's
/// attempt.
#[derive(Clone)]
pub struct Deltas {
    bus: Arc<dyn Bus>,
    window: Window,
    run_id: Arc<str>,
    step: Arc<str>,
    item: Option<u32>,
    attempt: u32,
}

impl std::fmt::Debug for Deltas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Deltas({}/{} attempt {})", self.run_id, self.step, self.attempt)
    }
}

impl Deltas {
    /// The sink of a call whose key is `RUN/STEP[/ITEM]` (any other key is
    /// taken as a run with a step named after the rest).
    pub fn new(bus: Arc<dyn Bus>, window: Window, call_key: &str, attempt: u32) -> Deltas {
        let (run, rest) = call_key.split_once('/').unwrap_or((call_key, ""));
        let (step, item) = match rest.rsplit_once('/') {
            Some((s, i)) if i.parse::<u32>().is_ok() => (s, i.parse().ok()),
            _ => (rest, None),
        };
        Deltas { bus, window, run_id: run.into(), step: step.into(), item, attempt }
    }

    /// A coalescing writer for one reply of `model`.
    pub fn reply<'a>(&'a self, model: &'a str) -> Out<'a> {
        Out { sink: self, model, buf: String::new(), offset: 0, since: None }
    }
}

/// One reply's text on its way to the bus, coalesced by the [`Window`].
pub struct Out<'a> {
    sink: &'a Deltas,
    model: &'a str,
    buf: String,
    offset: u64,
    since: Option<Instant>,
}

impl Out<'_> {
    /// Adds text; sends it when the window is full.
    pub fn push(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.buf.push_str(text);
        let since = *self.since.get_or_insert_with(Instant::now);
        if self.buf.len() >= self.sink.window.bytes || since.elapsed() >= Duration::from_millis(self.sink.window.ms) {
            self.flush();
        }
    }

    /// When the text held now must go out (`None`: nothing is held).
    pub fn due(&self) -> Option<Instant> {
        self.since.map(|s| s + Duration::from_millis(self.sink.window.ms))
    }

    /// Sends what is held.
    pub fn flush(&mut self) {
        self.since = None;
        if self.buf.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.buf);
        let len = text.len() as u64;
        let s = self.sink;
        s.bus.publish_delta(Delta {
            run_id: s.run_id.to_string(),
            step: s.step.to_string(),
            item: s.item,
            attempt: s.attempt,
            model: self.model.to_string(),
            offset: self.offset,
            text,
            at_ms: crate::ids::now_ms(),
        });
        self.offset += len;
    }
}

impl Drop for Out<'_> {
    /// Whatever is held goes out, however the reply ended (a cut stream's
    /// text too: the next reply starts again at offset 0).
    fn drop(&mut self) {
        self.flush();
    }
}

/// One Server-Sent Event: its `event:` name (if any) and its `data:`.
#[derive(Debug, Default, PartialEq)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

/// Splits SSE text into events; `buf` keeps an incomplete tail.
pub fn take_events(buf: &mut String) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let normalized = buf.replace("\r\n", "\n");
        if normalized.len() != buf.len() {
            *buf = normalized;
        }
        let Some(end) = buf.find("\n\n") else { break };
        let block: String = buf.drain(..end + 2).collect();
        let mut ev = Event::default();
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            } else if let Some(v) = line.strip_prefix("event:") {
                ev.event = Some(v.trim().to_string());
            }
        }
        if data.is_empty() && ev.event.is_none() {
            continue;
        }
        ev.data = data.join("\n");
        out.push(ev);
    }
    out
}

/// What a provider's stream has told so far.
pub trait Assembler {
    /// Takes one event; returns the text it adds (to hand out as a delta).
    fn take(&mut self, ev: &Event) -> Result<Option<String>, ProviderError>;
    /// The stream's end marker was seen.
    fn done(&self) -> bool;
    /// The reply in the provider's non-streaming shape.
    fn reply(self) -> Value;
}

fn bad(provider: &str, what: &str, data: &str) -> ProviderError {
    ProviderError::transport(format!("{provider}: malformed stream event ({what}): {}", wire::clip(data, 200)))
}

/// POSTs `body` and reads the event stream into `asm`, sending each piece
/// of text to `deltas`. A cut stream is a transport error.
pub async fn run<A: Assembler>(
    endpoint: &Endpoint,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
    mut asm: A,
    deltas: &Deltas,
    req: &super::Request,
) -> Result<Value, ProviderError> {
    let mut resp = endpoint.post_stream(url, headers, body).await?;
    let mut out = deltas.reply(&req.model.name);
    let mut buf = String::new();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        // Held text goes out when its window closes, even if the provider
        // pauses (the body read is cancel-safe: a chunk is taken whole).
        let next = match out.due() {
            Some(due) => match tokio::time::timeout_at(due, resp.chunk()).await {
                Ok(next) => next,
                Err(_) => {
                    out.flush();
                    continue;
                }
            },
            None => resp.chunk().await,
        };
        let chunk = match next {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(endpoint.transport_error(&e)),
        };
        pending.extend_from_slice(&chunk);
        // Only whole UTF-8 sequences go to the text buffer.
        let valid = match std::str::from_utf8(&pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        buf.push_str(&String::from_utf8_lossy(&pending[..valid]));
        pending.drain(..valid);
        for ev in take_events(&mut buf) {
            if let Some(text) = asm.take(&ev)? {
                out.push(&text);
            }
        }
    }
    out.flush();
    if !asm.done() {
        return Err(ProviderError::transport(format!("{}: the stream was cut before its end", endpoint.provider)));
    }
    Ok(asm.reply())
}

/// OpenAI's chat completion chunks.
#[derive(Default)]
pub struct OpenAiStream {
    content: String,
    refusal: Option<String>,
    usage: Option<Value>,
    done: bool,
}

impl Assembler for OpenAiStream {
    fn take(&mut self, ev: &Event) -> Result<Option<String>, ProviderError> {
        if ev.data.trim() == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&ev.data).map_err(|_| bad("openai", "not JSON", &ev.data))?;
        if let Some(err) = v.get("error") {
            return Err(ProviderError::transport(format!("openai: error in the stream: {}", wire::clip(&err.to_string(), 200))));
        }
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        let delta = wire::at(&v, &["choices", "0", "delta"]);
        if let Some(r) = delta.and_then(|d| d.get("refusal")).and_then(Value::as_str) {
            self.refusal.get_or_insert_with(String::new).push_str(r);
        }
        let text = delta.and_then(|d| d.get("content")).and_then(Value::as_str).map(str::to_string);
        if let Some(t) = &text {
            self.content.push_str(t);
        }
        Ok(text)
    }

    fn done(&self) -> bool {
        self.done
    }

    fn reply(self) -> Value {
        let message = match (self.content.is_empty(), self.refusal) {
            (true, Some(r)) => json!({"role": "assistant", "content": null, "refusal": r}),
            _ => json!({"role": "assistant", "content": self.content}),
        };
        json!({"choices": [{"index": 0, "message": message}], "usage": self.usage.unwrap_or(Value::Null)})
    }
}

/// Anthropic's message events.
#[derive(Default)]
pub struct AnthropicStream {
    usage: Map<String, Value>,
    /// Content blocks by index: their type, text, and tool input JSON text.
    blocks: Vec<(String, String, String)>,
    done: bool,
}

impl Assembler for AnthropicStream {
    fn take(&mut self, ev: &Event) -> Result<Option<String>, ProviderError> {
        let v: Value = serde_json::from_str(&ev.data).map_err(|_| bad("anthropic", "not JSON", &ev.data))?;
        let kind = v.get("type").and_then(Value::as_str).or(ev.event.as_deref()).unwrap_or("");
        let merge = |usage: &mut Map<String, Value>, u: Option<&Value>| {
            if let Some(Value::Object(u)) = u {
                for (k, n) in u {
                    if !n.is_null() {
                        usage.insert(k.clone(), n.clone());
                    }
                }
            }
        };
        let index = v.get("index").and_then(Value::as_u64).and_then(|i| usize::try_from(i).ok());
        match kind {
            "message_start" => merge(&mut self.usage, wire::at(&v, &["message", "usage"])),
            "content_block_start" => {
                let i = index.ok_or_else(|| bad("anthropic", "no index", &ev.data))?;
                let t = wire::at(&v, &["content_block", "type"]).and_then(Value::as_str).unwrap_or("text").to_string();
                let text = wire::at(&v, &["content_block", "text"]).and_then(Value::as_str).unwrap_or("").to_string();
                if self.blocks.len() <= i {
                    self.blocks.resize(i + 1, (String::new(), String::new(), String::new()));
                }
                if let Some(b) = self.blocks.get_mut(i) {
                    *b = (t, text, String::new());
                }
            }
            "content_block_delta" => {
                let i = index.ok_or_else(|| bad("anthropic", "no index", &ev.data))?;
                let b = self.blocks.get_mut(i).ok_or_else(|| bad("anthropic", "a delta for an unknown block", &ev.data))?;
                let d = v.get("delta").cloned().unwrap_or(Value::Null);
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let t = d.get("text").and_then(Value::as_str).unwrap_or("").to_string();
                        b.1.push_str(&t);
                        return Ok(Some(t));
                    }
                    Some("input_json_delta") => {
                        let t = d.get("partial_json").and_then(Value::as_str).unwrap_or("").to_string();
                        b.2.push_str(&t);
                        return Ok(Some(t));
                    }
                    _ => {}
                }
            }
            "message_delta" => merge(&mut self.usage, v.get("usage")),
            "message_stop" => self.done = true,
            "error" => {
                return Err(ProviderError::transport(format!(
                    "anthropic: error in the stream: {}",
                    wire::clip(&v.get("error").cloned().unwrap_or(v.clone()).to_string(), 200)
                )));
            }
            _ => {}
        }
        Ok(None)
    }

    fn done(&self) -> bool {
        self.done
    }

    fn reply(self) -> Value {
        let content: Vec<Value> = self
            .blocks
            .into_iter()
            .map(|(t, text, input)| match t.as_str() {
                "tool_use" => json!({"type": "tool_use", "name": "answer",
                                     "input": serde_json::from_str::<Value>(if input.is_empty() { "{}" } else { &input }).unwrap_or(Value::String(input))}),
                _ => json!({"type": t, "text": text}),
            })
            .collect();
        json!({"type": "message", "content": content, "usage": Value::Object(self.usage)})
    }
}

/// Gemini's `GenerateContentResponse` chunks.
#[derive(Default)]
pub struct GeminiStream {
    text: String,
    thoughts: String,
    usage: Option<Value>,
    finish: Option<Value>,
    last: Option<Value>,
}

impl Assembler for GeminiStream {
    fn take(&mut self, ev: &Event) -> Result<Option<String>, ProviderError> {
        let v: Value = serde_json::from_str(&ev.data).map_err(|_| bad("gemini", "not JSON", &ev.data))?;
        if let Some(err) = v.get("error") {
            return Err(ProviderError::transport(format!("gemini: error in the stream: {}", wire::clip(&err.to_string(), 200))));
        }
        if let Some(u) = v.get("usageMetadata") {
            self.usage = Some(u.clone());
        }
        if let Some(f) = wire::at(&v, &["candidates", "0", "finishReason"]) {
            self.finish = Some(f.clone());
        }
        let mut added = String::new();
        if let Some(parts) = wire::at(&v, &["candidates", "0", "content", "parts"]).and_then(Value::as_array) {
            for p in parts {
                let t = p.get("text").and_then(Value::as_str).unwrap_or("");
                if p.get("thought").and_then(Value::as_bool) == Some(true) {
                    self.thoughts.push_str(t);
                } else {
                    self.text.push_str(t);
                    added.push_str(t);
                }
            }
        }
        self.last = Some(v);
        Ok(Some(added))
    }

    fn done(&self) -> bool {
        self.finish.is_some()
    }

    fn reply(self) -> Value {
        let mut parts = Vec::new();
        if !self.thoughts.is_empty() {
            parts.push(json!({"text": self.thoughts, "thought": true}));
        }
        parts.push(json!({"text": self.text}));
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "finishReason": self.finish});
        if let Some(lp) = self.last.as_ref().and_then(|l| wire::at(l, &["candidates", "0", "logprobsResult"])) {
            candidate["logprobsResult"] = lp.clone();
        }
        json!({"candidates": [candidate], "usageMetadata": self.usage.unwrap_or(Value::Null)})
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_split_on_blank_lines_and_keep_a_partial_tail() {
        let mut buf = "event: message_start\r\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\n\n: comment\n\ndata: part".to_string();
        let evs = take_events(&mut buf);
        assert_eq!(evs, vec![
            Event { event: Some("message_start".into()), data: "{\"a\":1}".into() },
            Event { event: None, data: "x\ny".into() },
        ]);
        assert_eq!(buf, "data: part");
    }

    #[test]
    fn an_openai_stream_rebuilds_the_reply_and_its_usage() {
        let mut a = OpenAiStream::default();
        for d in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":null}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2}}"#,
            "[DONE]",
        ] {
            a.take(&Event { event: None, data: d.into() }).unwrap();
        }
        assert!(a.done());
        let c = super::super::openai::parse(&a.reply(), false).unwrap();
        assert_eq!((c.text.as_str(), c.input_tokens, c.output_tokens), ("Hello", 12, 2));
    }
}
