//! The embedded offline planner: a small GGUF model (SmolLM2-135M-Instruct
//! by default) run in process by llama.cpp through `llama-cpp-2`, on one
//! thread, its output held to the plan's JSON Schema by a grammar.
//! Built only with the `local-model` cargo feature.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use serde_json::Value;

/// Why the local model gave no plan.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("llama.cpp could not start: {0}")]
    Backend(String),
    #[error("cannot load the model `{path}`: {message}")]
    Load { path: String, message: String },
    #[error("the local model failed: {0}")]
    Generate(String),
}

/// Context window: the shortlist prompt plus the plan fits in it.
const N_CTX: u32 = 4096;
/// Tokens a plan may take.
const MAX_NEW_TOKENS: usize = 900;

pub struct LocalModel {
    backend: LlamaBackend,
    model: LlamaModel,
    pub path: PathBuf,
}

impl LocalModel {
    pub fn load(path: &Path) -> Result<LocalModel, LocalError> {
        let mut backend = LlamaBackend::init().map_err(|e| LocalError::Backend(e.to_string()))?;
        if std::env::var_os("AOS_PLANNER_LOG").is_none() {
            backend.void_logs();
        }
        let model = LlamaModel::load_from_file(&backend, path, &LlamaModelParams::default())
            .map_err(|e| LocalError::Load { path: path.display().to_string(), message: e.to_string() })?;
        Ok(LocalModel { backend, model, path: path.to_path_buf() })
    }

    /// One reply to `prompt` as the user message, constrained to `schema`.
    pub fn complete(&self, system: &str, prompt: &str, schema: &Value) -> Result<String, LocalError> {
        let gen_err = |e: &dyn std::fmt::Display| LocalError::Generate(e.to_string());
        let grammar = llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| gen_err(&e))?;
        let text = match self.model.chat_template(None) {
            Ok(tmpl) => {
                let chat = [
                    LlamaChatMessage::new("system".into(), system.into()).map_err(|e| gen_err(&e))?,
                    LlamaChatMessage::new("user".into(), prompt.into()).map_err(|e| gen_err(&e))?,
                ];
                self.model.apply_chat_template(&tmpl, &chat, true).map_err(|e| gen_err(&e))?
            }
            Err(_) => format!("{system}\n\n{prompt}\n"),
        };
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(N_CTX))
            .with_n_batch(N_CTX)
            .with_n_threads(1)
            .with_n_threads_batch(1);
        let mut ctx = self.model.new_context(&self.backend, params).map_err(|e| gen_err(&e))?;
        let vocab = self.model.vocab();
        let mut tokens = vocab.tokenize(text.as_bytes(), false, true);
        let budget = N_CTX as usize - MAX_NEW_TOKENS;
        if tokens.len() > budget {
            // Keep the end: the request and the answer cue are there.
            tokens.drain(..tokens.len() - budget);
        }
        let mut batch = LlamaBatch::new(N_CTX as usize, 1);
        let last = tokens.len().saturating_sub(1);
        for (i, t) in tokens.iter().enumerate() {
            batch.add(*t, i as i32, &[0], i == last).map_err(|e| gen_err(&e))?;
        }
        ctx.decode(&mut batch).map_err(|e| gen_err(&e))?;
        let grammar = LlamaSampler::grammar(&self.model, &grammar, "root").map_err(|e| gen_err(&e))?;
        let mut sampler = LlamaSampler::chain_simple([grammar, LlamaSampler::greedy()]);
        let mut out: Vec<u8> = Vec::new();
        for pos in (tokens.len() as i32..).take(MAX_NEW_TOKENS) {
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                break;
            }
            out.extend(vocab.token_to_piece(token, false, None));
            if serde_json::from_slice::<Value>(&out).is_ok() {
                break;
            }
            batch.clear();
            batch.add(token, pos, &[0], true).map_err(|e| gen_err(&e))?;
            ctx.decode(&mut batch).map_err(|e| gen_err(&e))?;
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}
