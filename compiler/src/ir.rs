//! The checked program, as the runtime consumes it.
//!
//! The IR is self-contained: names are resolved, types are known (with the
//! JSON Schema of every structured LLM output), the step graph is explicit,
//! risk and cost bounds are computed, and the policy rules that could not be
//! decided at check time are carried for the runtime to enforce. The runtime
//! never re-parses source. `aosc check --emit-ir` prints it as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the IR format; bumped when the shape changes.
pub const IR_VERSION: u32 = 1;

/// A checked program. Read through [`compat`]: an IR written before the
/// steps carried `typed` and `needs` gets them computed once, on load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "compat::ProgramRepr")]
pub struct Program {
    pub version: u32,
    /// Every model declared (in this file and the files it uses), by name.
    pub models: BTreeMap<String, Model>,
    /// Every role bound to models: the ordered fallback chain of model names.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Every tool a workflow calls, by dotted name.
    pub tools: BTreeMap<String, Tool>,
    /// The policy rules the runtime must evaluate before steps start.
    pub rules: Vec<PolicyRule>,
    /// Every workflow, by name.
    pub workflows: BTreeMap<String, Workflow>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Openai,
    Anthropic,
    Gemini,
    Sim,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Sim => "sim",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    pub provider: Provider,
    /// The provider's own id for the model (`gpt-4o`).
    pub model_id: String,
    /// USD per million input tokens.
    pub input_per_m: f64,
    /// USD per million output tokens.
    pub output_per_m: f64,
    /// Context window in tokens.
    pub context: u64,
    pub base_url: Option<String>,
    /// How a typed step's structure is asked of the model (`structured:`).
    #[serde(default)]
    pub structured: Structured,
    /// Test attributes of `sim` models (§7); ignored by other providers.
    pub sim: SimOptions,
}

/// How structured output is asked for. The reply is validated against the
/// step's JSON Schema in every mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Structured {
    /// The provider's schema-constrained mode (OpenAI `response_format:
    /// json_schema`, Anthropic tool input, Gemini `responseSchema`).
    #[default]
    JsonSchema,
    /// OpenAI `response_format: json_object`, the schema in the prompt
    /// (servers without `json_schema`, such as llama-cpp-python's).
    JsonObject,
    /// The schema in the prompt only; no `response_format`.
    Prompt,
}

impl Structured {
    pub const NAMES: [&'static str; 3] = ["json_schema", "json_object", "prompt"];

    pub fn as_str(self) -> &'static str {
        match self {
            Structured::JsonSchema => "json_schema",
            Structured::JsonObject => "json_object",
            Structured::Prompt => "prompt",
        }
    }

