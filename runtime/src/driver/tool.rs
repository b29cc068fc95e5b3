//! Tool calls: arguments evaluated, an external effect deduplicated by its
//! idempotency key, the output bounded and checked against the step's
//! type (its validator compiled once per run).

use std::collections::BTreeMap;

use aos_compiler::ir::{Effect, Expr, Tool as ToolDecl, ToolImpl};
use serde_json::{json, Value};

use super::attempt::{Attempt, CallError};
use super::Shared;
use crate::audit::Decision;
use crate::tokens;
use crate::tools::{CallRecord, Models, Spent, ToolCtx};

pub(super) async fn call(a: &mut Attempt<'_>, tool: &str, args: &BTreeMap<String, Expr>) -> Result<Value, CallError> {
    let (sh, step, item) = (a.sh, a.step, a.item);
    let mut obj = serde_json::Map::new();
    for (k, e) in args {
        obj.insert(k.clone(), a.eval(e)?);
    }
    let key = match &step.idempotency_key {
        Some(e) => Some(crate::interp::render(&a.eval(e)?)),
        None => None,
    };
    let key = key.map(|k| match item {
        Some(it) => format!("{k}#{it}"),
        None => k,
    });
    if let (Some(k), Effect::External) = (&key, step.effect) {
        if let Some(v) = sh.rt.store.idempotent_output(k).await? {
            a.decisions.push(Decision::new("idempotency", Some(&step.name), json!({"key": k, "deduplicated": true})));
            return Ok(v);
        }
        a.idempotency = Some(k.clone());
    }
    // Only `read`/`pure` tools carry a cache (the checker's E0105).
    let cached = match a.cache.filter(|_| step.effect != Effect::External) {
        Some(c) => {
            let decl = sh.ctx.program.tools.get(tool);
            let key = crate::cache::tool_key(a.asker(c), tool, decl, &Value::Object(obj.clone()), step.max_output_tokens);
            if let Some(v) = a.cached(&key).await {
                return Ok(v);
            }
            Some((c, key))
        }
        None => None,
    };
    let step_name = match item {
        Some(it) => format!("{}#{it}", step.name),
        None => step.name.clone(),
    };
    let mut spent = Spent::default();
    let value = invoke(sh, tool, Value::Object(obj), key, step_name, step.max_output_tokens, &mut spent).await;
    a.usage.add(&spent.usage);
    a.decisions.append(&mut spent.decisions);
    let value = value?;
    match sh.schemas.get(a.index).and_then(Option::as_ref) {
        Some(Ok(validator)) => {
            let errors: Vec<String> = validator.iter_errors(&value).take(3).map(|e| e.to_string()).collect();
            if !errors.is_empty() {
                return Err(CallError::Nonconforming { step: step.name.clone(), errors: errors.join("; ") });
            }
        }
        Some(Err(e)) => return Err(CallError::Schema(e.clone())),
        None => {}
    }
    if let Some((c, key)) = cached {
        a.remember(c, &key, &value, None).await;
    }
    Ok(value)
}

/// Calls a tool with evaluated arguments (the call of a tool step, or one
/// tool call of an agent step) and bounds its output by `bound` tokens: a
/// longer text is truncated, a larger JSON value is an error. What the
/// tool spent on models (and decided) goes to `spent`, whether it succeeded
/// or not.
pub(super) async fn invoke(sh: &Shared, tool: &str, args: Value, key: Option<String>, step_name: String, bound: u64, spent: &mut Spent) -> Result<Value, CallError> {
    let decl = sh.ctx.program.tools.get(tool);
    let implemented = sh.rt.tools.get(tool).cloned();
    let ctx = ToolCtx {
        workspace: sh.workspace.clone(),
        idempotency_key: key,
        run_id: sh.ctx.run_id.clone(),
        step: step_name,
        models: Some(Models { fabric: sh.rt.fabric.clone(), program: sh.ctx.program.clone() }),
        record: CallRecord::default(),
    };
    let value = call_tool(sh, tool, decl, implemented, args, &ctx).await;
    *spent = ctx.record.take();
    let value = value?;
    Ok(match value {
        Value::String(s) if tokens::count(&s) > bound => Value::String(tokens::truncate(&s, bound).to_string()),
        Value::String(s) => Value::String(s),
        other => {
            let n = tokens::count(&other.to_string());
            if n > bound {
                return Err(CallError::OutputTooLong { tool: tool.to_string(), tokens: n, bound });
            }
            other
        }
    })
}

/// Dispatches a call to the tool's implementation.
async fn call_tool(
    sh: &Shared,
    tool: &str,
    decl: Option<&ToolDecl>,
    implemented: Option<std::sync::Arc<dyn crate::tools::Tool>>,
    args: Value,
    ctx: &ToolCtx,
) -> Result<Value, CallError> {
    match (decl, implemented) {
        (_, Some(t)) if sh.rt.tools.only_registered() => t.call(args, ctx).await,
        (_, None) if sh.rt.tools.only_registered() => return Err(CallError::ToolUnavailable(tool.to_string())),
        (Some(ToolDecl { implementation: ToolImpl::Builtin, .. }) | None, Some(t)) => t.call(args, ctx).await,
        (Some(ToolDecl { implementation: ToolImpl::Http { method, url }, .. }), _) => sh.rt.tools.call_http(tool, method, url, args).await,
        (Some(d @ ToolDecl { implementation: ToolImpl::Exec { argv }, .. }), _) => sh.rt.tools.exec_tool(d, argv).call(args, ctx).await,
        _ => return Err(CallError::ToolUnavailable(tool.to_string())),
    }
    .map_err(CallError::Tool)
}
