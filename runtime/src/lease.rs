//! The lease on a run: one process at a time continues a run.
//!
//! [`Runtime::execute`](crate::Runtime::execute) takes the lease on the
//! root run before it replays anything, renews it every third of its time
//! to live while the run executes (heartbeat), and gives it up when it
//! returns. Another process asking for the lease meanwhile is refused with
//! [`RuntimeError::Leased`], which names the holder (pid and host). A lease
//! left by a killed process expires after its time to live, or at once when
//! the holder was on this host and its pid no longer exists.

use std::sync::Arc;
use std::time::Duration;

use crate::ids::{new_id, now_ms};
use crate::store::{LeaseHolder, LeaseOutcome, Store};
use crate::RuntimeError;

/// The lease's time to live when `AOS_LEASE_MS` is not set.
pub const DEFAULT_LEASE_MS: u64 = 15_000;

/// `AOS_LEASE_MS`, else [`DEFAULT_LEASE_MS`] (at least 300 ms).
pub fn lease_ms() -> u64 {
    std::env::var("AOS_LEASE_MS").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(DEFAULT_LEASE_MS).max(300)
}

/// This machine's host name (as `uname -n` prints it).
pub fn host() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// Whether a process with this pid exists on this host.
pub fn pid_alive(pid: u32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else { return false };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        // It exists but belongs to someone else.
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Who this process is, with a fresh token for one hold.
pub fn me() -> LeaseHolder {
    LeaseHolder { token: new_id(), pid: std::process::id(), host: host() }
}

/// A held lease; the heartbeat stops when it is released or dropped.
pub struct Lease {
    store: Arc<dyn Store>,
    run_id: String,
    token: String,
    heartbeat: tokio::task::JoinHandle<()>,
    lost: tokio::sync::watch::Receiver<bool>,
}

impl Lease {
    /// Takes the lease on `run_id` (a root run) or says who holds it.
    pub async fn acquire(store: Arc<dyn Store>, run_id: &str) -> Result<Lease, RuntimeError> {
        let ttl = lease_ms();
        let holder = me();
        match store.acquire_lease(run_id, &holder, ttl, pid_alive).await? {
            LeaseOutcome::Held { by, acquired_ms, expires_ms } => {
                let now = now_ms();
                Err(RuntimeError::Leased {
                    run_id: run_id.to_string(),
                    pid: by.pid,
                    host: by.host,
                    held_for_s: now.saturating_sub(acquired_ms) / 1000,
                    expires_in_s: expires_ms.saturating_sub(now).div_ceil(1000),
                })
            }
            LeaseOutcome::Acquired => {
                let (tx, lost) = tokio::sync::watch::channel(false);
                let beat_store = store.clone();
                let beat_run = run_id.to_string();
                let token = holder.token.clone();
                let heartbeat = tokio::spawn(async move {
                    let every = Duration::from_millis(ttl / 3);
                    loop {
                        tokio::time::sleep(every).await;
                        match beat_store.renew_lease(&beat_run, &token, ttl).await {
                            Ok(true) => {}
                            Ok(false) => {
                                let _ = tx.send(true);
                                return;
                            }
                            // A busy store: try again at the next beat; the
                            // lease lasts three beats.
                            Err(_) => {}
                        }
                    }
                });
                Ok(Lease { store, run_id: run_id.to_string(), token: holder.token, heartbeat, lost })
            }
        }
    }

    /// Turns true if another process took the lease (this one stalled past
    /// its time to live).
    pub fn lost(&self) -> tokio::sync::watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Stops the heartbeat and gives the lease up.
    pub async fn release(self) {
        self.heartbeat.abort();
        let _ = self.store.release_lease(&self.run_id, &self.token).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}
