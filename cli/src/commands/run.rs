//! `aosc run`: check a file, then run one of its workflows durably.

use std::collections::BTreeMap;

use aos_compiler::ProjectLoader;
use aos_compiler::diagnostic::render_human;
use aos_compiler::ir::Trust;
use aos_runtime::RunOptions;
use serde_json::Value;

use super::exit;
use super::runtime as rtx;

/// Check a file, then run one of its workflows: ready steps run
/// concurrently, every transition is journaled, the result is printed.
#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 succeeded, 1 failed, 2 the program did not check (or a usage error),
3 paused at an approval gate.

Environment: AOS_HOME (store and workspaces, default ./.aos), AOS_DATABASE_URL
(sqlite://PATH), OPENAI_API_KEY / ANTHROPIC_API_KEY / GEMINI_API_KEY (real
providers; models of a provider without a key run on the simulator),
OPENAI_BASE_URL / ANTHROPIC_BASE_URL / GEMINI_BASE_URL, AOS_LLM=sim (every
model on the offline simulator), AOS_LLM_TIMEOUT_MS (one HTTP request, default
120000), AOS_LLM_RETRIES (transport retries per model, default 2).

Examples:
  aosc run examples/hello.aos
  aosc run examples/hello.aos --input name=Ada --json
  aosc run examples/hello.aos --stream  the answers' text on stderr as it arrives
  aosc run report.aos --workflow weekly --inputs-json inputs.json --trust trusted
  aosc run report.aos --wait          wait at approval gates for `aosc approve`
  aosc run report.aos --detach --json queue it for `aosc worker`s: {\"run_id\": …, \"status\": \"queued\"}")]
pub struct RunArgs {
    /// The .aos file (or a checked program as IR JSON, `*.json`).
    #[arg(value_name = "FILE")]
    pub file: String,
    /// The workflow to run (needed when the file has several).
    #[arg(long)]
    pub workflow: Option<String>,
    /// A parameter value `key=value` (JSON when it parses, else a string); repeatable.
    #[arg(long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// A JSON object file of parameter values (`--input` wins).
    #[arg(long, value_name = "FILE")]
    pub inputs_json: Option<String>,
    /// Print exactly one JSON object on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// Wait at approval gates for a decision from another process.
    #[arg(long)]
    pub wait: bool,
    /// Queue the run for `aosc worker` processes, print its id and exit
    /// (needs AOS_DATABASE_URL=postgres://…); `aosc wait RUN_ID` waits for it.
    #[arg(long, conflicts_with = "wait")]
    pub detach: bool,
    /// Print the text of LLM answers on stderr as it arrives (the
    /// providers' streaming APIs; on a terminal the live table shows it
    /// anyway). Usage and cost stay exact; nothing of it is journaled.
    #[arg(long)]
    pub stream: bool,
    /// The trust of whoever starts the run (dynamic policy rules use it).
    #[arg(long, value_name = "LEVEL", default_value = "basic", value_parser = ["untrusted", "basic", "trusted", "admin"])]
    pub trust: String,
}

/// `--input` values: JSON when they parse, else strings.
pub fn parse_inputs(pairs: &[String], file: Option<&str>) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => out.extend(m),
            Ok(_) => return Err(format!("`{path}` must hold a JSON object of parameter values")),
            Err(e) => return Err(format!("`{path}` is not valid JSON: {e}")),
        }
    }
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("--input `{pair}`: expected KEY=VALUE"));
        };
        let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
        out.insert(k.trim().to_string(), value);
    }
    Ok(out)
}

pub fn run(args: &RunArgs) -> u8 {
    if args.detach
        && let Err(e) = super::worker::postgres_url("`aosc run --detach`")
    {
        eprintln!("error: {e}; nothing was run");
        return exit::USAGE;
    }
    let text = match aos_compiler::files::read_regular(std::path::Path::new(&args.file), aos_compiler::files::MAX_PROGRAM_BYTES) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", args.file);
            return exit::USAGE;
        }
    };
    let program = if args.file.ends_with(".json") {
        // A checked program as `aosc check --emit-ir` prints it: the runtime
        // only ever consumes IR, so it can run one without the source.
        let program = match serde_json::from_str::<aos_compiler::ir::Program>(&text) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: `{}` is not a checked program (IR JSON): {e}", args.file);
                return exit::USAGE;
            }
        };
        // IR from a file may have been edited: it must show the checker's
        // guarantees again (gates, DAG, budgets) before anything runs.
        if let Err(e) = aos_compiler::verify::verify(&program) {
            eprintln!("error: `{}` is refused: {e}; nothing was run", args.file);
            return exit::USAGE;
        }
        program
    } else {
        let analysis = aos_compiler::check(&args.file, &text, &ProjectLoader::for_program(std::path::Path::new(&args.file)));
        if analysis.has_errors() || analysis.program.is_none() {
            eprint!("{}", render_human(&analysis.diagnostics, &analysis.sources, super::stderr_color()));
            if analysis.has_errors() {
                eprintln!("error: `{}` does not check; nothing was run", args.file);
            } else {
                eprintln!("error: the checker produced no program for `{}` (lowering to IR is not available in this build); nothing was run", args.file);
            }
            return exit::USAGE;
        }
        let Some(program) = analysis.program else { return exit::USAGE };
        program
    };
    let inputs = match parse_inputs(&args.inputs, args.inputs_json.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let workflow = match &args.workflow {
        Some(w) => w.clone(),
        None => match aos_runtime::default_workflow(&program) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        },
    };
    let trust = aos_runtime::governance::parse_trust(&args.trust).unwrap_or(Trust::Basic);
    rtx::with_runtime(|mut rt| async move {
        use std::io::IsTerminal;
        if args.stream || std::io::stderr().is_terminal() {
            rt.fabric = std::sync::Arc::new(aos_runtime::fabric::Fabric::from_env().streaming(rt.bus.clone()));
        }
        for note in rt.fabric.notes(&program) {
            eprintln!("{note}");
        }
        if args.detach {
            return match rt.detach(&program, &workflow, inputs, trust).await {
                Ok(id) => {
                    if args.json {
                        outln!("{}", serde_json::json!({"run_id": id, "status": "queued"}));
                    } else {
                        outln!("{id}");
                        eprintln!("run {id} queued (workflow {workflow}, trust {}); `aosc worker` processes run it; `aosc wait {id}` waits for it", args.trust);
                    }
                    exit::OK
                }
                Err(aos_runtime::RuntimeError::Usage(e)) => {
                    eprintln!("error: {e}");
                    exit::USAGE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::ERRORS
                }
            };
        }
        let id = match rt.create(&program, &workflow, inputs, trust).await {
            Ok(id) => id,
            Err(aos_runtime::RuntimeError::Usage(e)) => {
                crate::output::error(&e);
                return exit::USAGE;
            }
            Err(e) => {
                crate::output::error(&e);
                return exit::ERRORS;
            }
        };
        // The run reads its program from the store: this copy is not needed
        // any more (a 10k-step program is tens of megabytes in memory).
        drop(program);
        eprintln!("run {id} started (workflow {workflow}, trust {})", args.trust);
        let opts = RunOptions { wait: args.wait, interrupt: Some(rtx::interrupt_on_ctrl_c()) };
        match rtx::with_progress(&rt, rt.execute(&id, opts)).await {
            Ok(report) => rtx::print_report(&report, args.json),
            Err(e) => {
                crate::output::error(format!("{e}; the run can be resumed with `aosc resume {id}`"));
                exit::ERRORS
            }
        }
    })
}
