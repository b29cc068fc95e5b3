//! Workflows and their steps: calls, routing, caching, fan-out,
//! verification, agents and cost bounds.

use super::*;

impl Step {
    /// The policy facts of this step.
    pub fn facts(&self) -> StepFacts<'_> {
        let tool = match &self.call {
            Call::Tool { tool, .. } => Some(tool.as_str()),
            _ => None,
        };
        StepFacts { risk: self.risk, kind: self.kind, effect: self.effect, tool }
    }

    /// Whether one value of the call (the step's, or one fan-out item's)
    /// is JSON rather than text: its type, without `?`, is not `String`.
    pub fn derived_typed(&self) -> bool {
        let item = match (self.ty.unwrap_optional(), self.fan_out.is_some()) {
            (Type::List { item }, true) => item.as_ref(),
            (t, _) => t,
        };
        !matches!(item.unwrap_optional(), Type::String)
    }

    /// The steps the call, the fan-out list and the idempotency key need
    /// (those only on the left of `??` are not needed), each once, in the
    /// order they are read.
    pub fn derived_needs(&self) -> Vec<String> {
        let mut read = Vec::new();
        for e in self.call_exprs() {
            e.steps_read(true, &mut read);
        }
        let mut needs: Vec<String> = Vec::new();
        for n in read {
            if !needs.iter().any(|x| x == n) {
                needs.push(n.to_string());
            }
        }
        needs
    }

    /// Computes `typed` and `needs`: the one definition of both, used when
    /// the checker lowers a step and when an IR written before they were
    /// carried is loaded.
    pub fn derive_facts(&mut self) {
        self.typed = self.derived_typed();
        self.needs = self.derived_needs();
    }

    /// The expressions evaluated to start an attempt: the call's
    /// arguments (or prompt), the fan-out list and the idempotency key.
    pub fn call_exprs(&self) -> Vec<&Expr> {
        let mut v = self.call.exprs();
        if let Some(f) = &self.fan_out {
            v.push(&f.items);
        }
        if let Some(k) = &self.idempotency_key {
            v.push(k);
        }
        v
    }
}

impl Call {
    /// The arguments (or the prompt) of the call.
    pub fn exprs(&self) -> Vec<&Expr> {
        match self {
            Call::Tool { args, .. } | Call::Workflow { args, .. } => args.values().collect(),
            Call::Llm { prompt, .. } => vec![prompt],
        }
    }

