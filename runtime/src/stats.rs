//! Measured statistics of models from real calls (issue 16): what the
//! driver records after each LLM call (latency, errors, verification,
//! cost), and the figures read back for `route: measured(…)` and `aosc
//! models --stats`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::Decision;

/// One model's outcome in one call, read from the router's decisions.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// `answered_by|model_id|base_url` (see [`model_key`]).
    pub key: String,
    /// An answer (true) or a failure the chain moved on from (false).
    pub ok: bool,
    pub latency_ms: u64,
    pub cost_usd: f64,
    /// For an answer that was verified: whether the verification accepted it.
    pub verified: Option<bool>,
}

/// The identity statistics are kept under: who answered (the provider, or
/// `sim` for a model run on the simulator), the model id and the endpoint.
pub fn model_key(answered_by: &str, model_id: &str, base_url: Option<&str>) -> String {
    format!("{answered_by}|{model_id}|{}", base_url.unwrap_or(""))
}

fn key_of(d: &Value) -> Option<String> {
    let by = d.get("answered_by")?.as_str()?;
    let id = d.get("model_id")?.as_str()?;
    Some(model_key(by, id, d.get("base_url").and_then(Value::as_str)))
}

/// The samples of one LLM call: an answer per `model` decision (with the
/// verdict of the `verify` decision that follows it), a failure per
/// `model_failed` decision. Verifications' own answers count as answers of
/// the verifier's model.
pub fn samples(decisions: &[Decision]) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    let mut last_answer: Option<usize> = None;
    for d in decisions {
        match d.kind.as_str() {
            "model" => {
                let Some(key) = key_of(&d.data) else { continue };
                out.push(Sample {
                    key,
                    ok: true,
                    latency_ms: d.data.get("latency_ms").and_then(Value::as_u64).unwrap_or(0),
                    cost_usd: d.data.pointer("/usage/cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
                    verified: None,
                });
                if d.data.get("purpose").and_then(Value::as_str) == Some("answer") {
                    last_answer = Some(out.len() - 1);
                }
            }
            "model_failed" => {
                let Some(key) = key_of(&d.data) else { continue };
                out.push(Sample { key, ok: false, latency_ms: 0, cost_usd: 0.0, verified: None });
            }
            "verify" => {
                if let Some(s) = last_answer.and_then(|i| out.get_mut(i)) {
                    s.verified = d.data.get("accepted").and_then(Value::as_bool);
                }
            }
            _ => {}
        }
    }
    out
}

/// A model's running sums, as the store keeps them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    pub key: String,
    pub calls: u64,
    pub errors: u64,
    pub latency_ms_total: u64,
    pub cost_usd_total: f64,
    pub verified: u64,
    pub verified_ok: u64,
    pub updated_ms: u64,
}

impl ModelStats {
    /// Calls that answered.
    pub fn answers(&self) -> u64 {
        self.calls.saturating_sub(self.errors)
    }

    /// Mean latency of an answer, in ms.
    pub fn mean_latency_ms(&self) -> Option<f64> {
        (self.answers() > 0).then(|| self.latency_ms_total as f64 / self.answers() as f64)
    }

