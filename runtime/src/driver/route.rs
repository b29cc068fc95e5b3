//! `route: measured(…)`: the step's role chain reordered by the models'
//! measured statistics (read from the store: I/O of the driver) before the
//! router asks it. The choice is an audited `route` decision (journaled as
//! `llm.routed`) with the written order, the order used and the figures.
//! With probability ε per call ([`stats::Explore`]) an unmeasured or stale
//! model is asked first instead (`explored` in the decision), so that a
//! model behind a better one is measured at all. The chain's models are
//! the same, so the checker's bound (the worst model's) still holds.

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
    let key_of = |name: &str| program.models.get(name).map(|m| stats::model_key(fabric.runs_on(m), &m.model_id, m.base_url.as_deref()));
    let (mut order, figures) = stats::order(&chain, route, &measured, key_of);
    // Bounded exploration: now and then a model the order would not ask
    // first, and that has too few (or stale) figures, is asked first.
    let explore = fabric.explore;
    let call = format!("{}#{}", a.call_key(), a.attempt);
    let explored = stats::explore_candidate(&chain, &order, route, &measured, key_of, crate::ids::now_ms()).filter(|_| explore.explores(&call));
    if let Some(name) = &explored {
        order.retain(|n| n != name);
        order.insert(0, name.clone());
    }
    let figures: Map<String, Value> = figures.into_iter().map(|(n, f)| (n, json!(f))).collect();
    a.decisions.push(Decision::new(
        "route",
        Some(&a.step.name),
        json!({"role": role, "route": route.as_str(), "written": chain, "order": order, "figures": figures,
               "min_samples": stats::MIN_SAMPLES, "explored": explored, "epsilon": explore.epsilon}),
    ));
    if order == chain {
        return None;
    }
    let mut p = (*program).clone();
    p.roles.insert(role.to_string(), order);
    Some(p)
}
