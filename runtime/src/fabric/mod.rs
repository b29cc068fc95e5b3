//! The model fabric: providers behind [`Provider`], and the router that runs
//! one LLM call of a step — prompt fitting, the role's model chain as
//! fallbacks with transport retries, schema validation with one repair,
//! verification against `min_confidence`, and token and cost accounting.

pub mod agent;
pub mod anthropic;
pub mod embed;
pub mod gemini;
pub mod openai;
pub mod sim;
pub mod stream;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aos_compiler::ir::{Model, Program, Provider as ProviderKind, Structured, Verify};
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
    /// The JSON Schema the reply must satisfy (typed steps, verdicts).
    pub schema: Option<Value>,
    /// Identifies the step (and fan-out item) across attempts.
    pub call_key: String,
    pub purpose: Purpose,
    /// The role the model answers for (providers ignore it; scripted
    /// replies in `aosc test` are keyed by it).
    pub role: String,
    /// When set, the provider streams the reply and sends its text here as
    /// it arrives (answers only; verifications are not streamed).
    pub stream: Option<stream::Deltas>,
    /// A turn of an agent step: its tools and the turns so far. Providers
    /// then ignore `schema` (the agent writes it into the prompt).
    pub conversation: Option<Arc<agent::Conversation>>,
}

/// A provider's answer, with usage as the provider reported it.
#[derive(Clone, Debug, Default)]
pub struct Completion {
    pub text: String,
    /// Every input token billed at the input price, cached ones included.
    pub input_tokens: u64,
    /// Every output token billed at the output price, reasoning included.
    pub output_tokens: u64,
    /// Of `input_tokens`, those the provider served from its cache.
    pub cached_tokens: u64,
    /// Of `output_tokens`, those spent on hidden reasoning.
    pub reasoning_tokens: u64,
    /// What a verification reports, when the provider says it directly.
    pub confidence: Option<f64>,
    /// For a verdict: the probability the provider's log-probabilities give
    /// its `agreement: true` token, when it returned them.
    pub agreement_probability: Option<f64>,
    /// The tools an agent's turn asks to call (empty: the reply is the answer).
    pub tool_calls: Vec<agent::ToolCall>,
}

/// Why a provider gave no answer. Neither is billed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying the same model (connection, timeout, malformed body,
    /// HTTP 408/409/429/5xx), after `retry_after` when the server said.
    #[error("{message}")]
    Transport { message: String, retry_after: Option<Duration> },
    /// This request cannot succeed on this model (HTTP 400, 404, a blocked
    /// prompt): the next model of the chain is tried at once.
    #[error("{0}")]
    Fatal(String),
    /// The account cannot use the model for now (HTTP 401/403, a bad key,
    /// an exhausted quota or spend limit): the next model is tried at once
    /// and this one cools down without waiting for repeated failures.
    #[error("{0}")]
    Refused(String),
}

impl ProviderError {
    /// A retryable error with no server-requested wait.
    pub fn transport(message: String) -> ProviderError {
        ProviderError::Transport { message, retry_after: None }
    }
}

