//! The fleet driver (`aosc worker`): a second driver of the run core, on
//! the shared PostgreSQL store. Any worker advances any run; none is a
//! single point of failure.
//!
//! A worker claims tasks ([`crate::store::fleet`], `FOR UPDATE SKIP
//! LOCKED`, a lease per claim renewed by a heartbeat), runs attempts with
//! the embedded driver's own attempt code ([`super::attempt`]), and commits
//! their results in one transaction per run that locks the run's row, reads
//! what other workers journaled since, hands the results to
//! [`core::on_result`], asks [`core::decide`] what is next, journals the
//! batch, deletes the settled tasks and inserts the launched ones. The
//! journal stays the source of truth; the worker's in-memory [`RunState`]
//! of a run is a cache that it catches up from the journal under that lock
//! (and rebuilds from the whole journal when a commit fails).
//!
//! A task claimed again after its lease expired (its worker died) is not
//! run blindly: [`core::recover_unit`] decides, exactly as a resume would
//! (run it again when its effect allows, else hold it for an operator). A
//! result whose claim was lost meanwhile is dropped, so a unit succeeds
//! once in the journal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aos_compiler::ir::{Call, Program, Trust};
use serde_json::Value;
use tokio::task::JoinSet;

#[path = "fleet_dispatch.rs"]
mod dispatch;
#[path = "fleet_parked.rs"]
mod parked;
pub use dispatch::SWEEP_MS;

use super::{attempt, Shared};
use crate::bus::dispatch::{Delivered, Dispatch, DispatchError};
use crate::core::{self, AttemptResult, Launch, Outcome, Phase, RunCtx, RunState, Tick};
use crate::events::{Entry, RunStatus, Transition};
use crate::interp::Secrets;
use crate::store::fleet::{Claimed, NewTask, TaskKey, DECIDE};
use crate::store::postgres::PostgresStore;
use crate::{governance, ids, RunOptions, Runtime, RuntimeError};

/// How long a finished attempt's result waits for the other attempts in
/// flight before it is committed (group commit; see `Worker::linger`).
const LINGER_MS: u64 = 2;

/// How a worker works.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Attempts in flight at once in this process.
    pub concurrency: usize,
    /// Exit when no task is ready (and nothing is in flight).
    pub once: bool,
    /// A claim's lease: a task held this long without a heartbeat is taken
    /// by another worker.
    pub lease_ms: u64,
    /// How often an idle worker looks for tasks.
    pub poll_ms: u64,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions { concurrency: 8, once: false, lease_ms: crate::lease::lease_ms(), poll_ms: 50 }
    }
}

/// What a worker did (printed when it stops).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Attempts run.
    pub attempts: u64,
    /// Transactions that advanced a run.
    pub commits: u64,
    /// Tasks taken over from a worker whose lease expired.
    pub reclaimed: u64,
    /// Results dropped because their claim was lost (another worker took over).
    pub dropped: u64,
    /// Tasks taken from the Redis task stream (XREADGROUP).
    pub from_stream: u64,
    /// Of those, entries taken over with XAUTOCLAIM (their worker died).
    pub autoclaimed: u64,
    /// Tasks found by the sweep of the task table (without Redis: all).
    pub swept: u64,
}

/// This worker's cache of one run.
struct RunCache {
    sh: Arc<Shared>,
    state: RunState,
    last_id: i64,
    /// The journal's last run-level word is `run.paused`.
    paused: bool,
    /// The workflow calls workflows (attempts may be parked at a sub-run's gate).
    calls: bool,
}

/// How a transition changes whether the run is paused.
fn pause_word(t: &Transition) -> Option<bool> {
    match t {
        Transition::RunPaused { .. } => Some(true),
        Transition::RunResumed => Some(false),
        _ => None,
    }
}