    /// The agent of an `agent ROLE(…)` call.
    pub fn agent(&self) -> Option<&Agent> {
        match self {
            Call::Llm { agent, .. } => agent.as_ref(),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub name: String,
    pub params: Vec<Param>,
    /// The declared or inferred return type; `None` when it returns nothing.
    pub ret: Option<Type>,
    pub ret_expr: Option<Expr>,
    pub intent: Option<String>,
    pub budget_usd: Option<f64>,
    /// Ceiling for unattended steps.
    pub risk: Risk,
    pub max_concurrency: Option<u32>,
    /// Per-parameter token bound checked at run start (default 2048).
    pub max_param_tokens: u64,
    pub trigger: Option<Trigger>,
    /// `priority:` (0 when absent): under `aosc serve`, queued runs of a
    /// higher priority take free slots first.
    #[serde(default)]
    pub priority: u32,
    /// Steps in a topological order of the step graph.
    pub steps: Vec<Step>,
    /// The worst-case cost of one run, in USD.
    pub cost_bound_usd: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Trigger {
    Cron { expr: String },
    Event { name: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub kind: StepKind,
    /// The step's value type (already `Optional` when it has `when:`).
    pub ty: Type,
    /// For an LLM step whose type is not `String`: the JSON Schema its
    /// reply must validate against. For a tool step whose declared type
    /// refines `Json`: the schema the value must conform to.
    pub schema: Option<serde_json::Value>,
    /// Whether one value of the call (the step's, or one fan-out item's)
    /// is JSON rather than text: an LLM reply is then parsed as JSON.
    #[serde(default)]
    pub typed: bool,
    /// The steps whose values the call, the fan-out list and the
    /// idempotency key need (those only on the left of `??` are not
    /// needed): when one of them is skipped, this step is skipped too.
    #[serde(default)]
    pub needs: Vec<String>,
    pub call: Call,
    /// `for VAR in ITEMS => call`.
    pub fan_out: Option<FanOut>,
    /// Names of the steps this one waits for (data and `after:` edges).
    pub deps: Vec<String>,
    pub when: Option<Expr>,
    pub retry: u32,
    pub backoff: Option<Backoff>,
    pub timeout_ms: Option<u64>,
    /// The approver group of an approval gate.
    pub approval: Option<String>,
    pub verify: Option<Verify>,
    /// The maximum output tokens of an LLM attempt (default 1024).
    pub max_tokens: u64,
    /// The reply bound the cost proof assumes, in UTF-8 bytes
    /// (`max_reply_bytes:`, else 4 × `max_tokens`). A longer reply is
    /// reported, never cut; 0 in IR written before the field existed.
    #[serde(default)]
    pub max_reply_bytes: u64,
    pub max_input_tokens: Option<u64>,
    /// The output bound of a tool step.
    pub max_output_tokens: u64,
    pub risk: Risk,
    pub effect: Effect,
    pub fallback: Option<Call>,
    pub idempotency_key: Option<Expr>,
    /// The response cache of the step's call (`cache:`, or the tool's own
    /// `cache:`); only on LLM calls and `read`/`pure` tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Cache>,
    /// How the step's role orders its chain (the role's `route:`); `None`:
    /// the written order. The cost bound is the worst model's either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// The worst-case cost of this step in USD, and how it was reached.
    pub cost: CostBound,
}

/// `route: measured(…)`: what a role's chain is ordered by, from the
/// models' measured statistics (fastest, cheapest, or most often verified
/// first; the written order breaks ties and places models measured too
/// little).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// The lowest mean latency first.
    Latency,
    /// The lowest cost per call first.
    Cost,
    /// The highest verification pass rate first (then the lowest error rate).
    Quality,
}

impl Route {
    /// The measures `measured(…)` takes.
    pub const NAMES: [&'static str; 3] = ["latency", "cost", "quality"];

    pub fn parse(name: &str) -> Option<Route> {
        match name {
            "latency" => Some(Route::Latency),
            "cost" => Some(Route::Cost),
            "quality" => Some(Route::Quality),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Latency => "latency",
            Route::Cost => "cost",
            Route::Quality => "quality",
        }
    }
}

/// How long a call's result is kept, and who may reuse it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cache {
    pub ttl_ms: u64,
    pub scope: CacheScope,
}

/// Who may reuse a cached result (`cache_scope:`). The cost proof never
/// counts on a hit: a step's bound is a miss's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// The same workflow, run at the same trust level (the default).
    #[default]
    Workflow,
    /// Any workflow, run at the same trust level.
    Shared,
    /// Any workflow at any trust level.
    Global,
}

impl CacheScope {
    /// The names `cache_scope:` takes, in order.
    pub const NAMES: [&'static str; 3] = ["workflow", "shared", "global"];

    pub fn parse(name: &str) -> Option<CacheScope> {
        match name {
            "workflow" => Some(CacheScope::Workflow),
            "shared" => Some(CacheScope::Shared),
            "global" => Some(CacheScope::Global),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CacheScope::Workflow => "workflow",
            CacheScope::Shared => "shared",
            CacheScope::Global => "global",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FanOut {
    pub var: String,
    pub items: Expr,
    pub max_items: Option<u64>,
    pub concurrency: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verify {
    pub role: String,
    pub min_confidence: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Backoff {
    Fixed { ms: u64 },
    Exponential { ms: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Call {
    Tool { tool: String, args: BTreeMap<String, Expr> },
    /// `llm ROLE(prompt)`; with `agent`, `agent ROLE(prompt) { tools: … }`.
    Llm {
        role: String,
        prompt: Expr,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<Agent>,
    },
    Workflow { workflow: String, args: BTreeMap<String, Expr> },
}

/// What makes an LLM call a bounded agent (docs/language.md, Agent steps).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// The tools the model may call, in the order of `tools:`.
    pub tools: Vec<AgentTool>,
    /// The most model calls (`max_turns:`).
    pub max_turns: u32,
    /// The most tool calls run (`max_tool_calls:`, default `max_turns - 1`).
    pub max_tool_calls: u32,
}

/// One tool of an agent step, as providers are told of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentTool {
    /// The dotted name (`http.get`).
    pub tool: String,
    /// The name providers see: `.` written `__` (`http__get`), since
    /// function names may not hold dots.
    pub wire_name: String,
    /// The tool's doc comment, else a sentence naming it.
    pub description: String,
    /// The JSON Schema of the arguments: an object of the parameters.
    pub parameters: serde_json::Value,
    pub risk: Risk,
    pub effect: Effect,
}

impl AgentTool {
    /// The name providers see for a dotted tool name.
    pub fn wire_name_of(tool: &str) -> String {
        tool.replace('.', "__")
    }
}

/// The worst-case cost of a step and the figures it came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostBound {
    pub usd: f64,
    /// Upper bound on prompt tokens of one attempt (LLM steps).
    pub prompt_tokens: u64,
    /// Output tokens of one attempt (LLM steps).
    pub output_tokens: u64,
    /// Billed attempts of the step's own model (1 + repairs) × (1 + retry).
    pub attempts: u64,
    /// Fan-out multiplier.
    pub items: u64,
    /// The model that gives the maximum.
    pub model: Option<String>,
    /// A sentence a user can follow.
    pub explanation: String,
}