    pub fn parse(s: &str) -> Option<Structured> {
        match s {
            "json_schema" => Some(Structured::JsonSchema),
            "json_object" => Some(Structured::JsonObject),
            "prompt" => Some(Structured::Prompt),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimOptions {
    pub latency_ms: u64,
    pub fail_first: u32,
    pub malformed_first: u32,
    pub confidence: Option<f64>,
    pub seed: u64,
    /// In an agent step, the turns that call a tool before the answer
    /// (`tool_calls:`, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Pure,
    Read,
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    Untrusted,
    Basic,
    Trusted,
    Admin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    Tool,
    Llm,
    Workflow,
}

/// A tool signature and how it is implemented.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub params: Vec<Param>,
    pub ret: Type,
    pub risk: Risk,
    pub effect: Effect,
    /// The output bound in tokens (`max_output_tokens`, default 8192).
    pub max_output_tokens: u64,
    pub timeout_ms: Option<u64>,
    pub implementation: ToolImpl,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ToolImpl {
    /// Implemented by the runtime (the standard library).
    Builtin,
    /// `http: "METHOD URL"`.
    Http { method: String, url: String },
    /// `exec: ["program", "arg", …]`, run sandboxed.
    Exec { argv: Vec<String> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub ty: Type,
    /// The default value, if the parameter has one.
    pub default: Option<Expr>,
}

/// A resolved type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Type {
    String,
    Int,
    Float,
    Bool,
    Json,
    Duration,
    Money,
    Secret,
    Null,
    List { item: Box<Type> },
    Optional { inner: Box<Type> },
    Record { name: Option<String>, fields: Vec<(String, Type)> },
    Enum { name: String, variants: Vec<String> },
}

/// A policy rule left for the runtime: its condition mentions `trust` (or
/// otherwise could not be decided at check time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyRule {
    pub policy: String,
    /// The rule as written, for messages and the audit log.
    pub text: String,
    pub action: PolicyAction,
    pub cond: Cond,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    RequireApproval,
    RequireVerify,
    Deny,
}

/// A policy condition over step facts and run facts.
///
/// Serialized with the value typed (`{"op": "compare", "cmp": "lt",
/// "value": {"trust": "trusted"}}`); IR written before values were typed
/// (`"fact": "trust", ..., "value": "trusted"`) still loads, its value
/// parsed once on load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", try_from = "compat::CondRepr")]
pub enum Cond {
    True,
    False,
    And { a: Box<Cond>, b: Box<Cond> },
    Or { a: Box<Cond>, b: Box<Cond> },
    Not { a: Box<Cond> },
    /// `FACT OP VALUE`, e.g. `trust < trusted`, `tool == "shell.exec"`:
    /// the value is typed, so the fact is the value's.
    Compare { cmp: Cmp, value: PolicyValue },
}

/// What a policy comparison compares a fact with, parsed once when the
/// policy is checked (or an old IR is loaded): evaluation only compares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyValue {
    Risk(Risk),
    Trust(Trust),
    Kind(StepKind),
    Effect(Effect),
    /// A tool's dotted name.
    Tool(String),
}

impl PolicyValue {
    /// The fact this value is compared with.
    pub fn fact(&self) -> Fact {
        match self {
            PolicyValue::Risk(_) => Fact::Risk,
            PolicyValue::Trust(_) => Fact::Trust,
            PolicyValue::Kind(_) => Fact::Kind,
            PolicyValue::Effect(_) => Fact::Effect,
            PolicyValue::Tool(_) => Fact::Tool,
        }
    }

    /// Parses the value of `fact` as written (a level, kind or effect
    /// name; a tool's name as is). `None` for a name `fact` does not have.
    pub fn parse(fact: Fact, text: &str) -> Option<PolicyValue> {
        use crate::check::risk::{parse_effect, parse_kind, parse_risk, parse_trust};
        Some(match fact {
            Fact::Risk => PolicyValue::Risk(parse_risk(text)?),
            Fact::Trust => PolicyValue::Trust(parse_trust(text)?),
            Fact::Kind => PolicyValue::Kind(parse_kind(text)?),
            Fact::Effect => PolicyValue::Effect(parse_effect(text)?),
            Fact::Tool => PolicyValue::Tool(text.to_string()),
        })
    }

    /// The value as written in a policy (a tool's name unquoted).
    pub fn name(&self) -> &str {
        use crate::check::risk::{effect_name, kind_name, risk_name, trust_name};
        match self {
            PolicyValue::Risk(r) => risk_name(*r),
            PolicyValue::Trust(t) => trust_name(*t),
            PolicyValue::Kind(k) => kind_name(*k),
            PolicyValue::Effect(e) => effect_name(*e),
            PolicyValue::Tool(t) => t,
        }
    }
}

/// The serde shapes `Cond` is read from: today's, and the one IR had
/// before policy values were typed.
mod compat {
    use serde::Deserialize;

    use std::collections::BTreeMap;

    use super::{Cmp, Cond, Fact, Model, PolicyRule, PolicyValue, Program, Tool, Workflow};

