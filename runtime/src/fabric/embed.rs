//! Embeddings from the model fabric, for `memory.*`.
//!
//! A program chooses its embedding with the role `embedding` (a role like
//! any other: `role embedding = [small_embed]`, with `model small_embed =
//! openai("text-embedding-3-small") { input: $0.02/M, output: $0/M, context: 8191 }`).
//! Without that role, memory uses the built-in hashing embedding
//! ([`hashing`], named [`LOCAL_EMBEDDING`]). The role's chain is asked in
//! order, with transport retries as for chat calls; a `sim` model in the
//! chain *is* the hashing embedding, so `[small_embed, hashing]` (with
//! `model hashing = sim("local-trigram-256")`) falls back to it when the
//! provider fails, and `[small_embed]` alone fails the step instead.
//!
//! A provider model whose key is not set is an error, not the simulator as
//! for chat (unless `AOS_LLM=sim`): stored vectors outlive the call, and a
//! worker without the key would otherwise fill memory with vectors of
//! another embedding without anyone asking for it.

use std::time::{Duration, Instant};

use aos_compiler::ir::{Model, Program, Provider as ProviderKind};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{credential_var, forced_sim, wire, Fabric, FabricError, ProviderError};
use crate::audit::Decision;
use crate::events::Usage;

/// The role whose models embed memory entries and queries.
pub const ROLE: &str = "embedding";
/// Dimensions of the built-in embedding.
pub const DIMS: usize = 256;
/// The name of the built-in embedding (results and records say it).
pub const LOCAL_EMBEDDING: &str = "local-trigram-256";

/// The built-in embedding of a text: character trigrams of the lower-cased,
/// whitespace-normalised text, hashed into [`DIMS`] signed buckets and
/// L2-normalised. It needs no model and is deterministic.
pub fn hashing(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    let norm: String = text.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = format!(" {norm} ").chars().collect();
    for w in chars.windows(3) {
        let gram: String = w.iter().collect();
        let h = Sha256::digest(gram.as_bytes());
        let bucket = usize::from(u16::from_le_bytes([h[0], h[1]])) % DIMS;
        let sign = if h[2] & 1 == 0 { 1.0 } else { -1.0 };
        if let Some(slot) = v.get_mut(bucket) {
            *slot += sign;
        }
    }
    normalise(&mut v);
    v
}

/// Scales a vector to length 1 (a zero vector stays zero), so that a dot
/// product is the cosine whatever the provider returned.
pub fn normalise(v: &mut [f32]) {
    let len = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if len > 0.0 && len.is_finite() {
        v.iter_mut().for_each(|x| *x /= len);
    }
}

/// What a text is embedded for; providers that tune embeddings to the task
/// (Gemini's `taskType`) are told, the others ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// An entry being stored (`memory.remember`).
    Document,
    /// A query to rank entries by (`memory.recall`).
    Query,
}

/// A provider's answer to one embeddings request.
#[derive(Clone, Debug, Default)]
pub struct Vectors {
    /// One vector per text, in the order of the texts.
    pub vectors: Vec<Vec<f32>>,
    /// The input tokens the provider reported, when it reports them.
    pub input_tokens: Option<u64>,
}

/// Embeddings of a batch of texts, all of one embedding.
#[derive(Clone, Debug)]
pub struct Embeddings {
    /// The embedding's name: [`LOCAL_EMBEDDING`], or `PROVIDER/MODEL_ID`
    /// (`openai/text-embedding-3-small`). Vectors are only ever compared
    /// with vectors of the same name and dimension.
    pub embedding: String,
    /// The program's model that answered (`None`: no `embedding` role).
    pub model: Option<String>,
    pub dims: usize,
    /// L2-normalised, one per text.
    pub vectors: Vec<Vec<f32>>,
    pub usage: Usage,
}

