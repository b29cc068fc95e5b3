//! The checked program, as the runtime consumes it.
//!
//! The IR is self-contained: names are resolved, types are known (with the
//! JSON Schema of every structured LLM output), the step graph is explicit,
//! risk and cost bounds are computed, and the policy rules that could not be
//! decided at check time are carried for the runtime to enforce. The runtime
//! never re-parses source. `aosc check --emit-ir` prints it as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod expr;
mod policy;
mod workflow;

pub use expr::*;
pub use policy::*;
pub use workflow::*;

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

impl Type {
    /// The type inside `?`, or the type itself.
    pub fn unwrap_optional(&self) -> &Type {
        match self {
            Type::Optional { inner } => inner,
            t => t,
        }
    }
}
