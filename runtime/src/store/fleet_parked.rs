//! Parked attempts (PostgreSQL migration 0035): the attempt of a workflow
//! call whose sub-run paused at an approval gate keeps its task row, hidden
//! from every claim, naming the sub-run and why it waits. Every worker that
//! advances the run reads them (so that all see the same paused units and
//! the same reasons), and runs an attempt again once no gate waits in its
//! sub-run any more (a decision was journaled there).

use sqlx::Row;

use super::{FleetTx, TaskKey, HELD};
use crate::store::StoreResult;

/// An attempt parked while its sub-run waits at a gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parked {
    pub step: i32,
    pub item: i32,
    pub attempt: u32,
    /// The sub-run it waits on (`RUN.STEP` or `RUN.STEP.ITEM`).
    pub sub_run: String,
    /// Why, as the attempt reported it.
    pub reason: String,
}

impl FleetTx {
    /// The run's parked attempts.
    pub async fn parked(&mut self) -> StoreResult<Vec<Parked>> {
        let rows = sqlx::query("SELECT step, item, attempt, parked_run, COALESCE(parked_reason, '') FROM tasks WHERE run_id = $1 AND parked_run IS NOT NULL ORDER BY step, item")
            .bind(&self.run_id)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(Parked {
                step: r.try_get(0)?,
                item: r.try_get(1)?,
                attempt: u32::try_from(r.try_get::<i32, _>(2)?).unwrap_or(0),
                sub_run: r.try_get(3)?,
                reason: r.try_get(4)?,
            });
        }
        Ok(out)
    }

    /// Parks attempts (their task rows were settled in this transaction).
    pub async fn park(&mut self, parked: &[Parked]) -> StoreResult<()> {
        if parked.is_empty() {
            return Ok(());
        }
        let steps: Vec<i32> = parked.iter().map(|p| p.step).collect();
        let items: Vec<i32> = parked.iter().map(|p| p.item).collect();
        let attempts: Vec<i32> = parked.iter().map(|p| i32::try_from(p.attempt).unwrap_or(i32::MAX)).collect();
        let runs: Vec<&str> = parked.iter().map(|p| p.sub_run.as_str()).collect();
        let reasons: Vec<&str> = parked.iter().map(|p| p.reason.as_str()).collect();
        sqlx::query(
            "INSERT INTO tasks (run_id, step, item, attempt, fallback, claimed_by, visible_ms, parked_run, parked_reason)
             SELECT $1, s, i, a, FALSE, NULL, $7, r, w FROM UNNEST($2::int[], $3::int[], $4::int[], $5::text[], $6::text[]) AS t(s, i, a, r, w)
             ON CONFLICT (run_id, step, item) DO UPDATE SET attempt = EXCLUDED.attempt, claimed_by = NULL, visible_ms = EXCLUDED.visible_ms,
               parked_run = EXCLUDED.parked_run, parked_reason = EXCLUDED.parked_reason",
        )
        .bind(&self.run_id)
        .bind(&steps)
        .bind(&items)
        .bind(&attempts)
        .bind(&runs)
        .bind(&reasons)
        .bind(HELD)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Removes the rows of parked attempts that run again.
    pub async fn unpark(&mut self, keys: &[TaskKey]) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let steps: Vec<i32> = keys.iter().map(|k| k.0).collect();
        let items: Vec<i32> = keys.iter().map(|k| k.1).collect();
        sqlx::query(
            "DELETE FROM tasks t USING UNNEST($2::int[], $3::int[]) AS k(s, i)
             WHERE t.run_id = $1 AND t.step = k.s AND t.item = k.i AND t.parked_run IS NOT NULL",
        )
        .bind(&self.run_id)
        .bind(&steps)
        .bind(&items)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Of `sub_runs`, those where a gate still waits for a decision: in the
    /// sub-run or in any run it called (by `runs.parent`, at any depth), a
    /// step whose last approval entry is `approval.requested`.
    pub async fn still_gated(&mut self, sub_runs: &[String]) -> StoreResult<Vec<String>> {
        if sub_runs.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "WITH RECURSIVE tree(sub, run_id) AS (
                    SELECT DISTINCT r, r FROM UNNEST($1::text[]) AS s(r)
                    UNION ALL
                    SELECT tree.sub, runs.run_id FROM tree JOIN runs ON runs.parent = tree.run_id),
                  last AS (SELECT DISTINCT ON (j.run_id, j.data::jsonb ->> 'step') j.run_id, j.kind FROM journal j
                           WHERE j.run_id IN (SELECT run_id FROM tree) AND j.kind IN ('approval.requested', 'approval.granted', 'approval.denied')
                           ORDER BY j.run_id, j.data::jsonb ->> 'step', j.id DESC)
             SELECT DISTINCT tree.sub FROM tree JOIN last ON last.run_id = tree.run_id WHERE last.kind = 'approval.requested'",
        )
        .bind(sub_runs)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
