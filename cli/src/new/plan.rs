//! The plan a model writes: an ordered list of tool calls with argument
//! values, and the JSON Schema that constrains it (the tool field is an
//! enum of the shortlisted tools' names).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::catalog::{CatalogTool, ToolParam, Ty};
use super::lower::{is_text_param, normalized};

/// What is known about argument values beyond their types, from outside
/// the catalog: the database's tables ([`super::database`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hints {
    /// The anchored pattern a `sql` argument is held to
    /// ([`super::database::Schema::sql_pattern`]).
    pub sql_pattern: Option<String>,
    /// Lines the prompt adds after the tools (the database's tables).
    pub notes: Vec<String>,
}

/// An email address, short enough for a small model to finish.
#[cfg_attr(not(feature = "local-model"), allow(dead_code))]
pub const ADDRESS_PATTERN: &str = "^[a-z][a-z0-9]{0,15}([._-][a-z0-9]{1,15}){0,2}@[a-z][a-z0-9]{0,15}([.][a-z][a-z0-9]{0,15}){0,2}[.][a-z]{2,6}$";

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

/// An earlier step's result as a plan value: `stepN`, optionally with a
/// path (`step1.rooms[0]`), for steps before step `k` (1-based).
#[cfg_attr(not(feature = "local-model"), allow(dead_code))]
fn reference_pattern(k: usize) -> Option<String> {
    (k > 1).then(|| format!("step[1-{}](\\.[A-Za-z_][A-Za-z0-9_]*|\\[[0-9]\\])*", (k - 1).min(9)))
}

/// The schema of one argument value of type `ty` at step `k`: digits for
/// numbers, `true`/`false` for booleans, bounded text otherwise; or a
/// reference to an earlier step.
#[cfg_attr(not(feature = "local-model"), allow(dead_code))]
fn value_schema(ty: &Ty, k: usize) -> Value {
    let with_ref = |literal: &str| match reference_pattern(k) {
        Some(r) => json!({"type": "string", "pattern": format!("^({literal}|{r})$")}),
        None => json!({"type": "string", "pattern": format!("^{literal}$")}),
    };
    match ty {
        Ty::Optional(inner) => value_schema(inner, k),
        Ty::Int => with_ref("-?[0-9]{1,9}"),
        Ty::Float => with_ref("-?[0-9]{1,7}(\\.[0-9]{1,7})?"),
        Ty::Bool => json!({"type": "string", "enum": ["true", "false"]}),
        _ => json!({"type": "string", "minLength": 1, "maxLength": 60}),
    }
}

/// A parameter of a mail tool that takes the recipient's address.
#[cfg_attr(not(feature = "local-model"), allow(dead_code))]
fn is_address_param(tool: &CatalogTool, param: &ToolParam) -> bool {
    const NAMES: &[&str] = &["to", "recipient", "receiver", "email", "emailaddress", "address", "cc", "bcc"];
    let mail_tool = tool.name.to_ascii_lowercase().contains("mail") || tool.summary().to_ascii_lowercase().contains("email");
    let text = matches!(&param.ty, Ty::Str) || matches!(&param.ty, Ty::Optional(t) if **t == Ty::Str);
    mail_tool && text && NAMES.contains(&normalized(&param.name).as_str())
}

/// The schema of one argument value: what [`Hints`] and the parameter's
/// role say (a `sql` argument held to the database's tables, a mail
/// recipient to an address), else what its type allows ([`value_schema`]).
#[cfg_attr(not(feature = "local-model"), allow(dead_code))]
fn param_schema(tool: &CatalogTool, p: &ToolParam, k: usize, hints: &Hints) -> Value {
    if normalized(&p.name) == "sql"
        && let Some(pattern) = &hints.sql_pattern
    {
        return json!({"type": "string", "pattern": pattern});
    }
    if is_address_param(tool, p) {
        return json!({"type": "string", "pattern": ADDRESS_PATTERN});
    }
    value_schema(&p.ty, k)
}

