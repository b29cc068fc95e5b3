//! The shared store: PostgreSQL, for several processes (and machines)
//! working on the same runs. `AOS_DATABASE_URL=postgres://…` selects it.
//!
//! It keeps exactly what the SQLite store keeps (same rows, JSON stored as
//! the same text). A [`Batch`] is one transaction that first locks the run's
//! row (`SELECT … FOR UPDATE`): the audit head is read under that lock, so
//! two writers on one run (a worker and an `aosc approve`) chain their audit
//! records one after the other and never fork the chain, and one run's
//! journal ids grow in commit order. Journal and audit rows of a batch go in
//! with one `INSERT … SELECT FROM UNNEST(…)` each (one round trip).

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, Row};

use super::{Batch, BoxFuture, LeaseHolder, LeaseOutcome, MemoryRow, NewRun, RunRow, Store, StoreError, StoreResult, TokenRow};
use crate::audit::Record;
use crate::events::{Entry, RunStatus, Transition};
use crate::ids::{now_ms, rfc3339};

/// How long opening the store waits for the server before it says so.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
}

fn migrator() -> Migrator {
    let m = |version: i64, name: &'static str, sql: &'static str| {
        Migration::new(version, Cow::Borrowed(name), MigrationType::Simple, Cow::Borrowed(sql), false)
    };
    Migrator {
        migrations: Cow::Owned(vec![
            m(1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
            m(2, "bus_cursor", include_str!("../../migrations/postgres/0002_bus_cursor.sql")),
            m(3, "memory_updated", include_str!("../../migrations/postgres/0003_memory_updated.sql")),
            m(4, "run_leases", include_str!("../../migrations/postgres/0004_run_leases.sql")),
            m(5, "fleet_tasks", include_str!("../../migrations/postgres/0005_fleet_tasks.sql")),
            m(10, "memory_embedding_model", include_str!("../../migrations/postgres/0010_memory_embedding_model.sql")),
            m(20, "serve", include_str!("../../migrations/postgres/0020_serve.sql")),
            m(30, "response_cache", include_str!("../../migrations/postgres/0030_response_cache.sql")),
            m(31, "model_stats", include_str!("../../migrations/postgres/0031_model_stats.sql")),
            m(35, "fleet_parked", include_str!("../../migrations/postgres/0035_fleet_parked.sql")),
        ]),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

impl PostgresStore {
    /// Connects to `url` and migrates the database.
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        Self::open_in_schema(url, None).await
    }

    /// Connects with every table in `schema` (created if missing): tests
    /// give each store a schema of its own in one database.
    pub async fn open_in_schema(url: &str, schema: Option<&str>) -> StoreResult<PostgresStore> {
        Self::open_with(url, schema, Duration::from_secs(30)).await
    }

    /// [`PostgresStore::open_in_schema`] with the time a query waits for a
    /// connection before it fails (a worker fails fast and says the server
    /// is away rather than hang).
    pub async fn open_with(url: &str, schema: Option<&str>, acquire_timeout: Duration) -> StoreResult<PostgresStore> {
        let shown = redact(url);
        let mut opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::Db(format!("AOS_DATABASE_URL `{shown}`: {e}")))?;
        if let Some(schema) = schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || schema.is_empty() {
                return Err(StoreError::Db(format!("invalid schema name `{schema}`")));
            }
            let mut conn = Self::connect_once(&opts, &shown).await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&mut conn).await?;
            let _ = conn.close().await;
            opts = opts.options([("search_path", schema)]);
        } else {
            // Fail fast and clearly when the server is not there (the pool
            // would retry until its acquire timeout).
            let conn = Self::connect_once(&opts, &shown).await?;
            let _ = conn.close().await;
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(acquire_timeout)
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Db(format!("PostgreSQL at `{shown}`: {e}")))?;
        migrator().run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    async fn connect_once(opts: &PgConnectOptions, shown: &str) -> StoreResult<sqlx::PgConnection> {
        match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(opts)).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(StoreError::Db(format!("cannot connect to PostgreSQL at `{shown}`: {e}"))),
            Err(_) => Err(StoreError::Db(format!("cannot connect to PostgreSQL at `{shown}`: no answer in {}s", CONNECT_TIMEOUT.as_secs()))),
        }
    }

    /// The connection pool, for maintenance tools and tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Commits `batch`; with `gate`, only if that step waits at its
    /// approval gate, read under the run row's lock (one decision per gate).
    async fn commit_inner(&self, run_id: &str, batch: Batch, gate: Option<&str>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        write_batch(&mut tx, run_id, &batch, gate).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Writes a batch in the caller's transaction (locking the run's row, which
/// a caller may hold already); returns the id of the last journal entry
/// written (`None` when the batch has no transitions). With `gate`, the
/// batch is an approval decision on that step and is refused unless the step
/// is still waiting (checked under the row lock: one decision per gate).
pub(crate) async fn write_batch(tx: &mut sqlx::PgConnection, run_id: &str, batch: &Batch, gate: Option<&str>) -> StoreResult<Option<i64>> {
    {
        let row = sqlx::query("SELECT audit_head, audit_count, cost_usd FROM runs WHERE run_id = $1 FOR UPDATE")
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
        if let Some(step) = gate {
            let rows: Vec<String> = sqlx::query_scalar("SELECT data FROM journal WHERE run_id = $1 AND kind = ANY($2) ORDER BY id")
                .bind(run_id)
                .bind(super::GATE_KINDS.map(str::to_string).to_vec())
                .fetch_all(&mut *tx)
                .await?;
            let ts: Vec<Transition> = rows.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
            super::check_gate(run_id, step, super::gate_of(step, &ts))?;
        }
        let head: String = row.try_get(0)?;
        let count: i64 = row.try_get(1)?;
        let cost: f64 = row.try_get(2)?;
        write_batch_locked(tx, run_id, batch, RunHead { audit_head: head, audit_count: count, cost_usd: cost }).await
    }
}

/// What a batch continues from: the run's audit head and count and its
/// cost so far, read under the run's row lock.
#[derive(Clone, Debug)]
pub(crate) struct RunHead {
    pub audit_head: String,
    pub audit_count: i64,
    pub cost_usd: f64,
}

/// [`write_batch`] for a caller that holds the run's row lock and read its
/// [`RunHead`] already (one round trip fewer per commit).
pub(crate) async fn write_batch_locked(tx: &mut sqlx::PgConnection, run_id: &str, batch: &Batch, h: RunHead) -> StoreResult<Option<i64>> {
    let p = super::postgres_batch::prepare(run_id, batch, h)?;
    let mut last_id = None;
    if !p.kinds.is_empty() {
        let ids = sqlx::query(
            "INSERT INTO journal (run_id, at_ms, kind, data)
             SELECT $1, $2, k, d FROM UNNEST($3::text[], $4::text[]) WITH ORDINALITY AS t(k, d, n) ORDER BY n
             RETURNING id",
        )
        .bind(run_id)
        .bind(p.at)
        .bind(&p.kinds)
        .bind(&p.datas)
        .fetch_all(&mut *tx)
        .await?;
        for r in ids {
            let id: i64 = r.try_get(0)?;
            last_id = Some(last_id.map_or(id, |l: i64| l.max(id)));
        }
    }
    if !p.seqs.is_empty() {
        sqlx::query(
            "INSERT INTO audit (run_id, seq, at_ms, kind, step, data, prev_hash, hash)
             SELECT $1, s, $2, k, st, d, p, h
             FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS t(s, k, st, d, p, h)
             ORDER BY s",
        )
        .bind(run_id)
        .bind(p.at)
        .bind(&p.seqs)
        .bind(&p.dkinds)
        .bind(&p.dsteps)
        .bind(&p.ddata)
        .bind(&p.prevs)
        .bind(&p.hashes)
        .execute(&mut *tx)
        .await?;
    }
    for ((key, step), out) in p.idem_keys.iter().zip(&p.idem_steps).zip(&p.idem_outputs) {
        sqlx::query("INSERT INTO idempotency (key, run_id, step, output) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(run_id)
            .bind(step)
            .bind(out)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE runs SET audit_head = $1, audit_count = $2, cost_usd = $3, updated_at = $4,
         status = COALESCE($5, status),
         output = COALESCE($6, output),
         error = CASE WHEN $5 = 'running' THEN NULL ELSE COALESCE($7, error) END
         WHERE run_id = $8",
    )
    .bind(&p.head)
    .bind(p.count)
    .bind(p.cost)
    .bind(&p.updated_at)
    .bind(p.status)
    .bind(p.output.as_deref())
    .bind(p.error.as_deref())
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    Ok(last_id)
}

fn memory_row(r: &sqlx::postgres::PgRow) -> StoreResult<MemoryRow> {
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

fn parse_json(s: Option<String>) -> Option<Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

fn run_row(row: &sqlx::postgres::PgRow) -> StoreResult<RunRow> {
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
        audit_count: u64::try_from(row.try_get::<i64, _>("audit_count")?).unwrap_or(0),
    })
}

const RUN_COLS: &str = "run_id, parent, workflow, status, started_at, updated_at, trust, inputs, output, error, cost_usd, audit_head, audit_count";

fn entry(run_id: String, id: i64, at: i64, data: &str) -> StoreResult<Entry> {
    let transition: Transition =
        serde_json::from_str(data).map_err(|e| StoreError::Db(format!("journal entry {id} of `{run_id}` is unreadable: {e}")))?;
    Ok(Entry { run_id, at_ms: u64::try_from(at).unwrap_or(0), transition })
}

impl Store for PostgresStore {
    fn create_run<'a>(&'a self, run: NewRun) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let at = rfc3339(run.at_ms);
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO runs (run_id, parent, workflow, status, started_at, updated_at, trust, inputs)
                 VALUES ($1, $2, $3, 'running', $4, $4, $5, $6)",
            )
            .bind(&run.run_id)
            .bind(run.parent.as_deref())
            .bind(&run.workflow)
            .bind(&at)
            .bind(&run.trust)
            .bind(run.inputs.to_string())
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO run_programs (run_id, program) VALUES ($1, $2)")
                .bind(&run.run_id)
                .bind(&run.program)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn commit<'a>(&'a self, run_id: &'a str, batch: Batch) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.commit_inner(run_id, batch, None))
    }

    fn commit_decision<'a>(&'a self, run_id: &'a str, step: &'a str, batch: Batch) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.commit_inner(run_id, batch, Some(step)))
    }

    fn run<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<RunRow>>> {
        Box::pin(async move {
            let row = sqlx::query(&format!("SELECT {RUN_COLS} FROM runs WHERE run_id = $1")).bind(run_id).fetch_optional(&self.pool).await?;
            row.as_ref().map(run_row).transpose()
        })
    }

    fn program<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<String>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT program FROM run_programs WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
            Ok(row.try_get(0)?)
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
            let now = now_ms();
            let mut tx = self.pool.begin().await?;
            // Serialize takers of one run: the row (or the gap) is locked by
            // the upsert below; read it under FOR UPDATE first.
            let row = sqlx::query("SELECT holder, pid, host, acquired_ms, expires_ms FROM run_leases WHERE run_id = $1 FOR UPDATE")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(r) = row {
                let by = LeaseHolder { token: r.try_get(0)?, pid: r.try_get::<i64, _>(1)? as u32, host: r.try_get(2)? };
                let acquired_ms = r.try_get::<i64, _>(3)? as u64;
                let expires_ms = r.try_get::<i64, _>(4)? as u64;
                let gone = by.host == holder.host && by.pid != holder.pid && !alive(by.pid);
                if by.token != holder.token && expires_ms > now && !gone {
                    tx.rollback().await?;
                    return Ok(LeaseOutcome::Held { by, acquired_ms, expires_ms });
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO run_leases (run_id, holder, pid, host, acquired_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (run_id) DO UPDATE SET holder = EXCLUDED.holder, pid = EXCLUDED.pid, host = EXCLUDED.host,
                   acquired_ms = EXCLUDED.acquired_ms, expires_ms = EXCLUDED.expires_ms",
            )
            .bind(run_id)
            .bind(&holder.token)
            .bind(i64::from(holder.pid))
            .bind(&holder.host)
            .bind(now as i64)
            .bind((now + ttl_ms) as i64)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {
                    tx.commit().await?;
                    Ok(LeaseOutcome::Acquired)
                }
                // Another process inserted the first row at the same time: it holds the run.
                Err(e) => {
                    let _ = tx.rollback().await;
                    Err(e.into())
                }
            }
        })
    }

    fn renew_lease<'a>(&'a self, run_id: &'a str, token: &'a str, ttl_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            let r = sqlx::query("UPDATE run_leases SET expires_ms = $1 WHERE run_id = $2 AND holder = $3")
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
            sqlx::query("DELETE FROM run_leases WHERE run_id = $1 AND holder = $2").bind(run_id).bind(token).execute(&self.pool).await?;
            Ok(())
        })
    }

    fn lease<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Option<(LeaseHolder, u64)>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT holder, pid, host, expires_ms FROM run_leases WHERE run_id = $1 AND expires_ms > $2")
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
            let rows = sqlx::query("SELECT id, at_ms, data FROM journal WHERE run_id = $1 AND id > $2 ORDER BY id")
                .bind(run_id)
                .bind(after_id)
                .fetch_all(&self.pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.try_get(0)?;
                let data: String = row.try_get(2)?;
                out.push((id, entry(run_id.to_string(), id, row.try_get(1)?, &data)?));
            }
            Ok(out)
        })
    }

    fn audit<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<Vec<Record>>> {
        Box::pin(async move {
            // Storage order (id), not seq order: a reordering must show.
            let rows = sqlx::query("SELECT seq, at_ms, kind, step, data, prev_hash, hash FROM audit WHERE run_id = $1 ORDER BY id")
                .bind(run_id)
                .fetch_all(&self.pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let data: String = row.try_get(4)?;
                out.push(Record {
                    run_id: run_id.to_string(),
                    seq: u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0),
                    at_ms: u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
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
            let row = sqlx::query("SELECT output FROM idempotency WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
            Ok(match row {
                Some(r) => parse_json(r.try_get(0)?),
                None => None,
            })
        })
    }

    fn journal_bytes<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<u64>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT COALESCE(SUM(LENGTH(data) + LENGTH(kind) + 16), 0)::BIGINT FROM journal WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(&self.pool)
                .await?;
            Ok(u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0))
        })
    }

    fn memory_put<'a>(&'a self, key: &'a str, value: &'a Value, embedding_model: &'a str, embedding: &'a [f32]) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let blob: Vec<u8> = embedding.iter().flat_map(|f| f.to_le_bytes()).collect();
            sqlx::query(
                "INSERT INTO memory (key, value, embedding, updated_at, embedding_model, dims) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, embedding = excluded.embedding, updated_at = excluded.updated_at,
                 embedding_model = excluded.embedding_model, dims = excluded.dims",
            )
            .bind(key)
            .bind(value.to_string())
            .bind(blob)
            .bind(i64::try_from(now_ms()).unwrap_or(i64::MAX))
            .bind(embedding_model)
            .bind(i32::try_from(embedding.len()).unwrap_or(i32::MAX))
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
            let rows = sqlx::query("SELECT key, value, embedding, updated_at, embedding_model FROM memory WHERE updated_at >= $1 ORDER BY updated_at, key")
                .bind(since_ms)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(memory_row).collect()
        })
    }

    fn events_since<'a>(&'a self, after_id: i64, limit: u32) -> BoxFuture<'a, StoreResult<Vec<(i64, Entry)>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT id, run_id, at_ms, data FROM journal WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let id: i64 = row.try_get(0)?;
                let data: String = row.try_get(3)?;
                out.push((id, entry(row.try_get(1)?, id, row.try_get(2)?, &data)?));
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
            let row = sqlx::query("SELECT published_id FROM bus_cursor WHERE run_id = $1").bind(run_id).fetch_optional(&self.pool).await?;
            Ok(match row {
                Some(r) => r.try_get(0)?,
                None => 0,
            })
        })
    }

    fn set_bus_cursor<'a>(&'a self, run_id: &'a str, published_id: i64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO bus_cursor (run_id, published_id) VALUES ($1, $2)
                 ON CONFLICT (run_id) DO UPDATE SET published_id = GREATEST(bus_cursor.published_id, excluded.published_id)",
            )
            .bind(run_id)
            .bind(published_id)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn fleet_queue<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.queue_run(run_id))
    }

    fn fleet_wake<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.wake_run(run_id))
    }

    fn fleet_queued<'a>(&'a self, run_id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.is_fleet_run(run_id))
    }

    fn fleet_control<'a>(&'a self, run_id: &'a str, action: super::FleetAction, by: &'a str) -> BoxFuture<'a, StoreResult<Option<Vec<crate::bus::dispatch::TaskRef>>>> {
        Box::pin(self.control_run(run_id, action, by))
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
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://aos:secret@db:5432/aos"), "postgres://aos@db:5432/aos");
        assert_eq!(redact("postgres://db/aos"), "postgres://db/aos");
    }
}
