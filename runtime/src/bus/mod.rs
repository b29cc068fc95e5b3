//! The event bus: every committed transition is published, typed. The
//! in-process bus is a tokio broadcast channel; Redis Streams implements
//! the same trait later.

use tokio::sync::broadcast;

use crate::events::Entry;

/// Publishes committed transitions to whoever listens.
pub trait Bus: Send + Sync {
    /// Called after the transition is committed, never before.
    fn publish(&self, entry: Entry);
    fn subscribe(&self) -> broadcast::Receiver<Entry>;
}

/// The embedded bus. Slow subscribers lose old events (they can read the
/// journal); publishing never blocks the scheduler.
pub struct InProcessBus {
    tx: broadcast::Sender<Entry>,
}

impl InProcessBus {
    pub fn new() -> InProcessBus {
        let (tx, _) = broadcast::channel(4096);
        InProcessBus { tx }
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
}
