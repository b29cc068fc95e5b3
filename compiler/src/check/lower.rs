//! Lowering a checked program to the IR the runtime runs. Only called when
//! no pass reported an error, so every name resolves; what cannot be read
//! (a malformed attribute that slipped through) takes its default.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::ast::{self, BinaryOp, ExprKind, StrPart, UnaryOp};
use crate::ir::{self, Effect, Risk};

use super::agent;
use super::attrs::{StepAttrs, ToolAttrs, WorkflowAttrs};
use super::cache;
use super::cost::{self, CostReport};
use super::env::Env;
use super::graph::StepGraph;
use super::policy::PolicyReport;
use super::risk;
use super::ty::{self, Ty};
use super::types::TypeInfo;

/// What the earlier passes computed, handed to lowering.
pub struct Inputs<'p> {
    pub types: &'p TypeInfo,
    pub graphs: &'p BTreeMap<String, StepGraph>,
    pub models: &'p BTreeMap<String, ir::Model>,
    pub roles: &'p BTreeMap<String, Vec<String>>,
    pub cost: &'p CostReport,
    pub policy: &'p PolicyReport,
}

/// Builds the IR of a checked program.
pub fn program(env: &Env, inputs: &Inputs) -> ir::Program {
    let mut used_tools: BTreeSet<String> = BTreeSet::new();
    let mut workflows = BTreeMap::new();
    for (name, wf) in &env.workflows {
        workflows.insert(name.clone(), workflow(env, inputs, name, wf.decl, &mut used_tools));
    }
    let tools = used_tools
        .into_iter()
        .filter_map(|name| env.tools.get(&name).map(|t| (name.clone(), tool(env, &name, t.decl, t.std))))
        .collect();
    ir::Program {
        version: ir::IR_VERSION,
        models: inputs.models.clone(),
        roles: inputs.roles.clone(),
        tools,
        rules: inputs.policy.rules.clone(),
        workflows,
    }
}

fn tool(env: &Env, name: &str, t: &ast::ToolDecl, std: bool) -> ir::Tool {
    let attrs = Env::entries(&t.attrs);
    let implementation = if let Some(a) = Env::attr(attrs, "http") {
        let text = plain_string(&a.value).unwrap_or_default();
        let (method, url) = text.split_once(' ').unwrap_or(("GET", text.as_str()));
        ir::ToolImpl::Http { method: method.trim().to_string(), url: url.trim().to_string() }
    } else if let Some(a) = Env::attr(attrs, "exec") {
        let argv = match &a.value.kind {
            ExprKind::List(items) => items.iter().filter_map(plain_string).collect(),
            _ => Vec::new(),
        };
        ir::ToolImpl::Exec { argv }
    } else {
        let _ = std;
        ir::ToolImpl::Builtin
    };
    ir::Tool {
        name: name.to_string(),
        params: params(env, &t.params),
        ret: t.ret.as_ref().map_or(ir::Type::Json, |r| ty::resolve(env, r).to_ir()),
        risk: Env::attr(attrs, "risk").and_then(|a| name_of(&a.value)).and_then(risk::parse_risk).unwrap_or(Risk::Low),
        effect: Env::attr(attrs, "effect").and_then(|a| name_of(&a.value)).and_then(risk::parse_effect).unwrap_or(Effect::Read),
        max_output_tokens: ToolAttrs::read(attrs).max_output_tokens.unwrap_or(cost::DEFAULT_MAX_OUTPUT_TOKENS),
        timeout_ms: ToolAttrs::read(attrs).timeout_ms,
        implementation,
    }
}

fn params(env: &Env, ps: &[ast::Param]) -> Vec<ir::Param> {
    let empty = BTreeSet::new();
    let scope = Scope { params: &empty, steps: &empty, vars: Vec::new() };
    ps.iter()
        .map(|p| ir::Param {
            name: p.name.name.clone(),
            ty: ty::resolve(env, &p.ty).to_ir(),
            default: p.default.as_ref().map(|d| expr(env, &scope, d)),
        })
        .collect()
}

