//! `aosc approve` and `aosc deny`: record a decision at an approval gate.

use aos_runtime::Verdict;

use super::exit;
use super::runtime as rtx;

/// Approve a step waiting at an approval gate. A run started with `--wait`
/// continues by itself; otherwise continue it with `aosc resume RUN_ID`
/// (the message says which). One decision per gate: a decision on a gate
/// already decided is refused with exit status 4.
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
                let root = args.run_id.split('.').next().unwrap_or(&args.run_id);
                let fleet = matches!(rt.store.fleet_queued(root).await, Ok(true));
                match rt.store.lease(root).await {
                    _ if fleet => eprintln!(
                        "{word} step `{}` of run {} (by {by}); the workers continue it (follow it with `aosc wait {root}`)",
                        args.step, args.run_id
                    ),
                    // A process is continuing the run (`aosc run --wait`, or a
                    // resume with --wait): it picks the decision up by itself,
                    // and a second process would be refused anyway.
                    Ok(Some((holder, _))) => eprintln!(
                        "{word} step `{}` of run {} (by {by}); process {} on host `{}` is waiting on this run and continues it by itself (do not `aosc resume` it)",
                        args.step, args.run_id, holder.pid, holder.host
                    ),
                    _ => eprintln!(
                        "{word} step `{}` of run {} (by {by}); no process is waiting on it: continue with `aosc resume {}`",
                        args.step, args.run_id, root
                    ),
                }
                exit::OK
            }
            Err(e @ aos_runtime::RuntimeError::Store(aos_runtime::store::StoreError::AlreadyDecided { .. })) => {
                crate::output::error(&e);
                exit::REFUSED
            }
            Err(e) => {
                crate::output::error(&e);
                exit::ERRORS
            }
        }
    })
}
