//! The one table of attributes: every key a workflow header, a step, a tool
//! or a model takes, with its type, default, where it is allowed and its doc.
//!
//! The checker's unknown-attribute (E0105) and out-of-range (E0106) errors,
//! the typed per-item attributes (`check::attrs`), the language server's
//! completion and hover, and the attribute reference in `docs/language.md`
//! all come from [`ATTRIBUTES`] (in the way of rustc's `BUILTIN_ATTRIBUTES`).

use std::fmt;

/// The kind of item an attribute block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    /// A workflow's header (`budget: $1`).
    Workflow,
    /// A step's `{ … }` block.
    Step,
    /// A tool declaration's `{ … }` block.
    Tool,
    /// A model declaration's `{ … }` block.
    Model,
    /// A role declaration's `{ … }` block.
    Role,
}

impl Item {
    /// Every kind, in the order of the reference.
    pub const ALL: [Item; 5] = [Item::Workflow, Item::Step, Item::Tool, Item::Model, Item::Role];

    /// The item's name in messages ("a step takes …").
    pub fn name(self) -> &'static str {
        match self {
            Item::Workflow => "workflow",
            Item::Step => "step",
            Item::Tool => "tool",
            Item::Model => "model",
            Item::Role => "role",
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an attribute's value must be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttrType {
    /// An integer in `min..=max` (inclusive).
    Int { min: i64, max: i64 },
    /// A float in `min..=max` (inclusive).
    Float { min: f64, max: f64 },
    /// A duration (`30s`) of at least `min_ms`, whose milliseconds fit in a
    /// signed 64-bit integer.
    Duration { min_ms: u64 },
    /// An amount (`$0.50`).
    Money,
    /// A per-million-token price (`$2.50/M`).
    Price,
    /// A string (possibly interpolated, where the item allows it).
    String,
    /// A `Bool` expression.
    Bool,
    /// A risk level: `low`, `medium`, `high`, `critical`.
    Risk,
    /// An effect: `pure`, `read`, `external`.
    Effect,
    /// A role name.
    Role,
    /// A list of step names.
    StepList,
    /// `fixed(D)` or `exponential(D)`.
    Backoff,
    /// `cron("…")` or `event("…")`.
    Trigger,
    /// A call, as after a step's `=`.
    Call,
    /// Any expression.
    Expr,
    /// A list of strings (a program and its arguments).
    StringList,
    /// Who may share a cached reply: `workflow`, `shared` or `global`.
    CacheScope,
    /// `measured(latency)`, `measured(cost)` or `measured(quality)`.
    Route,
    /// A list of tool names (`[http.get, sql.query]`).
    ToolList,
    /// A list of the tool's own parameter names (`[key, value]`).
    ParamList,
}

impl AttrType {
    /// The type as the reference writes it.
    pub fn describe(self) -> String {
        match self {
            AttrType::Int { min, max } if max >= i64::from(u32::MAX) => format!("Int ≥ {min}"),
            AttrType::Int { min, max } => format!("Int in {min}..={max}"),
            AttrType::Float { min, max } => format!("Float in {min}..={max}"),
            AttrType::Duration { min_ms: 0 } => "Duration".to_string(),
            AttrType::Duration { .. } => "Duration > 0".to_string(),
            AttrType::Money => "Money".to_string(),
            AttrType::Price => "Price (`$…/M`)".to_string(),
            AttrType::String => "String".to_string(),
            AttrType::Bool => "Bool".to_string(),
            AttrType::Risk => "risk level".to_string(),
            AttrType::Effect => "effect".to_string(),
            AttrType::Role => "role".to_string(),
            AttrType::StepList => "list of steps".to_string(),
            AttrType::Backoff => "backoff".to_string(),
            AttrType::Trigger => "trigger".to_string(),
            AttrType::Call => "call".to_string(),
            AttrType::Expr => "expression".to_string(),
            AttrType::StringList => "List<String>".to_string(),
            AttrType::CacheScope => "`workflow`, `shared` or `global`".to_string(),
            AttrType::Route => "`measured(latency \\| cost \\| quality)`".to_string(),
            AttrType::ToolList => "list of tools".to_string(),
            AttrType::ParamList => "list of the tool's parameters".to_string(),
        }
    }
}

/// One attribute of one kind of item.
#[derive(Clone, Copy, Debug)]
pub struct AttrSpec {
    pub name: &'static str,
    pub item: Item,
    pub ty: AttrType,
    /// The default, as the reference writes it (`""` when absent means
    /// "none").
    pub default: &'static str,
    /// An example value, for completion and the reference.
    pub example: &'static str,
    /// One or two sentences for hover and the reference.
    pub doc: &'static str,
}

const U32: i64 = u32::MAX as i64;
const TOKENS: AttrType = AttrType::Int { min: 1, max: i64::MAX };
const COUNT: AttrType = AttrType::Int { min: 0, max: U32 };
/// The most turns an agent step may take (`max_turns:`).
pub const MAX_TURNS: i64 = 64;

macro_rules! attr {
    ($item:ident $name:literal : $ty:expr, default $default:literal, e.g. $example:literal, $doc:literal) => {
        AttrSpec { name: $name, item: Item::$item, ty: $ty, default: $default, example: $example, doc: $doc }
    };
}

/// Every attribute of the language.
pub const ATTRIBUTES: &[AttrSpec] = &[
    // Workflow headers.
    attr!(Workflow "intent": AttrType::String, default "", e.g. "\"Send the weekly report\"",
        "What the workflow is for, in a sentence (shown by tools and `aosc new`)."),
    attr!(Workflow "budget": AttrType::Money, default "", e.g. "$0.50",
        "The most one run may cost; the checker proves the worst case fits (E0501), the runtime enforces actual spend."),
    attr!(Workflow "risk": AttrType::Risk, default "medium", e.g. "medium",
        "The ceiling for unattended steps: a step above it needs `approval:` (E0602)."),
    attr!(Workflow "trigger": AttrType::Trigger, default "", e.g. "cron(\"0 9 * * MON\")",
        "Starts runs on a schedule (`cron(\"…\")`) or an event (`event(\"…\")`) under `aosc serve`."),
    attr!(Workflow "max_concurrency": AttrType::Int { min: 1, max: U32 }, default "", e.g. "4",
        "How many of the workflow's steps may run at once (default: unbounded)."),
    attr!(Workflow "max_param_tokens": TOKENS, default "2048", e.g. "2048",
        "The token bound of every parameter value; a larger input is refused before the run starts."),
    attr!(Workflow "priority": AttrType::Int { min: 0, max: 1000 }, default "0", e.g. "10",
        "Under `aosc serve`, a queued run of a higher-priority workflow takes the next free slot first (ties: arrival order)."),
    // Steps.
    attr!(Step "retry": COUNT, default "0", e.g. "3",
        "How many more times a failed step is tried; multiplies the step's cost bound by `1 + retry`."),
    attr!(Step "backoff": AttrType::Backoff, default "", e.g. "exponential(2s)",
        "The wait between retries: `fixed(D)` or `exponential(D)`."),
    attr!(Step "timeout": AttrType::Duration { min_ms: 1 }, default "", e.g. "30s",
        "How long one attempt may take before it fails."),
    attr!(Step "when": AttrType::Bool, default "", e.g. "len(rows) > 0",
        "Runs the step only when the condition holds; its type becomes `T?`."),
    attr!(Step "approval": AttrType::String, default "", e.g. "\"sales-lead\"",
        "A human gate: the run pauses until this approver group approves."),
    attr!(Step "verify": AttrType::Role, default "", e.g. "verifier",
        "A role whose models cross-check the output (they must not share a model with the step's role, E0402)."),
    attr!(Step "min_confidence": AttrType::Float { min: 0.0, max: 1.0 }, default "", e.g. "0.7",
        "The confidence the verifier must report; a lower one re-asks the step."),
    attr!(Step "max_tokens": TOKENS, default "1024", e.g. "600",
        "The most tokens an LLM reply may have (the cost bound uses it)."),
    attr!(Step "max_reply_bytes": COUNT, default "4 × max_tokens", e.g. "2400",
        "The bound in UTF-8 bytes of an LLM reply wherever it is interpolated (docs/cost.md, the reply bound); a longer reply is kept and reported."),
    attr!(Step "max_input_tokens": TOKENS, default "", e.g. "4000",
        "The runtime fits the prompt into this many tokens (bounds a prompt with unbounded inputs)."),
    attr!(Step "max_output_tokens": TOKENS, default "the tool's, else 8192", e.g. "4000",
        "A tool's output bound: a longer text is truncated, a larger JSON value fails the step."),
    attr!(Step "max_items": COUNT, default "", e.g. "10",
        "The most items a fan-out runs (required unless the list's length is known)."),
    attr!(Step "concurrency": AttrType::Int { min: 1, max: U32 }, default "", e.g. "4",
        "How many items of a fan-out run at once."),
    attr!(Step "risk": AttrType::Risk, default "the call's", e.g. "high",
        "Raises the step's risk above its tool's."),
    attr!(Step "after": AttrType::StepList, default "", e.g. "[load, clean]",
        "Ordering without data: the step starts after these."),
    attr!(Step "fallback": AttrType::Call, default "", e.g. "llm executor(\"…\")",
        "A call to run when every retry and model failed; its result must fit the step's type."),
    attr!(Step "idempotency_key": AttrType::Expr, default "", e.g. "\"report-{region}\"",
        "External effects are deduplicated by this value across retries and resumes."),
    attr!(Step "cache": AttrType::Duration { min_ms: 1 }, default "", e.g. "24h",
        "Keeps the reply of an LLM call, or the result of a `read`/`pure` tool call, this long; an identical call within it is answered from the cache at $0 (docs/language.md, *Response cache*)."),
    attr!(Step "cache_scope": AttrType::CacheScope, default "workflow", e.g. "shared",
        "Who may reuse a cached result: `workflow` (this workflow at the same trust level), `shared` (any workflow at the same trust level) or `global` (any workflow, any trust)."),
    attr!(Step "tools": AttrType::ToolList, default "", e.g. "[http.get, sql.query]",
        "Agent steps only (required): the tools the model may call (docs/language.md, Agent steps)."),
    attr!(Step "max_turns": AttrType::Int { min: 1, max: MAX_TURNS }, default "4", e.g. "6",
        "Agent steps only: the most model calls (turns); the cost bound is turns × the bound of one turn."),
    attr!(Step "max_tool_calls": COUNT, default "max_turns - 1", e.g. "5",
        "Agent steps only: the most tool calls the step runs; later calls get an error result instead."),
    // Tools.
    attr!(Tool "http": AttrType::String, default "", e.g. "\"POST http://127.0.0.1:9000/lookup\"",
        "Backs the tool with an HTTP request: `\"METHOD URL\"`."),
    attr!(Tool "exec": AttrType::StringList, default "", e.g. "[\"wc\", \"-l\"]",
        "Backs the tool with a program run sandboxed: the program and its arguments."),
    attr!(Tool "risk": AttrType::Risk, default "low", e.g. "medium",
        "The tool's risk level."),
    attr!(Tool "effect": AttrType::Effect, default "read", e.g. "external",
        "What the tool does to the world: `pure`, `read` or `external` (decides how a resume retries it)."),
    attr!(Tool "max_output_tokens": TOKENS, default "8192", e.g. "2000",
        "The token bound of the tool's output (a longer text is truncated)."),
    attr!(Tool "embeds": AttrType::ParamList, default "", e.g. "[key, value]",
        "The parameters whose text each call embeds with the `embedding` role; the cost proof bounds their tokens at its dearest model's `input:` price."),
    attr!(Tool "timeout": AttrType::Duration { min_ms: 1 }, default "", e.g. "30s",
        "How long one call may take."),
    attr!(Tool "cache": AttrType::Duration { min_ms: 1 }, default "", e.g. "1h",
        "For a `read` or `pure` tool: every call's result is cached this long unless the step says otherwise (as the step attribute `cache:`)."),
    // Models.
    attr!(Model "input": AttrType::Price, default "$0/M for sim, else required", e.g. "$2.50/M",
        "The price of a million input tokens."),
    attr!(Model "output": AttrType::Price, default "$0/M for sim, else required", e.g. "$10.00/M",
        "The price of a million output tokens."),
    attr!(Model "context": TOKENS, default "unbounded", e.g. "128000",
        "The context window in tokens (E0404 when a prompt may not fit)."),
    attr!(Model "base_url": AttrType::String, default "the provider's", e.g. "\"http://127.0.0.1:11434/v1\"",
        "The provider endpoint; overrides the provider's environment variable."),
    attr!(Model "structured": AttrType::String, default "\"json_schema\"", e.g. "\"json_object\"",
        "How structured output is asked for: `json_schema`, `json_object` (schema in the prompt) or `prompt`."),
    attr!(Model "latency": AttrType::Duration { min_ms: 0 }, default "0ms", e.g. "20ms",
        "`sim` only: every answer takes this long."),
    attr!(Model "fail_first": COUNT, default "0", e.g. "2",
        "`sim` only: the first N attempts of each step fail as a transport error would."),
    attr!(Model "malformed_first": COUNT, default "0", e.g. "1",
        "`sim` only: the first N replies of a typed step are not valid JSON."),
    attr!(Model "confidence": AttrType::Float { min: 0.0, max: 1.0 }, default "", e.g. "0.9",
        "`sim` only: the confidence a verification by this model reports."),
    attr!(Model "tool_calls": COUNT, default "1", e.g. "2",
        "`sim` only: in an agent step, the turns that call a tool before the answer."),
    attr!(Model "seed": AttrType::Int { min: 0, max: i64::MAX }, default "0", e.g. "7",
        "`sim` only: seeds the simulated answers."),
    // Roles.
    attr!(Role "route": AttrType::Route, default "the written order", e.g. "measured(latency)",
        "Reorders the chain by the models' measured statistics: mean latency, cost per call, or verification pass rate (docs/language.md, *Routing by measured statistics*)."),
];

/// The attribute `name` of `item`, if it takes one.
pub fn lookup(item: Item, name: &str) -> Option<&'static AttrSpec> {
    ATTRIBUTES.iter().find(|a| a.item == item && a.name == name)
}

