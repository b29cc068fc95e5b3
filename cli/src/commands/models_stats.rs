//! `aosc models FILE --stats`: the measured statistics of each model of a
//! program (issue 16), from the store's `model_stats` table: calls, errors,
//! mean latency, error rate, verification pass rate and cost per call.

use aos_compiler::ir::Program;
use aos_runtime::stats::{model_key, ModelStats};
use serde_json::Value;

/// The statistics key of a model as `aosc models` describes it (`runs_on`
/// is its provider, or `sim`).
pub fn key(m: &aos_compiler::ir::Model, described: &Value) -> String {
    model_key(described["runs_on"].as_str().unwrap_or("sim"), &m.model_id, m.base_url.as_deref())
}

/// Adds `"stats"` (or null when never measured) to each described model.
pub fn attach(program: &Program, list: &mut [Value], stats: &[ModelStats]) {
    for (m, v) in program.models.values().zip(list.iter_mut()) {
        let k = key(m, v);
        let figures = stats.iter().find(|s| s.key == k).map_or(Value::Null, ModelStats::to_json);
        if let Some(o) = v.as_object_mut() {
            o.insert("stats".into(), figures);
        }
    }
}

fn opt(v: &Value, f: impl Fn(f64) -> String) -> String {
    v.as_f64().map_or("-".to_string(), f)
}

/// MODEL / RUNS ON / CALLS / ERRORS / LATENCY / ERROR RATE / PASS RATE /
/// COST/CALL, from the `stats` that [`attach`] added.
pub fn table(program: &Program, list: &[Value]) -> String {
    use super::table::{self, Align::{Left, Right}};
    let rows: Vec<Vec<String>> = program
        .models
        .values()
        .zip(list)
        .map(|(m, v)| {
            let s = &v["stats"];
            vec![
                m.name.clone(),
                v["runs_on"].as_str().unwrap_or("-").to_string(),
                s["calls"].as_u64().map_or("0".to_string(), |n| n.to_string()),
                s["errors"].as_u64().map_or("0".to_string(), |n| n.to_string()),
                opt(&s["mean_latency_ms"], |x| format!("{x:.0}ms")),
                opt(&s["error_rate"], |x| format!("{:.1}%", x * 100.0)),
                opt(&s["verification_pass_rate"], |x| format!("{:.1}%", x * 100.0)),
                opt(&s["cost_per_call_usd"], |x| format!("${x:.6}")),
            ]
        })
        .collect();
    table::render(
        &[
            ("MODEL", Left),
            ("RUNS ON", Left),
            ("CALLS", Right),
            ("ERRORS", Right),
            ("LATENCY", Right),
            ("ERROR RATE", Right),
            ("PASS RATE", Right),
            ("COST/CALL", Right),
        ],
        &rows,
    )
}