fn workflow(env: &Env, inputs: &Inputs, name: &str, wf: &ast::Workflow, used_tools: &mut BTreeSet<String>) -> ir::Workflow {
    let attrs = &wf.attrs;
    let param_names: BTreeSet<String> = wf.params.iter().map(|p| p.name.name.clone()).collect();
    let step_names: BTreeSet<String> = wf.steps.iter().map(|s| s.name.name.clone()).collect();
    let scope = Scope { params: &param_names, steps: &step_names, vars: Vec::new() };
    let graph = inputs.graphs.get(name);
    let by_name: BTreeMap<&str, &ast::Step> = wf.steps.iter().rev().map(|s| (s.name.name.as_str(), s)).collect();
    let order: Vec<&ast::Step> = match graph {
        Some(g) if !g.order.is_empty() => g.order.iter().filter_map(|n| by_name.get(n.as_str()).copied()).collect(),
        _ => wf.steps.iter().collect(),
    };
    let wf_cost = inputs.cost.workflows.get(name);
    let wf_attrs = WorkflowAttrs::read(attrs);
    let steps = order
        .into_iter()
        .map(|s| step(env, inputs, name, s, &scope, graph, used_tools))
        .collect();
    ir::Workflow {
        name: name.to_string(),
        params: params(env, &wf.params),
        ret: inputs.types.returns.get(name).cloned().flatten().map(|t| t.to_ir()),
        ret_expr: wf.ret_expr.as_ref().map(|(e, _)| expr(env, &scope, e)),
        intent: Env::attr(attrs, "intent").and_then(|a| plain_string(&a.value)),
        budget_usd: Env::attr(attrs, "budget").and_then(|a| money_of(&a.value)),
        risk: Env::attr(attrs, "risk").and_then(|a| name_of(&a.value)).and_then(risk::parse_risk).unwrap_or(Risk::Medium),
        max_concurrency: wf_attrs.max_concurrency,
        max_param_tokens: wf_attrs.max_param_tokens.unwrap_or(cost::DEFAULT_MAX_PARAM_TOKENS),
        trigger: Env::attr(attrs, "trigger").and_then(|a| trigger(&a.value)),
        priority: wf_attrs.priority.unwrap_or(0),
        steps,
        cost_bound_usd: wf_cost.and_then(|c| c.total_usd).unwrap_or(0.0),
    }
}

