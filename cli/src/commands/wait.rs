//! `aosc wait`: block until a run ends or pauses, then report it as `aosc run` would.

use std::time::{Duration, Instant};

use aos_runtime::events::{RunStatus, Transition};
use aos_runtime::RunReport;

use super::exit;
use super::runtime as rtx;

/// Wait until a run ends (or pauses at an approval gate), then print its
/// result and exit with the status `aosc run` would have given.
#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 succeeded, 1 failed (or cancelled, or still running at --timeout),
2 no such run (or a usage error), 3 paused at an approval gate.

Examples:
  id=$(aosc run report.aos --detach) && aosc wait \"$id\"
  aosc wait 01J9Z8Q6W5K3M2N1P0R9S8T7V6 --timeout 600 --json")]
pub struct WaitArgs {
    /// The run.
    pub run_id: String,
    /// Give up after this many seconds (exit 1); default: wait as long as it takes.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Print exactly one JSON object on stdout at the end (as `aosc run --json`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &WaitArgs) -> u8 {
    if args.timeout.is_some_and(|t| !t.is_finite() || t < 0.0) {
        eprintln!("error: --timeout must be a number of seconds, 0 or more");
        return exit::USAGE;
    }
    rtx::with_runtime(|rt| async move {
        let start = Instant::now();
        let mut poll = Duration::from_millis(50);
        loop {
            let row = match rt.store.run(&args.run_id).await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    eprintln!("error: no run `{}` in this store", args.run_id);
                    return exit::USAGE;
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::ERRORS;
                }
            };
            match row.status {
                RunStatus::Queued | RunStatus::Running => {}
                status => {
                    let mut error = row.error.clone();
                    if status == RunStatus::WaitingApproval {
                        // Why it waits: the reasons of its last pause.
                        if let Ok(journal) = rt.store.journal(&args.run_id).await {
                            error = journal.iter().rev().find_map(|e| match &e.transition {
                                Transition::RunPaused { reason } => Some(reason.clone()),
                                _ => None,
                            });
                        }
                    }
                    let report = RunReport { run_id: row.run_id, status, output: row.output, cost_usd: row.cost_usd, error };
                    if status == RunStatus::WaitingApproval && !args.json && matches!(rt.store.fleet_queued(&args.run_id).await, Ok(true)) {
                        // A fleet run is not resumed by hand: each decision wakes the workers.
                        eprintln!("run {} is waiting for approval:", report.run_id);
                        for line in report.error.as_deref().unwrap_or("").split("; ") {
                            eprintln!("  {line}");
                        }
                        eprintln!("then: the workers continue it after each `aosc approve`/`aosc deny` (`aosc wait {}` follows it)", report.run_id);
                        return rtx::status_code(&report);
                    }
                    return rtx::print_report(&report, args.json);
                }
            }
            if let Some(t) = args.timeout
                && start.elapsed().as_secs_f64() >= t
            {
                eprintln!("error: run {} is still {} after {t} s", args.run_id, row.status.as_str());
                return exit::ERRORS;
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(Duration::from_millis(500));
        }
    })
}
