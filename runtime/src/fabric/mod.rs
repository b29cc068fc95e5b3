//! The model fabric: providers behind [`Provider`], and the router that runs
//! one LLM call of a step — prompt fitting, the role's model chain as
//! fallbacks with transport retries, schema validation with one repair,
//! verification against `min_confidence`, and token and cost accounting.

pub mod sim;

use std::collections::HashMap;
use std::sync::Arc;

use aos_compiler::ir::{Model, Program, Provider as ProviderKind, Verify};
use serde_json::{json, Value};

use crate::audit::Decision;
use crate::events::Usage;
use crate::store::BoxFuture;
use crate::tokens;

/// Why a model is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Answer,
    /// Cross-checking another model's reply (`verify:`).
    Verify,
}

/// One request to a provider.
#[derive(Clone, Debug)]
pub struct Request {
    pub model: Model,
    pub prompt: String,
    pub max_tokens: u64,
    /// The JSON Schema the reply must satisfy (typed steps).
    pub schema: Option<Value>,
    /// Identifies the step (and fan-out item) across attempts.
    pub call_key: String,
    pub purpose: Purpose,
}

/// A provider's answer.
#[derive(Clone, Debug)]
pub struct Completion {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What a verification reports, when the provider says it directly.
    pub confidence: Option<f64>,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying, then trying the next model (not billed).
    #[error("transport error: {0}")]
    Transport(String),
}

/// An LLM provider.
pub trait Provider: Send + Sync {
    fn complete<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Completion, ProviderError>>;
}

/// What one LLM call of a step produced.
#[derive(Debug, Default)]
pub struct LlmOutcome {
    pub result: Option<Value>,
    pub error: Option<String>,
    pub usage: Usage,
    pub decisions: Vec<Decision>,
}

/// A step's LLM call, ready to route.
pub struct LlmCall<'a> {
    pub role: &'a str,
    pub prompt: String,
    pub max_tokens: u64,
    pub max_input_tokens: Option<u64>,
    /// `Some` for a typed step: the reply must be JSON valid against it.
    pub schema: Option<&'a Value>,
    /// True when the step's type is not `String` (the reply must be JSON).
    pub typed: bool,
    pub verify: Option<&'a Verify>,
    pub call_key: String,
    pub step: &'a str,
}

/// Repair attempts after a reply fails validation or verification (§4).
const REPAIRS: u32 = 1;

/// Routes calls to providers.
pub struct Fabric {
    sim: Arc<dyn Provider>,
    /// Real providers by kind, when configured; none are built in yet.
    providers: HashMap<&'static str, Arc<dyn Provider>>,
    /// Transport retries per model before moving down the chain.
    pub transport_retries: u32,
}

impl Fabric {
    /// A fabric where every model is answered by the simulator.
    pub fn simulated() -> Fabric {
        Fabric { sim: Arc::new(sim::Sim::new()), providers: HashMap::new(), transport_retries: 1 }
    }

    /// Lines for stderr explaining which models run on the simulator.
    pub fn notes(&self, program: &Program) -> Vec<String> {
        let forced = std::env::var("AOS_LLM").map(|v| v == "sim").unwrap_or(false);
        let mut out = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for m in program.models.values() {
            if m.provider != ProviderKind::Sim && !self.providers.contains_key(m.provider.as_str()) {
                names.push(m.name.as_str());
            }
        }
        if !names.is_empty() {
            let why = if forced {
                "AOS_LLM=sim".to_string()
            } else {
                "no provider is configured in this build (set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY once real providers land)".to_string()
            };
            out.push(format!("note: models {} run on the offline simulator (sim): {why}", names.join(", ")));
        }
        out
    }

    fn provider_for(&self, model: &Model) -> &Arc<dyn Provider> {
        let forced = std::env::var("AOS_LLM").map(|v| v == "sim").unwrap_or(false);
        if forced {
            return &self.sim;
        }
        self.providers.get(model.provider.as_str()).unwrap_or(&self.sim)
    }

    /// Asks the role's chain in order; transport errors are retried, then the
    /// next model is tried (an audited fallback).
    async fn ask_chain(
        &self,
        program: &Program,
        role: &str,
        base: &Request,
        out: &mut LlmOutcome,
        step: &str,
    ) -> Result<(Completion, Model), String> {
        let chain = program.roles.get(role).cloned().unwrap_or_default();
        if chain.is_empty() {
            return Err(format!("role `{role}` is bound to no model"));
        }
        let mut last = String::new();
        for (i, name) in chain.iter().enumerate() {
            let Some(model) = program.models.get(name) else {
                last = format!("model `{name}` is not in the program");
                continue;
            };
            if i > 0 {
                out.decisions.push(Decision::new(
                    "fallback",
                    Some(step),
                    json!({"role": role, "from": chain.get(i - 1), "to": name, "because": last}),
                ));
            }
            let provider = self.provider_for(model);
            let mut req = base.clone();
            req.model = model.clone();
            for _ in 0..=self.transport_retries {
                match provider.complete(&req).await {
                    Ok(c) => {
                        out.decisions.push(Decision::new(
                            "model",
                            Some(step),
                            json!({"role": role, "model": name, "provider": model.provider.as_str(),
                                   "answered_by": if Arc::ptr_eq(provider, &self.sim) { "sim" } else { model.provider.as_str() },
                                   "purpose": if base.purpose == Purpose::Verify { "verify" } else { "answer" }}),
                        ));
                        return Ok((c, model.clone()));
                    }
                    Err(ProviderError::Transport(e)) => last = e,
                }
            }
        }
        Err(format!("every model of role `{role}` failed; last error: {last}"))
    }