impl Embeddings {
    /// The built-in embedding of `texts`.
    pub fn local(texts: &[String], model: Option<String>) -> Embeddings {
        Embeddings { embedding: LOCAL_EMBEDDING.to_string(), model, dims: DIMS, vectors: texts.iter().map(|t| hashing(t)).collect(), usage: Usage::default() }
    }
}

/// The embedding name of a provider's model.
pub fn name_of(model: &Model) -> String {
    format!("{}/{}", model.provider.as_str(), model.model_id.strip_prefix("models/").unwrap_or(&model.model_id))
}

/// Checks a provider's vectors: one per text, all of one non-zero length,
/// finite; then normalises them.
pub fn checked(provider: &str, mut v: Vectors, texts: usize) -> Result<Vectors, ProviderError> {
    if v.vectors.len() != texts {
        return Err(ProviderError::transport(format!("{provider}: malformed embeddings: {} vectors for {texts} texts", v.vectors.len())));
    }
    let dims = v.vectors.first().map_or(0, Vec::len);
    if texts > 0 && dims == 0 {
        return Err(ProviderError::transport(format!("{provider}: malformed embeddings: an empty vector")));
    }
    if v.vectors.iter().any(|x| x.len() != dims || x.iter().any(|f| !f.is_finite())) {
        return Err(ProviderError::transport(format!("{provider}: malformed embeddings: vectors of different lengths or non-finite values")));
    }
    v.vectors.iter_mut().for_each(|x| normalise(x));
    Ok(v)
}

/// A decision of a call made for `step` (`STEP` or `STEP#ITEM`): recorded
/// on the step, with the fan-out item in its data.
pub(crate) fn decision(kind: &str, step: &str, mut data: serde_json::Value) -> Decision {
    let (name, item) = match step.split_once('#') {
        Some((s, i)) => (s, Some(i)),
        None => (step, None),
    };
    if let (Some(i), Some(m)) = (item, data.as_object_mut()) {
        m.insert("item".into(), json!(i.parse::<u64>().map_or_else(|_| json!(i), |n| json!(n))));
    }
    Decision::new(kind, Some(name), data)
}

impl Fabric {
    /// Embeds `texts` with the program's `embedding` role (the hashing
    /// embedding when it has none), recording in `decisions` which
    /// embedding answered (`embedding`), and any retry, failure and fallback
    /// as the router does for chat calls.
    pub async fn embed(&self, program: &Program, texts: &[String], purpose: Purpose, decisions: &mut Vec<Decision>, step: &str) -> Result<Embeddings, FabricError> {
        let Some(chain) = program.roles.get(ROLE).filter(|c| !c.is_empty()) else {
            let e = Embeddings::local(texts, None);
            decisions.push(decision("embedding", step, json!({"embedding": e.embedding, "dims": e.dims, "model": null, "texts": texts.len()})));
            return Ok(e);
        };
        let mut last: Option<FabricError> = None;
        let mut prev: Option<&str> = None;
        for name in chain {
            let Some(model) = program.models.get(name) else {
                last = Some(FabricError::AllFailed { role: ROLE.into(), last: format!("model `{name}` is not in the program") });
                continue;
            };
            if let Some(from) = prev {
                let because = last.as_ref().map(ToString::to_string).unwrap_or_default();
                decisions.push(decision("fallback", step, json!({"role": ROLE, "from": from, "to": name, "because": because})));
            }
            prev = Some(name);
            match self.embed_with(model, texts, purpose, decisions, step).await {
                Ok(e) => return Ok(e),
                Err(e) => {
                    let retryable = matches!(e, FabricError::EmbeddingFailed { .. });
                    decisions.push(decision("model_failed", step, json!({"role": ROLE, "model": name, "error": e.to_string(), "retryable": retryable})));
                    last = Some(e);
                }
            }
        }
        Err(match last {
            // One model: its own error says why.
            Some(e) if chain.len() == 1 => e,
            Some(e) => FabricError::AllFailed { role: ROLE.into(), last: e.to_string() },
            None => FabricError::Unbound(ROLE.into()),
        })
    }