    /// Failures per call.
    pub fn error_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.errors as f64 / self.calls as f64)
    }

    /// Verified answers the verifier accepted.
    pub fn pass_rate(&self) -> Option<f64> {
        (self.verified > 0).then(|| self.verified_ok as f64 / self.verified as f64)
    }

    /// Mean cost of an answer, in USD.
    pub fn cost_per_call(&self) -> Option<f64> {
        (self.answers() > 0).then(|| self.cost_usd_total / self.answers() as f64)
    }

    /// The figures as `aosc models --stats --json` prints them.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "calls": self.calls, "errors": self.errors, "mean_latency_ms": self.mean_latency_ms(),
            "error_rate": self.error_rate(), "verification_pass_rate": self.pass_rate(),
            "verified": self.verified, "cost_per_call_usd": self.cost_per_call(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn samples_follow_the_routers_decisions() {
        let d = |kind: &str, data: Value| Decision::new(kind, Some("s"), data);
        let ds = vec![
            d("model_failed", json!({"model": "a", "answered_by": "openai", "model_id": "gpt-4o", "base_url": null})),
            d("model", json!({"model": "b", "answered_by": "sim", "model_id": "echo", "purpose": "answer", "latency_ms": 12,
                             "usage": {"cost_usd": 0.5}})),
            d("model", json!({"model": "v", "answered_by": "sim", "model_id": "judge", "purpose": "verify", "latency_ms": 3,
                             "usage": {"cost_usd": 0.1}})),
            d("verify", json!({"accepted": false})),
        ];
        let s = samples(&ds);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].key.as_str(), s[0].ok), ("openai|gpt-4o|", false));
        assert_eq!((s[1].key.as_str(), s[1].latency_ms, s[1].verified), ("sim|echo|", 12, Some(false)));
        assert_eq!((s[2].key.as_str(), s[2].verified), ("sim|judge|", None));
    }

    #[test]
    fn figures_are_means_of_answers() {
        let m = ModelStats { calls: 4, errors: 1, latency_ms_total: 300, cost_usd_total: 0.3, verified: 2, verified_ok: 1, ..Default::default() };
        assert_eq!(m.mean_latency_ms(), Some(100.0));
        assert_eq!(m.error_rate(), Some(0.25));
        assert_eq!(m.pass_rate(), Some(0.5));
        assert!((m.cost_per_call().unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(ModelStats::default().mean_latency_ms(), None);
    }
}

/// Samples a model needs before its figures reorder a chain.
pub const MIN_SAMPLES: u64 = 3;

/// The figure `route` orders by (lower first), when the model has enough
/// samples for it.
pub fn figure(s: &ModelStats, route: aos_compiler::ir::Route) -> Option<f64> {
    use aos_compiler::ir::Route;
    match route {
        Route::Latency if s.answers() >= MIN_SAMPLES => s.mean_latency_ms(),
        Route::Cost if s.answers() >= MIN_SAMPLES => s.cost_per_call(),
        // Higher pass rate first; then fewer errors.
        Route::Quality if s.verified >= MIN_SAMPLES => s.pass_rate().map(|p| -p + s.error_rate().unwrap_or(0.0) * 1e-6),
        _ => None,
    }
}

/// The chain in the order `route` gives: the models with enough samples are
/// sorted by their figure among the places they hold in the written order
/// (ties keep the written order); the others keep their places. `key_of`
/// gives a model's statistics key. Returns the order and each model's
/// figure.
pub fn order(
    chain: &[String],
    route: aos_compiler::ir::Route,
    stats: &[ModelStats],
    key_of: impl Fn(&str) -> Option<String>,
) -> (Vec<String>, Vec<(String, Option<f64>)>) {
    let figures: Vec<(String, Option<f64>)> = chain
        .iter()
        .map(|name| {
            let f = key_of(name).and_then(|k| stats.iter().find(|s| s.key == k)).and_then(|s| figure(s, route));
            (name.clone(), f)
        })
        .collect();
    let slots: Vec<usize> = figures.iter().enumerate().filter(|(_, (_, f))| f.is_some()).map(|(i, _)| i).collect();
    let mut measured: Vec<(usize, f64)> = figures.iter().enumerate().filter_map(|(i, (_, f))| f.map(|f| (i, f))).collect();
    measured.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<String> = chain.to_vec();
    for (slot, (from, _)) in slots.iter().zip(&measured) {
        if let (Some(o), Some(name)) = (out.get_mut(*slot), chain.get(*from)) {
            *o = name.clone();
        }
    }
    (out, figures)
}

/// Figures older than this are stale: the model is explored again.
pub const STALE_MS: u64 = 24 * 3600 * 1000;

/// Bounded exploration of a `route: measured(…)` chain: with probability
/// `epsilon` per call, a model with too few samples (or stale figures)
/// that the order would not ask first is asked first, so that a model
/// behind a good one gets measured at all. The draw is a hash of `seed`
/// and the call (its key and attempt), so it is deterministic for a given
/// call and seed; across calls it is uniform.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Explore {
    pub epsilon: f64,
    pub seed: u64,
}

impl Default for Explore {
    fn default() -> Self {
        Explore { epsilon: 0.05, seed: 0 }
    }
}

impl Explore {
    /// Never explores (`aosc test`, tests of the measured order).
    pub fn off() -> Explore {
        Explore { epsilon: 0.0, seed: 0 }
    }

