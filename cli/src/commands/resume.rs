//! `aosc resume`: continue a paused or interrupted run.

use aos_runtime::RunOptions;

use super::exit;
use super::runtime as rtx;

/// Continue a paused or interrupted run: steps journaled as done are not
/// repeated; an unfinished step runs again if that is safe, else it is held.
#[derive(clap::Args)]
#[command(after_help = "Exit status: as `aosc run` (0 succeeded, 1 failed, 3 paused at an approval gate).

Examples:
  aosc resume 01J9Z8Q6W5K3M2N1P0R9S8T7V6
  aosc resume 01J9Z8Q6W5K3M2N1P0R9S8T7V6 --json")]
pub struct ResumeArgs {
    /// The run to continue.
    pub run_id: String,
    /// Print exactly one JSON object on stdout at the end.
    #[arg(long)]
    pub json: bool,
    /// Wait at approval gates for a decision from another process.
    #[arg(long)]
    pub wait: bool,
}

pub fn run(args: &ResumeArgs) -> u8 {
    rtx::with_runtime(|rt| async move {
        // A run of the fleet is continued by the workers, never here.
        if let Some(code) = super::control::resume_fleet(&rt, &args.run_id).await {
            return code;
        }
        // A resume ends a pause (`aosc pause`): the run is no longer shown as paused.
        if let Err(e) = rt.store.set_paused(&args.run_id, None).await {
            eprintln!("warning: cannot clear the pause of run `{}`: {e}", args.run_id);
        }
        let opts = RunOptions { wait: args.wait, interrupt: Some(rtx::interrupt_on_ctrl_c()) };
        match rtx::with_progress(&rt, rt.execute(&args.run_id, opts)).await {
            Ok(report) => rtx::print_report(&report, args.json),
            Err(aos_runtime::RuntimeError::Store(aos_runtime::store::StoreError::NoSuchRun(id))) => {
                eprintln!("error: no run `{id}` (see `aosc runs`)");
                exit::USAGE
            }
            Err(e) => {
                crate::output::error(&e);
                exit::ERRORS
            }
        }
    })
}