/// Why an LLM call of a step produced no value. The messages are the
/// journaled errors users see.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FabricError {
    /// A provider's client could not be built (its credentials are set).
    #[error("cannot build the HTTP client for {provider}: {message}")]
    Client { provider: &'static str, message: String },
    #[error("role `{0}` is bound to no model")]
    Unbound(String),
    /// Every model of the role's chain failed; `last` is the last error.
    #[error("every model of role `{role}` failed; last error: {last}")]
    AllFailed { role: String, last: String },
    #[error("the step's JSON Schema is invalid: {0}")]
    Schema(String),
    /// A typed step's reply did not parse as JSON (after the repair).
    #[error("the reply is not valid JSON: {0}")]
    NotJson(String),
    /// A typed step's reply did not validate (after the repair).
    #[error("the reply does not match the schema: {0}")]
    Nonconforming(String),
    /// The verifier did not accept the reply (after the repair): why, and
    /// the rejected replies when there were two or more.
    #[error("{why}{}", rejected_replies(.replies))]
    Unverified { why: String, replies: Vec<String> },
    #[error("no reply")]
    NoReply,
    /// A model of the `embedding` role whose provider has no embeddings
    /// API (Anthropic).
    #[error("model `{model}` ({provider}) offers no embeddings: the `embedding` role takes openai, gemini or sim models")]
    NoEmbeddings { model: String, provider: &'static str },
    /// A provider model of the `embedding` role whose key is not set (the
    /// simulator does not stand in for it, unless `AOS_LLM=sim`).
    #[error("model `{model}` of the `embedding` role needs {var}: without it memory would be embedded by another embedding (set it, or add a `sim` model to the role to fall back to the built-in hashing embedding)")]
    EmbeddingKeyMissing { model: String, var: &'static str },
    /// An embedding model gave no usable vectors after its retries.
    #[error("embedding model `{model}` failed after {attempts} attempt(s): {last}")]
    EmbeddingFailed { model: String, attempts: u32, last: String },
    /// An agent step's final answer did not parse or validate on its last turn.
    #[error("the answer of agent step `{step}` is unusable after {turns} turns: {problem}")]
    AgentUnusable { step: String, turns: u32, problem: String },
    /// An agent step used all its turns; `still_calling` names the tools of
    /// its last turn's calls (empty when the loop ended otherwise).
    #[error("agent step `{step}` gave no answer within `max_turns: {turns}`{}", still_calling_note(.still_calling))]
    AgentTurns { step: String, turns: u32, still_calling: Vec<String> },
}

fn still_calling_note(tools: &[String]) -> String {
    if tools.is_empty() {
        return String::new();
    }
    let names: Vec<String> = tools.iter().map(|t| format!("`{t}`")).collect();
    format!(": its last turn still called {}", names.join(", "))
}

fn rejected_replies(replies: &[String]) -> String {
    if replies.len() < 2 {
        return String::new();
    }
    let mut e = ", also after a re-ask with the verifier's problems".to_string();
    for (i, t) in replies.iter().enumerate() {
        e.push_str(&format!("; reply {}: {}", i + 1, wire::clip(t, 400)));
    }
    e
}

/// An LLM provider.
pub trait Provider: Send + Sync {
    fn complete<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<Completion, ProviderError>>;

    /// The embeddings of `texts` by `model`, one vector per text in order
    /// (OpenAI's and Gemini's embeddings APIs). A provider without one
    /// refuses: [`Fabric::embed`] moves on to the role's next model.
    fn embed<'a>(&'a self, model: &'a Model, texts: &'a [String], purpose: embed::Purpose) -> BoxFuture<'a, Result<embed::Vectors, ProviderError>> {
        let _ = (texts, purpose);
        Box::pin(async move { Err(ProviderError::Fatal(format!("model `{}`: this provider offers no embeddings", model.name))) })
    }
}

/// What one LLM call of a step produced.
#[derive(Debug, Default)]
pub struct LlmOutcome {
    pub result: Option<Value>,
    pub error: Option<FabricError>,
    pub usage: Usage,
    pub decisions: Vec<Decision>,
}

/// A step's LLM call, ready to route.
pub struct LlmCall<'a> {
    pub role: &'a str,
    pub prompt: String,
    pub max_tokens: u64,
    /// The reply bound the cost proof assumed, in UTF-8 bytes (0: 4 ×
    /// `max_tokens`). A longer reply is reported, never cut.
    pub max_reply_bytes: u64,
    pub max_input_tokens: Option<u64>,
    /// `Some` for a typed step: the reply must be JSON valid against it.
    pub schema: Option<&'a Value>,
    /// The validator of `schema`, compiled once per run; compiled here
    /// when absent.
    pub validator: Option<&'a jsonschema::Validator>,
    /// True when the step's type is not `String` (the reply must be JSON).
    pub typed: bool,
    pub verify: Option<&'a Verify>,
    pub call_key: String,
    pub step: &'a str,
}

/// Audit kinds of the router's choices, journaled as `llm.routed` events too.
pub const ROUTER_DECISIONS: [&str; 11] =
    ["model", "transport_retry", "model_failed", "fallback", "cooldown", "verify", "repair", "reply_over_bound", "cache_hit", "route", "embedding"];

/// Repair attempts after a reply fails validation or verification (§4).
const REPAIRS: u32 = 1;

/// The environment variables of each real provider: key, base URL, and the
/// public base URL (LANGUAGE.md §6a).
pub const PROVIDERS: [(ProviderKind, &str, &str, &str); 3] = [
    (ProviderKind::Openai, "OPENAI_API_KEY", "OPENAI_BASE_URL", openai::DEFAULT_BASE_URL),
    (ProviderKind::Anthropic, "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", anthropic::DEFAULT_BASE_URL),
    (ProviderKind::Gemini, "GEMINI_API_KEY", "GEMINI_BASE_URL", gemini::DEFAULT_BASE_URL),
];

