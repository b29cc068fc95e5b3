//! The store: runs, their journal, the audit chain and idempotency records.
//!
//! The scheduler sees only [`Store`]; the embedded SQLite store lives in
//! [`sqlite`], and a PostgreSQL store implements the same trait (one
//! transaction per [`Batch`], the audit head read under a row lock).

pub mod sqlite;
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
}

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
    /// Stores (or replaces) a long-term memory entry (`memory.remember`).
    fn memory_put<'a>(&'a self, key: &'a str, value: &'a Value, embedding: &'a [f32]) -> BoxFuture<'a, StoreResult<()>> {
        let _ = (key, value, embedding);
        Box::pin(async { Err(StoreError::Db("this store has no long-term memory".into())) })
    }
    /// Every long-term memory entry, most recently written first.
    fn memory_all<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<MemoryRow>>> {
        Box::pin(async { Err(StoreError::Db("this store has no long-term memory".into())) })
    }
}

/// One long-term memory entry.
#[derive(Clone, Debug)]
pub struct MemoryRow {
    pub key: String,
    pub value: Value,
    pub embedding: Vec<f32>,
}

/// Opens the store that `AOS_DATABASE_URL` (or `AOS_HOME`) names.
pub async fn open(database_url: Option<&str>, home: &std::path::Path) -> StoreResult<std::sync::Arc<dyn Store>> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Err(StoreError::Unsupported(
            "AOS_DATABASE_URL: PostgreSQL is not supported yet by this build; unset it to use the embedded SQLite store, or give a sqlite:// URL".into(),
        )),
        Some(url) if url.starts_with("sqlite:") => {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            Ok(std::sync::Arc::new(sqlite::SqliteStore::open(std::path::Path::new(path)).await?))
        }
        Some(url) => Err(StoreError::Unsupported(format!(
            "AOS_DATABASE_URL `{url}`: expected a sqlite:// URL (postgres:// is not supported yet)"
        ))),
        None => {
            std::fs::create_dir_all(home).map_err(|e| StoreError::Db(format!("cannot create AOS_HOME `{}`: {e}", home.display())))?;
            Ok(std::sync::Arc::new(sqlite::SqliteStore::open(&home.join("aos.db")).await?))
        }
    }
}
