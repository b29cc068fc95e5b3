//! The conversation of an agent step (docs/language.md, *Agent steps*):
//! the tools the model may call and the turns so far, which each provider
//! writes in its own tool-calling format (OpenAI `tools` / `tool_calls`,
//! Anthropic `tool_use` / `tool_result`, Gemini `functionDeclarations` /
//! `functionCall`).

use aos_compiler::ir::AgentTool;
use serde_json::{json, Value};

pub use crate::events::ToolCall;

/// The result of one tool call, as the model is told it.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    /// The id of the call it answers.
    pub id: String,
    /// The wire name of the tool.
    pub name: String,
    /// The result as text (JSON text for a value that is not a string).
    pub content: String,
    pub is_error: bool,
}

/// One earlier turn: what the model said, the results of its tool calls,
/// and a note the runtime adds after them (why an answer was rejected).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exchange {
    pub text: String,
    pub calls: Vec<ToolCall>,
    pub results: Vec<ToolResult>,
    pub note: Option<String>,
}

/// What makes a request a turn of an agent: its tools and its history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conversation {
    pub tools: Vec<AgentTool>,
    pub history: Vec<Exchange>,
    /// The last turn: tool calling is off, the model must answer.
    pub tools_off: bool,
}

impl Conversation {
    /// The whole conversation as one text: what the simulator and the
    /// scripted replies of `aosc test` count input tokens on.
    pub fn transcript(&self, prompt: &str) -> String {
        let mut out = prompt.to_string();
        for t in &self.tools {
            out.push('\n');
            out.push_str(&json!({"tool": t.wire_name, "description": t.description, "parameters": t.parameters}).to_string());
        }
        for ex in &self.history {
            out.push('\n');
            out.push_str(&ex.text);
            for c in &ex.calls {
                out.push('\n');
                out.push_str(&call_text(c));
            }
            for r in &ex.results {
                out.push('\n');
                out.push_str(&r.content);
            }
            if let Some(n) = &ex.note {
                out.push('\n');
                out.push_str(n);
            }
        }
        out
    }

    /// How many earlier turns called a tool.
    pub fn calling_turns(&self) -> usize {
        self.history.iter().filter(|e| !e.calls.is_empty()).count()
    }
}

/// A tool call as text (what its output tokens are counted on offline).
pub fn call_text(c: &ToolCall) -> String {
    json!({"call": c.name, "args": c.args}).to_string()
}

/// A tool call's arguments from the JSON text a provider sends; text that
/// is not a JSON object is kept under `_raw` (the tool then reports it).
pub fn parse_args(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "_raw": text }),
    }
}
