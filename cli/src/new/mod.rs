//! `aosc new`: from an English intent to a program that checks.
//!
//! 1. [`catalog`]: the tools on offer (the standard library and the `--with`
//!    files); [`retrieve`]: the shortlist, picked clause by clause by word
//!    overlap with the intent and completed from the catalog;
//! 2. [`planner`]: a model writes a JSON plan held to [`plan::schema`]
//!    (its tool field an enum of the shortlist);
//! 3. [`lower`]: the plan becomes `.aos` text, deterministically, and the
//!    compiler's formatter lays it out;
//! 4. the checker runs; the gates and the budget it demands are added
//!    without asking the model, anything else goes back to the model, at
//!    most `max_rounds` times. Only a program that checks is written.

pub mod catalog;
pub mod config;
pub mod database;
pub mod lower;
pub mod plan;
pub mod planner;
pub mod retrieve;

#[cfg(feature = "local-model")]
pub mod local;

use std::path::{Path, PathBuf};

use aos_compiler::FsLoader;
use aos_compiler::diagnostic::to_json;
use aos_compiler::ir::Program;
use aos_compiler::{Analysis, Diagnostic};
use serde_json::Value;

use catalog::CatalogTool;
use retrieve::Retriever;
use lower::{Gates, Lowered, Setting};
use plan::Plan;

/// How many tools the model is shown at most.
pub const SHORTLIST_MAX: usize = 8;
/// A tool makes the shortlist when it scores this share of the best one.
pub const SHORTLIST_SHARE: f64 = 0.35;
/// The longest plan.
pub const MAX_STEPS: usize = 8;
/// The approver group of gates policy demands.
pub const APPROVER: &str = "owner";

/// The `--with` files, loaded.
pub struct Inputs {
    pub catalog: Vec<CatalogTool>,
    /// The checked program of the `--with` files (roles, models).
    pub program: Option<Program>,
    /// `use` paths, relative to the output file.
    pub uses: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read `{path}`: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("`{path}` does not check:\n{rendered}")]
    Invalid { path: String, rendered: String },
}

/// `to` relative to the directory `from`, when both are absolute.
fn relative(to: &Path, from_dir: &Path) -> String {
    let to_parts: Vec<_> = to.components().collect();
    let from_parts: Vec<_> = from_dir.components().collect();
    let common = to_parts.iter().zip(&from_parts).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to.display().to_string();
    }
    let mut out = PathBuf::new();
    for _ in common..from_parts.len() {
        out.push("..");
    }
    for p in &to_parts[common..] {
        out.push(p);
    }
    let s = out.display().to_string();
    if s.starts_with("..") { s } else { format!("./{s}") }
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf()))
}

/// Reads and checks the `--with` files; the catalog is their tools plus the
/// standard library's.
pub fn load_inputs(with: &[PathBuf], out_dir: &Path) -> Result<Inputs, InputError> {
    let mut files: Vec<(aos_compiler::ast::File, Option<String>)> = Vec::new();
    let mut uses = Vec::new();
    let mut scaffold = String::new();
    for path in with {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| InputError::Read { path: shown.clone(), source })?;
        let analysis = aos_compiler::check(&shown, &text, &FsLoader);
        if analysis.has_errors() {
            let rendered = aos_compiler::diagnostic::render_human(&analysis.diagnostics, &analysis.sources, aos_compiler::diagnostic::Color::Never);
            return Err(InputError::Invalid { path: shown, rendered });
        }
        let abs = absolute(path);
        uses.push(relative(&abs, &absolute(out_dir)));
        scaffold.push_str(&format!("use {}\n", lower::quote(&abs.display().to_string())));
        for (id, f) in analysis.files {
            let path = analysis.sources.path(id);
            // Standard modules the file uses are added below, marked as such.
            if !path.starts_with("<std>/") {
                files.push((f, None));
            }
        }
    }
    for (name, text) in aos_compiler::stdlib::MODULES {
        let (file, _) = aos_compiler::parse(text, aos_compiler::FileId(0));
        files.push((file, Some((*name).to_string())));
    }
    let program = if with.is_empty() {
        None
    } else {
        aos_compiler::check("<with>.aos", &scaffold, &FsLoader).program
    };
    Ok(Inputs { catalog: catalog::tools_of(&files), program, uses })
}

