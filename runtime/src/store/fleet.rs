//! The fleet's task table on PostgreSQL (migration 0005): runs queued by
//! `aosc run --detach` and the work `aosc worker` processes claim.
//!
//! A task is an attempt to run (`step >= 0`, `item` -1 for a step without
//! fan-out) or "decide about this run" (`step` -1). Claims take rows with
//! `FOR UPDATE SKIP LOCKED` (two workers never take the same row) and move
//! `visible_ms` to the end of the claimer's lease: the row of a worker that
//! died becomes claimable again when its lease expires, and the claimer
//! learns that it was claimed before (`prev`). A task is deleted in the
//! same transaction that journals its result, under the run's row lock
//! ([`FleetTx`]), and only when the committer still holds its claim.

use sqlx::{PgPool, Postgres, Row, Transaction};

#[path = "fleet_commit.rs"]
mod commit;
#[path = "fleet_parked.rs"]
mod parked;
pub use parked::Parked;

use super::postgres::{write_batch, write_batch_locked, PostgresStore, RunHead};
use super::{Batch, FleetAction, StoreError, StoreResult};
use crate::bus::dispatch::TaskRef;
use crate::events::{Entry, RunStatus, Transition};
use crate::ids::now_ms;

/// `step` of the task that asks a worker to decide about a run.
pub const DECIDE: i32 = -1;

/// `visible_ms` of the free tasks of a paused run: never visible until
/// `aosc resume` makes them visible again.
pub const HELD: i64 = i64::MAX;

/// Which unit a task is about: (step index or [`DECIDE`], item or -1).
pub type TaskKey = (i32, i32);

/// A claimed task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub run_id: String,
    pub step: i32,
    pub item: i32,
    pub attempt: u32,
    pub fallback: bool,
    /// The worker that held the claim before this one (its lease expired).
    pub prev: Option<String>,
}