/// The schema the embedded model writes against: exactly `tools`, in this
/// order, each with the required arguments the lowering cannot wire itself
/// (an id from an earlier step of the same toolkit, a field an earlier
/// result has, a text composed from earlier results): the model writes only
/// the values, held to [`param_schema`]. A small model
/// chooses and names tools poorly; retrieval does that, and the grammar
/// makes every plan well formed.
#[cfg_attr(not(feature = "local-model"), allow(dead_code))]
pub fn fill_schema(tools: &[&CatalogTool], hints: &Hints) -> Value {
    let kit = |name: &str| name.rsplit_once('.').map_or(name.to_string(), |(k, _)| k.to_string());
    let steps: Vec<Value> = tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let earlier_same_kit = tools[..i].iter().any(|e| kit(&e.name) == kit(&t.name));
            // A field of an earlier result named like the parameter: the lowering wires it.
            let earlier_field = |p: &str| tools[..i].iter().any(|e| e.result_fields().iter().any(|f| normalized(f) == normalized(p)));
            let args: Vec<Value> = t
                .params
                .iter()
                .filter(|p| !p.optional())
                .filter(|p| !(earlier_same_kit && t.takes_id(&p.name)))
                .filter(|p| !(i > 0 && is_text_param(&p.name)))
                .filter(|p| !earlier_field(&p.name))
                .map(|p| {
                    json!({
                        "type": "object",
                        "properties": {"name": {"const": p.name}, "value": param_schema(t, p, i + 1, hints)},
                        "required": ["name", "value"],
                        "additionalProperties": false
                    })
                })
                .collect();
            let n = args.len();
            json!({
                "type": "object",
                "properties": {
                    "tool": {"const": t.name},
                    "args": {"type": "array", "prefixItems": args, "minItems": n, "maxItems": n}
                },
                "required": ["tool", "args"],
                "additionalProperties": false
            })
        })
        .collect();
    let n = steps.len();
    json!({
        "type": "object",
        "properties": {"steps": {"type": "array", "prefixItems": steps, "minItems": n, "maxItems": n}},
        "required": ["steps"],
        "additionalProperties": false
    })
}

/// A worked example for the first round (small models follow the form
/// of an example better than a description of it). Its tools are not in
/// any catalog.
const EXAMPLE: &str = "Example.\nTools:\n\
- Maps.find_place(query: String): Finds a place by its name.\n\
- Maps.get_route(start: String, end: String): The route between two places.\n\
- Notes.write(text: String): Saves a note.\n\
Request: Find the Louvre, then tell me how to get from there to the Eiffel Tower and save the route in a note.\n\
Plan: {\"steps\":[{\"tool\":\"Maps.find_place\",\"args\":[{\"name\":\"query\",\"value\":\"Louvre\"}]},\
{\"tool\":\"Maps.get_route\",\"args\":[{\"name\":\"start\",\"value\":\"step1\"},{\"name\":\"end\",\"value\":\"Eiffel Tower\"}]},\
{\"tool\":\"Notes.write\",\"args\":[{\"name\":\"text\",\"value\":\"step2\"}]}]}\n";

/// The instructions and the shortlist, for the first round.
pub fn prompt(intent: &str, tools: &[&CatalogTool], hints: &Hints) -> String {
    let mut out = String::from(
        "You plan automation pipelines. Pick the tools, in order, that do what the request asks, \
         and give each call its argument values taken from the request. To pass the result of an \
         earlier call, write its step name as the value: step1, step2, … (step1.field for a field). \
         The tools below were picked for this request, in the order it mentions them; use each one \
         it needs. Use only these tools; answer {\"steps\": []} if none of them can do it.\n\n",
    );
    out.push_str(EXAMPLE);
    out.push_str("\nNow yours.\nTools:\n");
    for t in tools {
        out.push_str(&format!("- {}: {}\n", t.signature(), t.summary()));
    }
    for n in &hints.notes {
        out.push_str(&format!("{n}\n"));
    }
    out.push_str(&format!("Request: {intent}\nPlan:"));
    out
}

