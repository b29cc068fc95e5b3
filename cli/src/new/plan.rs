//! The plan a model writes: an ordered list of tool calls with argument
//! values, and the JSON Schema that constrains it (the tool field is an
//! enum of the shortlisted tools' names).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::catalog::CatalogTool;

/// One call of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    /// A catalog tool's dotted name.
    pub tool: String,
    /// Argument values as the model wrote them; a value naming an earlier
    /// step's result (`step1`, `step1.rooms[0]`) is lowered to a reference.
    #[serde(default)]
    pub args: Vec<PlanArg>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanArg {
    pub name: String,
    pub value: String,
}

/// What a model answers. An empty `steps` is a refusal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<PlanStep>,
}

/// Why a reply is not a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the reply is not a JSON plan: {0}")]
    NotJson(#[from] serde_json::Error),
}

impl Plan {
    pub fn from_value(v: Value) -> Result<Plan, PlanError> {
        Ok(serde_json::from_value(v)?)
    }

    #[cfg_attr(not(feature = "local-model"), allow(dead_code))]
    pub fn from_text(text: &str) -> Result<Plan, PlanError> {
        Ok(serde_json::from_str(text.trim())?)
    }
}

/// The JSON Schema of a plan over `tools`: strict (every property
/// required, no others), as providers' structured output wants it, and
/// small enough for a grammar on a local model. `max_steps` bounds the list.
pub fn schema(tools: &[&CatalogTool], max_steps: usize) -> Value {
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    let mut params: Vec<&str> = tools.iter().flat_map(|t| t.params.iter().map(|p| p.name.as_str())).collect();
    params.sort_unstable();
    params.dedup();
    let name_schema = if params.is_empty() { json!({"type": "string"}) } else { json!({"type": "string", "enum": params}) };
    json!({
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "maxItems": max_steps,
                "items": {
                    "type": "object",
                    "properties": {
                        "tool": {"type": "string", "enum": names},
                        "args": {
                            "type": "array",
                            "maxItems": 4,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": name_schema,
                                    "value": {"type": "string", "maxLength": 80}
                                },
                                "required": ["name", "value"],
                                "additionalProperties": false
                            }
                        }
                    },
                    "required": ["tool", "args"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["steps"],
        "additionalProperties": false
    })
}

/// The instructions and the shortlist, for the first round.
pub fn prompt(intent: &str, tools: &[&CatalogTool]) -> String {
    let mut out = String::from(
        "You plan automation pipelines. Pick the tools, in order, that do what the request asks, \
         and give each call its argument values taken from the request. To pass the result of an \
         earlier call, write its step name as the value: step1, step2, … (step1.field for a field). \
         Use only these tools; answer {\"steps\": []} if none of them can do it.\n\nTools:\n",
    );
    for t in tools {
        out.push_str(&format!("- {}: {}\n", t.signature(), t.summary()));
    }
    out.push_str(&format!("\nRequest: {intent}\n"));
    out
}

/// The prompt of a repair round: the first prompt, the plan and what the
/// checker said about the program it became.
pub fn repair_prompt(first: &str, plan: &Plan, diagnostics: &[String]) -> String {
    let plan_text = serde_json::to_string(plan).unwrap_or_default();
    format!(
        "{first}\nYour previous plan was:\n{plan_text}\n\nThe program it became does not check:\n{}\n\nAnswer with a corrected plan.\n",
        diagnostics.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::new::catalog::{Ty, ToolParam};

    #[test]
    fn the_schema_enumerates_the_shortlist() {
        let t = CatalogTool {
            name: "Email.send".into(),
            params: vec![ToolParam { name: "to".into(), ty: Ty::Str, has_default: false }],
            doc: String::new(),
            std_module: None,
        };
        let s = schema(&[&t], 6);
        assert_eq!(s["properties"]["steps"]["items"]["properties"]["tool"]["enum"], json!(["Email.send"]));
        assert_eq!(s["properties"]["steps"]["items"]["properties"]["args"]["items"]["properties"]["name"]["enum"], json!(["to"]));
        assert_eq!(s["properties"]["steps"]["maxItems"], json!(6));
    }

    #[test]
    fn plans_parse_and_missing_args_default() {
        let p = Plan::from_text(r#" {"steps":[{"tool":"A.b"}]} "#).ok();
        assert_eq!(p.map(|p| p.steps[0].args.clone()), Some(vec![]));
        assert!(Plan::from_text("not json").is_err());
    }
}
