//! Executes runs in the background, at most `--max-runs` at once, and stops
//! them on request. Cancel and pause use the run loop's interrupt flag
//! ([`aos_runtime::RunOptions::interrupt`]): the loop aborts running
//! attempts and journals `run.interrupted`, so the hook the run core needs
//! is that one flag.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aos_runtime::events::RunStatus;
use aos_runtime::{RunOptions, RunReport, Runtime};
use tokio::sync::{watch, Mutex};
use tracing::Instrument;

use super::slots::Slots;
use super::App;

/// Why a live run was stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stop {
    Cancel { by: String },
    Pause { by: String },
}

pub struct Runner {
    rt: Runtime,
    slots: Slots,
    live: Mutex<HashMap<String, watch::Sender<bool>>>,
    stops: Mutex<HashMap<String, Stop>>,
}

impl Runner {
    pub fn new(rt: Runtime, max_runs: usize) -> Runner {
        Runner {
            rt,
            slots: Slots::new(max_runs),
            live: Mutex::new(HashMap::new()),
            stops: Mutex::new(HashMap::new()),
        }
    }

    /// Runs waiting for a free slot.
    pub fn queue_depth(&self) -> usize {
        self.slots.waiting()
    }

    /// Runs executing now.
    pub async fn live_count(&self) -> usize {
        self.live.lock().await.len()
    }

    /// Whether a user paused `run_id` (kept in the store, so a pause
    /// outlives a restart of the server).
    pub async fn is_paused(&self, run_id: &str) -> bool {
        match self.rt.store.paused(run_id).await {
            Ok(p) => p.is_some(),
            Err(e) => {
                tracing::warn!(run_id, error = %e, "cannot read the pause state");
                false
            }
        }
    }

    async fn set_paused(&self, run_id: &str, by: Option<&str>) {
        if let Err(e) = self.rt.store.set_paused(run_id, by).await {
            tracing::error!(run_id, error = %e, "cannot record the pause state");
        }
    }

    /// The `priority:` of a stored run's workflow (0 when it cannot be read).
    pub async fn priority_of(&self, run_id: &str) -> u32 {
        let (Ok(Some(row)), Ok(text)) = (self.rt.store.run(run_id).await, self.rt.store.program(run_id).await) else {
            return 0;
        };
        serde_json::from_str::<aos_compiler::ir::Program>(&text)
            .ok()
            .and_then(|p| p.workflows.get(&row.workflow).map(|w| w.priority))
            .unwrap_or(0)
    }

    /// Executes (or continues) a run in the background, when a slot is
    /// free: queued runs of a higher `priority` go first.
    pub fn start(self: &Arc<Self>, run_id: String, priority: u32) {
        let me = self.clone();
        let span = tracing::info_span!("run", run_id = %run_id);
        tokio::spawn(
            async move {
                let _slot = me.slots.acquire(priority).await;
                let (tx, rx) = watch::channel(false);
                me.live.lock().await.insert(run_id.clone(), tx);
                me.set_paused(&run_id, None).await;
                let result = me.rt.execute(&run_id, RunOptions { wait: false, interrupt: Some(rx) }).await;
                me.live.lock().await.remove(&run_id);
                let stop = me.stops.lock().await.remove(&run_id);
                match (&result, stop) {
                    (Ok(r), Some(Stop::Cancel { by })) if r.status == RunStatus::Cancelled => {
                        if let Err(e) = me.rt.note_cancel(&run_id, &by).await {
                            tracing::error!(error = %e, "cannot record the cancel in the audit log");
                        }
                    }
                    (Ok(r), Some(Stop::Pause { by })) if r.status == RunStatus::Cancelled => {
                        me.set_paused(&run_id, Some(&by)).await;
                    }
                    _ => {}
                }
                match result {
                    Ok(RunReport { status, cost_usd, error, .. }) => {
                        tracing::info!(status = status.as_str(), cost_usd, error = error.as_deref().unwrap_or(""), "run returned")
                    }
                    Err(e) => tracing::error!(error = %e, "run could not execute"),
                }
            }
            .instrument(span),
        );
    }

    /// Cancels a run: a live one through its interrupt flag, any other by
    /// journaling the cancel (refused when the run has ended).
    pub async fn cancel(&self, run_id: &str, by: &str) -> Result<(), aos_runtime::RuntimeError> {
        if self.signal(run_id, Stop::Cancel { by: by.to_string() }).await {
            return Ok(());
        }
        self.set_paused(run_id, None).await;
        self.rt.cancel_idle(run_id, by).await
    }

    /// Pauses a live run (it stops cleanly and can be resumed); false when
    /// the run is not executing here.
    pub async fn pause(&self, run_id: &str, by: &str) -> bool {
        self.signal(run_id, Stop::Pause { by: by.to_string() }).await
    }

    async fn signal(&self, run_id: &str, why: Stop) -> bool {
        let live = self.live.lock().await;
        match live.get(run_id) {
            Some(tx) => {
                self.stops.lock().await.insert(run_id.to_string(), why);
                let _ = tx.send(true);
                true
            }
            None => false,
        }
    }

    /// Waits until `run_id` is no longer executing here (bounded).
    pub async fn settle(&self, run_id: &str) {
        for _ in 0..200 {
            if !self.live.lock().await.contains_key(run_id) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops every live run cleanly (server shutdown): they stay resumable.
    pub async fn interrupt_all(&self) {
        let ids: Vec<String> = {
            let live = self.live.lock().await;
            for tx in live.values() {
                let _ = tx.send(true);
            }
            live.keys().cloned().collect()
        };
        for id in ids {
            self.settle(&id).await;
        }
    }
}

/// Picks up control requests other processes wrote to the store
/// (`aosc cancel RUN_ID`) and applies them to the runs executing here.
pub fn spawn_control_poller(app: Arc<App>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let requests = match app.rt.store.take_control().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read control requests");
                    continue;
                }
            };
            for (run_id, action, by) in requests {
                let done = match action.as_str() {
                    "cancel" => app.runner.cancel(&run_id, &by).await.map_err(|e| e.to_string()),
                    "pause" => {
                        app.runner.pause(&run_id, &by).await;
                        Ok(())
                    }
                    other => Err(format!("unknown control action `{other}`")),
                };
                if let Err(e) = done {
                    tracing::warn!(run_id = %run_id, action = %action, error = %e, "control request not applied");
                }
            }
        }
    });
}
