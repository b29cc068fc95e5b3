//! `aosc check`: parse and check files, print diagnostics.

use aos_compiler::ProjectLoader;
use aos_compiler::diagnostic::{render_human, to_json};

use super::exit;

/// Parse and check `.aos` files: names, types, the step graph, roles, policy,
/// secrets and the worst-case cost of a run.
#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 no errors, 1 errors found, 2 usage or I/O error.

Examples:
  aosc check pipeline.aos
  aosc check --format json pipeline.aos     one JSON object for tools and CI
  aosc check --cost pipeline.aos            per-step worst-case cost table
  aosc check --emit-ir pipeline.aos         the checked program as JSON, for the runtime")]
pub struct CheckArgs {
    /// The files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Print each workflow's worst-case cost: a table of every step's bound
    /// and how it was reached on stdout (with `--format json`, a `"cost"`
    /// member of the one JSON object, by workflow).
    #[arg(long)]
    pub cost: bool,
    /// Print the checked program (the IR the runtime runs) as JSON on stdout;
    /// nothing is printed when there are errors.
    #[arg(long)]
    pub emit_ir: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Source excerpts with labels, for people.
    Human,
    /// `{"diagnostics": [...]}` on stdout, for tools.
    Json,
}

pub fn run(args: &CheckArgs) -> u8 {
    if args.format == Format::Json && args.emit_ir {
        eprintln!("error: `--emit-ir` prints on stdout, where `--format json` prints its object: use one at a time");
        return exit::USAGE;
    }
    if args.emit_ir && args.files.len() != 1 {
        eprintln!("error: `--emit-ir` takes exactly one file");
        return exit::USAGE;
    }
    let mut all_json = Vec::new();
    let mut all_cost = serde_json::Map::new();
    let mut errors = 0usize;
    let mut warnings = 0usize;
    for path in &args.files {
        let text = match aos_compiler::files::read_regular(std::path::Path::new(path), aos_compiler::files::MAX_PROGRAM_BYTES) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read `{path}`: {e}");
                return exit::USAGE;
            }
        };
        // Without `--cost` or `--emit-ir` only the findings are shown: the
        // checker then skips lowering and counts prompts in bytes unless a
        // finding quotes a cost figure (the same findings, faster).
        let options = aos_compiler::CheckOptions { program: args.cost || args.emit_ir };
        let analysis =
            aos_compiler::check_with(path, &text, &ProjectLoader::for_program(std::path::Path::new(path)), options);
        if args.cost {
            match args.format {
                Format::Human => out!("{}", aos_compiler::cost::render_table(&analysis.cost)),
                Format::Json => {
                    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&analysis.cost.workflows) {
                        all_cost.extend(map);
                    }
                }
            }
        }
        errors += analysis.diagnostics.iter().filter(|d| d.is_error()).count();
        warnings += analysis.diagnostics.iter().filter(|d| !d.is_error()).count();
        if args.emit_ir
            && let Some(program) = &analysis.program {
                match serde_json::to_string_pretty(program) {
                    Ok(text) => outln!("{text}"),
                    Err(e) => {
                        eprintln!("error: cannot serialize the IR: {e}");
                        return exit::USAGE;
                    }
                }
            }
        match args.format {
            Format::Human => {
                eprint!("{}", render_human(&analysis.diagnostics, &analysis.sources, super::stderr_color()));
            }
            Format::Json => {
                if let serde_json::Value::Object(mut obj) = to_json(&analysis.diagnostics, &analysis.sources)
                    && let Some(serde_json::Value::Array(list)) = obj.remove("diagnostics") {
                        all_json.extend(list);
                    }
            }
        }
    }
    match args.format {
        Format::Json if args.cost => {
            outln!("{}", serde_json::json!({ "diagnostics": all_json, "cost": all_cost }));
        }
        Format::Json => outln!("{}", serde_json::json!({ "diagnostics": all_json })),
        Format::Human => {
            if errors == 0 && warnings == 0 {
                eprintln!("ok: {} file(s) checked", args.files.len());
            } else {
                eprintln!("{errors} error(s), {warnings} warning(s)");
            }
        }
    }
    if errors > 0 { exit::ERRORS } else { exit::OK }
}