/// What waits to be committed for one run.
#[derive(Clone, Default)]
struct Pending {
    results: Vec<(TaskKey, AttemptResult)>,
    /// Attempt tasks claimed after another worker's lease expired.
    reclaims: Vec<(TaskKey, u32)>,
    decide: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.results.is_empty() && self.reclaims.is_empty() && !self.decide
    }
}

type Done = (String, TaskKey, AttemptResult);

/// One `aosc worker` process.
pub struct Worker {
    rt: Runtime,
    pg: Arc<PostgresStore>,
    me: String,
    opts: WorkerOptions,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    log: Box<dyn Fn(&str) + Send + Sync>,
    caches: HashMap<String, RunCache>,
    pending: HashMap<String, Pending>,
    /// Claimed attempt tasks not started yet (the store failed meanwhile).
    to_start: Vec<Claimed>,
    set: JoinSet<Done>,
    stats: WorkerStats,
    /// Redis Streams dispatch, when `AOS_REDIS_URL` is set.
    stream: Option<dispatch::Stream>,
}

fn key_of(l: &Launch) -> TaskKey {
    (i32::try_from(l.step).unwrap_or(i32::MAX), l.item.map_or(-1, |i| i32::try_from(i).unwrap_or(i32::MAX)))
}

fn unit_of(key: TaskKey) -> (usize, Option<u32>) {
    (usize::try_from(key.0).unwrap_or(usize::MAX), u32::try_from(key.1).ok())
}

/// Whether `attempt` of the unit is in flight in `state`.
fn in_flight(state: &RunState, key: TaskKey, attempt: u32) -> bool {
    let (i, item) = unit_of(key);
    state.steps.get(i).and_then(|s| s.units.get(&item)).is_some_and(|u| u.attempt == attempt && matches!(u.phase, Phase::InFlight { .. }))
}

/// Appends a later tick of the same commit.
fn merge(tick: &mut Tick, next: Tick) {
    tick.batch.transitions.extend(next.batch.transitions);
    tick.batch.decisions.extend(next.batch.decisions);
    tick.batch.idempotency.extend(next.batch.idempotency);
    tick.launches.extend(next.launches);
}

fn catch_up(c: &mut RunCache, entries: Vec<(i64, Entry)>) {
    let mut planned = false;
    for (id, e) in entries {
        if id <= c.last_id {
            continue;
        }
        planned |= matches!(e.transition, Transition::FanOutPlanned { .. });
        if let Some(p) = pause_word(&e.transition) {
            c.paused = p;
        }
        core::apply(&mut c.state, &e.transition);
        c.last_id = id;
    }
    if planned {
        c.state.reload_fan_items();
    }
}

impl Worker {
    /// A worker over `pg` (also `rt.store`); `log` receives its messages.
    pub fn new(rt: Runtime, pg: Arc<PostgresStore>, opts: WorkerOptions, log: Box<dyn Fn(&str) + Send + Sync>) -> Worker {
        let me = format!("{}:{}:{}", crate::lease::host(), std::process::id(), ids::new_id());
        Worker {
            rt,
            pg,
            me,
            opts,
            stop: None,
            log,
            caches: HashMap::new(),
            pending: HashMap::new(),
            to_start: Vec::new(),
            set: JoinSet::new(),
            stats: WorkerStats::default(),
            stream: None,
        }
    }

    /// Takes tasks from the Redis task stream (PostgreSQL stays the truth:
    /// every claim goes through the task row, and a sweep of the task table
    /// finds what the stream lost).
    pub fn with_dispatch(mut self, d: Arc<Dispatch>) -> Worker {
        self.stream = Some(dispatch::Stream::new(d));
        self
    }

