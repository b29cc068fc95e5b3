//! `aosc runs`: list runs, newest first.

use super::exit;
use super::runtime as rtx;

/// List runs, newest first.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc runs
  aosc runs --json       [{\"run_id\", \"workflow\", \"status\", \"started_at\", \"cost_usd\"}, ...]")]
pub struct RunsArgs {
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RunsArgs) -> u8 {
    rtx::with_runtime(|rt| async move {
        let runs = match rt.store.runs().await {
            Ok(r) => r,
            Err(e) => {
                crate::output::error(&e);
                return exit::ERRORS;
            }
        };
        if args.json {
            let list: Vec<_> = runs.iter().map(aos_runtime::inspect::run_list_json).collect();
            outln!("{}", serde_json::Value::Array(list));
        } else if runs.is_empty() {
            eprintln!("no runs yet (start one with `aosc run FILE`)");
        } else {
            outln!("{:<28} {:<24} {:<17} {:<25} {:>10}", "RUN", "WORKFLOW", "STATUS", "STARTED", "COST");
            for r in &runs {
                outln!("{:<28} {:<24} {:<17} {:<25} {:>10}", r.run_id, r.workflow, r.status.as_str(), r.started_at, format!("${:.6}", r.cost_usd));
            }
        }
        exit::OK
    })
}
