//! The store: runs, their journal, the audit chain and idempotency records.
//!
//! The scheduler sees only [`Store`]; the embedded SQLite store lives in
//! [`sqlite`], and the shared PostgreSQL store in [`postgres`] implements
//! the same trait (one transaction per [`Batch`], the audit head read under
//! a row lock of the run).

pub mod fleet;
pub mod postgres;
pub mod sqlite;
mod postgres_batch;
mod postgres_fabric;
mod postgres_serve;
mod sqlite_fabric;
mod sqlite_serve;
pub mod writer;

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::audit::{Decision, Record};
use crate::events::{Entry, RunStatus, Transition};

/// A boxed future, so that the trait is object safe (`Arc<dyn Store>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(String),
    #[error("no run `{0}` in this store")]
    NoSuchRun(String),
    #[error("{0}")]
    Unsupported(String),
    /// An approval decision came after another one for the same gate: one
    /// decision per gate, checked and written in one transaction.
    #[error("cannot decide on step `{step}` of run `{run_id}`: it was already {verdict} by {by}; one decision per gate, this one was not recorded")]
    AlreadyDecided { run_id: String, step: String, verdict: String, by: String },
    /// `aosc cancel`/`pause`/`resume` of a fleet run in a state that does not allow it.
    #[error("cannot {action} run `{run_id}`: it is {status}")]
    ControlRefused { run_id: String, action: &'static str, status: String },
    /// An approval decision for a step that is not waiting at a gate.
    #[error("cannot decide on step `{step}` of run `{run_id}`: it is not waiting for approval")]
    NotWaiting { run_id: String, step: String },
}

/// Run control of a fleet run ([`Store::fleet_control`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetAction {
    /// The run ends `cancelled`; no worker takes its tasks again.
    Cancel,
    /// The run stops taking new tasks (the attempts in flight finish and
    /// are committed); it shows `cancelled` and paused until resumed.
    Pause,
    /// A paused run continues: its tasks are ready again.
    Resume,
}

impl FleetAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FleetAction::Cancel => "cancel",
            FleetAction::Pause => "pause",
            FleetAction::Resume => "resume",
        }
    }
}

/// Where one approval gate stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Requested and not decided yet.
    Waiting,
    /// Decided: `approved` or `denied`, and by whom.
    Decided { verdict: String, by: String },
    /// No approval was requested for the step.
    NotRequested,
}

/// The state of `step`'s gate after `transitions` (journal order). A
/// request after a decision (a new attempt of the step) opens it again.
pub fn gate_of<'a>(step: &str, transitions: impl IntoIterator<Item = &'a Transition>) -> Gate {
    let mut gate = Gate::NotRequested;
    for t in transitions {
        match t {
            Transition::ApprovalRequested { step: s, .. } if s == step => gate = Gate::Waiting,
            Transition::ApprovalGranted { step: s, by, .. } if s == step => gate = Gate::Decided { verdict: "approved".into(), by: by.clone() },
            Transition::ApprovalDenied { step: s, by, .. } if s == step => gate = Gate::Decided { verdict: "denied".into(), by: by.clone() },
            _ => {}
        }
    }
    gate
}

/// Refuses a decision on a gate that is not waiting (see [`gate_of`]).
pub fn check_gate(run_id: &str, step: &str, gate: Gate) -> StoreResult<()> {
    match gate {
        Gate::Waiting => Ok(()),
        Gate::Decided { verdict, by } => Err(StoreError::AlreadyDecided { run_id: run_id.into(), step: step.into(), verdict, by }),
        Gate::NotRequested => Err(StoreError::NotWaiting { run_id: run_id.into(), step: step.into() }),
    }
}

/// The journal kinds that move an approval gate.
pub const GATE_KINDS: [&str; 3] = ["approval.requested", "approval.granted", "approval.denied"];

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Db(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a new run row holds.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub run_id: String,
    pub parent: Option<String>,
    pub workflow: String,
    pub trust: String,
    pub inputs: Value,
    /// The checked program (IR as JSON text): resuming never needs the source.
    pub program: String,
    pub at_ms: u64,
}

/// A run as listed and shown.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub run_id: String,
    pub parent: Option<String>,
    pub workflow: String,
    pub status: RunStatus,
    pub started_at: String,
    pub updated_at: String,
    pub trust: String,
    pub inputs: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cost_usd: f64,
    pub audit_head: String,
    pub audit_count: u64,
}

