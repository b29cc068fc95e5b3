//! `aosc audit verify`: check a run's hash-chained audit log.

use aos_runtime::audit::Verdict;

use super::exit;
use super::runtime as rtx;

/// Operate on the audit log.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc audit verify 01J9Z8Q6W5K3M2N1P0R9S8T7V6")]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Check that a run's audit chain is intact: exit 0 if so, 1 naming the
    /// first changed, removed or reordered record otherwise.
    #[command(after_help = "Examples:
  aosc audit verify 01J9Z8Q6W5K3M2N1P0R9S8T7V6")]
    Verify {
        run_id: String,
    },
}

pub fn run(args: &AuditArgs) -> u8 {
    let AuditCommand::Verify { run_id } = &args.command;
    rtx::with_runtime(|rt| async move {
        match rt.verify_audit(run_id).await {
            Ok(Verdict::Intact { records }) => {
                outln!("ok: the audit chain of run {run_id} is intact ({records} records)");
                exit::OK
            }
            Ok(Verdict::Broken { seq, reason }) => {
                outln!("broken: audit record {seq} of run {run_id}: {reason}");
                exit::ERRORS
            }
            Err(e) => {
                crate::output::error(&e);
                exit::ERRORS
            }
        }
    })
}
