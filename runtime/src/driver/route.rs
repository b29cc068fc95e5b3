//! `route: measured(…)`: the step's role chain reordered by the models'
//! measured statistics (read from the store: I/O of the driver) before the
//! router asks it. The choice is an audited `route` decision (journaled as
//! `llm.routed`) with the written order, the order used and the figures.

use aos_compiler::ir::{Program, Route};
use serde_json::{json, Map, Value};

use super::attempt::Attempt;
use crate::audit::Decision;
use crate::stats;

/// The program with the role's chain in the measured order, when that
/// order differs from the written one.
pub(super) async fn reorder(a: &mut Attempt<'_>, role: &str, route: Route) -> Option<Program> {
    let program = a.sh.ctx.program.clone();
    let chain = program.roles.get(role)?.clone();
    if chain.len() < 2 {
        return None;
    }
    let measured = match a.sh.rt.store.model_stats().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "model statistics unavailable; the written order is used");
            return None;
        }
    };
    let fabric = a.sh.rt.fabric.clone();
    let (order, figures) = stats::order(&chain, route, &measured, |name| {
        program.models.get(name).map(|m| stats::model_key(fabric.runs_on(m), &m.model_id, m.base_url.as_deref()))
    });
    let figures: Map<String, Value> = figures.into_iter().map(|(n, f)| (n, json!(f))).collect();
    a.decisions.push(Decision::new(
        "route",
        Some(&a.step.name),
        json!({"role": role, "route": route.as_str(), "written": chain, "order": order, "figures": figures,
               "min_samples": stats::MIN_SAMPLES}),
    ));
    if order == chain {
        return None;
    }
    let mut p = (*program).clone();
    p.roles.insert(role.to_string(), order);
    Some(p)
}
