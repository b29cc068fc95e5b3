//! `aosc approve` and `aosc deny`: record a decision at an approval gate.

use aos_runtime::Verdict;

use super::exit;
use super::runtime as rtx;

/// Approve a step waiting at an approval gate (then `aosc resume RUN_ID`,
/// or a run started with `--wait` continues by itself).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc approve 01J9Z8Q6W5K3M2N1P0R9S8T7V6 send --by ana --note \"numbers checked\"
  aosc resume 01J9Z8Q6W5K3M2N1P0R9S8T7V6")]
pub struct DecideArgs {
    /// The run.
    pub run_id: String,
    /// The step waiting at the gate.
    pub step: String,
    /// Who decides (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    /// Why, for the audit log.
    #[arg(long)]
    pub note: Option<String>,
}

/// Deny a step waiting at an approval gate: the step fails, and so does the run.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc deny 01J9Z8Q6W5K3M2N1P0R9S8T7V6 send --by ana --note \"wrong region\"")]
pub struct DenyArgs {
    #[command(flatten)]
    pub inner: DecideArgs,
}

pub fn run(args: &DecideArgs, verdict: Verdict) -> u8 {
    let by = args.by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".into());
    rtx::with_runtime(|rt| async move {
        match rt.decide(&args.run_id, &args.step, verdict, &by, args.note.as_deref()).await {
            Ok(()) => {
                let word = if verdict == Verdict::Approve { "approved" } else { "denied" };
                eprintln!("{word} step `{}` of run {} (by {by}); continue with `aosc resume {}`", args.step, args.run_id, args.run_id);
                exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::ERRORS
            }
        }
    })
}