/// The variable holding a provider's key (`None` for `sim`).
pub fn credential_var(kind: ProviderKind) -> Option<&'static str> {
    PROVIDERS.iter().find(|p| p.0 == kind).map(|p| p.1)
}

/// True when `AOS_LLM=sim` forces the simulator for every model.
pub fn forced_sim() -> bool {
    std::env::var("AOS_LLM").map(|v| v == "sim").unwrap_or(false)
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_ms(name: &str) -> Option<Duration> {
    env_nonempty(name).and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_millis)
}

/// How the router retries, backs off and cools models down.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Transport retries of a real provider's model before the next model.
    pub retries: u32,
    /// Transport retries of a `sim` model (its `fail_first` counts on one).
    pub sim_retries: u32,
    /// The first backoff; it doubles per retry up to `max_backoff`, and the
    /// wait is drawn from [d/2, d] (jitter) so that clients spread out.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `retry-after` waited for in place; a longer one moves on
    /// to the next model and cools this one down for that long.
    pub max_retry_after: Duration,
    /// Calls in a row that exhausted a model's retries before it cools down.
    pub cooldown_after: u32,
    pub cooldown: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 2,
            sim_retries: 1,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            cooldown_after: 2,
            cooldown: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), with jitter.
    fn backoff(&self, retry: u32) -> Duration {
        let full = self.backoff.saturating_mul(2u32.saturating_pow(retry.min(16))).min(self.max_backoff);
        let half = full / 2;
        let span = (full - half).as_millis() as u64;
        half + Duration::from_millis(if span == 0 { 0 } else { random() % (span + 1) })
    }
}

/// A random number without a dependency: std's hasher keys are random.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// A model's recent record.
#[derive(Default)]
struct Health {
    failures: u32,
    until: Option<Instant>,
}

/// Routes calls to providers.
pub struct Fabric {
    sim: Arc<dyn Provider>,
    /// Real providers by kind: those whose credentials are set.
    providers: HashMap<&'static str, Arc<dyn Provider>>,
    pub retry: RetryPolicy,
    health: Mutex<HashMap<String, Health>>,
    /// Providers whose credentials are set but which could not be built.
    setup_errors: Vec<FabricError>,
    /// When set, answers are streamed and their text published on this
    /// bus as it arrives ([`Fabric::streaming`]).
    deltas: Option<Arc<dyn crate::bus::Bus>>,
    /// How streamed text is coalesced before it is published.
    pub stream_window: stream::Window,
    /// Exploration of `route: measured(…)` chains.
    pub explore: crate::stats::Explore,
    /// Every embedding model is the built-in hashing embedding (the
    /// scripted runs of `aosc test`, which reach no provider).
    offline_embeddings: bool,
}

impl Fabric {
    /// A fabric where every model is answered by the simulator.
    pub fn simulated() -> Fabric {
        Fabric {
            sim: Arc::new(sim::Sim::new()),
            providers: HashMap::new(),
            retry: RetryPolicy::default(),
            health: Mutex::new(HashMap::new()),
            setup_errors: Vec::new(),
            deltas: None,
            stream_window: stream::Window::default(),
            explore: crate::stats::Explore::default(),
            offline_embeddings: false,
        }
    }

    /// The same fabric, streaming every answer (the providers' streaming
    /// APIs; the simulator streams its words) and publishing its text on
    /// `bus` as [`stream::Delta`]s ([`crate::bus::Bus::subscribe_deltas`]).
    /// Usage and cost stay exact.
    pub fn streaming(mut self, bus: Arc<dyn crate::bus::Bus>) -> Fabric {
        self.deltas = Some(bus);
        self
    }

    /// Whether answers are streamed.
    pub fn streams(&self) -> bool {
        self.deltas.is_some()
    }

