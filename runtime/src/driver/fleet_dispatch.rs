//! The worker's side of Redis Streams dispatch ([`crate::bus::dispatch`]).
//!
//! With a [`Stream`], a worker keeps the tasks a commit makes ready that it
//! has room for (claimed in the same commit, as without Redis); the others
//! are committed free in the task table, then added to the task stream, and
//! whichever worker reads one claims its row (so the work spreads over the
//! fleet). Each turn the worker claims the rows of
//! the entries it was delivered (entries whose row is taken or gone are
//! acknowledged at once), every half lease takes over entries idle past the
//! lease (XAUTOCLAIM: a dead worker's), and every [`SWEEP_MS`] sweeps the
//! task table for free tasks older than [`GRACE_MS`] (entries Redis lost,
//! retry delays that came due) and for claims expired for a whole lease
//! (what XAUTOCLAIM could not take over). An entry is acknowledged after
//! the commit that settles its task. While Redis is unreachable the worker
//! says so once and claims from the task table as without Redis until
//! Redis answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Delivered, Dispatch, DispatchError, TaskKey, Worker};
use crate::bus::dispatch::TaskRef;
use crate::ids;
use crate::store::fleet::Claimed;
use crate::RuntimeError;

/// How long a read waits for an entry (XREADGROUP BLOCK).
const BLOCK_MS: u64 = 1_000;
/// How often the task table is swept beside the stream.
pub const SWEEP_MS: u64 = 500;
/// How long a free task waits for its stream entry before the sweep takes it.
const GRACE_MS: u64 = 500;
/// How long an idle worker with Redis dispatch sleeps between turns (a
/// delivery or a finished attempt wakes it sooner).
pub(super) const IDLE_MS: u64 = 200;
/// How often a worker tries Redis again while it is unreachable.
const RETRY_MS: u64 = 1_000;

type ReadResult = Result<Vec<Delivered>, DispatchError>;

/// A worker's Redis dispatch state.
pub(super) struct Stream {
    d: Arc<Dispatch>,
    /// The read in flight (a task of its own, so that a finished attempt
    /// never cancels a read whose entries Redis already delivered).
    pub(super) reading: Option<oneshot::Receiver<ReadResult>>,
    /// What the last read returned, to claim on the next turn.
    got: Option<ReadResult>,
    /// The entries of the tasks this worker claimed, acknowledged after the
    /// commit that settles them.
    held: HashMap<(String, TaskKey), Vec<String>>,
    /// Since when Redis is unreachable (the worker polls PostgreSQL then).
    down: Option<Instant>,
    last_try: Option<Instant>,
    last_sweep: Option<Instant>,
    last_autoclaim: Instant,
}

impl Stream {
    pub(super) fn new(d: Arc<Dispatch>) -> Stream {
        Stream {
            d,
            reading: None,
            got: None,
            held: HashMap::new(),
            down: None,
            last_try: None,
            last_sweep: None,
            last_autoclaim: Instant::now(),
        }
    }
}

fn due(last: Option<Instant>, every: Duration) -> bool {
    last.is_none_or(|t| t.elapsed() >= every)
}

impl Worker {
    /// No delivery waits to be claimed.
    pub(super) fn stream_idle(&self) -> bool {
        self.stream.as_ref().is_none_or(|s| s.got.as_ref().is_none_or(|g| g.as_ref().map_or(true, Vec::is_empty)))
    }

    pub(super) fn got_read(&mut self, got: Result<ReadResult, oneshot::error::RecvError>) {
        let got = got.unwrap_or_else(|_| Ok(Vec::new()));
        if got.is_ok() {
            self.redis_ok();
        }
        if let Some(s) = self.stream.as_mut() {
            s.reading = None;
            s.got = Some(got);
        }
    }