/// The attributes `item` takes, in the table's order.
pub fn of(item: Item) -> impl Iterator<Item = &'static AttrSpec> {
    ATTRIBUTES.iter().filter(move |a| a.item == item)
}

/// The items other than `item` that take an attribute `name`.
pub fn taken_by_others(item: Item, name: &str) -> Vec<Item> {
    ATTRIBUTES.iter().filter(|a| a.item != item && a.name == name).map(|a| a.item).collect()
}

/// A hover text for an attribute: type, default and doc, in Markdown.
pub fn hover(spec: &AttrSpec) -> String {
    let mut s = format!("**{}** `{}:` {}", spec.item, spec.name, spec.ty.describe());
    if !spec.default.is_empty() {
        s.push_str(&format!(" (default {})", spec.default));
    }
    s.push_str("\n\n");
    s.push_str(spec.doc);
    s.push_str(&format!("\n\n```aos\n{}: {}\n```", spec.name, spec.example));
    s
}

/// The attribute reference of `docs/language.md`, as Markdown: one table per
/// kind of item. A test keeps the page in step with [`ATTRIBUTES`].
pub fn reference_markdown() -> String {
    let mut out = String::new();
    for item in Item::ALL {
        out.push_str(&format!("\n### {} attributes\n\n", capitalize(item.name())));
        out.push_str("| attribute | type | default | example | meaning |\n|---|---|---|---|---|\n");
        for a in of(item) {
            let default = if a.default.is_empty() { "—" } else { a.default };
            out.push_str(&format!(
                "| `{}` | {} | {} | `{}` | {} |\n",
                a.name,
                a.ty.describe(),
                default,
                a.example.replace('|', "\\|"),
                a.doc.replace('|', "\\|")
            ));
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().collect::<String>() + c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_per_item() {
        for (i, a) in ATTRIBUTES.iter().enumerate() {
            for b in ATTRIBUTES.iter().skip(i + 1) {
                assert!(!(a.item == b.item && a.name == b.name), "{} {} twice", a.item, a.name);
            }
        }
    }

    #[test]
    fn lookups() {
        assert!(lookup(Item::Step, "retry").is_some());
        assert!(lookup(Item::Workflow, "retry").is_none());
        assert_eq!(taken_by_others(Item::Workflow, "retry"), vec![Item::Step]);
    }
}