fn step(
    env: &Env,
    inputs: &Inputs,
    wf: &str,
    s: &ast::Step,
    scope: &Scope,
    graph: Option<&StepGraph>,
    used_tools: &mut BTreeSet<String>,
) -> ir::Step {
    let attrs = Env::entries(&s.attrs);
    let typed_attrs = StepAttrs::read(attrs);
    let key = (wf.to_string(), s.name.name.clone());
    let value_ty = inputs.types.steps.get(wf).and_then(|steps| steps.get(&s.name.name)).cloned().unwrap_or(Ty::Json);
    let mut body_scope = scope.clone();
    let (call_expr, fan_out) = match &s.call.kind {
        ExprKind::For { var, iter, body } => {
            body_scope.vars.push(var.name.clone());
            let fan = ir::FanOut {
                var: var.name.clone(),
                items: expr(env, scope, iter),
                max_items: typed_attrs.max_items,
                concurrency: typed_attrs.concurrency,
            };
            (&**body, Some(fan))
        }
        _ => (&s.call, None),
    };
    let mut call = lower_call(env, &body_scope, call_expr, used_tools);
    if let ir::Call::Llm { agent: slot @ None, .. } = &mut call
        && matches!(call_expr.kind, ExprKind::Llm { agent: true, .. })
    {
        *slot = Some(lower_agent(env, s, used_tools));
    }
    let kind = match &call {
        ir::Call::Tool { .. } => ir::StepKind::Tool,
        ir::Call::Llm { .. } => ir::StepKind::Llm,
        ir::Call::Workflow { .. } => ir::StepKind::Workflow,
    };
    // The schema one reply (or one fan-out item) must satisfy.
    let item_ty = match (&value_ty.unwrap_optional(), fan_out.is_some()) {
        (Ty::List(item), true) => (**item).clone(),
        (t, _) => (*t).clone(),
    };
    let schema = match kind {
        ir::StepKind::Llm if item_ty != Ty::String => Some(json_schema(&item_ty)),
        ir::StepKind::Tool if s.ty.is_some() => Some(json_schema(&item_ty)),
        _ => None,
    };
    let tool_bound = match &call {
        ir::Call::Tool { tool, .. } => env
            .tools
            .get(tool)
            .and_then(|t| ToolAttrs::read(Env::entries(&t.decl.attrs)).max_output_tokens),
        _ => None,
    };
    let governance = inputs.policy.steps.get(&key);
    let step_cache = cache::lower(env, attrs, &call);
    let step_route = match &call {
        ir::Call::Llm { role, .. } => super::route::of_role(env, role),
        _ => None,
    };
    let idempotency_key = Env::attr(attrs, "idempotency_key").map(|a| expr(env, scope, &a.value));
    let mut step = ir::Step {
        name: s.name.name.clone(),
        kind,
        ty: value_ty.to_ir(),
        schema,
        // Filled below from the step's type and expressions.
        typed: false,
        needs: Vec::new(),
        call,
        fan_out,
        deps: graph.and_then(|g| g.deps.get(&s.name.name)).cloned().unwrap_or_default(),
        when: Env::attr(attrs, "when").map(|a| expr(env, scope, &a.value)),
        retry: typed_attrs.retry,
        backoff: Env::attr(attrs, "backoff").and_then(|a| backoff(&a.value)),
        timeout_ms: typed_attrs.timeout_ms,
        approval: Env::attr(attrs, "approval").and_then(|a| plain_string(&a.value)),
        verify: Env::attr(attrs, "verify").and_then(|a| name_of(&a.value)).map(|role| ir::Verify {
            role: role.to_string(),
            min_confidence: Env::attr(attrs, "min_confidence").and_then(|a| float_of(&a.value)),
        }),
        max_tokens: typed_attrs.max_tokens.unwrap_or(cost::DEFAULT_MAX_TOKENS),
        max_reply_bytes: cost::reply_bytes(attrs),
        max_input_tokens: typed_attrs.max_input_tokens,
        max_output_tokens: typed_attrs
            .max_output_tokens
            .or(tool_bound)
            .unwrap_or(cost::DEFAULT_MAX_OUTPUT_TOKENS),
        risk: governance.map_or(Risk::Low, |g| g.risk),
        effect: governance.map_or(Effect::Pure, |g| g.effect),
        fallback: Env::attr(attrs, "fallback").map(|a| lower_call(env, scope, &a.value, used_tools)),
        idempotency_key,
        cache: step_cache,
        route: step_route,
        cost: inputs
            .cost
            .workflows
            .get(wf)
            .and_then(|c| c.steps.get(&s.name.name))
            .cloned()
            .unwrap_or_default(),
    };
    step.derive_facts();
    step
}

/// The agent of an `agent ROLE(…)` step: its tools as providers are told
/// of them (each also goes into the program's tools) and its bounds.
fn lower_agent(env: &Env, s: &ast::Step, used_tools: &mut BTreeSet<String>) -> ir::Agent {
    let tools = agent::definitions(env, s)
        .into_iter()
        .filter_map(|d| {
            let decl = env.tools.get(&d.tool)?;
            let t = tool(env, &d.tool, decl.decl, decl.std);
            used_tools.insert(d.tool.clone());
            Some(ir::AgentTool {
                wire_name: ir::AgentTool::wire_name_of(&d.tool),
                tool: d.tool,
                description: d.description,
                parameters: d.parameters,
                risk: t.risk,
                effect: t.effect,
            })
        })
        .collect();
    ir::Agent { tools, max_turns: agent::max_turns(s), max_tool_calls: agent::max_tool_calls(s) }
}

fn lower_call(env: &Env, scope: &Scope, call: &ast::Expr, used_tools: &mut BTreeSet<String>) -> ir::Call {
    match &call.kind {
        ExprKind::Llm { role, prompt, .. } => ir::Call::Llm { role: role.name.clone(), prompt: expr(env, scope, prompt), agent: None },
        ExprKind::Call { callee, args } => {
            let name = Env::tool_name(callee);
            let args: BTreeMap<String, ir::Expr> = args
                .iter()
                .filter_map(|a| a.name.as_ref().map(|n| (n.name.clone(), expr(env, scope, &a.value))))
                .collect();
            if callee.len() > 1 {
                used_tools.insert(name.clone());
                ir::Call::Tool { tool: name, args }
            } else {
                ir::Call::Workflow { workflow: name, args }
            }
        }
        // A fan-out inside a fallback, or broken input: nothing sensible
        // to run; checked programs do not get here.
        _ => ir::Call::Workflow { workflow: String::new(), args: BTreeMap::new() },
    }
}