    /// Runs one LLM attempt of a step.
    pub async fn call(&self, program: &Program, call: LlmCall<'_>) -> LlmOutcome {
        let mut out = LlmOutcome::default();
        let prompt = match call.max_input_tokens {
            Some(max) if tokens::count(&call.prompt) > max => {
                out.decisions.push(Decision::new(
                    "prompt_fit",
                    Some(call.step),
                    json!({"tokens": tokens::count(&call.prompt), "max_input_tokens": max}),
                ));
                tokens::truncate(&call.prompt, max).to_string()
            }
            _ => call.prompt.clone(),
        };
        let validator = match call.schema.map(jsonschema::validator_for) {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                out.error = Some(format!("the step's JSON Schema is invalid: {e}"));
                return out;
            }
            None => None,
        };
        let mut ask_prompt = prompt.clone();
        for round in 0..=REPAIRS {
            let base = Request {
                model: placeholder_model(),
                prompt: ask_prompt.clone(),
                max_tokens: call.max_tokens,
                schema: call.schema.cloned(),
                call_key: call.call_key.clone(),
                purpose: Purpose::Answer,
            };
            let (reply, model) = match self.ask_chain(program, call.role, &base, &mut out, call.step).await {
                Ok(r) => r,
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            };
            out.usage.add(&usage_of(&model, &reply));
            let text = tokens::truncate(&reply.text, call.max_tokens.max(1)).to_string();
            let value = if call.typed {
                match serde_json::from_str::<Value>(text.trim()) {
                    Ok(v) => match &validator {
                        Some(val) => {
                            let errors: Vec<String> = val.iter_errors(&v).take(3).map(|e| e.to_string()).collect();
                            if errors.is_empty() { Ok(v) } else { Err(format!("the reply does not match the schema: {}", errors.join("; "))) }
                        }
                        None => Ok(v),
                    },
                    Err(e) => Err(format!("the reply is not valid JSON: {e}")),
                }
            } else {
                Ok(Value::String(text.clone()))
            };
            let problem = match value {
                Ok(v) => match call.verify {
                    Some(verify) => match self.verify(program, verify, &prompt, &text, &call, &mut out).await {
                        Ok(None) => {
                            out.result = Some(v);
                            return out;
                        }
                        Ok(Some(low)) => low,
                        Err(e) => {
                            out.error = Some(e);
                            return out;
                        }
                    },
                    None => {
                        out.result = Some(v);
                        return out;
                    }
                },
                Err(e) => e,
            };
            out.decisions.push(Decision::new(
                "repair",
                Some(call.step),
                json!({"round": round + 1, "problem": problem, "repair": round < REPAIRS}),
            ));
            if round == REPAIRS {
                out.error = Some(problem);
                return out;
            }
            ask_prompt = match call.schema {
                Some(s) => format!("{prompt}\n\nYour previous reply was rejected: {problem}\nAnswer again with only JSON that validates against this schema:\n{s}"),
                None => format!("{prompt}\n\nYour previous reply was rejected: {problem}\nAnswer again."),
            };
        }
        out.error = Some("no reply".into());
        out
    }

    /// `Ok(None)` when the verifier is confident enough, `Ok(Some(why))` when not.
    async fn verify(
        &self,
        program: &Program,
        verify: &Verify,
        prompt: &str,
        reply: &str,
        call: &LlmCall<'_>,
        out: &mut LlmOutcome,
    ) -> Result<Option<String>, String> {
        let req = Request {
            model: placeholder_model(),
            prompt: format!(
                "Check the reply below to the request below. Answer with JSON {{\"confidence\": C}} where C in [0, 1] is how sure you are the reply is correct and complete.\n\nRequest:\n{prompt}\n\nReply:\n{reply}"
            ),
            max_tokens: 256,
            schema: None,
            call_key: format!("{}#verify", call.call_key),
            purpose: Purpose::Verify,
        };
        let (c, model) = self.ask_chain(program, &verify.role, &req, out, call.step).await?;
        out.usage.add(&usage_of(&model, &c));
        let confidence = c.confidence.or_else(|| {
            serde_json::from_str::<Value>(c.text.trim()).ok().and_then(|v| v.get("confidence").and_then(Value::as_f64))
        });
        let min = verify.min_confidence.unwrap_or(0.0);
        let conf = confidence.unwrap_or(0.0);
        let ok = conf >= min;
        out.decisions.push(Decision::new(
            "verify",
            Some(call.step),
            json!({"role": verify.role, "model": model.name, "confidence": confidence, "min_confidence": min, "accepted": ok}),
        ));
        Ok(if ok { None } else { Some(format!("verification by `{}` reported confidence {conf:.2}, below min_confidence {min:.2}", verify.role)) })
    }
}

fn usage_of(model: &Model, c: &Completion) -> Usage {
    Usage {
        input_tokens: c.input_tokens,
        output_tokens: c.output_tokens,
        cost_usd: c.input_tokens as f64 * model.input_per_m / 1e6 + c.output_tokens as f64 * model.output_per_m / 1e6,
    }
}

fn placeholder_model() -> Model {
    Model {
        name: String::new(),
        provider: ProviderKind::Sim,
        model_id: String::new(),
        input_per_m: 0.0,
        output_per_m: 0.0,
        context: 0,
        base_url: None,
        sim: Default::default(),
    }
}