/// An attempt to put in the task table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTask {
    pub step: i32,
    pub item: i32,
    pub attempt: u32,
    pub fallback: bool,
    /// Claimed at once by this worker (until `visible_ms`), or free.
    pub claimed_by: Option<String>,
    pub visible_ms: u64,
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Marks a created run as queued for the fleet and asks a worker to
    /// decide about it.
    pub async fn queue_run(&self, run_id: &str) -> StoreResult<()> {
        let now = ms(now_ms());
        let mut tx = self.pool().begin().await?;
        let r = sqlx::query("UPDATE runs SET status = 'queued' WHERE run_id = $1").bind(run_id).execute(&mut *tx).await?;
        if r.rows_affected() != 1 {
            return Err(StoreError::NoSuchRun(run_id.to_string()));
        }
        sqlx::query("INSERT INTO fleet_runs (run_id, queued_ms) VALUES ($1, $2) ON CONFLICT (run_id) DO NOTHING")
            .bind(run_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        wake_in(&mut tx, run_id, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Asks a worker to decide about `run_id` now, when it is a fleet run
    /// (after an approval, say). Returns whether it is one.
    /// A run paused at a gate is `queued` again until a worker picks it up
    /// (so that `aosc wait` right after `aosc approve` does not see the
    /// old pause).
    pub async fn wake_run(&self, run_id: &str) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE runs SET status = 'queued' WHERE run_id = $1 AND status = 'waiting_approval'
             AND EXISTS (SELECT 1 FROM fleet_runs WHERE run_id = $1)",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query(
            "INSERT INTO tasks (run_id, step, item, visible_ms)
             SELECT run_id, -1, -1, $2 FROM fleet_runs WHERE run_id = $1
             ON CONFLICT (run_id, step, item) DO UPDATE SET visible_ms = LEAST(tasks.visible_ms, EXCLUDED.visible_ms), claimed_by = NULL",
        )
        .bind(run_id)
        .bind(ms(now_ms()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Whether `run_id` was queued for the fleet.
    pub async fn is_fleet_run(&self, run_id: &str) -> StoreResult<bool> {
        Ok(sqlx::query("SELECT 1 FROM fleet_runs WHERE run_id = $1").bind(run_id).fetch_optional(self.pool()).await?.is_some())
    }

    /// Claims up to `n` visible tasks for `me` until `lease_until`.
    pub async fn claim_tasks(&self, me: &str, n: usize, lease_until: u64) -> StoreResult<Vec<Claimed>> {
        let now = now_ms();
        self.sweep_tasks(me, n, lease_until, now, now).await
    }

    /// The sweep beside Redis dispatch: claims up to `n` tasks that are
    /// free and were visible by `free_before` (their stream entry was lost,
    /// or they waited for a retry's delay), or whose claim expired by
    /// `expired_before` (a dead worker's, when XAUTOCLAIM did not take them
    /// over first).
    pub async fn sweep_tasks(&self, me: &str, n: usize, lease_until: u64, free_before: u64, expired_before: u64) -> StoreResult<Vec<Claimed>> {
        let rows = sqlx::query(
            "UPDATE tasks t SET claimed_by = $1, visible_ms = $2
             FROM (SELECT run_id, step, item, claimed_by AS prev FROM tasks
                   WHERE visible_ms <= GREATEST($3, $5) AND visible_ms <= CASE WHEN claimed_by IS NULL THEN $3 ELSE $5 END
                   ORDER BY visible_ms LIMIT $4 FOR UPDATE SKIP LOCKED) c
             WHERE t.run_id = c.run_id AND t.step = c.step AND t.item = c.item
             RETURNING t.run_id, t.step, t.item, t.attempt, t.fallback, c.prev",
        )
        .bind(me)
        .bind(ms(lease_until))
        .bind(ms(free_before))
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .bind(ms(expired_before))
        .fetch_all(self.pool())
        .await?;
        claimed_rows(rows)
    }

    /// Claims the tasks named by stream entries, those that are visible
    /// (free, or a dead worker's whose lease expired) and not locked by
    /// another claim; the others (taken, held, gone) are not returned.
    pub async fn claim_keys(&self, me: &str, keys: &[TaskRef], lease_until: u64) -> StoreResult<Vec<Claimed>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let runs: Vec<&str> = keys.iter().map(|k| k.run_id.as_str()).collect();
        let steps: Vec<i32> = keys.iter().map(|k| k.step).collect();
        let items: Vec<i32> = keys.iter().map(|k| k.item).collect();
        let rows = sqlx::query(
            "UPDATE tasks t SET claimed_by = $1, visible_ms = $2
             FROM (SELECT x.run_id, x.step, x.item, x.claimed_by AS prev FROM tasks x
                   JOIN UNNEST($4::text[], $5::int[], $6::int[]) AS k(r, s, i) ON x.run_id = k.r AND x.step = k.s AND x.item = k.i
                   WHERE x.visible_ms <= $3 FOR UPDATE OF x SKIP LOCKED) c
             WHERE t.run_id = c.run_id AND t.step = c.step AND t.item = c.item
             RETURNING t.run_id, t.step, t.item, t.attempt, t.fallback, c.prev",
        )
        .bind(me)
        .bind(ms(lease_until))
        .bind(ms(now_ms()))
        .bind(&runs)
        .bind(&steps)
        .bind(&items)
        .fetch_all(self.pool())
        .await?;
        claimed_rows(rows)
    }

    /// Cancels, pauses or resumes a fleet run in one transaction under its
    /// row lock (see [`super::Store::fleet_control`]).
    pub async fn control_run(&self, run_id: &str, action: FleetAction, by: &str) -> StoreResult<Option<Vec<TaskRef>>> {
        let mut tx = begin(self.pool(), run_id).await?;
        if sqlx::query("SELECT 1 FROM fleet_runs WHERE run_id = $1").bind(run_id).fetch_optional(&mut *tx.tx).await?.is_none() {
            return Ok(None);
        }
        let refuse = |status: &str| StoreError::ControlRefused { run_id: run_id.to_string(), action: action.as_str(), status: status.to_string() };
        let ended = matches!(tx.status.as_str(), "succeeded" | "failed") || (tx.status == "cancelled" && !tx.held);
        let decision = |what: &str| crate::audit::Decision::new(what, None, serde_json::json!({"by": by, "fleet": true}));
        let mut ready = Vec::new();
        match action {
            FleetAction::Cancel => {
                if ended {
                    return Err(refuse(&tx.status));
                }
                let mut batch = Batch { decisions: vec![decision("cancel")], ..Default::default() };
                if !tx.held {
                    // A paused run journaled its `run.interrupted` already.
                    batch.transitions.push(Transition::RunInterrupted);
                }
                write_batch(&mut tx.tx, run_id, &batch, None).await?;
                sqlx::query("DELETE FROM tasks WHERE run_id = $1").bind(run_id).execute(&mut *tx.tx).await?;
                sqlx::query("DELETE FROM run_pauses WHERE run_id = $1").bind(run_id).execute(&mut *tx.tx).await?;
            }
            FleetAction::Pause => {
                if ended || tx.held {
                    return Err(refuse(if tx.held { "paused already" } else { &tx.status }));
                }
                let batch = Batch { transitions: vec![Transition::RunInterrupted], decisions: vec![decision("pause")], ..Default::default() };
                write_batch(&mut tx.tx, run_id, &batch, None).await?;
                // Free tasks are held; claimed ones finish and are committed
                // (a worker commits results of a paused run but decides
                // nothing new, so it launches nothing).
                sqlx::query("UPDATE tasks SET visible_ms = $2 WHERE run_id = $1 AND claimed_by IS NULL").bind(run_id).bind(HELD).execute(&mut *tx.tx).await?;
                sqlx::query(
                    "INSERT INTO run_pauses (run_id, by, at_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (run_id) DO UPDATE SET by = excluded.by, at_ms = excluded.at_ms",
                )
                .bind(run_id)
                .bind(by)
                .bind(ms(now_ms()))
                .execute(&mut *tx.tx)
                .await?;
            }
            FleetAction::Resume => {
                if !tx.held {
                    return Err(refuse(&format!("{}, not paused", tx.status)));
                }
                let batch = Batch { transitions: vec![Transition::RunResumed], decisions: vec![decision("resume")], ..Default::default() };
                write_batch(&mut tx.tx, run_id, &batch, None).await?;
                sqlx::query("DELETE FROM run_pauses WHERE run_id = $1").bind(run_id).execute(&mut *tx.tx).await?;
                let now = ms(now_ms());
                let rows = sqlx::query("UPDATE tasks SET visible_ms = $2 WHERE run_id = $1 AND visible_ms = $3 AND parked_run IS NULL RETURNING step, item")
                    .bind(run_id)
                    .bind(now)
                    .bind(HELD)
                    .fetch_all(&mut *tx.tx)
                    .await?;
                for r in rows {
                    ready.push(TaskRef { run_id: run_id.to_string(), step: r.try_get(0)?, item: r.try_get(1)? });
                }
                wake_in(&mut tx.tx, run_id, now_ms()).await?;
                ready.push(TaskRef::decide(run_id));
            }
        }
        tx.commit().await?;
        Ok(Some(ready))
    }

    /// Extends the lease of every task `me` holds (the heartbeat).
    pub async fn extend_claims(&self, me: &str, lease_until: u64) -> StoreResult<u64> {
        let r = sqlx::query("UPDATE tasks SET visible_ms = $2 WHERE claimed_by = $1").bind(me).bind(ms(lease_until)).execute(self.pool()).await?;
        Ok(r.rows_affected())
    }

    /// Gives back the claims of `me` (a worker that stops without running them).
    pub async fn release_claims(&self, me: &str) -> StoreResult<()> {
        sqlx::query("UPDATE tasks SET claimed_by = NULL, visible_ms = $2 WHERE claimed_by = $1").bind(me).bind(ms(now_ms())).execute(self.pool()).await?;
        Ok(())
    }

    /// The number of tasks of a run (for tests and `aosc wait`'s messages).
    pub async fn task_count(&self, run_id: &str) -> StoreResult<u64> {
        let r = sqlx::query("SELECT COUNT(*) FROM tasks WHERE run_id = $1").bind(run_id).fetch_one(self.pool()).await?;
        Ok(u64::try_from(r.try_get::<i64, _>(0)?).unwrap_or(0))
    }

    /// Opens the transaction that advances `run_id`: its row is locked until
    /// [`FleetTx::commit`] (or drop, which rolls back).
    pub async fn lock_run(&self, run_id: &str) -> StoreResult<FleetTx> {
        begin(self.pool(), run_id).await
    }
}

fn claimed_rows(rows: Vec<sqlx::postgres::PgRow>) -> StoreResult<Vec<Claimed>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(Claimed {
            run_id: r.try_get(0)?,
            step: r.try_get(1)?,
            item: r.try_get(2)?,
            attempt: u32::try_from(r.try_get::<i32, _>(3)?).unwrap_or(0),
            fallback: r.try_get(4)?,
            prev: r.try_get(5)?,
        });
    }
    Ok(out)
}