    /// One model of the chain: the hashing embedding for `sim` (or under
    /// `AOS_LLM=sim`, or in `aosc test`), else its provider with transport
    /// retries.
    async fn embed_with(&self, model: &Model, texts: &[String], purpose: Purpose, decisions: &mut Vec<Decision>, step: &str) -> Result<Embeddings, FabricError> {
        if model.provider == ProviderKind::Sim || forced_sim() || self.offline_embeddings {
            let e = Embeddings::local(texts, Some(model.name.clone()));
            decisions.push(decision(
                "embedding",
                step,
                json!({"role": ROLE, "embedding": e.embedding, "dims": e.dims, "model": model.name, "answered_by": "sim", "texts": texts.len()}),
            ));
            return Ok(e);
        }
        if model.provider == ProviderKind::Anthropic {
            return Err(FabricError::NoEmbeddings { model: model.name.clone(), provider: model.provider.as_str() });
        }
        let Some(provider) = self.providers.get(model.provider.as_str()) else {
            return Err(FabricError::EmbeddingKeyMissing { model: model.name.clone(), var: credential_var(model.provider).unwrap_or("the provider's key") });
        };
        let mut retry = 0u32;
        let last = loop {
            let asked = Instant::now();
            match provider.embed(model, texts, purpose).await.and_then(|v| checked(model.provider.as_str(), v, texts.len())) {
                Ok(v) => {
                    let input_tokens = v.input_tokens.unwrap_or_else(|| texts.iter().map(|t| crate::tokens::count_for(model, t)).sum());
                    let usage = Usage { input_tokens, cost_usd: input_tokens as f64 * model.input_per_m / 1e6, ..Usage::default() };
                    let e = Embeddings {
                        embedding: name_of(model),
                        model: Some(model.name.clone()),
                        dims: v.vectors.first().map_or(0, Vec::len),
                        vectors: v.vectors,
                        usage,
                    };
                    decisions.push(decision(
                        "embedding",
                        step,
                        json!({"role": ROLE, "embedding": e.embedding, "dims": e.dims, "model": model.name, "provider": model.provider.as_str(),
                               "model_id": model.model_id, "answered_by": model.provider.as_str(), "texts": texts.len(), "attempts": retry + 1,
                               "usage": e.usage, "tokens_reported": v.input_tokens.is_some(),
                               "latency_ms": u64::try_from(asked.elapsed().as_millis()).unwrap_or(u64::MAX)}),
                    ));
                    return Ok(e);
                }
                Err(ProviderError::Transport { message, retry_after }) => {
                    let too_long = retry_after.is_some_and(|d| d > self.retry.max_retry_after);
                    if retry >= self.retry.retries || too_long {
                        break message;
                    }
                    let wait = retry_after.unwrap_or_else(|| self.retry.backoff(retry));
                    decisions.push(decision(
                        "transport_retry",
                        step,
                        json!({"role": ROLE, "model": model.name, "retry": retry + 1, "of": self.retry.retries, "error": message,
                               "wait_ms": u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)}),
                    ));
                    tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
                    retry += 1;
                }
                Err(e) => break e.to_string(),
            }
        };
        Err(FabricError::EmbeddingFailed { model: model.name.clone(), attempts: retry + 1, last: wire::clip(&last, 600) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn provider_vectors_are_checked_and_normalised() {
        let ok = checked("x", Vectors { vectors: vec![vec![3.0, 4.0], vec![0.0, 2.0]], input_tokens: Some(5) }, 2).unwrap();
        assert_eq!(ok.vectors, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
        for bad in [vec![vec![1.0, 0.0]], vec![vec![1.0], vec![1.0, 0.0]], vec![vec![], vec![]], vec![vec![f32::NAN], vec![1.0]]] {
            let e = checked("x", Vectors { vectors: bad.clone(), input_tokens: None }, 2).unwrap_err();
            assert!(matches!(e, ProviderError::Transport { .. }), "{bad:?}: {e}");
        }
    }
}
