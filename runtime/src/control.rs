//! Run control from outside the run loop (`aosc cancel`, the HTTP API).
//!
//! A run being executed is stopped through its [`crate::RunOptions::interrupt`]
//! flag: the loop aborts the running attempts and journals `run.interrupted`
//! (status `cancelled`). A run that no process executes (waiting at a gate,
//! or interrupted) is cancelled here by journaling the same transition. Either
//! way the audit log names who cancelled.

use serde_json::json;

use crate::audit::Decision;
use crate::events::{RunStatus, Transition};
use crate::store::{Batch, FleetAction, StoreError};
use crate::{Runtime, RuntimeError};

impl Runtime {
    /// Cancels a run that is not being executed: journals `run.interrupted`
    /// and an audit record naming `by`. A run that already ended is refused.
    pub async fn cancel_idle(&self, run_id: &str, by: &str) -> Result<(), RuntimeError> {
        let row = self.store.run(run_id).await?.ok_or_else(|| RuntimeError::Store(StoreError::NoSuchRun(run_id.into())))?;
        if matches!(row.status, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled) {
            return Err(RuntimeError::Usage(format!("run `{run_id}` has ended ({}); there is nothing to cancel", row.status.as_str())));
        }
        let d = Decision::new("cancel", None, json!({"by": by}));
        self.store.commit(run_id, Batch { transitions: vec![Transition::RunInterrupted], decisions: vec![d], ..Default::default() }).await?;
        Ok(())
    }

    /// Records in the audit log who cancelled a run that its loop stopped.
    pub async fn note_cancel(&self, run_id: &str, by: &str) -> Result<(), RuntimeError> {
        let d = Decision::new("cancel", None, json!({"by": by}));
        self.store.commit(run_id, Batch { decisions: vec![d], ..Default::default() }).await?;
        Ok(())
    }

    /// Cancels, pauses or resumes a run of the fleet (queued with `aosc run
    /// --detach`) in the shared store; the tasks that became ready are
    /// dispatched. `Ok(false)` when the fleet does not run it (the caller
    /// then controls it as an embedded run).
    pub async fn fleet_control(&self, run_id: &str, action: FleetAction, by: &str) -> Result<bool, RuntimeError> {
        let root = run_id.split('.').next().unwrap_or(run_id);
        match self.store.fleet_control(root, action, by).await? {
            Some(ready) => {
                self.bus.notify(root);
                self.bus.dispatch(ready);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