    /// [`Program`] as serialized, before the facts old IR lacks are filled.
    #[derive(Deserialize)]
    pub(super) struct ProgramRepr {
        version: u32,
        models: BTreeMap<String, Model>,
        roles: BTreeMap<String, Vec<String>>,
        tools: BTreeMap<String, Tool>,
        rules: Vec<PolicyRule>,
        workflows: BTreeMap<String, Workflow>,
    }

    impl From<ProgramRepr> for Program {
        fn from(r: ProgramRepr) -> Program {
            let mut p = Program { version: r.version, models: r.models, roles: r.roles, tools: r.tools, rules: r.rules, workflows: r.workflows };
            // IR from before `typed` and `needs` has both at their serde
            // defaults. Today's IR may too (a text step reading no step):
            // computing them again then gives the same values.
            for wf in p.workflows.values_mut() {
                for s in &mut wf.steps {
                    if !s.typed && s.needs.is_empty() {
                        s.derive_facts();
                    }
                }
            }
            p
        }
    }

    #[derive(Deserialize)]
    #[serde(tag = "op", rename_all = "snake_case")]
    pub(super) enum CondRepr {
        True,
        False,
        And { a: Box<Cond>, b: Box<Cond> },
        Or { a: Box<Cond>, b: Box<Cond> },
        Not { a: Box<Cond> },
        Compare {
            /// Only in old IR (today's value names its fact).
            #[serde(default)]
            fact: Option<Fact>,
            cmp: Cmp,
            value: ValueRepr,
        },
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(super) enum ValueRepr {
        Typed(PolicyValue),
        /// Old IR: the value as written, meaningful with `fact`.
        Text(String),
    }

    impl TryFrom<CondRepr> for Cond {
        type Error = String;

        fn try_from(r: CondRepr) -> Result<Cond, String> {
            Ok(match r {
                CondRepr::True => Cond::True,
                CondRepr::False => Cond::False,
                CondRepr::And { a, b } => Cond::And { a, b },
                CondRepr::Or { a, b } => Cond::Or { a, b },
                CondRepr::Not { a } => Cond::Not { a },
                CondRepr::Compare { fact, cmp, value: ValueRepr::Typed(value) } => match fact {
                    Some(f) if f != value.fact() => {
                        return Err(format!("a policy comparison of `{f:?}` has a value of `{:?}`", value.fact()));
                    }
                    _ => Cond::Compare { cmp, value },
                },
                CondRepr::Compare { fact: Some(fact), cmp, value: ValueRepr::Text(text) } => match PolicyValue::parse(fact, &text) {
                    Some(value) => Cond::Compare { cmp, value },
                    None => return Err(format!("`{text}` is not a value of the policy fact `{fact:?}`")),
                },
                CondRepr::Compare { fact: None, value: ValueRepr::Text(text), .. } => {
                    return Err(format!("the policy comparison with `{text}` names no fact"));
                }
            })
        }
    }
}

/// The facts of one step a policy condition speaks of (the run's `trust`
/// is given beside them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepFacts<'a> {
    pub risk: Risk,
    pub kind: StepKind,
    pub effect: Effect,
    /// The dotted name of the tool, for a tool step.
    pub tool: Option<&'a str>,
}

impl Type {
    /// The type inside `?`, or the type itself.
    pub fn unwrap_optional(&self) -> &Type {
        match self {
            Type::Optional { inner } => inner,
            t => t,
        }
    }
}

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

impl Cond {
    /// Whether the condition holds for a step when the run has `trust`:
    /// the one evaluator, used by the checker (for every trust level) and
    /// by the runtime (for the run's). A comparison the checker would have
    /// rejected (an unknown value, an order on `kind`) is false.
    pub fn holds(&self, facts: &StepFacts<'_>, trust: Trust) -> bool {
        match self {
            Cond::True => true,
            Cond::False => false,
            Cond::And { a, b } => a.holds(facts, trust) && b.holds(facts, trust),
            Cond::Or { a, b } => a.holds(facts, trust) || b.holds(facts, trust),
            Cond::Not { a } => !a.holds(facts, trust),
            Cond::Compare { cmp, value } => match value {
                PolicyValue::Risk(v) => cmp.ordered(facts.risk, *v),
                PolicyValue::Trust(v) => cmp.ordered(trust, *v),
                PolicyValue::Kind(v) => cmp.equality(facts.kind == *v),
                PolicyValue::Effect(v) => cmp.equality(facts.effect == *v),
                PolicyValue::Tool(t) => cmp.equality(facts.tool == Some(t.as_str())),
            },
        }
    }
}

impl Cmp {
    fn ordered<T: Ord>(self, fact: T, value: T) -> bool {
        match self {
            Cmp::Eq => fact == value,
            Cmp::Ne => fact != value,
            Cmp::Lt => fact < value,
            Cmp::Le => fact <= value,
            Cmp::Gt => fact > value,
            Cmp::Ge => fact >= value,
        }
    }

