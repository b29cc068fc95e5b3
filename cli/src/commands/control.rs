//! `aosc cancel` and `aosc pause`: stop a run. A run waiting at a gate (or
//! interrupted) is cancelled here; a running one is asked to stop through
//! the store, and the `aosc serve` executing it stops it within a moment.

use aos_runtime::events::RunStatus;

use super::exit;
use super::runtime as rtx;

/// Cancel a run: a running step is stopped and the run ends `cancelled`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc cancel 01J9Z8Q6W5K3M2N1P0R9S8T7V6")]
pub struct CancelArgs {
    pub run_id: String,
    /// Who cancels, for the audit log (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
}

/// Pause a run executing in `aosc serve`: it stops cleanly; resume it with
/// `aosc resume RUN_ID` or `POST /v1/runs/{id}/resume`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc pause 01J9Z8Q6W5K3M2N1P0R9S8T7V6")]
pub struct PauseArgs {
    pub run_id: String,
}

fn who(by: &Option<String>) -> String {
    by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".into())
}

pub fn cancel(args: &CancelArgs) -> u8 {
    let by = who(&args.by);
    rtx::with_runtime(|rt| async move {
        let row = match rt.store.run(&args.run_id).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                eprintln!("error: no run `{}`", args.run_id);
                return exit::ERRORS;
            }
            Err(e) => {
                crate::output::error(&e);
                return exit::ERRORS;
            }
        };
        let done = if row.status == RunStatus::Running {
            rt.store.request_control(&args.run_id, "cancel", &by).await.map_err(|e| e.to_string()).map(|()| "asked the server executing it to cancel")
        } else {
            rt.cancel_idle(&args.run_id, &by).await.map_err(|e| e.to_string()).map(|()| "cancelled")
        };
        match done {
            Ok(what) => {
                eprintln!("run {}: {what} (by {by})", args.run_id);
                exit::OK
            }
            Err(e) => {
                crate::output::error(&e);
                exit::ERRORS
            }
        }
    })
}

pub fn pause(args: &PauseArgs) -> u8 {
    let by = who(&None);
    rtx::with_runtime(|rt| async move {
        match rt.store.run(&args.run_id).await {
            Ok(Some(r)) if r.status == RunStatus::Running => match rt.store.request_control(&args.run_id, "pause", &by).await {
                Ok(()) => {
                    eprintln!("run {}: asked the server executing it to pause; continue with `aosc resume {}`", args.run_id, args.run_id);
                    exit::OK
                }
                Err(e) => {
                    crate::output::error(&e);
                    exit::ERRORS
                }
            },
            Ok(Some(r)) => {
                eprintln!("error: run `{}` is not running ({}); nothing to pause", args.run_id, r.status.as_str());
                exit::ERRORS
            }
            Ok(None) => {
                eprintln!("error: no run `{}`", args.run_id);
                exit::ERRORS
            }
            Err(e) => {
                crate::output::error(&e);
                exit::ERRORS
            }
        }
    })
}