/// The names visible in a workflow. The sets are borrowed so that the
/// per-step copy (which adds a fan-out variable) costs nothing: copying the
/// set of step names for every step made lowering quadratic.
#[derive(Clone)]
struct Scope<'n> {
    params: &'n BTreeSet<String>,
    steps: &'n BTreeSet<String>,
    vars: Vec<String>,
}

impl Scope<'_> {
    fn is_local(&self, name: &str) -> bool {
        self.vars.iter().any(|v| v == name) || self.params.contains(name) || self.steps.contains(name)
    }
}

/// The IR of an expression with its names resolved.
fn expr(env: &Env, scope: &Scope, e: &ast::Expr) -> ir::Expr {
    let lit = |value: Value| ir::Expr::Lit { value };
    match &e.kind {
        ExprKind::Int(n) => lit(json!(n)),
        ExprKind::Float(f) => lit(json!(f)),
        ExprKind::Bool(b) => lit(json!(b)),
        ExprKind::Null | ExprKind::Error | ExprKind::Llm { .. } | ExprKind::For { .. } | ExprKind::Block { .. } => lit(Value::Null),
        ExprKind::Duration(d) => lit(json!(d.as_millis())),
        ExprKind::Money(m) | ExprKind::Price(m) => lit(json!(m.dollars())),
        ExprKind::Str(s) => {
            if let Some(text) = plain_string(e) {
                return lit(Value::String(text));
            }
            let parts = s
                .parts
                .iter()
                .map(|p| match p {
                    StrPart::Text(t) => ir::InterpPart::Text { text: t.clone() },
                    StrPart::Interp(x) => ir::InterpPart::Expr { expr: expr(env, scope, x) },
                })
                .collect();
            ir::Expr::Interp { parts }
        }
        ExprKind::Name(id) => {
            let name = id.name.clone();
            if scope.vars.contains(&name) {
                ir::Expr::Var { name }
            } else if scope.params.contains(&name) {
                ir::Expr::Param { name }
            } else {
                ir::Expr::Step { name }
            }
        }
        ExprKind::Field(base, field) => {
            if let ExprKind::Name(id) = &base.kind
                && !scope.is_local(&id.name) && env.enums.contains_key(&id.name) {
                    return lit(Value::String(field.name.clone()));
                }
            ir::Expr::Field { of: Box::new(expr(env, scope, base)), field: field.name.clone() }
        }
        ExprKind::Index(a, b) => ir::Expr::Index { of: Box::new(expr(env, scope, a)), index: Box::new(expr(env, scope, b)) },
        ExprKind::List(items) => ir::Expr::List { items: items.iter().map(|i| expr(env, scope, i)).collect() },
        ExprKind::Record(fields) => {
            ir::Expr::Record { fields: fields.iter().map(|(n, v)| (n.name.clone(), expr(env, scope, v))).collect() }
        }
        ExprKind::Unary(UnaryOp::Not, a) => ir::Expr::Not { a: Box::new(expr(env, scope, a)) },
        ExprKind::Unary(UnaryOp::Neg, a) => ir::Expr::Neg { a: Box::new(expr(env, scope, a)) },
        ExprKind::Binary(op, a, b) => ir::Expr::Binary {
            op: bin_op(*op),
            a: Box::new(expr(env, scope, a)),
            b: Box::new(expr(env, scope, b)),
        },
        ExprKind::Call { callee, args } => {
            let name = Env::tool_name(callee);
            if name == "secret" {
                let secret = args.first().and_then(|a| plain_string(&a.value)).unwrap_or_default();
                return ir::Expr::Secret { name: secret };
            }
            ir::Expr::Builtin { name, args: args.iter().map(|a| expr(env, scope, &a.value)).collect() }
        }
    }
}