/// What `aosc new` ended with.
#[derive(Debug)]
pub struct Outcome {
    /// The formatted program of the last round (written only when checked).
    pub text: Option<String>,
    pub checked: bool,
    /// Repair rounds: how many times diagnostics went back to the model.
    pub rounds: u32,
    pub diagnostics: Vec<Value>,
    pub cost_usd: Option<f64>,
    pub lowered: Option<Lowered>,
    pub gates: Gates,
    pub refusal: Option<String>,
    pub shortlist: Vec<String>,
}

/// The shortlist for an intent (the tools its clauses ask for, in order),
/// empty when nothing on offer fits.
pub fn shortlist<'a>(intent: &str, catalog: &'a [CatalogTool]) -> Vec<&'a CatalogTool> {
    let r = Retriever::new(catalog);
    let picked = r.pick(intent, SHORTLIST_MAX);
    if !picked.is_empty() {
        return picked.into_iter().map(|i| &catalog[i]).collect();
    }
    r.shortlist(intent, SHORTLIST_SHARE, SHORTLIST_MAX).into_iter().map(|s| &catalog[s.tool]).collect()
}

/// The role LLM steps of the program use: `executor` when the `--with`
/// files have it, else their first role, else none (a `sim` one is made).
fn writer_role(program: Option<&Program>) -> Option<String> {
    let p = program?;
    if p.roles.contains_key("executor") {
        return Some("executor".into());
    }
    p.roles.keys().find(|r| r.as_str() != "planner").or(p.roles.keys().next()).cloned()
}

/// A verifier for `step`: a role whose models differ from the writer's.
fn verifier_role(program: Option<&Program>, writer: Option<&str>) -> Option<String> {
    let p = program?;
    let writer_models: Vec<&String> = writer.and_then(|w| p.roles.get(w)).map(|m| m.iter().collect()).unwrap_or_default();
    p.roles
        .iter()
        .filter(|(name, _)| Some(name.as_str()) != writer)
        .find(|(_, models)| models.iter().all(|m| !writer_models.contains(&m)))
        .map(|(name, _)| name.clone())
}

fn check_text(path: &str, text: &str) -> Analysis {
    aos_compiler::check(path, text, &FsLoader)
}

/// Adds to `gates` what the checker asked for; true when something was added.
fn demanded(analysis: &Analysis, steps: &[lower::LoweredStep], gates: &mut Gates, verifier: Option<&str>) -> bool {
    let mut added = false;
    for d in analysis.diagnostics.iter().filter(|d| d.is_error() && d.file == analysis.main) {
        let Some(step) = steps.iter().find(|s| d.message.contains(&format!("step `{}`", s.name))) else { continue };
        let wants_approval = (d.code == "E0601" && d.message.contains("requires approval")) || d.code == "E0602";
        let wants_verify = d.code == "E0601" && d.message.contains("has no `verify:`");
        if wants_approval && !gates.approval.contains_key(&step.name) {
            gates.approval.insert(step.name.clone(), APPROVER.into());
            added = true;
        }
        if wants_verify
            && let Some(v) = verifier
            && !gates.verify.contains_key(&step.name)
        {
            gates.verify.insert(step.name.clone(), v.to_string());
            added = true;
        }
        if d.code == "E0404"
            && !gates.max_input.contains_key(&step.name)
            && let Some(n) = d.help.as_deref().and_then(|h| h.split("max_input_tokens: ").nth(1)).and_then(|t| {
                t.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u64>().ok()
            })
        {
            gates.max_input.insert(step.name.clone(), n);
            added = true;
        }
        if d.message.contains("idempotency") && gates.idempotency.insert(step.name.clone()) {
            added = true;
        }
    }
    added
}

fn render_for_model(d: &Diagnostic) -> String {
    match &d.help {
        Some(h) => format!("- error {}: {} (help: {h})", d.code, d.message),
        None => format!("- error {}: {}", d.code, d.message),
    }
}

/// Lowers, formats and checks `plan`, adding demanded gates and the
/// budget; returns the last lowering, its formatted text and analysis.
fn realize(plan: &Plan, setting: &Setting<'_>, out_path: &str, gates: &mut Gates, verifier: Option<&str>) -> (Lowered, String, Analysis) {
    gates.budget_usd = None;
    let mut passes = 0;
    loop {
        let lowered = lower::lower(plan, setting, gates);
        let text = aos_compiler::format(&lowered.text).unwrap_or_else(|_| lowered.text.clone());
        let analysis = check_text(out_path, &text);
        passes += 1;
        if passes < 4 && demanded(&analysis, &lowered.steps, gates, verifier) {
            continue;
        }
        if gates.budget_usd.is_none()
            && let Some(total) = analysis.cost.workflows.get(&lowered.workflow).and_then(|w| w.total_usd)
        {
            // The checker's worst case, rounded up to the cent.
            gates.budget_usd = Some(((total * 100.0).ceil() / 100.0).max(0.01));
            continue;
        }
        return (lowered, text, analysis);
    }
}