/// Everything one scheduler tick commits at once: transitions, the
/// decisions behind them, and idempotency records of external effects.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub transitions: Vec<Transition>,
    pub decisions: Vec<Decision>,
    /// (idempotency key, step, output).
    pub idempotency: Vec<(String, String, Value)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.transitions.is_empty() && self.decisions.is_empty() && self.idempotency.is_empty()
    }
}

/// Who holds (or asks for) the lease on a run: a token unique to one
/// process's hold, and the process, for the message another process shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    pub token: String,
    pub pid: u32,
    pub host: String,
}

/// The answer to a lease request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease until it renews or releases it.
    Acquired,
    /// Another live process holds it; it expires at `expires_ms` unless renewed.
    Held { by: LeaseHolder, acquired_ms: u64, expires_ms: u64 },
}

/// Durable state of runs. Every method is atomic: a [`Batch`] is committed
/// whole or not at all.
pub trait Store: Send + Sync {
    fn create_run<'a>(&'a self, run: NewRun) -> BoxFuture<'a, StoreResult<()>>;
    fn commit<'a>(&'a self, run_id: &'a str, batch: Batch) -> BoxFuture<'a, StoreResult<()>>;
    /// Commits batches (of one run or several) in order; a store that can
    /// should do it in one transaction (group commit, see [`writer`]).
    /// Either way what is committed is always a prefix of `batches`.
    fn commit_group<'a>(&'a self, batches: &'a [(String, Batch)]) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            for (run_id, batch) in batches {
                self.commit(run_id, batch.clone()).await?;
            }
            Ok(())
        })
    }
    /// Commits `batch`, an approval decision for `step`, only if the step
    /// is waiting at its gate, checked in the same transaction as the write
    /// (so of concurrent decisions exactly one is recorded); otherwise
    /// [`StoreError::AlreadyDecided`] or [`StoreError::NotWaiting`].
    fn commit_decision<'a>(&'a self, run_id: &'a str, step: &'a str, batch: Batch) -> BoxFuture<'a, StoreResult<()>>;
    fn run<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<RunRow>>>;
    /// The program a run was started with, as IR JSON text (parsed straight
    /// into the IR by the runtime: a `serde_json::Value` of a large program
    /// costs several times its text in memory).
    fn program<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<String>>;
    /// All top-level runs, newest first.
    fn runs<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<RunRow>>>;
    fn journal<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Vec<Entry>>>;
    /// Journal entries after `after_id` (for polling by another process).
    fn journal_since<'a>(&'a self, run_id: &'a str, after_id: i64) -> BoxFuture<'a, StoreResult<Vec<(i64, Entry)>>>;
    fn audit<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Vec<Record>>>;
    fn idempotent_output<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<Value>>>;
    /// Total bytes of a run's journal data (for benchmarks).
    /// Takes the lease on `run_id` for `ttl_ms` unless another holder has
    /// it and it has not expired. A lease whose holder is on this host
    /// (`holder.host`) with a pid that `alive` says is gone is taken at once.
    fn acquire_lease<'a>(
        &'a self,
        run_id: &'a str,
        holder: &'a LeaseHolder,
        ttl_ms: u64,
        alive: fn(u32) -> bool,
    ) -> BoxFuture<'a, StoreResult<LeaseOutcome>>;
    /// Extends a held lease; `false` when the caller no longer holds it.
    fn renew_lease<'a>(&'a self, run_id: &'a str, token: &'a str, ttl_ms: u64) -> BoxFuture<'a, StoreResult<bool>>;
    /// Gives a held lease up (nothing happens when the caller does not hold it).
    fn release_lease<'a>(&'a self, run_id: &'a str, token: &'a str) -> BoxFuture<'a, StoreResult<()>>;
    /// The current unexpired holder of a run's lease, if any.
    fn lease<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<(LeaseHolder, u64)>>>;
    fn journal_bytes<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<u64>>;
    /// Stores (or replaces) a long-term memory entry (`memory.remember`)
    /// with its embedding and the name of the embedding that produced it
    /// (its dimension is the vector's length).
    fn memory_put<'a>(&'a self, key: &'a str, value: &'a Value, embedding_model: &'a str, embedding: &'a [f32]) -> BoxFuture<'a, StoreResult<()>> {
        let _ = (key, value, embedding_model, embedding);
        Box::pin(async { Err(StoreError::Db("this store has no long-term memory".into())) })
    }
    /// Every long-term memory entry, most recently written first.
    fn memory_all<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<MemoryRow>>> {
        Box::pin(async { Err(StoreError::Db("this store has no long-term memory".into())) })
    }
    /// Adds an API token (`aosc token create`); a name already in use is refused.
    fn token_create<'a>(&'a self, token: TokenRow) -> BoxFuture<'a, StoreResult<()>> {
        let _ = token;
        Box::pin(async { Err(StoreError::Unsupported("this store keeps no API tokens".into())) })
    }
    /// Every API token, revoked ones included, by name.
    fn tokens<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<TokenRow>>> {
        Box::pin(async { Err(StoreError::Unsupported("this store keeps no API tokens".into())) })
    }
    /// Marks a token revoked; false when no live token has that name.
    fn token_revoke<'a>(&'a self, name: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        let _ = name;
        Box::pin(async { Err(StoreError::Unsupported("this store keeps no API tokens".into())) })
    }
    /// The live (not revoked) token whose SHA-256 is `hash`.
    fn token_by_hash<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, StoreResult<Option<TokenRow>>> {
        let _ = hash;
        Box::pin(async { Err(StoreError::Unsupported("this store keeps no API tokens".into())) })
    }
    /// Records that the cron tick `tick_ms` of `trigger_key` fires; false when
    /// it was recorded already (by this or an earlier process).
    fn claim_tick<'a>(&'a self, trigger_key: &'a str, tick_ms: i64) -> BoxFuture<'a, StoreResult<bool>> {
        let _ = (trigger_key, tick_ms);
        Box::pin(async { Err(StoreError::Unsupported("this store records no cron ticks".into())) })
    }
    /// The latest tick recorded for `trigger_key`.
    fn last_tick<'a>(&'a self, trigger_key: &'a str) -> BoxFuture<'a, StoreResult<Option<i64>>> {
        let _ = trigger_key;
        Box::pin(async { Err(StoreError::Unsupported("this store records no cron ticks".into())) })
    }
    /// Asks whichever process executes `run_id` to stop it (`aosc cancel`).
    fn request_control<'a>(&'a self, run_id: &'a str, action: &'a str, by: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let _ = (run_id, action, by);
        Box::pin(async { Err(StoreError::Unsupported("this store takes no control requests".into())) })
    }
    /// Removes and returns the pending control requests: (run id, action, by).
    fn take_control<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<(String, String, String)>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Records that a user paused `run_id` (`Some(by)`), or clears it
    /// (`None`: resumed or cancelled). A pause outlives the process.
    fn set_paused<'a>(&'a self, run_id: &'a str, by: Option<&'a str>) -> BoxFuture<'a, StoreResult<()>> {
        let _ = (run_id, by);
        Box::pin(async { Err(StoreError::Unsupported("this store keeps no pause state".into())) })
    }
    /// Who paused `run_id`, when it is paused.
    fn paused<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        let _ = run_id;
        Box::pin(async { Ok(None) })
    }
    /// Long-term memory entries written at or after `since_ms` (all of them
    /// with `i64::MIN`): how the in-process recall index follows the store.
    fn memory_since<'a>(&'a self, since_ms: i64) -> BoxFuture<'a, StoreResult<Vec<MemoryRow>>> {
        let _ = since_ms;
        Box::pin(async { Err(StoreError::Db("this store has no long-term memory".into())) })
    }
    /// Journal entries of every run after `after_id`, at most `limit`, in id
    /// order (`aosc events` without a run and without Redis).
    fn events_since<'a>(&'a self, after_id: i64, limit: u32) -> BoxFuture<'a, StoreResult<Vec<(i64, Entry)>>> {
        let _ = (after_id, limit);
        Box::pin(async { Err(StoreError::Unsupported("this store cannot list events across runs".into())) })
    }
    /// The id of the last journal entry of `run_id` published on the bus (0: none).
    fn bus_cursor<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<i64>> {
        let _ = run_id;
        Box::pin(async { Ok(0) })
    }
    /// Moves the publish cursor of `run_id` forward (never backward).
    fn set_bus_cursor<'a>(&'a self, run_id: &'a str, published_id: i64) -> BoxFuture<'a, StoreResult<()>> {
        let _ = (run_id, published_id);
        Box::pin(async { Err(StoreError::Unsupported("this store keeps no publish cursor".into())) })
    }
    /// Queues a created run for the fleet (`aosc run --detach`): `aosc
    /// worker` processes run it. Only a shared store can.
    fn fleet_queue<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let _ = run_id;
        Box::pin(async {
            Err(StoreError::Unsupported("queueing a run for `aosc worker`s needs the shared store: set AOS_DATABASE_URL=postgres://…".into()))
        })
    }
    /// Tells the fleet that a run may continue (a decision was journaled);
    /// nothing happens for a run the fleet does not run. Returns whether it
    /// is a fleet run.
    fn fleet_wake<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        let _ = run_id;
        Box::pin(async { Ok(false) })
    }
    /// Whether the fleet runs `run_id` (it was queued with `aosc run --detach`).
    fn fleet_queued<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        let _ = run_id;
        Box::pin(async { Ok(false) })
    }
    /// Cancels, pauses or resumes a run of the fleet (`aosc cancel`,
    /// `pause`, `resume`, the API), journaling it with an audit record that
    /// names `by`. `Ok(None)` when the fleet does not run it; else the
    /// tasks that became ready (to dispatch).
    fn fleet_control<'a>(&'a self, run_id: &'a str, action: FleetAction, by: &'a str) -> BoxFuture<'a, StoreResult<Option<Vec<crate::bus::dispatch::TaskRef>>>> {
        let _ = (run_id, action, by);
        Box::pin(async { Ok(None) })
    }
    /// Runs with journal entries past their publish cursor.
    fn unpublished_runs<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// The response-cache entry under `key` (its JSON text) when it is
    /// still live at `now_ms` (see [`crate::cache`]).
    fn cache_get<'a>(&'a self, key: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<Option<String>>>;
    /// Writes (or replaces) the entry under `key`, live until `expires_ms`;
    /// entries expired at `now_ms` are deleted on the way.
    fn cache_put<'a>(&'a self, key: &'a str, entry: &'a str, now_ms: u64, expires_ms: u64) -> BoxFuture<'a, StoreResult<()>>;
    /// Adds one call's outcome to its model's running sums.
    fn record_model_sample<'a>(&'a self, sample: &'a crate::stats::Sample, now_ms: u64) -> BoxFuture<'a, StoreResult<()>>;
    /// Every model's statistics, by key.
    fn model_stats<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<crate::stats::ModelStats>>>;
}