    fn equality(self, equal: bool) -> bool {
        match self {
            Cmp::Eq => equal,
            Cmp::Ne => !equal,
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fact {
    Risk,
    Kind,
    Tool,
    Effect,
    Trust,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
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

/// An expression the runtime evaluates. Names are resolved to what they
/// refer to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum Expr {
    /// A literal value (numbers, strings without interpolation, booleans,
    /// null, durations in ms, money in USD, enum variants as strings).
    Lit { value: serde_json::Value },
    /// An interpolated string.
    Interp { parts: Vec<InterpPart> },
    /// A workflow parameter.
    Param { name: String },
    /// Another step's value.
    Step { name: String },
    /// The fan-out variable.
    Var { name: String },
    Field { of: Box<Expr>, field: String },
    Index { of: Box<Expr>, index: Box<Expr> },
    List { items: Vec<Expr> },
    Record { fields: Vec<(String, Expr)> },
    Not { a: Box<Expr> },
    Neg { a: Box<Expr> },
    Binary { op: BinOp, a: Box<Expr>, b: Box<Expr> },
    /// A pure built-in: `len`, `json`, `join`, `lower`, `upper`, `trim`.
    Builtin { name: String, args: Vec<Expr> },
    /// `secret("NAME")`: resolved by the runtime, redacted everywhere.
    Secret { name: String },
}

impl Expr {
    /// Appends the steps this expression reads, in order (with repeats).
    /// With `needed_only`, steps only on the left of `??` are left out:
    /// `??` is there to tolerate a skipped step.
    pub fn steps_read<'a>(&'a self, needed_only: bool, out: &mut Vec<&'a str>) {
        match self {
            Expr::Step { name } => out.push(name),
            Expr::Binary { op: BinOp::Coalesce, b, .. } if needed_only => b.steps_read(needed_only, out),
            Expr::Binary { a, b, .. } | Expr::Index { of: a, index: b } => {
                a.steps_read(needed_only, out);
                b.steps_read(needed_only, out);
            }
            Expr::Interp { parts } => {
                for p in parts {
                    if let InterpPart::Expr { expr } = p {
                        expr.steps_read(needed_only, out);
                    }
                }
            }
            Expr::Field { of, .. } | Expr::Not { a: of } | Expr::Neg { a: of } => of.steps_read(needed_only, out),
            Expr::List { items } | Expr::Builtin { args: items, .. } => items.iter().for_each(|e| e.steps_read(needed_only, out)),
            Expr::Record { fields } => fields.iter().for_each(|(_, e)| e.steps_read(needed_only, out)),
            Expr::Lit { .. } | Expr::Param { .. } | Expr::Var { .. } | Expr::Secret { .. } => {}
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "p", rename_all = "snake_case")]
pub enum InterpPart {
    Text { text: String },
    Expr { expr: Expr },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Coalesce,
}