async fn begin(pool: &PgPool, run_id: &str) -> StoreResult<FleetTx> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT status, EXISTS (SELECT 1 FROM run_pauses p WHERE p.run_id = $1), audit_head, audit_count, cost_usd
         FROM runs WHERE run_id = $1 FOR UPDATE",
    )
    .bind(run_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| StoreError::NoSuchRun(run_id.to_string()))?;
    let status: String = row.try_get(0)?;
    let mut held: bool = row.try_get(1)?;
    if status == "cancelled" {
        // A `FOR UPDATE` that waited for a pause's commit sees the run's row
        // as that commit left it, but its subquery saw `run_pauses` as it was
        // before: ask again, in a statement of its own (a fresh snapshot).
        // Only a cancelled run can be paused (pause and resume change the
        // status and the mark in one transaction).
        held = sqlx::query("SELECT 1 FROM run_pauses WHERE run_id = $1").bind(run_id).fetch_optional(&mut *tx).await?.is_some();
    }
    let head = RunHead { audit_head: row.try_get(2)?, audit_count: row.try_get(3)?, cost_usd: row.try_get(4)? };
    Ok(FleetTx { tx, run_id: run_id.to_string(), status, held, head: Some(head) })
}

async fn wake_in(tx: &mut sqlx::PgConnection, run_id: &str, at: u64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tasks (run_id, step, item, visible_ms) VALUES ($1, -1, -1, $2)
         ON CONFLICT (run_id, step, item) DO UPDATE SET visible_ms = LEAST(tasks.visible_ms, EXCLUDED.visible_ms), claimed_by = NULL",
    )
    .bind(run_id)
    .bind(ms(at))
    .execute(tx)
    .await?;
    Ok(())
}

