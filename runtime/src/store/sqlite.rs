//! The embedded store: one SQLite file in WAL mode. A batch is one
//! `BEGIN IMMEDIATE` transaction, so writers from other processes (an
//! `aosc approve` while a run waits) serialize cleanly.
//!
//! `synchronous = NORMAL` by default (`AOS_SYNC=full` for FULL): a commit
//! survives the process being killed at any instant (the WAL is in the OS
//! before COMMIT returns); only a power loss may lose the last commits,
//! never corrupt the file. Batches are group-committed: see
//! [`super::writer`].

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{Batch, BoxFuture, LeaseHolder, LeaseOutcome, MemoryRow, NewRun, RunRow, Store, StoreError, StoreResult, TokenRow};
use crate::audit::{hash_record, Record};
use crate::events::{Entry, RunStatus, Transition};
use crate::ids::{now_ms, rfc3339};

/// The SQLite store.
pub struct SqliteStore {
    pool: SqlitePool,
}

fn migrator() -> Migrator {
    Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("init"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0001_init.sql")),
            false,
        ), Migration::new(
            2,
            Cow::Borrowed("memory"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0002_memory.sql")),
            false,
        ), Migration::new(
            3,
            Cow::Borrowed("run_programs"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0003_run_programs.sql")),
            false,
        ), Migration::new(
            30,
            Cow::Borrowed("serve"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0030_serve.sql")),
            false,
        ), Migration::new(
            31,
            Cow::Borrowed("run_pauses"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0031_run_pauses.sql")),
            false,
        ), Migration::new(
            40,
            Cow::Borrowed("bus_cursor"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0040_bus_cursor.sql")),
            false,
        ), Migration::new(
            41,
            Cow::Borrowed("memory_updated"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0041_memory_updated.sql")),
            false,
        ), Migration::new(
            50,
            Cow::Borrowed("run_leases"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0050_run_leases.sql")),
            false,
        ), Migration::new(
            60,
            Cow::Borrowed("memory_embedding_model"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0060_memory_embedding_model.sql")),
            false,
        ), Migration::new(
            80,
            Cow::Borrowed("response_cache"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0080_response_cache.sql")),
            false,
        ), Migration::new(
            81,
            Cow::Borrowed("model_stats"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("../../migrations/sqlite/0081_model_stats.sql")),
            false,
        )]),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// `AOS_SYNC`: `normal` (the default) or `full`. NORMAL in WAL mode: a
/// commit survives the process being killed (`kill -9`) at any instant; a
/// power loss or OS crash may lose the last commits (never corrupt the
/// file). FULL also syncs the WAL on every commit, so a power loss loses
/// nothing committed, at the price of an fsync per commit.
fn sync_mode() -> StoreResult<SqliteSynchronous> {
    match std::env::var("AOS_SYNC").ok().as_deref().map(str::trim) {
        None | Some("") => Ok(SqliteSynchronous::Normal),
        Some(v) if v.eq_ignore_ascii_case("normal") => Ok(SqliteSynchronous::Normal),
        Some(v) if v.eq_ignore_ascii_case("full") => Ok(SqliteSynchronous::Full),
        Some(v) => Err(StoreError::Unsupported(format!("AOS_SYNC `{v}`: expected `normal` (the default) or `full`"))),
    }
}

/// Takes the advisory lock `PATH.lock` (created if needed), waiting up to
/// a minute for another process to finish opening the database. The lock
/// is released when the returned file is dropped (or the process dies).
async fn open_lock(path: &Path) -> StoreResult<std::fs::File> {
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let lock_path = std::path::PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Db(format!("cannot open the database lock `{}`: {e}", lock_path.display())))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Db(format!("another process has held `{}` for a minute while opening the database", lock_path.display())));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Db(format!("cannot lock `{}`: {e}", lock_path.display())));
            }
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates it.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(format!("cannot create `{}`: {e}", dir.display())))?;
            }
        }
        // Concurrent first opens (20 `aosc run` on a fresh AOS_HOME) would
        // race on creating the file, switching it to WAL and migrating it
        // ("UNIQUE constraint failed: _sqlx_migrations.version", "database
        // is locked"): one process at a time opens and migrates, under an
        // advisory lock on a file beside the database.
        let _guard = open_lock(path).await?;
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync_mode()?)
            .busy_timeout(Duration::from_secs(30));
        // One connection: the scheduler is the only writer in this process,
        // and BEGIN IMMEDIATE on one connection never deadlocks with itself.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Db(format!("cannot open the database `{}`: {e}", path.display())))?;
        migrator().run(&pool).await.map_err(|e| StoreError::Db(format!("cannot migrate the database `{}`: {e}", path.display())))?;
        Ok(SqliteStore { pool })
    }

    /// A store in memory, gone with the value (the throwaway store of
    /// `aosc test`): one connection that is never closed or recycled.
    pub async fn in_memory() -> StoreResult<SqliteStore> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        migrator().run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// The connection pool, for maintenance tools and tests (e.g. the audit
    /// tamper tests edit rows behind the store's back).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn commit_group_inner(&self, batches: &[(String, Batch)]) -> StoreResult<()> {
        if batches.iter().all(|(_, b)| b.is_empty()) {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let result = Self::write_group(&mut conn, batches).await;
        match result {
            Ok(()) => {
                sqlx::query("COMMIT").execute(&mut *conn).await?;
                Ok(())
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(e)
            }
        }
    }

    async fn acquire_lease_tx(
        conn: &mut sqlx::SqliteConnection,
        run_id: &str,
        holder: &LeaseHolder,
        ttl_ms: u64,
        alive: fn(u32) -> bool,
    ) -> StoreResult<LeaseOutcome> {
        let now = now_ms();
        let row = sqlx::query("SELECT holder, pid, host, acquired_ms, expires_ms FROM run_leases WHERE run_id = ?")
            .bind(run_id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(r) = row {
            let by = LeaseHolder { token: r.try_get(0)?, pid: r.try_get::<i64, _>(1)? as u32, host: r.try_get(2)? };
            let acquired_ms = r.try_get::<i64, _>(3)? as u64;
            let expires_ms = r.try_get::<i64, _>(4)? as u64;
            let gone = by.host == holder.host && by.pid != holder.pid && !alive(by.pid);
            if by.token != holder.token && expires_ms > now && !gone {
                return Ok(LeaseOutcome::Held { by, acquired_ms, expires_ms });
            }
        }
        sqlx::query("INSERT OR REPLACE INTO run_leases (run_id, holder, pid, host, acquired_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(run_id)
            .bind(&holder.token)
            .bind(holder.pid as i64)
            .bind(&holder.host)
            .bind(now as i64)
            .bind((now + ttl_ms) as i64)
            .execute(&mut *conn)
            .await?;
        Ok(LeaseOutcome::Acquired)
    }

    /// Writes a group of batches with a handful of statements whatever its
    /// size (multi-row INSERTs): each statement is a round trip to sqlx's
    /// SQLite worker thread, which cost more than SQLite's own work.
    async fn write_group(conn: &mut sqlx::SqliteConnection, batches: &[(String, Batch)]) -> StoreResult<()> {
        let at = now_ms();
        let mut runs: Vec<RunAcc> = Vec::new();
        let mut journal: Vec<(usize, &'static str, String)> = Vec::new();
        let mut audit: Vec<AuditRow> = Vec::new();
        let mut idempotency: Vec<(String, usize, String, String)> = Vec::new();
        for (run_id, batch) in batches {
            let r = match runs.iter().position(|r| &r.run_id == run_id) {
                Some(r) => r,
                None => {
                    let row = sqlx::query("SELECT audit_head, audit_count, cost_usd FROM runs WHERE run_id = ?")
                        .bind(run_id)
                        .fetch_optional(&mut *conn)
                        .await?
                        .ok_or_else(|| StoreError::NoSuchRun(run_id.clone()))?;
                    runs.push(RunAcc {
                        head: row.try_get(0)?,
                        count: row.try_get(1)?,
                        cost: row.try_get(2)?,
                        run_id: run_id.clone(),
                        status: None,
                        output: None,
                        error: None,
                    });
                    runs.len() - 1
                }
            };
            let Some(acc) = runs.get_mut(r) else { continue };
            for t in &batch.transitions {
                let data = serde_json::to_string(t).map_err(|e| StoreError::Db(e.to_string()))?;
                journal.push((r, t.kind(), data));
                acc.cost += t.spent();
                if let Some(s) = RunStatus::after(t) {
                    acc.status = Some(s);
                }
                match t {
                    Transition::RunSucceeded { output: o, .. } => acc.output = Some(o.to_string()),
                    Transition::RunFailed { error: e, .. } => acc.error = Some(e.clone()),
                    Transition::RunInterrupted => acc.error = Some("interrupted".into()),
                    _ => {}
                }
            }
            for d in &batch.decisions {
                acc.count += 1;
                let hash = hash_record(&acc.head, &acc.run_id, acc.count as u64, at, &d.kind, d.step.as_deref(), &d.data);
                let prev = std::mem::replace(&mut acc.head, hash.clone());
                audit.push((r, acc.count, d.kind.clone(), d.step.clone(), d.data.to_string(), prev, hash));
            }
            for (key, step, out) in &batch.idempotency {
                idempotency.push((key.clone(), r, step.clone(), out.to_string()));
            }
        }
        let run_id = |r: usize| runs.get(r).map(|a| a.run_id.clone()).unwrap_or_default();
        for chunk in journal.chunks(1000) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO journal (run_id, at_ms, kind, data) ");
            q.push_values(chunk, |mut b, (r, kind, data)| {
                b.push_bind(run_id(*r)).push_bind(at as i64).push_bind(*kind).push_bind(data.clone());
            });
            q.build().execute(&mut *conn).await?;
        }
        for chunk in audit.chunks(500) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT INTO audit (run_id, seq, at_ms, kind, step, data, prev_hash, hash) ");
            q.push_values(chunk, |mut b, (r, seq, kind, step, data, prev, hash)| {
                b.push_bind(run_id(*r))
                    .push_bind(*seq)
                    .push_bind(at as i64)
                    .push_bind(kind.clone())
                    .push_bind(step.clone())
                    .push_bind(data.clone())
                    .push_bind(prev.clone())
                    .push_bind(hash.clone());
            });
            q.build().execute(&mut *conn).await?;
        }
        for chunk in idempotency.chunks(1000) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("INSERT OR IGNORE INTO idempotency (key, run_id, step, output) ");
            q.push_values(chunk, |mut b, (key, r, step, out)| {
                b.push_bind(key.clone()).push_bind(run_id(*r)).push_bind(step.clone()).push_bind(out.clone());
            });
            q.build().execute(&mut *conn).await?;
        }
        for acc in &runs {
            let status_s = acc.status.map(RunStatus::as_str);
            sqlx::query(
                "UPDATE runs SET audit_head = ?, audit_count = ?, cost_usd = ?, updated_at = ?,
                 status = COALESCE(?, status),
                 output = CASE WHEN ? IS NULL THEN output ELSE ? END,
                 error = CASE WHEN ? = 'running' THEN NULL WHEN ? IS NULL THEN error ELSE ? END
                 WHERE run_id = ?",
            )
            .bind(&acc.head)
            .bind(acc.count)
            .bind(acc.cost)
            .bind(rfc3339(at))
            .bind(status_s)
            .bind(acc.output.as_deref())
            .bind(acc.output.as_deref())
            .bind(status_s)
            .bind(acc.error.as_deref())
            .bind(acc.error.as_deref())
            .bind(&acc.run_id)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

fn memory_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<MemoryRow> {
    let blob: Vec<u8> = r.try_get(2)?;
    let embedding = blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(MemoryRow {
        key: r.try_get(0)?,
        value: parse_json(r.try_get(1)?).unwrap_or(Value::Null),
        embedding,
        updated_at_ms: r.try_get(3)?,
        embedding_model: r.try_get(4)?,
    })
}

/// An audit row of a group commit: (run index, seq, kind, step, data,
/// previous hash, hash).
type AuditRow = (usize, i64, String, Option<String>, String, String, String);

/// What a group commit accumulates for one run before its `runs` UPDATE.
struct RunAcc {
    run_id: String,
    head: String,
    count: i64,
    cost: f64,
    status: Option<RunStatus>,
    output: Option<String>,
    error: Option<String>,
}

fn parse_json(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

fn run_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<RunRow> {
    let status: String = row.try_get("status")?;
    Ok(RunRow {
        run_id: row.try_get("run_id")?,
        parent: row.try_get("parent")?,
        workflow: row.try_get("workflow")?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        started_at: row.try_get("started_at")?,
        updated_at: row.try_get("updated_at")?,
        trust: row.try_get("trust")?,
        inputs: parse_json(row.try_get("inputs")?).unwrap_or(Value::Null),
        output: parse_json(row.try_get("output")?),
        error: row.try_get("error")?,
        cost_usd: row.try_get("cost_usd")?,
        audit_head: row.try_get("audit_head")?,
        audit_count: row.try_get::<i64, _>("audit_count")? as u64,
    })
}

const RUN_COLS: &str = "run_id, parent, workflow, status, started_at, updated_at, trust, inputs, output, error, cost_usd, audit_head, audit_count";

impl Store for SqliteStore {
    fn create_run<'a>(&'a self, run: NewRun) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let at = rfc3339(run.at_ms);
            // The program goes to `run_programs` (see migration 0003): the
            // `runs` row is updated on every commit and must stay small.
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO runs (run_id, parent, workflow, status, started_at, updated_at, trust, inputs, program)
                 VALUES (?, ?, ?, 'running', ?, ?, ?, ?, '')",
            )
            .bind(&run.run_id)
            .bind(run.parent.as_deref())
            .bind(&run.workflow)
            .bind(&at)
            .bind(&at)
            .bind(&run.trust)
            .bind(run.inputs.to_string())
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO run_programs (run_id, program) VALUES (?, ?)")
                .bind(&run.run_id)
                .bind(&run.program)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn commit<'a>(&'a self, run_id: &'a str, batch: Batch) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move { self.commit_group_inner(&[(run_id.to_string(), batch)]).await })
    }

    fn commit_group<'a>(&'a self, batches: &'a [(String, Batch)]) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.commit_group_inner(batches))
    }

    fn commit_decision<'a>(&'a self, run_id: &'a str, step: &'a str, batch: Batch) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            // BEGIN IMMEDIATE takes the write lock before the gate is read:
            // a concurrent decision waits here and then sees this one.
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            let result = async {
                let rows: Vec<String> = sqlx::query_scalar("SELECT data FROM journal WHERE run_id = ? AND kind IN (?, ?, ?) ORDER BY id")
                    .bind(run_id)
                    .bind(super::GATE_KINDS[0])
                    .bind(super::GATE_KINDS[1])
                    .bind(super::GATE_KINDS[2])
                    .fetch_all(&mut *conn)
                    .await?;
                let ts: Vec<Transition> = rows.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
                super::check_gate(run_id, step, super::gate_of(step, &ts))?;
                Self::write_group(&mut conn, &[(run_id.to_string(), batch)]).await
            }
            .await;
            match result {
                Ok(()) => {
                    sqlx::query("COMMIT").execute(&mut *conn).await?;
                    Ok(())
                }
                Err(e) => {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    Err(e)
                }
            }
        })
    }

    fn run<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<RunRow>>> {
        Box::pin(async move {
            let row = sqlx::query(&format!("SELECT {RUN_COLS} FROM runs WHERE run_id = ?"))
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(run_row).transpose()
        })
    }

    fn program<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<String>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT program FROM run_programs WHERE run_id = ?")
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
            Ok(row.try_get(0)?)
        })
    }

    fn runs<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<RunRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!("SELECT {RUN_COLS} FROM runs WHERE parent IS NULL ORDER BY started_at DESC, run_id DESC"))
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(run_row).collect()
        })
    }

    fn journal<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Vec<Entry>>> {
        Box::pin(async move { Ok(self.journal_since(run_id, 0).await?.into_iter().map(|(_, e)| e).collect()) })
    }

    fn journal_since<'a>(&'a self, run_id: &'a str, after_id: i64) -> BoxFuture<'a, StoreResult<Vec<(i64, Entry)>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT id, at_ms, data FROM journal WHERE run_id = ? AND id > ? ORDER BY id")
                .bind(run_id)
                .bind(after_id)
                .fetch_all(&self.pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.try_get(0)?;
                let at: i64 = row.try_get(1)?;
                let data: String = row.try_get(2)?;
                let transition: Transition = serde_json::from_str(&data)
                    .map_err(|e| StoreError::Db(format!("journal entry {id} of `{run_id}` is unreadable: {e}")))?;
                out.push((id, Entry { run_id: run_id.to_string(), at_ms: at as u64, transition }));
            }
            Ok(out)
        })
    }

    fn audit<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Vec<Record>>> {
        Box::pin(async move {
            // Storage order (rowid), not seq order: a reordering must show.
            let rows = sqlx::query("SELECT seq, at_ms, kind, step, data, prev_hash, hash FROM audit WHERE run_id = ? ORDER BY rowid")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let data: String = row.try_get(4)?;
                out.push(Record {
                    run_id: run_id.to_string(),
                    seq: row.try_get::<i64, _>(0)? as u64,
                    at_ms: row.try_get::<i64, _>(1)? as u64,
                    kind: row.try_get(2)?,
                    step: row.try_get(3)?,
                    data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                    prev_hash: row.try_get(5)?,
                    hash: row.try_get(6)?,
                });
            }
            Ok(out)
        })
    }

    fn record_model_sample<'a>(&'a self, sample: &'a crate::stats::Sample, now_ms: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.record_model_sample_inner(sample, now_ms))
    }

    fn model_stats<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<crate::stats::ModelStats>>> {
        Box::pin(self.model_stats_inner())
    }

    fn cache_get<'a>(&'a self, key: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<Option<String>>> {
        Box::pin(self.cache_get_inner(key, now_ms))
    }

    fn cache_put<'a>(&'a self, key: &'a str, entry: &'a str, now_ms: u64, expires_ms: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.cache_put_inner(key, entry, now_ms, expires_ms))
    }

    fn idempotent_output<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<Value>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT output FROM idempotency WHERE key = ?").bind(key).fetch_optional(&self.pool).await?;
            Ok(match row {
                Some(r) => parse_json(r.try_get(0)?),
                None => None,
            })
        })
    }

    fn memory_put<'a>(&'a self, key: &'a str, value: &'a Value, embedding_model: &'a str, embedding: &'a [f32]) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let blob: Vec<u8> = embedding.iter().flat_map(|f| f.to_le_bytes()).collect();
            sqlx::query(
                "INSERT INTO memory (key, value, embedding, updated_at, embedding_model, dims) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, embedding = excluded.embedding, updated_at = excluded.updated_at, \
                 embedding_model = excluded.embedding_model, dims = excluded.dims",
            )
            .bind(key)
            .bind(value.to_string())
            .bind(blob)
            .bind(i64::try_from(now_ms()).unwrap_or(i64::MAX))
            .bind(embedding_model)
            .bind(i64::try_from(embedding.len()).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn memory_all<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<MemoryRow>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT key, value, embedding, updated_at, embedding_model FROM memory ORDER BY updated_at DESC, key").fetch_all(&self.pool).await?;
            rows.iter().map(memory_row).collect()
        })
    }

    fn memory_since<'a>(&'a self, since_ms: i64) -> BoxFuture<'a, StoreResult<Vec<MemoryRow>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT key, value, embedding, updated_at, embedding_model FROM memory WHERE updated_at >= ? ORDER BY updated_at, key")
                .bind(since_ms)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(memory_row).collect()
        })
    }

    fn events_since<'a>(&'a self, after_id: i64, limit: u32) -> BoxFuture<'a, StoreResult<Vec<(i64, Entry)>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT id, run_id, at_ms, data FROM journal WHERE id > ? ORDER BY id LIMIT ?")
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.try_get(0)?;
                let run_id: String = row.try_get(1)?;
                let at: i64 = row.try_get(2)?;
                let data: String = row.try_get(3)?;
                let transition: Transition = serde_json::from_str(&data)
                    .map_err(|e| StoreError::Db(format!("journal entry {id} of `{run_id}` is unreadable: {e}")))?;
                out.push((id, Entry { run_id, at_ms: at as u64, transition }));
            }
            Ok(out)
        })
    }

    fn token_create<'a>(&'a self, token: TokenRow) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.token_create_inner(token))
    }

    fn tokens<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<TokenRow>>> {
        Box::pin(self.tokens_inner())
    }

    fn token_revoke<'a>(&'a self, name: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.token_revoke_inner(name))
    }

    fn token_by_hash<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, StoreResult<Option<TokenRow>>> {
        Box::pin(self.token_by_hash_inner(hash))
    }

    fn claim_tick<'a>(&'a self, trigger_key: &'a str, tick_ms: i64) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.claim_tick_inner(trigger_key, tick_ms))
    }

    fn last_tick<'a>(&'a self, trigger_key: &'a str) -> BoxFuture<'a, StoreResult<Option<i64>>> {
        Box::pin(self.last_tick_inner(trigger_key))
    }

    fn request_control<'a>(&'a self, run_id: &'a str, action: &'a str, by: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.request_control_inner(run_id, action, by))
    }

    fn take_control<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<(String, String, String)>>> {
        Box::pin(self.take_control_inner())
    }

    fn set_paused<'a>(&'a self, run_id: &'a str, by: Option<&'a str>) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.set_paused_inner(run_id, by))
    }

    fn paused<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<String>>> {
        Box::pin(self.paused_inner(run_id))
    }

    fn bus_cursor<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<i64>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT published_id FROM bus_cursor WHERE run_id = ?").bind(run_id).fetch_optional(&self.pool).await?;
            Ok(match row {
                Some(r) => r.try_get(0)?,
                None => 0,
            })
        })
    }

    fn set_bus_cursor<'a>(&'a self, run_id: &'a str, published_id: i64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO bus_cursor (run_id, published_id) VALUES (?, ?)
                 ON CONFLICT(run_id) DO UPDATE SET published_id = MAX(published_id, excluded.published_id)",
            )
            .bind(run_id)
            .bind(published_id)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn acquire_lease<'a>(
        &'a self,
        run_id: &'a str,
        holder: &'a LeaseHolder,
        ttl_ms: u64,
        alive: fn(u32) -> bool,
    ) -> BoxFuture<'a, StoreResult<LeaseOutcome>> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            let result = Self::acquire_lease_tx(&mut conn, run_id, holder, ttl_ms, alive).await;
            match result {
                Ok(outcome) => {
                    sqlx::query("COMMIT").execute(&mut *conn).await?;
                    Ok(outcome)
                }
                Err(e) => {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    Err(e)
                }
            }
        })
    }

    fn renew_lease<'a>(&'a self, run_id: &'a str, token: &'a str, ttl_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            let r = sqlx::query("UPDATE run_leases SET expires_ms = ? WHERE run_id = ? AND holder = ?")
                .bind((now_ms() + ttl_ms) as i64)
                .bind(run_id)
                .bind(token)
                .execute(&self.pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    fn release_lease<'a>(&'a self, run_id: &'a str, token: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM run_leases WHERE run_id = ? AND holder = ?").bind(run_id).bind(token).execute(&self.pool).await?;
            Ok(())
        })
    }

    fn unpublished_runs<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT r.run_id FROM runs r LEFT JOIN bus_cursor c ON c.run_id = r.run_id
                 WHERE EXISTS (SELECT 1 FROM journal j WHERE j.run_id = r.run_id AND j.id > COALESCE(c.published_id, 0))
                 ORDER BY r.started_at",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(|r| r.try_get::<String, _>(0).map_err(StoreError::from)).collect()
        })
    }

    fn lease<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<(LeaseHolder, u64)>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT holder, pid, host, expires_ms FROM run_leases WHERE run_id = ? AND expires_ms > ?")
                .bind(run_id)
                .bind(now_ms() as i64)
                .fetch_optional(&self.pool)
                .await?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some((
                    LeaseHolder { token: r.try_get(0)?, pid: r.try_get::<i64, _>(1)? as u32, host: r.try_get(2)? },
                    r.try_get::<i64, _>(3)? as u64,
                ))),
            }
        })
    }

    fn journal_bytes<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT COALESCE(SUM(LENGTH(data) + LENGTH(kind) + 16), 0) FROM journal WHERE run_id = ?")
                .bind(run_id)
                .fetch_one(&self.pool)
                .await?;
            Ok(row.try_get::<i64, _>(0)? as u64)
        })
    }
}
