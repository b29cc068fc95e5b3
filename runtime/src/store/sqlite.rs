//! The embedded store: one SQLite file in WAL mode. A batch is one
//! `BEGIN IMMEDIATE` transaction, so writers from other processes (an
//! `aosc approve` while a run waits) serialize cleanly.
//!
//! `synchronous = NORMAL`: a commit survives the process being killed at any
//! instant (the WAL is in the OS before COMMIT returns); only a power loss
//! may lose the last commits, never corrupt the file.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{Batch, BoxFuture, MemoryRow, NewRun, RunRow, Store, StoreError, StoreResult, TokenRow};
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
        )]),
        ignore_missing: false,
        locking: true,
        no_tx: false,
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
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        // One connection: the scheduler is the only writer in this process,
        // and BEGIN IMMEDIATE on one connection never deadlocks with itself.
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
        migrator().run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// The connection pool, for maintenance tools and tests (e.g. the audit
    /// tamper tests edit rows behind the store's back).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn commit_inner(&self, run_id: &str, batch: Batch) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let result = Self::write_batch(&mut conn, run_id, batch).await;
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

    async fn write_batch(conn: &mut sqlx::SqliteConnection, run_id: &str, batch: Batch) -> StoreResult<()> {
        let at = now_ms();
        let row = sqlx::query("SELECT audit_head, audit_count, cost_usd FROM runs WHERE run_id = ?")
            .bind(run_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
        let mut head: String = row.try_get(0)?;
        let mut count: i64 = row.try_get(1)?;
        let mut cost: f64 = row.try_get(2)?;
        let mut status: Option<RunStatus> = None;
        let mut output: Option<String> = None;
        let mut error: Option<String> = None;
        for t in &batch.transitions {
            let data = serde_json::to_string(t).map_err(|e| StoreError::Db(e.to_string()))?;
            sqlx::query("INSERT INTO journal (run_id, at_ms, kind, data) VALUES (?, ?, ?, ?)")
                .bind(run_id)
                .bind(at as i64)
                .bind(t.kind())
                .bind(data)
                .execute(&mut *conn)
                .await?;
            cost += t.spent();
            if let Some(s) = RunStatus::after(t) {
                status = Some(s);
            }
            match t {
                Transition::RunSucceeded { output: o, .. } => output = Some(o.to_string()),
                Transition::RunFailed { error: e, .. } => error = Some(e.clone()),
                Transition::RunInterrupted => error = Some("interrupted".into()),
                _ => {}
            }
        }
        for d in &batch.decisions {
            count += 1;
            let seq = count as u64;
            let hash = hash_record(&head, run_id, seq, at, &d.kind, d.step.as_deref(), &d.data);
            sqlx::query("INSERT INTO audit (run_id, seq, at_ms, kind, step, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(run_id)
                .bind(seq as i64)
                .bind(at as i64)
                .bind(&d.kind)
                .bind(d.step.as_deref())
                .bind(d.data.to_string())
                .bind(&head)
                .bind(&hash)
                .execute(&mut *conn)
                .await?;
            head = hash;
        }
        for (key, step, out) in &batch.idempotency {
            sqlx::query("INSERT OR IGNORE INTO idempotency (key, run_id, step, output) VALUES (?, ?, ?, ?)")
                .bind(key)
                .bind(run_id)
                .bind(step)
                .bind(out.to_string())
                .execute(&mut *conn)
                .await?;
        }
        let status_s = status.map(RunStatus::as_str);
        sqlx::query(
            "UPDATE runs SET audit_head = ?, audit_count = ?, cost_usd = ?, updated_at = ?,
             status = COALESCE(?, status),
             output = CASE WHEN ? IS NULL THEN output ELSE ? END,
             error = CASE WHEN ? = 'running' THEN NULL WHEN ? IS NULL THEN error ELSE ? END
             WHERE run_id = ?",
        )
        .bind(&head)
        .bind(count)
        .bind(cost)
        .bind(rfc3339(at))
        .bind(status_s)
        .bind(output.as_deref())
        .bind(output.as_deref())
        .bind(status_s)
        .bind(error.as_deref())
        .bind(error.as_deref())
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

fn memory_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<MemoryRow> {
    let blob: Vec<u8> = r.try_get(2)?;
    let embedding = blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(MemoryRow { key: r.try_get(0)?, value: parse_json(r.try_get(1)?).unwrap_or(Value::Null), embedding, updated_at_ms: r.try_get(3)? })
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
                .bind(run.program.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn commit<'a>(&'a self, run_id: &'a str, batch: Batch) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.commit_inner(run_id, batch))
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

    fn program<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Value>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT program FROM run_programs WHERE run_id = ?")
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
            let text: String = row.try_get(0)?;
            serde_json::from_str(&text).map_err(|e| StoreError::Db(format!("stored program of `{run_id}` is unreadable: {e}")))
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

    fn idempotent_output<'a>(&'a self, key: &'a str) -> BoxFuture<'a, StoreResult<Option<Value>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT output FROM idempotency WHERE key = ?").bind(key).fetch_optional(&self.pool).await?;
            Ok(match row {
                Some(r) => parse_json(r.try_get(0)?),
                None => None,
            })
        })
    }

    fn memory_put<'a>(&'a self, key: &'a str, value: &'a Value, embedding: &'a [f32]) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let blob: Vec<u8> = embedding.iter().flat_map(|f| f.to_le_bytes()).collect();
            sqlx::query(
                "INSERT INTO memory (key, value, embedding, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value, embedding = excluded.embedding, updated_at = excluded.updated_at",
            )
            .bind(key)
            .bind(value.to_string())
            .bind(blob)
            .bind(i64::try_from(now_ms()).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn memory_all<'a>(&'a self) -> BoxFuture<'a, StoreResult<Vec<MemoryRow>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT key, value, embedding, updated_at FROM memory ORDER BY updated_at DESC, key").fetch_all(&self.pool).await?;
            rows.iter().map(memory_row).collect()
        })
    }

    fn memory_since<'a>(&'a self, since_ms: i64) -> BoxFuture<'a, StoreResult<Vec<MemoryRow>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT key, value, embedding, updated_at FROM memory WHERE updated_at >= ? ORDER BY updated_at, key")
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
