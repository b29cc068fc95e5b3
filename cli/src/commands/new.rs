//! `aosc new`: write a pipeline from an English intent (the work is in
//! `crate::new`; this is the command line around it).

use std::path::PathBuf;

use serde_json::json;

use super::exit;
use crate::new::{self, planner};

/// Write a program from an English intent, using only the standard library
/// and the tools, types, models and roles of the `--with` files; the program
/// is written only when it passes `aosc check`.
#[derive(clap::Args)]
#[command(after_help = "The planner model: the `planner` role of the --with files when its models have
credentials, else the [new] table of the project's aos.toml (`planner = \"ROLE\"`, or `provider` and
`model`, optional `base_url`), else OPENAI_API_KEY / ANTHROPIC_API_KEY / GEMINI_API_KEY (OPENAI_BASE_URL
for an OpenAI-compatible server; AOS_PLANNER_MODEL_ID picks the model), else the embedded model (a GGUF
file at AOS_PLANNER_MODEL or ~/.cache/aos/SmolLM2-135M-Instruct.Q4_1.gguf, in builds with
`--features local-model`).

Exit status: 0 a checked program was written, 1 it could not be (the reason and the last diagnostics
are printed), 2 usage or I/O error.

Examples:
  aosc new \"Every Monday, email last week's EMEA sales from the sales table to the sales lead\" -o weekly.aos
  aosc new \"Find a free meeting room from 2 to 4pm and book it\" --with tools.aos --json")]
pub struct NewArgs {
    /// What the pipeline should do, in English.
    #[arg(value_name = "INTENT")]
    pub intent: String,
    /// `.aos` files whose tools, types, models and roles the program may use.
    #[arg(long = "with", value_name = "FILE", num_args = 1..)]
    pub with: Vec<PathBuf>,
    /// Where to write the program (default: `pipeline.aos`).
    #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "pipeline.aos")]
    pub output: PathBuf,
    /// Print one JSON object on stdout: file, checked, rounds, diagnostics, cost_usd.
    #[arg(long)]
    pub json: bool,
    /// How many times the checker's diagnostics may go back to the model.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_rounds: u32,
}

pub fn run(args: &NewArgs) -> u8 {
    if args.intent.trim().is_empty() {
        eprintln!("error: the intent is empty: say in English what the pipeline should do");
        return exit::USAGE;
    }
    let out_dir = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !out_dir.is_dir() {
        eprintln!("error: the directory of `{}` does not exist", args.output.display());
        return exit::USAGE;
    }
    let inputs = match new::load_inputs(&args.with, &out_dir) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let out_path = args.output.display().to_string();
    let json_out = |file: Option<&str>, checked: bool, rounds: u32, diags: &[serde_json::Value], cost: Option<f64>, error: Option<&str>| {
        if args.json {
            let mut o = json!({"file": file, "checked": checked, "rounds": rounds, "diagnostics": diags, "cost_usd": cost});
            if let Some(e) = error {
                o["error"] = json!(e);
            }
            println!("{o}");
        }
    };
    // Nothing on offer fits: refuse before looking for a model.
    if new::shortlist(&args.intent, &inputs.catalog).is_empty() {
        let why = format!(
            "no tool on offer ({} in the catalog) matches this intent; add the tools it needs with `--with FILE`",
            inputs.catalog.len()
        );
        eprintln!("error: {why}");
        json_out(None, false, 0, &[], None, Some(&why));
        return exit::ERRORS;
    }
    let config = match new::config::load(&out_dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            json_out(None, false, 0, &[], None, Some(&e.to_string()));
            return exit::USAGE;
        }
    };
    let backend = match planner::choose(inputs.program.as_ref(), config.as_ref()) {
        Ok(b) => b,
        Err(why) => {
            eprintln!("error: {why}");
            json_out(None, false, 0, &[], None, Some(&why));
            return exit::ERRORS;
        }
    };
    eprintln!("planner: {}", backend.label());
    let started = std::time::Instant::now();
    // The tables a query may read, when a shortlisted tool runs SQL.
    let database = new::needs_database(&new::shortlist(&args.intent, &inputs.catalog)).then(|| {
        let (db, problem) = new::database::Database::open(&args.intent);
        if let Some(e) = problem {
            eprintln!("warning: {e}; the SQL is held to the tables the intent names");
        }
        eprintln!("{}", db.schema.describe());
        db
    });
    let outcome = new::generate(&args.intent, &inputs, database.as_ref(), &backend, &out_path, args.max_rounds, |round, diags| {
        eprintln!("round {round}: the program did not check; sent back:\n{diags}");
    });
    eprintln!("tools shortlisted: {}", outcome.shortlist.join(", "));
    if let Some(why) = &outcome.refusal {
        eprintln!("error: {why}");
        json_out(None, false, outcome.rounds, &outcome.diagnostics, None, Some(why));
        return exit::ERRORS;
    }
    if let Some(lowered) = &outcome.lowered {
        eprintln!("workflow `{}`:", lowered.workflow);
        for s in &lowered.steps {
            let mut extra = Vec::new();
            if let Some(g) = outcome.gates.approval.get(&s.name) {
                extra.push(format!("approval \"{g}\" (demanded by policy)"));
            }
            if let Some(v) = outcome.gates.verify.get(&s.name) {
                extra.push(format!("verify {v} (demanded by policy)"));
            }
            if outcome.gates.idempotency.contains(&s.name) {
                extra.push("idempotency key (demanded by the checker)".into());
            }
            let extra = if extra.is_empty() { String::new() } else { format!("  [{}]", extra.join("; ")) };
            eprintln!("  step {:<24} {}{extra}", s.name, s.does);
        }
        if !lowered.inputs.is_empty() {
            eprintln!("  inputs: {}", lowered.inputs.join(", "));
        }
    }
    match outcome.cost_usd {
        Some(c) => eprintln!("worst-case cost: {} per run (`aosc check --cost` shows each step)", aos_compiler::cost::fmt_usd(c)),
        None => eprintln!("worst-case cost: unbounded"),
    }
    eprintln!("repair rounds: {} ({:.1}s)", outcome.rounds, started.elapsed().as_secs_f64());
    if !outcome.checked {
        eprintln!("error: no program that checks after {} repair round(s); the last diagnostics:", outcome.rounds);
        for d in &outcome.diagnostics {
            eprintln!("  {} {}", d["code"].as_str().unwrap_or(""), d["message"].as_str().unwrap_or(""));
        }
        json_out(None, false, outcome.rounds, &outcome.diagnostics, outcome.cost_usd, Some("the program does not check"));
        return exit::ERRORS;
    }
    let text = outcome.text.unwrap_or_default();
    if let Err(e) = std::fs::write(&args.output, &text) {
        eprintln!("error: cannot write `{out_path}`: {e}");
        return exit::USAGE;
    }
    eprintln!("wrote {out_path}: it checks");
    json_out(Some(&out_path), true, outcome.rounds, &outcome.diagnostics, outcome.cost_usd, None);
    exit::OK
}