    /// The real providers whose keys are in the environment (unless
    /// `AOS_LLM=sim`), the simulator for the rest. `AOS_LLM_TIMEOUT_MS`
    /// bounds one HTTP request (default 120 s); `AOS_LLM_RETRIES`,
    /// `AOS_LLM_BACKOFF_MS` and `AOS_LLM_COOLDOWN_MS` tune the router;
    /// `AOS_ROUTE_EXPLORE` (ε in [0, 1], default 0.05) and `AOS_ROUTE_SEED`
    /// tune the exploration of measured routes.
    pub fn from_env() -> Fabric {
        let mut f = Fabric::simulated();
        if let Some(n) = env_nonempty("AOS_LLM_RETRIES").and_then(|v| v.trim().parse().ok()) {
            f.retry.retries = n;
        }
        if let Some(d) = env_ms("AOS_LLM_BACKOFF_MS") {
            f.retry.backoff = d;
        }
        if let Some(d) = env_ms("AOS_LLM_COOLDOWN_MS") {
            f.retry.cooldown = d;
        }
        if let Some(e) = env_nonempty("AOS_ROUTE_EXPLORE").and_then(|v| v.trim().parse::<f64>().ok()).filter(|e| (0.0..=1.0).contains(e)) {
            f.explore.epsilon = e;
        }
        if let Some(seed) = env_nonempty("AOS_ROUTE_SEED").and_then(|v| v.trim().parse().ok()) {
            f.explore.seed = seed;
        }
        if forced_sim() {
            return f;
        }
        let timeout = env_ms("AOS_LLM_TIMEOUT_MS").unwrap_or(Duration::from_secs(120));
        let logprobs = env_nonempty("AOS_LLM_LOGPROBS").is_some_and(|v| v.trim() == "1" || v.trim() == "true");
        for (kind, key_var, base_var, default) in PROVIDERS {
            let Some(key) = env_nonempty(key_var) else { continue };
            let base = env_nonempty(base_var).unwrap_or_else(|| default.to_string());
            let endpoint = match wire::Endpoint::new(kind.as_str(), base, key.trim().to_string(), timeout) {
                Ok(e) => e.with_logprobs(logprobs),
                Err(e) => {
                    f.setup_errors.push(e);
                    continue;
                }
            };
            let p: Arc<dyn Provider> = match kind {
                ProviderKind::Openai => Arc::new(openai::OpenAi { endpoint }),
                ProviderKind::Anthropic => Arc::new(anthropic::Anthropic { endpoint }),
                ProviderKind::Gemini => Arc::new(gemini::Gemini { endpoint }),
                ProviderKind::Sim => continue,
            };
            f.providers.insert(kind.as_str(), p);
        }
        f
    }

    /// A fabric where `provider` answers every model, whatever the
    /// environment says (the scripted replies of `aosc test`).
    pub fn answered_by(provider: Arc<dyn Provider>) -> Fabric {
        // A test's outcome must not hang on a draw.
        Fabric { sim: provider, explore: crate::stats::Explore::off(), offline_embeddings: true, ..Fabric::simulated() }
    }

    /// Installs a provider for a kind (tests, embedders).
    pub fn with_provider(mut self, kind: ProviderKind, p: Arc<dyn Provider>) -> Fabric {
        self.providers.insert(kind.as_str(), p);
        self
    }