/// One transaction on one run, its row locked: read what other workers
/// journaled, settle this worker's tasks, commit the batch the run core
/// decided and the tasks it launches, all or nothing.
pub struct FleetTx {
    tx: Transaction<'static, Postgres>,
    run_id: String,
    /// The run's status when it was locked (`queued`, `running`, …).
    pub status: String,
    /// Paused by an operator (`aosc pause`): results are committed, nothing
    /// new is decided.
    pub held: bool,
    /// The run's audit head and cost under the lock, until a batch is written.
    head: Option<RunHead>,
}

impl FleetTx {
    /// The run's journal entries after `after_id`.
    pub async fn journal_since(&mut self, after_id: i64) -> StoreResult<Vec<(i64, Entry)>> {
        let rows = sqlx::query("SELECT id, at_ms, data FROM journal WHERE run_id = $1 AND id > $2 ORDER BY id")
            .bind(&self.run_id)
            .bind(after_id)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let data: String = row.try_get(2)?;
            let transition = serde_json::from_str(&data)
                .map_err(|e| StoreError::Db(format!("journal entry {id} of `{}` is unreadable: {e}", self.run_id)))?;
            let at: i64 = row.try_get(1)?;
            out.push((id, Entry { run_id: self.run_id.clone(), at_ms: u64::try_from(at).unwrap_or(0), transition }));
        }
        Ok(out)
    }

    /// Deletes the tasks among `keys` that `me` still holds (with the
    /// attempt it claimed) and returns them: only their results may be
    /// committed (a task whose lease expired belongs to another worker now).
    pub async fn settle(&mut self, me: &str, keys: &[(TaskKey, u32)]) -> StoreResult<Vec<TaskKey>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let steps: Vec<i32> = keys.iter().map(|((s, _), _)| *s).collect();
        let items: Vec<i32> = keys.iter().map(|((_, i), _)| *i).collect();
        let attempts: Vec<i32> = keys.iter().map(|(_, a)| i32::try_from(*a).unwrap_or(i32::MAX)).collect();
        let rows = sqlx::query(
            "DELETE FROM tasks t USING UNNEST($3::int[], $4::int[], $5::int[]) AS k(s, i, a)
             WHERE t.run_id = $1 AND t.claimed_by = $2 AND t.step = k.s AND t.item = k.i AND (t.step = -1 OR t.attempt = k.a)
             RETURNING t.step, t.item",
        )
        .bind(&self.run_id)
        .bind(me)
        .bind(&steps)
        .bind(&items)
        .bind(&attempts)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// Journals a batch; returns the id of its last journal entry.
    pub async fn write(&mut self, batch: &Batch) -> StoreResult<Option<i64>> {
        if batch.is_empty() {
            return Ok(None);
        }
        match self.head.take() {
            Some(h) => write_batch_locked(&mut self.tx, &self.run_id, batch, h).await,
            None => write_batch(&mut self.tx, &self.run_id, batch, None).await,
        }
    }

    /// Moves a queued run to `status` (`running` at its first decision;
    /// `waiting_approval` when a wake-up found it still at its gates).
    pub async fn dequeue(&mut self, status: RunStatus) -> StoreResult<()> {
        sqlx::query("UPDATE runs SET status = $2 WHERE run_id = $1 AND status = 'queued'")
            .bind(&self.run_id)
            .bind(status.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Puts launched attempts in the task table.
    pub async fn put_tasks(&mut self, tasks: &[NewTask]) -> StoreResult<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let steps: Vec<i32> = tasks.iter().map(|t| t.step).collect();
        let items: Vec<i32> = tasks.iter().map(|t| t.item).collect();
        let attempts: Vec<i32> = tasks.iter().map(|t| i32::try_from(t.attempt).unwrap_or(i32::MAX)).collect();
        let fallbacks: Vec<bool> = tasks.iter().map(|t| t.fallback).collect();
        let claimed: Vec<Option<String>> = tasks.iter().map(|t| t.claimed_by.clone()).collect();
        let visible: Vec<i64> = tasks.iter().map(|t| ms(t.visible_ms)).collect();
        sqlx::query(
            "INSERT INTO tasks (run_id, step, item, attempt, fallback, claimed_by, visible_ms)
             SELECT $1, s, i, a, f, c, v FROM UNNEST($2::int[], $3::int[], $4::int[], $5::bool[], $6::text[], $7::bigint[]) AS t(s, i, a, f, c, v)
             ON CONFLICT (run_id, step, item) DO UPDATE SET attempt = EXCLUDED.attempt, fallback = EXCLUDED.fallback,
               claimed_by = EXCLUDED.claimed_by, visible_ms = EXCLUDED.visible_ms, parked_run = NULL, parked_reason = NULL",
        )
        .bind(&self.run_id)
        .bind(&steps)
        .bind(&items)
        .bind(&attempts)
        .bind(&fallbacks)
        .bind(&claimed)
        .bind(&visible)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Asks for a decision about the run at `at` (a retry's delay).
    pub async fn wake_at(&mut self, at: u64) -> StoreResult<()> {
        wake_in(&mut self.tx, &self.run_id, at).await
    }

    /// The run ended: no task of it is left.
    pub async fn clear_tasks(&mut self) -> StoreResult<()> {
        sqlx::query("DELETE FROM tasks WHERE run_id = $1").bind(&self.run_id).execute(&mut *self.tx).await?;
        Ok(())
    }

    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
