//! The event bus: every committed transition is published, typed. The
//! in-process bus is a tokio broadcast channel; [`redis::RedisBus`] adds
//! every run's journal to Redis Streams (`AOS_REDIS_URL`).
//!
//! Streamed answers travel beside the transitions as [`Delta`]s: published
//! as they arrive, never journaled ([`live`] puts them in order between a
//! run's transitions for readers).

pub mod dispatch;
pub mod live;
pub mod redis;

use std::time::Duration;

use tokio::sync::broadcast;

use crate::events::Entry;
use crate::fabric::stream::Delta;
use crate::store::BoxFuture;

/// Publishes committed transitions to whoever listens.
pub trait Bus: Send + Sync {
    /// Called after the transition is committed, never before.
    fn publish(&self, entry: Entry);
    fn subscribe(&self) -> broadcast::Receiver<Entry>;
    /// Publishes a piece of a streamed answer (not journaled; a slow or
    /// absent subscriber loses it, never the run).
    fn publish_delta(&self, delta: Delta);
    fn subscribe_deltas(&self) -> broadcast::Receiver<Delta>;
    /// Says that `run_id`'s journal grew by a commit made without
    /// [`Bus::publish`] (an approval recorded by another command).
    fn notify(&self, run_id: &str) {
        let _ = run_id;
    }
    /// Says that fleet tasks became ready (their rows are committed): with
    /// Redis dispatch they are added to the task stream; without, the
    /// workers find them in the store.
    fn dispatch(&self, tasks: Vec<dispatch::TaskRef>) {
        let _ = tasks;
    }
    /// Waits (at most `timeout`) until everything published so far has left
    /// the process; `false` when it has not. The in-process bus has nothing
    /// to wait for.
    fn flush<'a>(&'a self, timeout: Duration) -> BoxFuture<'a, bool> {
        let _ = timeout;
        Box::pin(async { true })
    }
}

/// The embedded bus. Slow subscribers lose old events (they can read the
/// journal); publishing never blocks the scheduler.
pub struct InProcessBus {
    tx: broadcast::Sender<Entry>,
    deltas: broadcast::Sender<Delta>,
}

impl InProcessBus {
    pub fn new() -> InProcessBus {
        let (tx, _) = broadcast::channel(4096);
        let (deltas, _) = broadcast::channel(4096);
        InProcessBus { tx, deltas }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus for InProcessBus {
    fn publish(&self, entry: Entry) {
        // No subscriber is not an error.
        let _ = self.tx.send(entry);
    }

    fn subscribe(&self) -> broadcast::Receiver<Entry> {
        self.tx.subscribe()
    }

    fn publish_delta(&self, delta: Delta) {
        let _ = self.deltas.send(delta);
    }

    fn subscribe_deltas(&self) -> broadcast::Receiver<Delta> {
        self.deltas.subscribe()
    }
}