    /// The call's draw in [0, 1).
    pub fn draw(&self, call: &str) -> f64 {
        use sha2::{Digest, Sha256};
        let h = Sha256::new().chain_update(self.seed.to_le_bytes()).chain_update(call.as_bytes()).finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(h.get(..8).unwrap_or(&[0; 8]));
        (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether `call` explores.
    pub fn explores(&self, call: &str) -> bool {
        self.epsilon > 0.0 && self.draw(call) < self.epsilon
    }
}

/// The model exploration would ask first: the first, in the written order,
/// of the models that are not first in `order` and have too few samples
/// for `route` or figures older than [`STALE_MS`] at `now_ms`.
pub fn explore_candidate(
    chain: &[String],
    order: &[String],
    route: aos_compiler::ir::Route,
    stats: &[ModelStats],
    key_of: impl Fn(&str) -> Option<String>,
    now_ms: u64,
) -> Option<String> {
    let first = order.first()?;
    chain
        .iter()
        .filter(|name| *name != first)
        .find(|name| match key_of(name).and_then(|k| stats.iter().find(|s| s.key == k)) {
            None => true,
            Some(s) => figure(s, route).is_none() || s.updated_ms.saturating_add(STALE_MS) < now_ms,
        })
        .cloned()
}

#[cfg(test)]
mod explore_tests {
    use super::*;
    use aos_compiler::ir::Route;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_candidate_is_the_first_unmeasured_or_stale_model_not_asked_first() {
        let chain = names(&["a", "b", "c"]);
        let st = |key: &str, at: u64| ModelStats { key: key.into(), calls: 5, latency_ms_total: 50, updated_ms: at, ..Default::default() };
        let now = 10 * STALE_MS;
        let key = |n: &str| Some(n.to_string());
        // Nothing measured: `a` is first anyway, `b` is the candidate.
        assert_eq!(explore_candidate(&chain, &chain, Route::Latency, &[], key, now).as_deref(), Some("b"));
        // `a` and `c` measured and fresh: `b` (never measured).
        let fresh = vec![st("a", now), st("c", now)];
        assert_eq!(explore_candidate(&chain, &names(&["c", "b", "a"]), Route::Latency, &fresh, key, now).as_deref(), Some("b"));
        // All measured and fresh: none; `c` stale: `c`.
        let all = vec![st("a", now), st("b", now), st("c", now)];
        assert_eq!(explore_candidate(&chain, &chain, Route::Latency, &all, key, now), None);
        let stale = vec![st("a", now), st("b", now), st("c", now - STALE_MS - 1)];
        assert_eq!(explore_candidate(&chain, &chain, Route::Latency, &stale, key, now).as_deref(), Some("c"));
        // For quality, answers without verdicts are too few samples.
        assert_eq!(explore_candidate(&chain, &chain, Route::Quality, &all, key, now).as_deref(), Some("b"));
    }

    #[test]
    fn the_draw_is_deterministic_per_seed_and_explores_about_epsilon_of_calls() {
        let e = Explore { epsilon: 0.1, seed: 7 };
        assert_eq!(e.draw("run/s#1"), e.draw("run/s#1"));
        assert_ne!(e.draw("run/s#1"), Explore { seed: 8, ..e }.draw("run/s#1"));
        let n = 20_000;
        let hits = (0..n).filter(|i| e.explores(&format!("run{i}/s#1"))).count();
        assert!((hits as f64 / n as f64 - 0.1).abs() < 0.01, "{hits} of {n}");
        assert!(!(0..1000).any(|i| Explore::off().explores(&format!("r{i}"))));
        assert!((0..1000).all(|i| Explore { epsilon: 1.0, seed: 0 }.explores(&format!("r{i}"))));
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use aos_compiler::ir::Route;

    fn st(key: &str, answers: u64, latency_total: u64) -> ModelStats {
        ModelStats { key: key.into(), calls: answers, latency_ms_total: latency_total, ..Default::default() }
    }

    #[test]
    fn measured_models_are_sorted_in_their_places_and_the_rest_stay() {
        let chain: Vec<String> = ["slow", "new", "fast"].iter().map(|s| s.to_string()).collect();
        let stats = vec![st("slow", 5, 5000), st("fast", 5, 50), st("new", 1, 1)];
        let (o, f) = order(&chain, Route::Latency, &stats, |n| Some(n.to_string()));
        assert_eq!(o, vec!["fast", "new", "slow"]);
        assert_eq!(f[1], ("new".to_string(), None), "too few samples");
        // Ties keep the written order; nothing measured keeps everything.
        let even = vec![st("slow", 5, 500), st("fast", 5, 500)];
        assert_eq!(order(&chain, Route::Latency, &even, |n| Some(n.to_string())).0, chain);
        assert_eq!(order(&chain, Route::Cost, &[], |n| Some(n.to_string())).0, chain);
    }
}