/// Now, in ms since the epoch, as the stores' BIGINT/INTEGER columns take it.
fn now_i64() -> i64 {
    i64::try_from(crate::ids::now_ms()).unwrap_or(i64::MAX)
}

/// The approver groups of a token, as both stores keep them (`a,b`).
fn split_groups(groups: &str) -> Vec<String> {
    groups.split(',').filter(|g| !g.is_empty()).map(str::to_string).collect()
}

/// An API token as stored: never the token itself, only its SHA-256.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRow {
    pub name: String,
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// `basic`, `trusted` or `admin`: the trust of the runs it starts.
    pub trust: String,
    /// The approver groups it belongs to.
    pub groups: Vec<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// One long-term memory entry.
#[derive(Clone, Debug)]
pub struct MemoryRow {
    pub key: String,
    pub value: Value,
    pub embedding: Vec<f32>,
    /// When it was last written (ms since the epoch).
    pub updated_at_ms: i64,
    /// The embedding that produced `embedding` (`local-trigram-256` for
    /// rows written before embeddings had names).
    pub embedding_model: String,
}

/// Opens the store that `AOS_DATABASE_URL` (or `AOS_HOME`) names.
pub async fn open(database_url: Option<&str>, home: &std::path::Path) -> StoreResult<std::sync::Arc<dyn Store>> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(std::sync::Arc::new(postgres::PostgresStore::open(url).await?))
        }
        Some(url) if url.starts_with("sqlite:") => {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            Ok(std::sync::Arc::new(sqlite::SqliteStore::open(std::path::Path::new(path)).await?))
        }
        Some(url) => Err(StoreError::Unsupported(format!(
            "AOS_DATABASE_URL `{url}`: expected a postgres:// or sqlite:// URL"
        ))),
        None => {
            std::fs::create_dir_all(home).map_err(|e| StoreError::Db(format!("cannot create AOS_HOME `{}`: {e}", home.display())))?;
            Ok(std::sync::Arc::new(sqlite::SqliteStore::open(&home.join("aos.db")).await?))
        }
    }
}