    /// Who answers for `model`: its provider's name when that provider is
    /// configured, else `sim` (the key of its measured statistics).
    pub fn runs_on(&self, model: &Model) -> &'static str {
        if self.configured(model.provider) { model.provider.as_str() } else { "sim" }
    }

    /// True when models of this kind go to the real provider.
    pub fn configured(&self, kind: ProviderKind) -> bool {
        kind != ProviderKind::Sim && !forced_sim() && self.providers.contains_key(kind.as_str())
    }

    /// Lines for stderr saying which models run on the simulator and why.
    pub fn notes(&self, program: &Program) -> Vec<String> {
        let mut out: Vec<String> = self.setup_errors.iter().map(|e| format!("warning: {e}")).collect();
        let mut names: Vec<&str> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        let in_role = |name: &str, embedding: bool| program.roles.iter().any(|(r, c)| (r == embed::ROLE) == embedding && c.iter().any(|n| n == name));
        for m in program.models.values() {
            if m.provider != ProviderKind::Sim && !self.configured(m.provider) && !forced_sim() && in_role(&m.name, true) {
                let var = credential_var(m.provider).unwrap_or("its provider's key");
                out.push(format!(
                    "warning: model `{}` of the `embedding` role needs {var}: memory steps that embed fail without it (the simulator does not stand in for an embedding model)",
                    m.name
                ));
                if !in_role(&m.name, false) {
                    continue;
                }
            }
            if m.provider != ProviderKind::Sim && !self.configured(m.provider) {
                names.push(m.name.as_str());
                if let Some(var) = credential_var(m.provider).filter(|var| !missing.iter().any(|v| v == var)) {
                    missing.push(var.to_string());
                }
            }
        }
        if !names.is_empty() {
            let why = if forced_sim() {
                "AOS_LLM=sim".to_string()
            } else {
                format!("{} not set", missing.join(", "))
            };
            out.push(format!("note: models {} run on the offline simulator (sim): {why}", names.join(", ")));
        }
        out
    }

    fn provider_for(&self, model: &Model) -> &Arc<dyn Provider> {
        if forced_sim() {
            return &self.sim;
        }
        self.providers.get(model.provider.as_str()).unwrap_or(&self.sim)
    }

    fn health_key(model: &Model) -> String {
        format!("{}|{}|{}|{}", model.provider.as_str(), model.model_id, model.base_url.as_deref().unwrap_or(""), model.name)
    }

    /// How long the model still cools down, if it does.
    fn cooling(&self, model: &Model) -> Option<Duration> {
        let health = self.health.lock().ok()?;
        let until = health.get(&Self::health_key(model))?.until?;
        until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    fn succeeded(&self, model: &Model) {
        if let Ok(mut h) = self.health.lock() {
            h.remove(&Self::health_key(model));
        }
    }

    /// Records a call that got no answer from the model; returns the
    /// cooldown it starts, if it starts one.
    fn failed(&self, model: &Model, at_least: Option<Duration>, now: bool) -> Option<Duration> {
        let mut h = self.health.lock().ok()?;
        let e = h.entry(Self::health_key(model)).or_default();
        e.failures += 1;
        if now || e.failures >= self.retry.cooldown_after || at_least.is_some() {
            let d = at_least.unwrap_or(self.retry.cooldown).max(if now || e.failures >= self.retry.cooldown_after { self.retry.cooldown } else { Duration::ZERO });
            e.until = Some(Instant::now() + d);
            e.failures = 0;
            return Some(d);
        }
        None
    }

    /// Asks the role's chain in order. Transport errors are retried with
    /// backoff (or the server's `retry-after`); then, or at once after an
    /// error retrying cannot fix, the next model is tried (an audited
    /// fallback). Models cooling down are skipped unless all of them are.
    async fn ask_chain(
        &self,
        program: &Program,
        role: &str,
        base: &Request,
        out: &mut LlmOutcome,
        step: &str,
    ) -> Result<(Completion, Model), FabricError> {
        let chain = program.roles.get(role).cloned().unwrap_or_default();
        if chain.is_empty() {
            return Err(FabricError::Unbound(role.to_string()));
        }
        let purpose = if base.purpose == Purpose::Verify { "verify" } else { "answer" };
        let cooling: Vec<Option<Duration>> = chain.iter().map(|n| program.models.get(n).and_then(|m| self.cooling(m))).collect();
        let all_cooling = cooling.iter().all(Option::is_some);
        let mut last = String::new();
        let mut prev: Option<&str> = None;
        for (i, name) in chain.iter().enumerate() {
            let Some(model) = program.models.get(name) else {
                last = format!("model `{name}` is not in the program");
                continue;
            };
            if let (Some(left), false) = (cooling.get(i).copied().flatten(), all_cooling) {
                out.decisions.push(Decision::new(
                    "cooldown",
                    Some(step),
                    json!({"role": role, "model": name, "skipped": true, "remaining_ms": left.as_millis() as u64}),
                ));
                last = format!("model `{name}` is cooling down after repeated failures");
                continue;
            }
            if let Some(from) = prev {
                out.decisions.push(Decision::new(
                    "fallback",
                    Some(step),
                    json!({"role": role, "from": from, "to": name, "because": last}),
                ));
            }
            prev = Some(name);
            let provider = self.provider_for(model);
            let is_sim = Arc::ptr_eq(provider, &self.sim);
            let answered_by = if is_sim { "sim" } else { model.provider.as_str() };
            let retries = if is_sim { self.retry.sim_retries } else { self.retry.retries };
            let req = if is_sim { Request { model: model.clone(), ..base.clone() } } else { for_model(base, model) };
            let mut retry = 0u32;
            let (fatal, cool_at_least) = loop {
                let asked = Instant::now();
                match provider.complete(&req).await {
                    Ok(c) => {
                        let latency_ms = u64::try_from(asked.elapsed().as_millis()).unwrap_or(u64::MAX);
                        self.succeeded(model);
                        let u = usage_of(model, &c);
                        out.decisions.push(Decision::new(
                            "model",
                            Some(step),
                            json!({"role": role, "model": name, "provider": model.provider.as_str(), "model_id": model.model_id,
                                   "answered_by": answered_by, "purpose": purpose, "attempts": retry + 1,
                                   "usage": u, "latency_ms": latency_ms, "base_url": model.base_url}),
                        ));
                        return Ok((c, model.clone()));
                    }
                    Err(e @ (ProviderError::Fatal(_) | ProviderError::Refused(_))) => {
                        let refused = matches!(e, ProviderError::Refused(_));
                        let e = e.to_string();
                        out.decisions.push(Decision::new(
                            "model_failed",
                            Some(step),
                            json!({"role": role, "model": name, "error": e, "retryable": false, "attempts": retry + 1,
                                   "answered_by": answered_by, "model_id": model.model_id, "base_url": model.base_url}),
                        ));
                        last = e;
                        break (refused, None);
                    }
                    Err(ProviderError::Transport { message, retry_after }) => {
                        last = message.clone();
                        let too_long = retry_after.filter(|d| *d > self.retry.max_retry_after);
                        if retry >= retries || too_long.is_some() {
                            out.decisions.push(Decision::new(
                                "model_failed",
                                Some(step),
                                json!({"role": role, "model": name, "error": message, "retryable": true, "attempts": retry + 1,
                                       "retry_after_ms": retry_after.map(|d| d.as_millis() as u64),
                                       "answered_by": answered_by, "model_id": model.model_id, "base_url": model.base_url}),
                            ));
                            break (false, too_long);
                        }
                        let wait = match retry_after {
                            Some(d) => d,
                            None if is_sim => Duration::ZERO,
                            None => self.retry.backoff(retry),
                        };
                        out.decisions.push(Decision::new(
                            "transport_retry",
                            Some(step),
                            json!({"role": role, "model": name, "retry": retry + 1, "of": retries, "error": message,
                                   "wait_ms": wait.as_millis() as u64, "retry_after_ms": retry_after.map(|d| d.as_millis() as u64)}),
                        ));
                        tokio::time::sleep(wait).await;
                        retry += 1;
                    }
                }
            };
            if let Some(d) = self.failed(model, cool_at_least, fatal) {
                out.decisions.push(Decision::new(
                    "cooldown",
                    Some(step),
                    json!({"role": role, "model": name, "for_ms": d.as_millis() as u64, "because": last}),
                ));
            }
        }
        Err(FabricError::AllFailed { role: role.to_string(), last })
    }

    /// One turn of an agent step: the role's chain asked as for any call
    /// (fallbacks, transport retries, cooldowns; choices in `out`), with
    /// the request's conversation. The usage is the answering model's.
    pub async fn agent_turn(&self, program: &Program, req: &Request, out: &mut LlmOutcome, step: &str) -> Result<(Completion, Usage, String), FabricError> {
        let (c, model) = self.ask_chain(program, &req.role, req, out, step).await?;
        let usage = usage_of(&model, &c);
        Ok((c, usage, model.name))
    }

    /// Runs one LLM call that belongs to no step's attempt (streamed
    /// text, if any, is named attempt 0).
    pub async fn call(&self, program: &Program, call: LlmCall<'_>) -> LlmOutcome {
        self.call_attempt(program, call, 0).await
    }

    /// Runs one LLM attempt of a step; `attempt` names its streamed text.
    pub async fn call_attempt(&self, program: &Program, call: LlmCall<'_>, attempt: u32) -> LlmOutcome {
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
        let compiled;
        let validator = match (call.validator, call.schema.map(jsonschema::validator_for)) {
            (Some(v), _) => Some(v),
            (None, Some(Ok(v))) => {
                compiled = v;
                Some(&compiled)
            }
            (None, Some(Err(e))) => {
                out.error = Some(FabricError::Schema(e.to_string()));
                return out;
            }
            (None, None) => None,
        };
        let mut ask_prompt = prompt.clone();
        // Replies the verifier rejected, for the final error.
        let mut rejected: Vec<String> = Vec::new();
        for round in 0..=REPAIRS {
            let base = Request {
                model: placeholder_model(),
                prompt: ask_prompt.clone(),
                max_tokens: call.max_tokens,
                schema: call.schema.cloned(),
                call_key: call.call_key.clone(),
                purpose: Purpose::Answer,
                role: call.role.to_string(),
                stream: self.deltas.as_ref().map(|bus| stream::Deltas::new(bus.clone(), self.stream_window, &call.call_key, attempt)),
                conversation: None,
            };
            let (reply, model) = match self.ask_chain(program, call.role, &base, &mut out, call.step).await {
                Ok(r) => r,
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            };
            out.usage.add(&usage_of(&model, &reply));
            // The reply is never cut (LANGUAGE.md §4): the provider kept it
            // within `max_tokens`; beyond the bound the proof assumed, it is
            // reported and the budget is enforced on actual spend.
            let text = reply.text.clone();
            let bound = if call.max_reply_bytes > 0 { call.max_reply_bytes } else { call.max_tokens.saturating_mul(4) };
            if tokens::count(&text) > bound {
                out.decisions.push(Decision::new(
                    "reply_over_bound",
                    Some(call.step),
                    json!({"model": model.name, "bytes": tokens::count(&text), "max_reply_bytes": bound,
                           "output_tokens": reply.output_tokens, "max_tokens": call.max_tokens}),
                ));
            }
            let value = if call.typed {
                match serde_json::from_str::<Value>(json_text(&text)) {
                    Ok(v) => match &validator {
                        Some(val) => {
                            let errors: Vec<String> = val.iter_errors(&v).take(3).map(|e| e.to_string()).collect();
                            if errors.is_empty() { Ok(v) } else { Err(FabricError::Nonconforming(errors.join("; "))) }
                        }
                        None => Ok(v),
                    },
                    Err(e) => Err(FabricError::NotJson(e.to_string())),
                }
            } else {
                Ok(Value::String(text.clone()))
            };
            let mut value_error = None;
            let (problem, problems) = match value {
                Ok(v) => match call.verify {
                    Some(verify) => match self.verify(program, verify, &prompt, &text, &call.call_key, call.step, &mut out).await {
                        Ok(None) => {
                            out.result = Some(v);
                            return out;
                        }
                        Ok(Some((why, problems))) => {
                            rejected.push(text.clone());
                            (why, problems)
                        }
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
                Err(e) => {
                    let problem = e.to_string();
                    value_error = Some(e);
                    (problem, Vec::new())
                }
            };
            out.decisions.push(Decision::new(
                "repair",
                Some(call.step),
                json!({"round": round + 1, "problem": problem, "repair": round < REPAIRS}),
            ));
            if round == REPAIRS {
                out.error = Some(value_error.unwrap_or(FabricError::Unverified { why: problem, replies: rejected }));
                return out;
            }
            let notes = if problems.is_empty() {
                String::new()
            } else {
                format!("\nA reviewer found these problems:\n{}", problems.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join("\n"))
            };
            ask_prompt = match call.schema {
                Some(s) => format!("{prompt}\n\nYour previous reply was rejected: {problem}{notes}\nAnswer again with only JSON that validates against this schema:\n{s}"),
                None => format!("{prompt}\n\nYour previous reply was rejected: {problem}{notes}\nAnswer again."),
            };
        }
        out.error = Some(FabricError::NoReply);
        out
    }

    /// Asks the verifier role for a typed verdict on `reply` to `prompt`
    /// (an LLM step's reply, an agent's final answer), its usage added to
    /// `out`. `Ok(None)` when it agrees with at least `min_confidence`,
    /// `Ok(Some((why, problems)))` when not.
    #[allow(clippy::too_many_arguments)]
    pub async fn verify(
        &self,
        program: &Program,
        verify: &Verify,
        prompt: &str,
        reply: &str,
        call_key: &str,
        step: &str,
        out: &mut LlmOutcome,
    ) -> Result<Option<(String, Vec<String>)>, FabricError> {
        let req = Request {
            model: placeholder_model(),
            prompt: format!(
                "Check the reply below to the request below. Answer with a JSON object: \"agreement\" (true when the reply is correct and complete), \"confidence\" (a number in [0, 1]: how sure you are that the reply is correct and complete) and \"problems\" (a list of what is wrong or missing; empty when nothing is).\n\nRequest:\n{prompt}\n\nReply:\n{reply}"
            ),
            max_tokens: 256,
            schema: Some(verdict_schema()),
            call_key: format!("{call_key}#verify"),
            purpose: Purpose::Verify,
            role: verify.role.clone(),
            stream: None,
            conversation: None,
        };
        let (c, model) = self.ask_chain(program, &verify.role, &req, out, step).await?;
        out.usage.add(&usage_of(&model, &c));
        let verdict = serde_json::from_str::<Value>(json_text(&c.text)).ok();
        let stated = c
            .confidence
            .or_else(|| verdict.as_ref().and_then(|v| v.get("confidence")).and_then(Value::as_f64))
            .map(|c| c.clamp(0.0, 1.0));
        // A verifier sure in words but not in its tokens is taken at the
        // lower figure.
        let confidence = match (stated, c.agreement_probability) {
            (Some(s), Some(p)) => Some(s.min(p)),
            (s, _) => s,
        };
        let agreement = verdict.as_ref().and_then(|v| v.get("agreement")).and_then(Value::as_bool).unwrap_or(true);
        let mut problems: Vec<String> = verdict
            .as_ref()
            .and_then(|v| v.get("problems"))
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        if confidence.is_none() {
            problems.push(format!("the verifier's reply is not a verdict: {}", wire::clip(&c.text, 200)));
        }
        let min = verify.min_confidence.unwrap_or(0.0);
        let conf = confidence.unwrap_or(0.0);
        let ok = agreement && conf >= min && confidence.is_some();
        out.decisions.push(Decision::new(
            "verify",
            Some(step),
            json!({"role": verify.role, "model": model.name, "agreement": agreement, "confidence": confidence,
                   "stated_confidence": stated, "logprob_confidence": c.agreement_probability,
                   "problems": problems, "min_confidence": min, "accepted": ok}),
        ));
        if ok {
            return Ok(None);
        }
        let listed = if problems.is_empty() { String::new() } else { format!(" (problems: {})", problems.join("; ")) };
        let why = if agreement {
            format!("verification by `{}` reported confidence {conf:.2}, below min_confidence {min:.2}{listed}", verify.role)
        } else {
            format!("verification by `{}` disagreed with the reply (confidence {conf:.2}, min_confidence {min:.2}){listed}", verify.role)
        };
        Ok(Some((why, problems)))
    }
}

/// The request for one model of the chain. In `json_object` and `prompt`
/// modes (`structured:`) the schema is written into the prompt; in `prompt`
/// mode the provider is not asked for structure at all. The reply is
/// validated against the schema in every mode.
fn for_model(base: &Request, model: &Model) -> Request {
    let mut req = Request { model: model.clone(), ..base.clone() };
    // An agent's turn carries its schema in the prompt already.
    if base.conversation.is_some() {
        return req;
    }
    if let Some(schema) = &base.schema {
        let shown = match model.structured {
            Structured::JsonSchema => return req,
            // OpenAI's JSON mode needs an object at the root (the reply
            // is unwrapped as under `json_schema`).
            Structured::JsonObject if model.provider == ProviderKind::Openai => wire::object_root(schema).0,
            Structured::JsonObject => schema.clone(),
            Structured::Prompt => {
                req.schema = None;
                schema.clone()
            }
        };
        req.prompt = format!(
            "{}\n\nAnswer with only a JSON value (no prose, no code fence) that validates against this JSON Schema:\n{shown}",
            base.prompt
        );
    }
    req
}

/// The JSON of a reply: trimmed, and without a Markdown code fence around
/// it (models asked for JSON in the prompt often add one).
pub(crate) fn json_text(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else { return t };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").map(str::trim).unwrap_or(t)
}

/// What a verifier answers (`verify:`).
pub fn verdict_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "agreement": {"type": "boolean"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "problems": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["agreement", "confidence", "problems"],
        "additionalProperties": false
    })
}

/// Reported usage at the model's declared prices. Cached input is billed at
/// the input price and reasoning at the output price: a program declares
/// one price for each, so the figure never undercounts.
fn usage_of(model: &Model, c: &Completion) -> Usage {
    Usage {
        input_tokens: c.input_tokens,
        output_tokens: c.output_tokens,
        cached_input_tokens: c.cached_tokens,
        reasoning_tokens: c.reasoning_tokens,
        cost_usd: c.input_tokens as f64 * model.input_per_m / 1e6 + c.output_tokens as f64 * model.output_per_m / 1e6,
    }
}

pub(crate) fn placeholder_model() -> Model {
    Model {
        name: String::new(),
        provider: ProviderKind::Sim,
        model_id: String::new(),
        input_per_m: 0.0,
        output_per_m: 0.0,
        context: 0,
        base_url: None,
        structured: Structured::default(),
        sim: Default::default(),
    }
}