    /// Stops claiming when the flag turns true; the attempts in flight
    /// finish and are committed first (drain).
    pub fn stop_on(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Worker {
        self.stop = Some(stop);
        self
    }

    /// Who this worker is in the task table (`HOST:PID:TOKEN`).
    pub fn id(&self) -> &str {
        &self.me
    }

    fn lease_until(&self) -> u64 {
        ids::now_ms() + self.opts.lease_ms
    }

    /// Works until stopped (or, with `once`, until no task is ready).
    pub async fn run(mut self) -> Result<WorkerStats, RuntimeError> {
        let mut backoff = Duration::from_millis(100);
        let mut down: Option<Instant> = None;
        let mut last_beat = Instant::now();
        let mut stopping = false;
        let concurrency = self.opts.concurrency.max(1);
        loop {
            if !stopping && self.stop.as_ref().is_some_and(|s| *s.borrow()) {
                stopping = true;
                (self.log)(&format!("stopping: draining {} attempt(s) in flight", self.set.len()));
            }
            while let Some(done) = self.set.try_join_next() {
                self.take(done);
            }
            if !self.pending.is_empty() {
                self.linger().await;
            }
            let res = self.cycle(stopping, &mut last_beat).await;
            let claimed = match res {
                Err(e) => {
                    if down.is_none() {
                        (self.log)(&format!("the store is unavailable ({e}); retrying with backoff"));
                        down = Some(Instant::now());
                    }
                    self.sleep_or_collect(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                Ok(n) => {
                    if let Some(since) = down.take() {
                        (self.log)(&format!("the store is back after {:.1} s; continuing", since.elapsed().as_secs_f64()));
                    }
                    backoff = Duration::from_millis(100);
                    n
                }
            };
            let idle = self.set.is_empty() && self.pending.is_empty() && self.to_start.is_empty();
            if stopping && idle {
                self.finish_stream().await;
                let _ = self.pg.release_claims(&self.me).await;
                return Ok(self.stats);
            }
            if self.opts.once && idle && claimed == 0 && self.stream_idle() {
                self.finish_stream().await;
                return Ok(self.stats);
            }
            if claimed > 0 && claimed >= concurrency.saturating_sub(self.set.len()) {
                continue;
            }
            let poll = Duration::from_millis(if self.stream.is_some() { dispatch::IDLE_MS } else { self.opts.poll_ms });
            self.sleep_or_collect(poll).await;
        }
    }

    /// One turn: start what waits, commit what waits, renew the claims,
    /// claim more. Returns how many tasks it claimed.
    async fn cycle(&mut self, stopping: bool, last_beat: &mut Instant) -> Result<usize, RuntimeError> {
        self.start_deferred().await?;
        self.commit_pending().await?;
        if last_beat.elapsed() >= Duration::from_millis(self.opts.lease_ms / 3) {
            self.pg.extend_claims(&self.me, self.lease_until()).await?;
            self.touch_entries();
            *last_beat = Instant::now();
        }
        let free = self.opts.concurrency.max(1).saturating_sub(self.set.len());
        if !stopping && free == 0 {
            // Redis down while every slot is busy: still find out when it is back.
            self.probe_redis();
        }
        if stopping || free == 0 {
            return Ok(0);
        }
        let claims = if self.stream.is_some() {
            self.claim_from_stream(free).await?
        } else {
            let c = self.pg.claim_tasks(&self.me, free, self.lease_until()).await?;
            self.stats.swept += c.len() as u64;
            c
        };
        let n = claims.len();
        self.start_claimed(claims).await?;
        self.commit_pending().await?;
        Ok(n)
    }

    /// Group commit: once a result waits to be committed, the attempts
    /// still in flight get [`LINGER_MS`] to finish, so that one transaction
    /// carries their results too (a commit holds the run's row lock, which
    /// every worker of the run queues for: fewer, larger commits go faster).
    async fn linger(&mut self) {
        let until = tokio::time::Instant::now() + Duration::from_millis(LINGER_MS);
        while !self.set.is_empty() {
            tokio::select! {
                done = self.set.join_next() => match done {
                    Some(done) => self.take(done),
                    None => break,
                },
                _ = tokio::time::sleep_until(until) => break,
            }
        }
    }

    /// Waits up to `d` for an attempt to finish (or a stop request).
    async fn sleep_or_collect(&mut self, d: Duration) {
        let stop = self.stop.clone();
        let stopped = async move {
            match stop {
                Some(mut s) => {
                    while !*s.borrow() {
                        if s.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        let reading = self.stream.as_mut().and_then(|s| s.reading.as_mut());
        let has_read = reading.is_some();
        let read = async move {
            match reading {
                Some(r) => r.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = self.set.join_next(), if !self.set.is_empty() => {
                if let Some(done) = done {
                    self.take(done);
                }
            }
            got = read, if has_read => self.got_read(got),
            _ = tokio::time::sleep(d) => {}
            _ = stopped => {}
        }
    }

    fn take(&mut self, done: Result<Done, tokio::task::JoinError>) {
        match done {
            Ok((run, key, r)) => self.pending.entry(run).or_default().results.push((key, r)),
            // A panicking attempt: its task's lease expires and another
            // worker decides about it as about a dead worker's.
            Err(e) => (self.log)(&format!("an attempt crashed: {e}")),
        }
    }

    /// Loads this worker's cache of a run (once), then catches it up with
    /// the journal.
    async fn load(&mut self, run_id: &str) -> Result<(), RuntimeError> {
        if !self.caches.contains_key(run_id) {
            let store = &self.rt.store;
            let row = store.run(run_id).await?.ok_or_else(|| RuntimeError::Store(crate::store::StoreError::NoSuchRun(run_id.into())))?;
            let program: Program = serde_json::from_str(&store.program(run_id).await?)
                .map_err(|e| RuntimeError::Internal(format!("the stored program of run `{run_id}` is unreadable: {e}")))?;
            crate::find_workflow(&program, &row.workflow)?;
            let program = Arc::new(program);
            let wf = crate::core::WorkflowRef::new(program.clone(), &row.workflow)
                .ok_or_else(|| RuntimeError::Internal(format!("no workflow `{}` in the program of run `{run_id}`", row.workflow)))?;
            let params: BTreeMap<String, Value> = serde_json::from_value(row.inputs.clone()).unwrap_or_default();
            let trust = governance::parse_trust(&row.trust).unwrap_or(Trust::Basic);
            let root = run_id.split('.').next().unwrap_or(run_id);
            let workspace = self.rt.home.join("runs").join(root).join("workspace");
            let _ = std::fs::create_dir_all(&workspace);
            let ctx = Arc::new(RunCtx { run_id: run_id.to_string(), program, wf, params, trust, secrets: Secrets::default() });
            let sh = Arc::new(Shared::new(self.rt.clone(), ctx.clone(), workspace, RunOptions::default()));
            let journal = store.journal_since(run_id, 0).await?;
            let mut state = RunState::new(ctx);
            core::replay(&mut state, journal.iter().map(|(_, e)| &e.transition));
            let last_id = journal.last().map_or(0, |(id, _)| *id);
            let paused = journal.iter().rev().find_map(|(_, e)| pause_word(&e.transition)).unwrap_or(false);
            let calls = state.ctx.wf.steps.iter().any(|s| matches!(s.call, Call::Workflow { .. }) || matches!(s.fallback, Some(Call::Workflow { .. })));
            self.caches.insert(run_id.to_string(), RunCache { sh, state, last_id, paused, calls });
            return Ok(());
        }
        let after = self.caches.get(run_id).map_or(0, |c| c.last_id);
        let entries = self.rt.store.journal_since(run_id, after).await?;
        if let Some(c) = self.caches.get_mut(run_id) {
            catch_up(c, entries);
        }
        Ok(())
    }

    async fn start_deferred(&mut self) -> Result<(), RuntimeError> {
        if self.to_start.is_empty() {
            return Ok(());
        }
        let claims = std::mem::take(&mut self.to_start);
        self.start_claimed(claims).await
    }

    /// Decide tasks and taken-over attempts wait for the commit; fresh
    /// attempt tasks start now.
    async fn start_claimed(&mut self, claims: Vec<Claimed>) -> Result<(), RuntimeError> {
        let mut claims = claims.into_iter();
        while let Some(c) = claims.next() {
            let key = (c.step, c.item);
            if c.step == DECIDE {
                self.pending.entry(c.run_id).or_default().decide = true;
                continue;
            }
            if c.prev.is_some() {
                self.stats.reclaimed += 1;
                self.pending.entry(c.run_id).or_default().reclaims.push((key, c.attempt));
                continue;
            }
            if let Err(e) = self.load(&c.run_id).await {
                // Start them when the store answers again (the claims hold).
                self.to_start.push(c);
                self.to_start.extend(claims);
                return Err(e);
            }
            let Some(cache) = self.caches.get(&c.run_id) else { continue };
            if !in_flight(&cache.state, key, c.attempt) {
                // Not what the journal says is running: let the commit settle it.
                self.pending.entry(c.run_id).or_default().reclaims.push((key, c.attempt));
                continue;
            }
            let (step, item) = unit_of(key);
            let l = Launch { step, item, attempt: c.attempt, fallback: c.fallback };
            self.spawn(&c.run_id, l);
        }
        Ok(())
    }

    fn spawn(&mut self, run_id: &str, l: Launch) {
        let Some(cache) = self.caches.get(run_id) else { return };
        let deps = cache.state.dep_values(l.step);
        let item_value = cache.state.item_value(l.step, l.item);
        let sh = cache.sh.clone();
        let run = run_id.to_string();
        let key = key_of(&l);
        self.stats.attempts += 1;
        self.set.spawn(async move { (run, key, attempt::run(sh, l, deps, item_value).await) });
    }

    /// Commits what waits, one transaction per run. On a failure the runs
    /// not committed keep their pending work (and rebuild their cache).
    async fn commit_pending(&mut self) -> Result<(), RuntimeError> {
        let runs: Vec<String> = self.pending.keys().cloned().collect();
        for run in runs {
            let Some(p) = self.pending.remove(&run) else { continue };
            if p.is_empty() {
                continue;
            }
            if let Err(e) = self.advance(&run, p.clone()).await {
                self.caches.remove(&run);
                let slot = self.pending.entry(run).or_default();
                slot.results.extend(p.results);
                slot.reclaims.extend(p.reclaims);
                slot.decide |= p.decide;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The transaction that advances one run.
    async fn advance(&mut self, run_id: &str, p: Pending) -> Result<(), RuntimeError> {
        if !self.caches.contains_key(run_id) {
            self.load(run_id).await?;
        }
        let mut tx = self.pg.lock_run(run_id).await?;
        let after = self.caches.get(run_id).map_or(0, |c| c.last_id);
        let mut keys: Vec<(TaskKey, u32)> = p.results.iter().map(|(k, r)| (*k, r.attempt)).collect();
        keys.extend(p.reclaims.iter().copied());
        if p.decide {
            keys.push(((DECIDE, -1), 0));
        }
        let (owned, entries) = tx.settle_and_catch_up(&self.me, &keys, after).await?;
        let owned: HashSet<TaskKey> = owned.into_iter().collect();
        if matches!(tx.status.as_str(), "succeeded" | "failed") || (tx.status == "cancelled" && !tx.held) {
            // Ended meanwhile (`aosc cancel`): its results are not wanted.
            self.stats.dropped += p.results.len() as u64;
            tx.clear_tasks().await?;
            tx.commit().await?;
            self.caches.remove(run_id);
            self.ack_settled(run_id, &keys);
            return Ok(());
        }
        let held = tx.held;
        let now = ids::now_ms();
        let free = self.opts.concurrency.max(1).saturating_sub(self.set.len());
        let lease_until = self.lease_until();
        let parked_before = if self.caches.get(run_id).is_some_and(|c| c.calls) { tx.parked().await? } else { Vec::new() };
        let Some(c) = self.caches.get_mut(run_id) else { return Ok(()) };
        catch_up(c, entries);
        c.state.set_now(now);
        parked::apply_parked(&mut c.state, &parked_before);
        let mut tick = Tick::default();
        let mut paused_now = Vec::new();
        for (key, r) in p.results {
            if owned.contains(&key) && in_flight(&c.state, key, r.attempt) {
                paused_now.extend(parked::parked_of(&c.state, key, &r));
                core::on_result(&mut c.state, &mut tick, r);
            } else {
                self.stats.dropped += 1;
            }
        }
        for (key, attempt) in p.reclaims {
            if owned.contains(&key) {
                let (i, item) = unit_of(key);
                core::recover_unit(&mut c.state, &mut tick, i, item, attempt);
            }
        }
        // A wake-up (a decision was journaled) looks at every parked attempt.
        let (waking, recheck) = if p.decide { (parked_before, Vec::new()) } else { (Vec::new(), parked_before) };
        parked::settle_parked(&mut tx, &mut c.state, &mut tick, paused_now, waking).await?;
        if c.state.finished().is_none() && !held {
            let (next, mut outcome) = core::decide(&mut c.state, now);
            merge(&mut tick, next);
            if matches!(outcome, Outcome::Waiting(_)) && !recheck.is_empty() {
                // About to pause at parked sub-runs: a decision journaled
                // there since (its wake-up not taken yet) is no pause.
                if parked::settle_parked(&mut tx, &mut c.state, &mut tick, Vec::new(), recheck).await? {
                    let (next, again) = core::decide(&mut c.state, now);
                    merge(&mut tick, next);
                    outcome = again;
                }
            }
            let paused = c.paused;
            match outcome {
                Outcome::Waiting(reasons) if !(paused && tick.batch.transitions.is_empty()) => core::pause(&mut c.state, &mut tick, &reasons),
                Outcome::Waiting(_) => {}
                _ if paused && !tick.batch.transitions.is_empty() => tick.batch.transitions.insert(0, Transition::RunResumed),
                _ => {}
            }
        }
        if tx.status == "queued" && c.state.finished().is_none() {
            let still_paused = c.paused && tick.batch.transitions.is_empty();
            tx.dequeue(if still_paused { RunStatus::WaitingApproval } else { RunStatus::Running }).await?;
        }
        let finished = c.state.finished().is_some();
        let mut mine = Vec::new();
        let mut ready = Vec::new();
        let mut tasks = Vec::with_capacity(tick.launches.len());
        if !finished {
            for l in &tick.launches {
                let (step, item) = key_of(l);
                // What this worker has room for it keeps (with Redis
                // dispatch too: only the rest goes through the stream).
                let take = mine.len() < free;
                if !take {
                    ready.push(crate::bus::dispatch::TaskRef { run_id: run_id.to_string(), step, item });
                }
                tasks.push(NewTask {
                    step,
                    item,
                    attempt: l.attempt,
                    fallback: l.fallback,
                    claimed_by: take.then(|| self.me.clone()),
                    visible_ms: if take { lease_until } else { now },
                });
                if take {
                    mine.push(*l);
                }
            }
        }
        if let Some(id) = tx.write_with_tasks(&tick.batch, &tasks).await? {
            c.last_id = id;
        }
        if let Some(p) = tick.batch.transitions.iter().rev().find_map(pause_word) {
            c.paused = p;
        }
        if finished {
            tx.clear_tasks().await?;
        } else if let Some(at) = c.state.next_timer() {
            tx.wake_at(at).await?;
        }
        tx.commit().await?;
        self.stats.commits += 1;
        self.ack_settled(run_id, &keys);
        self.add_ready(ready);
        for t in tick.batch.transitions {
            self.rt.bus.publish(Entry { run_id: run_id.to_string(), at_ms: now, transition: t });
        }
        for l in mine {
            self.spawn(run_id, l);
        }
        if finished {
            self.caches.remove(run_id);
        }
        Ok(())
    }
}