fn bin_op(op: BinaryOp) -> ir::BinOp {
    match op {
        BinaryOp::Eq => ir::BinOp::Eq,
        BinaryOp::Ne => ir::BinOp::Ne,
        BinaryOp::Lt => ir::BinOp::Lt,
        BinaryOp::Le => ir::BinOp::Le,
        BinaryOp::Gt => ir::BinOp::Gt,
        BinaryOp::Ge => ir::BinOp::Ge,
        BinaryOp::And => ir::BinOp::And,
        BinaryOp::Or => ir::BinOp::Or,
        BinaryOp::Coalesce => ir::BinOp::Coalesce,
    }
}

/// The JSON Schema a value of type `t` must validate against. Record fields
/// are all required (an optional one may be `null`), as strict structured
/// output modes of the providers expect.
pub fn json_schema(t: &Ty) -> Value {
    match t {
        Ty::String | Ty::Secret => json!({ "type": "string" }),
        Ty::Int | Ty::Duration => json!({ "type": "integer" }),
        Ty::Float | Ty::Money => json!({ "type": "number" }),
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::Null => json!({ "type": "null" }),
        Ty::Json | Ty::Unknown | Ty::Trigger | Ty::Backoff => json!({}),
        Ty::List(item) => json!({ "type": "array", "items": json_schema(item) }),
        Ty::Optional(inner) => json!({ "anyOf": [json_schema(inner), { "type": "null" }] }),
        Ty::Enum(_, variants) => json!({ "type": "string", "enum": variants }),
        Ty::Record(_, fields) => {
            let props: serde_json::Map<String, Value> = fields.iter().map(|(n, t)| (n.clone(), json_schema(t))).collect();
            let required: Vec<&String> = fields.iter().map(|(n, _)| n).collect();
            json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false })
        }
    }
}

fn plain_string(e: &ast::Expr) -> Option<String> {
    let ExprKind::Str(s) = &e.kind else { return None };
    let mut out = String::new();
    for p in &s.parts {
        match p {
            StrPart::Text(t) => out.push_str(t),
            StrPart::Interp(_) => return None,
        }
    }
    Some(out)
}

fn name_of(e: &ast::Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Name(id) => Some(id.name.as_str()),
        _ => None,
    }
}

fn float_of(e: &ast::Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Float(f) => Some(*f),
        #[allow(clippy::cast_precision_loss)]
        ExprKind::Int(n) => Some(*n as f64),
        _ => None,
    }
}

fn duration_of(e: &ast::Expr) -> Option<u64> {
    match &e.kind {
        ExprKind::Duration(d) => Some(d.as_millis()),
        _ => None,
    }
}

fn money_of(e: &ast::Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Money(m) => Some(m.dollars()),
        _ => None,
    }
}

fn constructor(e: &ast::Expr) -> Option<(&str, &ast::Expr)> {
    let ExprKind::Call { callee, args } = &e.kind else { return None };
    let ([name], [arg]) = (callee.as_slice(), args.as_slice()) else { return None };
    Some((name.name.as_str(), &arg.value))
}

fn trigger(e: &ast::Expr) -> Option<ir::Trigger> {
    let (name, arg) = constructor(e)?;
    let text = plain_string(arg)?;
    match name {
        "cron" => Some(ir::Trigger::Cron { expr: text }),
        "event" => Some(ir::Trigger::Event { name: text }),
        _ => None,
    }
}

fn backoff(e: &ast::Expr) -> Option<ir::Backoff> {
    let (name, arg) = constructor(e)?;
    let ms = duration_of(arg)?;
    match name {
        "fixed" => Some(ir::Backoff::Fixed { ms }),
        "exponential" => Some(ir::Backoff::Exponential { ms }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas() {
        let t = Ty::Record(
            Some("Verdict".into()),
            vec![
                ("tone".into(), Ty::Enum("Tone".into(), vec!["formal".into(), "casual".into()])),
                ("score".into(), Ty::Float.optional()),
                ("tags".into(), Ty::List(Box::new(Ty::String))),
            ],
        );
        assert_eq!(
            json_schema(&t),
            json!({
                "type": "object",
                "properties": {
                    "tone": { "type": "string", "enum": ["formal", "casual"] },
                    "score": { "anyOf": [{ "type": "number" }, { "type": "null" }] },
                    "tags": { "type": "array", "items": { "type": "string" } }
                },
                "required": ["tone", "score", "tags"],
                "additionalProperties": false
            })
        );
    }
}
