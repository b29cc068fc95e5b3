//! Group commit: one writer task per executing run drains every batch
//! queued since its last commit into one transaction.
//!
//! The scheduler hands each tick's [`Batch`] to [`Writer::send`] and goes
//! on; the writer commits, in order, everything that is queued when it is
//! free, with [`Store::commit_group`]. What was sent is durable once
//! [`Writer::flush`] returns: the scheduler flushes before anything with an
//! external effect acts on a transition (an external tool, a workflow
//! call), before it reports how the run ended or paused, and when the
//! backlog grows past [`MAX_BACKLOG`]. A crash loses at most the batches
//! sent since the last flush that were not yet committed; those are always
//! a suffix (batches commit in order, each group in one transaction), so
//! the journal stays a prefix of the run, and what they describe is safe to
//! do again (pure or read steps, model calls).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Batch, Store, StoreError, StoreResult};
use crate::bus::Bus;
use crate::events::Entry;

/// Batches queued past which the sender waits for the writer (bounds
/// memory when the store is slower than the scheduler).
pub const MAX_BACKLOG: usize = 4096;

enum Msg {
    Batch(String, Batch),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// The sending side; dropping it lets the task commit what is queued and end.
pub struct Writer {
    tx: mpsc::UnboundedSender<Msg>,
    backlog: Arc<AtomicUsize>,
    failed: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the writer task (needs a tokio runtime). Committed
    /// transitions are published on `bus`, never before their commit.
    pub fn start(store: Arc<dyn Store>, bus: Arc<dyn Bus>) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(store, bus, rx, backlog.clone(), failed.clone()));
        Writer { tx, backlog, failed }
    }

    /// Queues a batch for the next group commit.
    pub fn send(&self, run_id: &str, batch: Batch) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.backlog.fetch_add(1, Ordering::Relaxed);
        self.tx.send(Msg::Batch(run_id.to_string(), batch)).map_err(|_| StoreError::Db("the store writer stopped".into()))
    }

    /// Whether a commit failed (the next [`Writer::flush`] says why).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Batches sent and not yet committed.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Waits until every batch sent before is committed; an error of any
    /// commit since the writer started is returned (and every later flush
    /// returns it too: the run must stop).
    pub async fn flush(&self) -> StoreResult<()> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Flush(tx)).map_err(|_| StoreError::Db("the store writer stopped".into()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Db(e)),
            Err(_) => Err(StoreError::Db("the store writer stopped".into())),
        }
    }
}

async fn run(store: Arc<dyn Store>, bus: Arc<dyn Bus>, mut rx: mpsc::UnboundedReceiver<Msg>, backlog: Arc<AtomicUsize>, failed_flag: Arc<AtomicBool>) {
    let mut failed: Option<String> = None;
    while let Some(first) = rx.recv().await {
        let mut group = Vec::new();
        let mut waiters = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Batch(run, b) => group.push((run, b)),
                Msg::Flush(w) => waiters.push(w),
            }
            next = rx.try_recv().ok();
        }
        let n = group.len();
        if failed.is_none() && !group.is_empty() {
            match store.commit_group(&group).await {
                Ok(()) => {
                    let at = crate::ids::now_ms();
                    for (run_id, batch) in group {
                        for transition in batch.transitions {
                            bus.publish(Entry { run_id: run_id.clone(), at_ms: at, transition });
                        }
                    }
                }
                Err(e) => {
                    failed = Some(e.to_string());
                    failed_flag.store(true, Ordering::Relaxed);
                }
            }
        }
        backlog.fetch_sub(n, Ordering::Relaxed);
        for w in waiters {
            let _ = w.send(match &failed {
                None => Ok(()),
                Some(e) => Err(e.clone()),
            });
        }
    }
}
