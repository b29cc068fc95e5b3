//! The server's run slots (`--max-runs`): a queued run of a higher
//! `priority:` takes the next free slot first; equal priorities go in
//! arrival order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

struct Waiter {
    priority: u32,
    seq: Reverse<u64>,
    wake: oneshot::Sender<Slot>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.seq) == (other.priority, other.seq)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.priority, self.seq).cmp(&(other.priority, other.seq))
    }
}

struct Inner {
    free: usize,
    next_seq: u64,
    waiting: BinaryHeap<Waiter>,
}

/// A fixed number of slots handed out by priority.
#[derive(Clone)]
pub struct Slots(Arc<Mutex<Inner>>);

/// A held slot; dropping it hands the slot to the best waiter.
pub struct Slot(Option<Arc<Mutex<Inner>>>);

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding this lock cannot leave the counts half-updated
    // (every update is a single statement), so a poisoned lock is usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots(Arc::new(Mutex::new(Inner { free: n.max(1), next_seq: 0, waiting: BinaryHeap::new() })))
    }

    /// Waits for a slot.
    pub async fn acquire(&self, priority: u32) -> Slot {
        let rx = {
            let mut inner = lock(&self.0);
            if inner.free > 0 && inner.waiting.is_empty() {
                inner.free -= 1;
                return Slot(Some(self.0.clone()));
            }
            let (tx, rx) = oneshot::channel();
            let seq = Reverse(inner.next_seq);
            inner.next_seq += 1;
            inner.waiting.push(Waiter { priority, seq, wake: tx });
            rx
        };
        match rx.await {
            Ok(slot) => slot,
            // The sender is only dropped with the `Slots` itself.
            Err(_) => Slot(None),
        }
    }

    /// Runs waiting for a slot.
    pub fn waiting(&self) -> usize {
        lock(&self.0).waiting.len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(shared) = self.0.take() else { return };
        let mut inner = lock(&shared);
        while let Some(w) = inner.waiting.pop() {
            // Hand the slot over; a waiter that gave up returns it here.
            match w.wake.send(Slot(Some(shared.clone()))) {
                Ok(()) => return,
                Err(mut back) => back.0 = None,
            }
        }
        inner.free += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn higher_priority_takes_the_next_free_slot_and_ties_keep_arrival_order() {
        let slots = Slots::new(1);
        let held = slots.acquire(0).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, prio) in [("low", 1), ("high-a", 10), ("mid", 5), ("high-b", 10)] {
            let (s, o) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = s.acquire(prio).await;
                o.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            // Arrival order is the order of these calls.
            while slots.waiting() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec!["high-a", "high-b", "mid", "low"]);
        // Every slot came back.
        let _a = slots.acquire(0).await;
        assert_eq!(slots.waiting(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_does_not_keep_the_slot() {
        let slots = Slots::new(1);
        let held = slots.acquire(0).await;
        let s = slots.clone();
        let gave_up = tokio::spawn(async move { s.acquire(9).await });
        while slots.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        gave_up.abort();
        let _ = gave_up.await;
        drop(held);
        tokio::time::timeout(Duration::from_secs(2), slots.acquire(0)).await.expect("the slot came back");
    }
}