/// The prompt of a repair round: the first prompt, the plan and what the
/// checker said about the program it became.
pub fn repair_prompt(first: &str, plan: &Plan, diagnostics: &[String]) -> String {
    let plan_text = serde_json::to_string(plan).unwrap_or_default();
    let first = first.strip_suffix("Plan:").unwrap_or(first);
    format!(
        "{first}\nYour previous plan was:\n{plan_text}\n\nThe program it became does not check:\n{}\n\nAnswer with a corrected plan.\nPlan:",
        diagnostics.join("\n")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::new::catalog::ToolParam;

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

    fn rooms() -> Vec<CatalogTool> {
        let p = |name: &str, ty: Ty| ToolParam { name: name.into(), ty, has_default: false };
        vec![
            CatalogTool { name: "Rooms.free".into(), params: vec![p("hours", Ty::Int)], doc: String::new(), std_module: None },
            CatalogTool {
                name: "Rooms.reserve".into(),
                params: vec![p("room_id", Ty::Str), p("note", Ty::Optional(Box::new(Ty::Str)))],
                doc: String::new(),
                std_module: None,
            },
            CatalogTool { name: "Mail.send".into(), params: vec![p("to", Ty::Str), p("body", Ty::Str)], doc: String::new(), std_module: None },
        ]
    }

    #[test]
    fn the_fill_schema_fixes_the_tools_and_leaves_the_values() {
        let cat = rooms();
        let tools: Vec<&CatalogTool> = cat.iter().collect();
        let s = fill_schema(&tools, &Hints::default());
        let steps = &s["properties"]["steps"]["prefixItems"];
        assert_eq!(s["properties"]["steps"]["minItems"], json!(3));
        assert_eq!(steps[0]["properties"]["tool"]["const"], json!("Rooms.free"));
        // Numbers are digits (no earlier step to refer to in step 1).
        assert_eq!(steps[0]["properties"]["args"]["prefixItems"][0]["properties"]["value"]["pattern"], json!("^-?[0-9]{1,9}$"));
        // The room id comes from the earlier Rooms step, wired by the lowering; the optional note is left out.
        assert_eq!(steps[1]["properties"]["args"]["maxItems"], json!(0));
        // The mail body is composed from earlier results; the address is the model's.
        let mail = &steps[2]["properties"]["args"];
        assert_eq!(mail["maxItems"], json!(1));
        assert_eq!(mail["prefixItems"][0]["properties"]["name"]["const"], json!("to"));
        // A mail recipient is an address, not a word of the tool's doc.
        assert_eq!(mail["prefixItems"][0]["properties"]["value"]["pattern"], json!(ADDRESS_PATTERN));
    }

    #[test]
    fn a_sql_argument_is_held_to_the_hinted_pattern_and_the_prompt_names_the_tables() {
        let q = CatalogTool {
            name: "sql.query".into(),
            params: vec![
                ToolParam { name: "sql".into(), ty: Ty::Str, has_default: false },
                ToolParam { name: "params".into(), ty: Ty::Optional(Box::new(Ty::List(Box::new(Ty::Json)))), has_default: false },
            ],
            doc: "Runs a read query.".into(),
            std_module: Some("sql".into()),
        };
        let hints = Hints { sql_pattern: Some("^select [*] from sales$".into()), notes: vec!["Database tables: sales".into()] };
        let s = fill_schema(&[&q], &hints);
        let args = &s["properties"]["steps"]["prefixItems"][0]["properties"]["args"];
        assert_eq!(args["maxItems"], json!(1));
        assert_eq!(args["prefixItems"][0]["properties"]["value"]["pattern"], json!("^select [*] from sales$"));
        assert!(prompt("Email the sales", &[&q], &hints).contains("Database tables: sales\nRequest: Email the sales"));
        // Without hints the SQL is free text.
        let free = fill_schema(&[&q], &Hints::default());
        assert!(free["properties"]["steps"]["prefixItems"][0]["properties"]["args"]["prefixItems"][0]["properties"]["value"]["pattern"].is_null());
    }

    proptest::proptest! {
        /// Every address the pattern lets a model write is one the mail
        /// tool accepts (the runtime parses `to` with lettre).
        #[test]
        fn every_address_the_pattern_allows_is_one(a in proptest::string::string_regex(ADDRESS_PATTERN.trim_start_matches('^').trim_end_matches('$')).unwrap()) {
            proptest::prop_assert!(a.parse::<lettre::message::Mailbox>().is_ok(), "{a}");
        }
    }

    #[cfg(feature = "local-model")]
    #[test]
    fn the_fill_schema_becomes_a_grammar() {
        let cat = rooms();
        let tools: Vec<&CatalogTool> = cat.iter().collect();
        let grammar = llama_cpp_2::json_schema_to_grammar(&fill_schema(&tools, &Hints::default()).to_string());
        assert!(grammar.is_ok_and(|g| g.contains("Rooms.free")));
    }
}
