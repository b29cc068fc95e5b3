//! `aosc replay`: print a run's timeline from its journal.

use super::exit;
use super::runtime as rtx;

/// Print a run's timeline: every journaled transition, with its time since the start.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc replay 01J9Z8Q6W5K3M2N1P0R9S8T7V6")]
pub struct ReplayArgs {
    pub run_id: String,
}

pub fn run(args: &ReplayArgs) -> u8 {
    rtx::with_runtime(|rt| async move {
        match rt.timeline(&args.run_id).await {
            Ok(lines) => {
                for l in lines {
                    outln!("{l}");
                }
                exit::OK
            }
            Err(e) => {
                crate::output::error(&e);
                exit::ERRORS
            }
        }
    })
}
