//! `sim`, the offline simulator (LANGUAGE.md §7): deterministic answers
//! seeded by the prompt, JSON generated from the step's schema, token usage
//! by the checker's counting rule, and test knobs `latency`, `fail_first`,
//! `malformed_first`, `confidence`, `seed`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::agent::{call_text, Conversation, ToolCall};
use super::{Completion, Provider, ProviderError, Purpose, Request};
use crate::store::BoxFuture;
use crate::tokens;

const WORDS: &[&str] = &[
    "bright", "steady", "clear", "warm", "quiet", "brisk", "gentle", "bold", "simple", "careful", "north", "river",
    "signal", "harbor", "lantern", "meadow", "summit", "thread", "orbit", "garden", "report", "figure", "plan", "note",
];

/// A small deterministic generator (SplitMix64).
pub(crate) struct Rng(u64);

impl Rng {
    fn seeded(parts: &[&[u8]]) -> Rng {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
            h.update([0u8]);
        }
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(d.get(..8).unwrap_or(&[0; 8]));
        Rng(u64::from_le_bytes(b))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn word(&mut self) -> &'static str {
        WORDS.get(self.below(WORDS.len() as u64) as usize).copied().unwrap_or("note")
    }
}

/// The simulator. Counts calls per step so that `fail_first` and
/// `malformed_first` apply to the first attempts of each step.
pub struct Sim {
    calls: Mutex<HashMap<String, u32>>,
}

impl Sim {
    pub fn new() -> Sim {
        Sim { calls: Mutex::new(HashMap::new()) }
    }

    fn bump(&self, key: String) -> u32 {
        let Ok(mut calls) = self.calls.lock() else { return u32::MAX };
        let n = calls.entry(key).or_insert(0);
        *n += 1;
        *n
    }
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Provider for Sim {
    fn complete<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let opts = &req.model.sim;
            if opts.latency_ms > 0 {
                tokio::time::sleep(Duration::from_millis(opts.latency_ms)).await;
            }
            let n = self.bump(format!("{}|{}", req.call_key, req.model.name));
            if n <= opts.fail_first {
                return Err(ProviderError::transport(format!(
                    "sim model `{}`: simulated transport failure {n} of {} (fail_first)",
                    req.model.name, opts.fail_first
                )));
            }
            let seed = opts.seed.to_le_bytes();
            if let Some(conv) = &req.conversation {
                return Ok(agent_turn(req, conv, &seed));
            }
            let mut rng = Rng::seeded(&[&seed, req.model.model_id.as_bytes(), req.prompt.as_bytes()]);
            let (text, confidence) = match req.purpose {
                Purpose::Verify => {
                    let c = opts.confidence.unwrap_or(0.9);
                    (json!({ "agreement": true, "confidence": c, "problems": [] }).to_string(), Some(c))
                }
                Purpose::Answer => match &req.schema {
                    Some(schema) => {
                        let m = self.bump(format!("{}|{}|malformed", req.call_key, req.model.name));
                        if m <= opts.malformed_first {
                            ("{\"oops\": this is not JSON".to_string(), None)
                        } else {
                            (generate(schema, &mut rng, 0).to_string(), None)
                        }
                    }
                    None => (sentence(&mut rng, &req.model.name, req.max_tokens), None),
                },
            };
            let text = tokens::truncate(&text, req.max_tokens.max(1)).to_string();
            // Streamed: the reply goes out word by word (with its spaces).
            if let Some(deltas) = &req.stream {
                let mut out = deltas.reply(&req.model.name);
                for piece in text.split_inclusive(' ') {
                    out.push(piece);
                }
            }
            Ok(Completion {
                input_tokens: tokens::count_for(&req.model, &req.prompt),
                output_tokens: tokens::count_for(&req.model, &text),
                text,
                confidence,
                ..Completion::default()
            })
        })
    }
}