    fn redis_failed(&mut self, e: &DispatchError) {
        let Some(s) = self.stream.as_mut() else { return };
        s.last_try = Some(Instant::now());
        if s.down.is_none() {
            s.down = Some(Instant::now());
            (self.log)(&format!("Redis dispatch is unavailable ({e}); taking steps from PostgreSQL until it is back"));
        }
    }

    fn redis_ok(&mut self) {
        let Some(s) = self.stream.as_mut() else { return };
        if let Some(since) = s.down.take() {
            (self.log)(&format!("Redis dispatch is back after {:.1} s; taking steps from the task stream again", since.elapsed().as_secs_f64()));
        }
    }

    /// One turn of claiming with Redis dispatch: the delivered entries, the
    /// idle entries of dead workers, the sweep; then the next read.
    pub(super) async fn claim_from_stream(&mut self, free: usize) -> Result<Vec<Claimed>, RuntimeError> {
        let mut claims = Vec::new();
        let got = self.stream.as_mut().and_then(|s| s.got.take());
        match got {
            Some(Ok(entries)) => {
                self.redis_ok();
                let c = self.claim_entries(entries).await?;
                self.stats.from_stream += c.len() as u64;
                claims.extend(c);
            }
            Some(Err(e)) => self.redis_failed(&e),
            None => {}
        }
        let lease = Duration::from_millis(self.opts.lease_ms);
        let (d, down, sweep_due) = match self.stream.as_ref() {
            Some(s) => (s.d.clone(), s.down.is_some(), due(s.last_sweep, Duration::from_millis(SWEEP_MS))),
            None => return Ok(claims),
        };
        let autoclaim_due = self.stream.as_ref().is_some_and(|s| s.last_autoclaim.elapsed() >= lease / 2);
        if !down && autoclaim_due && claims.len() < free {
            if let Some(s) = self.stream.as_mut() {
                s.last_autoclaim = Instant::now();
            }
            match d.autoclaim(&self.me, lease + Duration::from_millis(GRACE_MS), free - claims.len()).await {
                Ok(entries) => {
                    let c = self.claim_entries(entries).await?;
                    self.stats.autoclaimed += c.len() as u64;
                    self.stats.from_stream += c.len() as u64;
                    claims.extend(c);
                }
                Err(e) => self.redis_failed(&e),
            }
        }
        let down = self.stream.as_ref().is_some_and(|s| s.down.is_some());
        if (down || sweep_due) && claims.len() < free {
            let now = ids::now_ms();
            let (free_before, expired_before) = if down { (now, now) } else { (now.saturating_sub(GRACE_MS), now.saturating_sub(self.opts.lease_ms)) };
            let c = self.pg.sweep_tasks(&self.me, free - claims.len(), self.lease_until(), free_before, expired_before).await?;
            self.stats.swept += c.len() as u64;
            claims.extend(c);
            if let Some(s) = self.stream.as_mut() {
                s.last_sweep = Some(Instant::now());
            }
        }
        self.want_read(free.saturating_sub(claims.len()));
        Ok(claims)
    }

    /// While Redis is down and every slot is busy: a read of one entry
    /// (at most one try every [`RETRY_MS`]) tells when it is back.
    pub(super) fn probe_redis(&mut self) {
        if self.stream.as_ref().is_some_and(|s| s.down.is_some()) {
            self.want_read(1);
        }
    }

