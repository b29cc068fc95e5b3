//! `aosc cancel` and `aosc pause`: stop a run. A run waiting at a gate (or
//! interrupted) is cancelled here; a running one is asked to stop through
//! the store, and the `aosc serve` executing it stops it within a moment.

use aos_runtime::events::RunStatus;
use aos_runtime::store::FleetAction;
use aos_runtime::Runtime;

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

/// Controls a fleet run (`Some(exit status)`), or `None` when the fleet
/// does not run it.
async fn fleet(rt: &Runtime, run_id: &str, action: FleetAction, by: &str) -> Option<u8> {
    match rt.fleet_control(run_id, action, by).await {
        Ok(false) => None,
        Ok(true) => {
            let what = match action {
                FleetAction::Cancel => "cancelled; the workers take none of its steps again (steps in flight finish and their results are dropped)".to_string(),
                FleetAction::Pause => format!(
                    "paused: the workers take none of its steps (steps in flight finish and are committed); continue with `aosc resume {run_id}`"
                ),
                FleetAction::Resume => format!("resumed: the workers continue it (`aosc wait {run_id}`)"),
            };
            eprintln!("run {run_id}: {what} (by {by})");
            Some(exit::OK)
        }
        Err(e) => {
            crate::output::error(&e);
            Some(exit::ERRORS)
        }
    }
}

fn who(by: &Option<String>) -> String {
    by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".into())
}

/// `aosc resume` of a fleet run: the workers continue it.
pub async fn resume_fleet(rt: &Runtime, run_id: &str) -> Option<u8> {
    fleet(rt, run_id, FleetAction::Resume, &who(&None)).await
}

pub fn cancel(args: &CancelArgs) -> u8 {
    let by = who(&args.by);
    rtx::with_runtime(|rt| async move {
        if let Some(code) = fleet(&rt, &args.run_id, FleetAction::Cancel, &by).await {
            return code;
        }
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
        if let Some(code) = fleet(&rt, &args.run_id, FleetAction::Pause, &by).await {
            return code;
        }
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
