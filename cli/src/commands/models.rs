//! `aosc models`: the models a program declares, with prices, context
//! windows, the endpoint each would use and whether its credentials are set.

use aos_compiler::ProjectLoader;
use aos_compiler::diagnostic::render_human;
use aos_compiler::ir::{Program, Provider};
use aos_runtime::fabric::{self, PROVIDERS};
use serde_json::{json, Value};

use super::exit;

/// List the models a program declares: prices, context window, endpoint,
/// roles, and whether the provider's key is set (else the model runs on the
/// offline simulator).
#[derive(clap::Args)]
#[command(after_help = "Credentials are read from OPENAI_API_KEY, ANTHROPIC_API_KEY and GEMINI_API_KEY
(never printed); endpoints from OPENAI_BASE_URL, ANTHROPIC_BASE_URL, GEMINI_BASE_URL
or a model's `base_url:`. AOS_LLM=sim puts every model on the simulator.

Examples:
  aosc models pipeline.aos
  aosc models pipeline.aos --stats   measured latency, errors, pass rate, cost per call
  aosc models pipeline.aos --json   [{\"name\", \"provider\", \"model_id\", \"input_per_m\", \"output_per_m\",
                                     \"context\", \"endpoint\", \"roles\", \"credentials\", \"runs_on\"}, ...]")]
pub struct ModelsArgs {
    /// The .aos file (or a checked program as IR JSON, `*.json`).
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Also the models' measured statistics from real calls (the store
    /// under AOS_HOME or AOS_DATABASE_URL): calls, errors, mean latency,
    /// error rate, verification pass rate, cost per call.
    #[arg(long)]
    pub stats: bool,
}

fn load(file: &str) -> Result<Program, u8> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read `{file}`: {e}");
        exit::USAGE
    })?;
    if file.ends_with(".json") {
        return serde_json::from_str::<Program>(&text).map_err(|e| {
            eprintln!("error: `{file}` is not a checked program (IR JSON): {e}");
            exit::USAGE
        });
    }
    let analysis = aos_compiler::check(file, &text, &ProjectLoader::for_program(std::path::Path::new(file)));
    if analysis.has_errors() {
        eprint!("{}", render_human(&analysis.diagnostics, &analysis.sources, super::stderr_color()));
        eprintln!("error: `{file}` does not check");
        return Err(exit::USAGE);
    }
    analysis.program.ok_or_else(|| {
        eprintln!("error: the checker produced no program for `{file}`");
        exit::USAGE
    })
}

fn env_set(var: &str) -> bool {
    std::env::var(var).map(|v| !v.trim().is_empty()).unwrap_or(false)
}

/// One model as `--json` prints it.
fn describe(program: &Program, m: &aos_compiler::ir::Model) -> Value {
    let forced = fabric::forced_sim();
    let spec = PROVIDERS.iter().find(|p| p.0 == m.provider);
    let (credentials, endpoint, real) = match spec {
        Some((_, key_var, base_var, default)) => {
            let present = env_set(key_var);
            let base = m.base_url.clone().or_else(|| std::env::var(base_var).ok().filter(|v| !v.trim().is_empty())).unwrap_or_else(|| default.to_string());
            (json!({"variable": key_var, "present": present}), json!(base), present && !forced)
        }
        None => (Value::Null, Value::Null, false),
    };
    let roles: Vec<&String> = program.roles.iter().filter(|(_, ms)| ms.contains(&m.name)).map(|(r, _)| r).collect();
    json!({
        "name": m.name, "provider": m.provider.as_str(), "model_id": m.model_id,
        "input_per_m": m.input_per_m, "output_per_m": m.output_per_m, "context": m.context,
        "endpoint": endpoint, "roles": roles, "credentials": credentials,
        "runs_on": if real { m.provider.as_str() } else { "sim" },
    })
}

/// `$2.50`, `$0.075`: at least two decimals, at most six.
fn price(p: f64) -> String {
    let s = format!("{p:.6}");
    let t = s.trim_end_matches('0');
    let decimals = t.split('.').nth(1).map(str::len).unwrap_or(0);
    if decimals < 2 { format!("${p:.2}") } else { format!("${t}") }
}

pub fn run(args: &ModelsArgs) -> u8 {
    let program = match load(&args.file) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut list: Vec<Value> = program.models.values().map(|m| describe(&program, m)).collect();
    if args.stats {
        return with_stats(args, &program, &mut list);
    }
    if args.json {
        outln!("{}", Value::Array(list));
        return exit::OK;
    }
    if list.is_empty() {
        eprintln!("`{}` declares no models", args.file);
        return exit::OK;
    }
    out!("{}", models_table(&program, &list));
    exit::OK
}

/// The table `aosc models` prints: one row a model, columns as wide as
/// their widest cell. CREDENTIALS says whether the key is set; RUNS ON
/// where calls go (the provider, or `sim` and why).
pub fn models_table(program: &Program, list: &[Value]) -> String {
    use super::table::{self, Align::{Left, Right}};
    let forced = fabric::forced_sim();
    let rows: Vec<Vec<String>> = program
        .models
        .values()
        .zip(list)
        .map(|(m, v)| {
            let var = v["credentials"]["variable"].as_str().unwrap_or("");
            let present = v["credentials"]["present"].as_bool();
            let creds = match (m.provider, present) {
                (Provider::Sim, _) => "not needed".to_string(),
                (_, Some(true)) => format!("{var} set"),
                _ => format!("{var} missing"),
            };
            let runs_on = match (m.provider, present) {
                (Provider::Sim, _) => "sim".to_string(),
                (_, Some(true)) if forced => "sim (AOS_LLM=sim)".to_string(),
                (_, Some(true)) => v["runs_on"].as_str().unwrap_or("").to_string(),
                _ => "sim (no key)".to_string(),
            };
            let roles = v["roles"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default();
            vec![
                m.name.clone(),
                m.provider.as_str().to_string(),
                m.model_id.clone(),
                price(m.input_per_m),
                price(m.output_per_m),
                m.context.to_string(),
                creds,
                runs_on,
                if roles.is_empty() { "-".to_string() } else { roles },
                v["endpoint"].as_str().unwrap_or("-").to_string(),
            ]
        })
        .collect();
    table::render(
        &[
            ("MODEL", Left),
            ("PROVIDER", Left),
            ("ID", Left),
            ("INPUT/M", Right),
            ("OUTPUT/M", Right),
            ("CONTEXT", Right),
            ("CREDENTIALS", Left),
            ("RUNS ON", Left),
            ("ROLES", Left),
            ("ENDPOINT", Left),
        ],
        &rows,
    )
}

/// `--stats`: the store's figures for each model, as a JSON array (each
/// model with `"stats"`) or the statistics table after the models table.
fn with_stats(args: &ModelsArgs, program: &Program, list: &mut [Value]) -> u8 {
    super::runtime::with_runtime(|rt| async move {
        let stats = match rt.store.model_stats().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot read the models' statistics: {e}");
                return exit::ERRORS;
            }
        };
        super::models_stats::attach(program, list, &stats);
        if args.json {
            outln!("{}", Value::Array(list.to_vec()));
        } else {
            out!("{}", models_table(program, list));
            outln!();
            out!("{}", super::models_stats::table(program, list));
        }
        exit::OK
    })
}