    /// Starts a read for up to `n` entries unless one is in flight (while
    /// Redis is down, at most one try every [`RETRY_MS`]).
    fn want_read(&mut self, n: usize) {
        let me = self.me.clone();
        let Some(s) = self.stream.as_mut() else { return };
        if n == 0 || s.reading.is_some() || s.got.is_some() {
            return;
        }
        if s.down.is_some() && !due(s.last_try, Duration::from_millis(RETRY_MS)) {
            return;
        }
        let d = s.d.clone();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(d.read(&me, n, Duration::from_millis(BLOCK_MS)).await);
        });
        s.reading = Some(rx);
    }

    /// Claims the rows of delivered entries; the entries of rows not
    /// claimed (taken, held, gone: a duplicate or stale entry) and entries
    /// that are no task are acknowledged at once. When PostgreSQL fails the
    /// entries stay pending (another worker takes them over after the lease).
    async fn claim_entries(&mut self, entries: Vec<Delivered>) -> Result<Vec<Claimed>, RuntimeError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_key: HashMap<TaskRef, Vec<String>> = HashMap::new();
        let mut junk = Vec::new();
        for e in entries {
            match e.task {
                Some(t) => by_key.entry(t).or_default().push(e.id),
                None => junk.push(e.id),
            }
        }
        let keys: Vec<TaskRef> = by_key.keys().cloned().collect();
        let claimed = self.pg.claim_keys(&self.me, &keys, self.lease_until()).await?;
        if let Some(s) = self.stream.as_mut() {
            for c in &claimed {
                let k = TaskRef { run_id: c.run_id.clone(), step: c.step, item: c.item };
                if let Some(ids) = by_key.remove(&k) {
                    s.held.entry((c.run_id.clone(), (c.step, c.item))).or_default().extend(ids);
                }
            }
        }
        junk.extend(by_key.into_values().flatten());
        self.ack(junk);
        Ok(claimed)
    }

    fn ack(&self, ids: Vec<String>) {
        let Some(s) = self.stream.as_ref() else { return };
        if ids.is_empty() {
            return;
        }
        let d = s.d.clone();
        // A lost ack leaves the entry pending: taken over after the lease,
        // it finds its row gone and is acknowledged then.
        tokio::spawn(async move {
            let _ = d.ack(&ids).await;
        });
    }

    /// Acknowledges the entries of tasks a commit settled.
    pub(super) fn ack_settled(&mut self, run_id: &str, keys: &[(TaskKey, u32)]) {
        let Some(s) = self.stream.as_mut() else { return };
        let mut ids = Vec::new();
        for (k, _) in keys {
            if let Some(e) = s.held.remove(&(run_id.to_string(), *k)) {
                ids.extend(e);
            }
        }
        self.ack(ids);
    }

    /// Adds the tasks a commit made ready to the stream (after the commit).
    pub(super) fn add_ready(&self, ready: Vec<TaskRef>) {
        let Some(s) = self.stream.as_ref() else { return };
        if ready.is_empty() || s.down.is_some() {
            return;
        }
        let d = s.d.clone();
        // A lost entry is found by the sweep after GRACE_MS.
        tokio::spawn(async move {
            let _ = d.add(&ready).await;
        });
    }

    /// The heartbeat: the entries held stay owned (their idle time restarts).
    pub(super) fn touch_entries(&self) {
        let Some(s) = self.stream.as_ref() else { return };
        let ids: Vec<String> = s.held.values().flatten().cloned().collect();
        if ids.is_empty() || s.down.is_some() {
            return;
        }
        let d = s.d.clone();
        let me = self.me.clone();
        tokio::spawn(async move {
            let _ = d.touch(&me, &ids).await;
        });
    }

    /// At exit: waits for the read in flight and acknowledges what it and
    /// earlier reads delivered unclaimed, and the entries of claims given
    /// back (their rows are free in the task table, where the sweep finds them).
    pub(super) async fn finish_stream(&mut self) {
        let Some(s) = self.stream.as_mut() else { return };
        let mut ids: Vec<String> = s.held.drain().flat_map(|(_, v)| v).collect();
        let mut answered = false;
        if let Some(r) = s.reading.take()
            && let Ok(Ok(Ok(entries))) = tokio::time::timeout(Duration::from_millis(BLOCK_MS + 2_000), r).await
        {
            answered = true;
            ids.extend(entries.into_iter().map(|e| e.id));
        }
        if let Some(Ok(entries)) = s.got.take() {
            ids.extend(entries.into_iter().map(|e| e.id));
        }
        if !ids.is_empty() {
            let _ = s.d.ack(&ids).await;
        }
        if answered {
            self.redis_ok();
        }
    }
}