/// Whether a tool of the shortlist runs SQL (then the database's tables
/// are worth reading: [`database::Database::open`]).
pub fn needs_database(shortlist: &[&CatalogTool]) -> bool {
    shortlist.iter().any(|t| t.params.iter().any(|p| lower::normalized(&p.name) == "sql"))
}

/// The checker's diagnostics as JSON objects.
fn diagnostics_json(analysis: &Analysis) -> Vec<Value> {
    match to_json(&analysis.diagnostics, &analysis.sources) {
        Value::Object(mut o) => match o.remove("diagnostics") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Runs the whole loop for one intent. `database`, when the shortlist runs
/// SQL, holds the plan's queries to its tables and tries them.
pub fn generate(
    intent: &str,
    inputs: &Inputs,
    database: Option<&database::Database>,
    backend: &planner::Backend,
    out_path: &str,
    max_rounds: u32,
    mut on_round: impl FnMut(u32, &str),
) -> Outcome {
    let shortlist = shortlist(intent, &inputs.catalog);
    let mut outcome = Outcome {
        text: None,
        checked: false,
        rounds: 0,
        diagnostics: Vec::new(),
        cost_usd: None,
        lowered: None,
        gates: Gates::default(),
        refusal: None,
        shortlist: shortlist.iter().map(|t| t.name.clone()).collect(),
    };
    if shortlist.is_empty() {
        outcome.refusal = Some(format!(
            "no tool on offer ({} in the catalog) matches this intent; add the tools it needs with `--with FILE`",
            inputs.catalog.len()
        ));
        return outcome;
    }
    let hints = database.map(database::Database::hints).unwrap_or_default();
    let schema = backend.schema(&shortlist, MAX_STEPS, &hints);
    let first_prompt = plan::prompt(intent, &shortlist, &hints);
    let writer = writer_role(inputs.program.as_ref());
    let verifier = verifier_role(inputs.program.as_ref(), writer.as_deref());
    let setting = Setting { intent, uses: &inputs.uses, writer_role: writer.as_deref(), catalog: &inputs.catalog };
    let mut prompt = first_prompt.clone();
    let mut round = 0;
    loop {
        let plan = match backend.ask(&prompt, &schema, round) {
            Ok(p) => p,
            Err(e) => {
                outcome.refusal = Some(e.to_string());
                return outcome;
            }
        };
        if plan.steps.is_empty() {
            outcome.refusal = Some("the planner found no tool on offer that serves this intent".into());
            return outcome;
        }
        let mut gates = Gates::default();
        let (lowered, text, analysis) = realize(&plan, &setting, out_path, &mut gates, verifier.as_deref());
        outcome.diagnostics = diagnostics_json(&analysis);
        outcome.cost_usd = analysis.cost.workflows.get(&lowered.workflow).and_then(|w| w.total_usd);
        outcome.text = Some(text);
        outcome.lowered = Some(lowered);
        outcome.gates = gates;
        outcome.rounds = round;
        let mut errors: Vec<String> = analysis.diagnostics.iter().filter(|d| d.is_error()).map(render_for_model).collect();
        // A program that checks may still query what the database does not have.
        if errors.is_empty()
            && let Some(db) = database
        {
            errors = db.check_plan(&plan);
            outcome.diagnostics.extend(
                errors.iter().map(|e| serde_json::json!({"code": "sql", "severity": "error", "message": e.trim_start_matches("- error sql: ")})),
            );
        }
        if errors.is_empty() {
            outcome.checked = true;
            return outcome;
        }
        if round >= max_rounds {
            return outcome;
        }
        on_round(round + 1, &errors.join("\n"));
        prompt = plan::repair_prompt(&first_prompt, &plan, &errors);
        round += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::relative;
    use std::path::Path;

    #[test]
    fn use_paths_are_relative_to_the_output() {
        assert_eq!(relative(Path::new("/a/b/tools.aos"), Path::new("/a/b")), "./tools.aos");
        assert_eq!(relative(Path::new("/a/tools.aos"), Path::new("/a/out")), "../tools.aos");
    }
}