/// A turn of an agent step: while fewer than `tool_calls:` (default 1)
/// earlier turns called a tool and tools are on, call the next listed tool
/// (round robin) with arguments generated from its parameters; then answer
/// as for any step. Usage counts the whole conversation.
fn agent_turn(req: &Request, conv: &Conversation, seed: &[u8]) -> Completion {
    let transcript = conv.transcript(&req.prompt);
    let mut rng = Rng::seeded(&[seed, req.model.model_id.as_bytes(), transcript.as_bytes()]);
    let wanted = req.model.sim.tool_calls.unwrap_or(1) as usize;
    let done = conv.calling_turns();
    let (text, tool_calls) = match conv.tools.get(done % conv.tools.len().max(1)) {
        Some(tool) if !conv.tools_off && done < wanted => {
            let call = ToolCall { id: format!("sim_call_{}", conv.history.len()), name: tool.wire_name.clone(), args: generate(&tool.parameters, &mut rng, 0) };
            (String::new(), vec![call])
        }
        _ => match &req.schema {
            Some(schema) => (generate(schema, &mut rng, 0).to_string(), Vec::new()),
            None => (sentence(&mut rng, &req.model.name, req.max_tokens), Vec::new()),
        },
    };
    let out_text = if tool_calls.is_empty() { text.clone() } else { tool_calls.iter().map(call_text).collect::<Vec<_>>().join("\n") };
    Completion {
        input_tokens: tokens::count_for(&req.model, &transcript),
        output_tokens: tokens::count_for(&req.model, &out_text),
        text,
        tool_calls,
        ..Completion::default()
    }
}

fn sentence(rng: &mut Rng, model: &str, max_tokens: u64) -> String {
    let mut s = format!("[sim:{model}]");
    let words = 6 + rng.below(10);
    for _ in 0..words {
        let w = rng.word();
        if tokens::count(&s) + 1 + tokens::count(w) + 1 > max_tokens {
            break;
        }
        s.push(' ');
        s.push_str(w);
    }
    s.push('.');
    s
}

/// A value that validates against `schema` (the subset the checker emits:
/// type, properties, required, items, enum, const, anyOf/oneOf, min/max).
pub(crate) fn generate(schema: &Value, rng: &mut Rng, depth: u32) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        let i = rng.below(options.len() as u64) as usize;
        return options.get(i).cloned().unwrap_or(Value::Null);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = schema.get(key) {
            // Prefer a non-null branch so optional values are present.
            let pick = options.iter().find(|o| o.get("type") != Some(&json!("null"))).or(options.first());
            return pick.map(|o| generate(o, rng, depth + 1)).unwrap_or(Value::Null);
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null").to_string(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "object" => {
            let mut m = Map::new();
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (k, s) in props {
                    m.insert(k.clone(), generate(s, rng, depth + 1));
                }
            }
            Value::Object(m)
        }
        "array" => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(1);
            let max = schema.get("maxItems").and_then(Value::as_u64).unwrap_or(min.max(3));
            let n = min + rng.below(max.saturating_sub(min) + 1);
            let item = schema.get("items").cloned().unwrap_or(json!({}));
            Value::Array((0..n).map(|_| generate(&item, rng, depth + 1)).collect())
        }
        "integer" => {
            let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
            let max = schema.get("maximum").and_then(Value::as_i64).unwrap_or(min + 100);
            json!(min + rng.below((max - min).max(0) as u64 + 1) as i64)
        }
        "number" => {
            let min = schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
            json!(min + (rng.below(10_000) as f64) / 100.0)
        }
        "boolean" => json!(rng.below(2) == 1),
        "null" => Value::Null,
        _ => {
            let n = 1 + rng.below(3);
            Value::String((0..n).map(|_| rng.word()).collect::<Vec<_>>().join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_json_validates() {
        let schema = json!({"type": "object", "properties": {
            "title": {"type": "string"}, "n": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
            "tone": {"enum": ["formal", "casual"]}, "opt": {"anyOf": [{"type": "number"}, {"type": "null"}]}
        }, "required": ["title", "n", "tags", "tone", "opt"], "additionalProperties": false});
        for seed in 0..50u64 {
            let mut rng = Rng::seeded(&[&seed.to_le_bytes()]);
            let v = generate(&schema, &mut rng, 0);
            assert!(jsonschema::is_valid(&schema, &v), "{v}");
        }
    }
}
