//! Workflow calls: the sub-run is created (once) and executed; its pause
//! at a gate pauses this attempt.

use std::collections::BTreeMap;

use aos_compiler::ir::Expr;

use super::attempt::{Attempt, CallError, Reply};
use crate::events::{RunStatus, Usage};
use crate::store::BoxFuture;

/// Boxed as a `Send` future: the sub-run's driver runs this module again,
/// so its type cannot be inferred through the recursion.
pub(super) fn call<'a, 'b>(a: &'a mut Attempt<'b>, workflow: &'a str, args: &'a BTreeMap<String, Expr>) -> BoxFuture<'a, Result<Reply, CallError>> {
    Box::pin(call_inner(a, workflow, args))
}

/// The run id of the sub-run of a workflow call: `RUN.STEP`, or
/// `RUN.STEP.ITEM` for an item of a fan-out.
pub(crate) fn sub_run_id(run_id: &str, step: &str, item: crate::core::UnitKey) -> String {
    match item {
        Some(it) => format!("{run_id}.{step}.{it}"),
        None => format!("{run_id}.{step}"),
    }
}

async fn call_inner(a: &mut Attempt<'_>, workflow: &str, args: &BTreeMap<String, Expr>) -> Result<Reply, CallError> {
    let (sh, step) = (a.sh, a.step);
    let mut inputs = BTreeMap::new();
    for (k, e) in args {
        inputs.insert(k.clone(), a.eval(e)?);
    }
    let run_id = &sh.ctx.run_id;
    let child_id = sub_run_id(run_id, &step.name, a.item);
    let failed = |error: String| CallError::Workflow { workflow: workflow.to_string(), run: child_id.clone(), error };
    let report = Box::pin(sh.rt.run_child(&sh.ctx.program, workflow, &child_id, run_id, inputs, sh.ctx.trust, sh.opts.clone()))
        .await
        .map_err(|e| CallError::Runtime(Box::new(e)))?;
    a.usage = Usage { cost_usd: report.cost_usd, ..Usage::default() };
    match report.status {
        RunStatus::Succeeded => Ok(Reply::Value(report.output.unwrap_or(serde_json::Value::Null))),
        RunStatus::WaitingApproval => Ok(Reply::Paused(format!(
            "sub-run `{child_id}` of step `{}` waits: {}; then `aosc resume {run_id}`",
            step.name,
            report.error.unwrap_or_default()
        ))),
        _ => Err(failed(report.error.unwrap_or_default())),
    }
}
