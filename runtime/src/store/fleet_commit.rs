//! The round trips of a fleet worker's commit, fewest first: after the
//! run's row lock, one statement settles the worker's tasks and reads what
//! other workers journaled since; one statement writes the batch (journal,
//! audit, idempotency records, the run's head and status) together with the
//! tasks it launches. With `BEGIN` and `COMMIT` that is five round trips a
//! commit, whatever the batch holds.

use sqlx::Row;

use super::{ms, FleetTx, NewTask, TaskKey};
use crate::events::Entry;
use crate::store::{Batch, StoreError, StoreResult};

impl FleetTx {
    /// Deletes the tasks among `keys` that `me` still holds (with the
    /// attempt it claimed), returning them (only their results may be
    /// committed: a task whose lease expired belongs to another worker now),
    /// and reads the run's journal entries after `after_id`: one statement,
    /// whose snapshot is taken after the run's row lock was granted.
    pub async fn settle_and_catch_up(&mut self, me: &str, keys: &[(TaskKey, u32)], after_id: i64) -> StoreResult<(Vec<TaskKey>, Vec<(i64, Entry)>)> {
        let steps: Vec<i32> = keys.iter().map(|((s, _), _)| *s).collect();
        let items: Vec<i32> = keys.iter().map(|((_, i), _)| *i).collect();
        let attempts: Vec<i32> = keys.iter().map(|(_, a)| i32::try_from(*a).unwrap_or(i32::MAX)).collect();
        let rows = sqlx::query(
            "WITH d AS (DELETE FROM tasks t USING UNNEST($3::int[], $4::int[], $5::int[]) AS k(s, i, a)
                        WHERE t.run_id = $1 AND t.claimed_by = $2 AND t.step = k.s AND t.item = k.i AND (t.step = -1 OR t.attempt = k.a)
                        RETURNING t.step, t.item)
             SELECT 0::bigint AS id, 0::bigint AS at_ms, NULL::text AS data, step, item FROM d
             UNION ALL
             SELECT id, at_ms, data, NULL::int, NULL::int FROM journal WHERE run_id = $1 AND id > $6
             ORDER BY 1",
        )
        .bind(&self.run_id)
        .bind(me)
        .bind(&steps)
        .bind(&items)
        .bind(&attempts)
        .bind(after_id)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut owned = Vec::new();
        let mut entries = Vec::new();
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let Some(data) = row.try_get::<Option<String>, _>(2)? else {
                owned.push((row.try_get(3)?, row.try_get(4)?));
                continue;
            };
            let transition = serde_json::from_str(&data)
                .map_err(|e| StoreError::Db(format!("journal entry {id} of `{}` is unreadable: {e}", self.run_id)))?;
            let at: i64 = row.try_get(1)?;
            entries.push((id, Entry { run_id: self.run_id.clone(), at_ms: u64::try_from(at).unwrap_or(0), transition }));
        }
        Ok((owned, entries))
    }

    /// Journals a batch and puts launched attempts in the task table, in one
    /// statement when this is the transaction's first write (else as
    /// [`FleetTx::write`] and [`FleetTx::put_tasks`] do). Returns the id of
    /// the batch's last journal entry.
    pub async fn write_with_tasks(&mut self, batch: &Batch, tasks: &[NewTask]) -> StoreResult<Option<i64>> {
        if batch.is_empty() || self.head.is_none() {
            let id = self.write(batch).await?;
            self.put_tasks(tasks).await?;
            return Ok(id);
        }
        let Some(head) = self.head.take() else { return Ok(None) };
        let p = super::super::postgres_batch::prepare(&self.run_id, batch, head)?;
        let steps: Vec<i32> = tasks.iter().map(|t| t.step).collect();
        let items: Vec<i32> = tasks.iter().map(|t| t.item).collect();
        let attempts: Vec<i32> = tasks.iter().map(|t| i32::try_from(t.attempt).unwrap_or(i32::MAX)).collect();
        let fallbacks: Vec<bool> = tasks.iter().map(|t| t.fallback).collect();
        let claimed: Vec<Option<&str>> = tasks.iter().map(|t| t.claimed_by.as_deref()).collect();
        let visible: Vec<i64> = tasks.iter().map(|t| ms(t.visible_ms)).collect();
        let row = sqlx::query(
            "WITH j AS (INSERT INTO journal (run_id, at_ms, kind, data)
                        SELECT $1, $2, k, d FROM UNNEST($3::text[], $4::text[]) WITH ORDINALITY AS t(k, d, n) ORDER BY n
                        RETURNING id),
                  a AS (INSERT INTO audit (run_id, seq, at_ms, kind, step, data, prev_hash, hash)
                        SELECT $1, s, $2, k, st, d, p, h
                        FROM UNNEST($5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) AS t(s, k, st, d, p, h)
                        ORDER BY s),
                  i AS (INSERT INTO idempotency (key, run_id, step, output)
                        SELECT k, $1, s, o FROM UNNEST($11::text[], $12::text[], $13::text[]) AS t(k, s, o)
                        ON CONFLICT (key) DO NOTHING),
                  tk AS (INSERT INTO tasks (run_id, step, item, attempt, fallback, claimed_by, visible_ms)
                        SELECT $1, s, i, a, f, c, v FROM UNNEST($14::int[], $15::int[], $16::int[], $17::bool[], $18::text[], $19::bigint[]) AS t(s, i, a, f, c, v)
                        ON CONFLICT (run_id, step, item) DO UPDATE SET attempt = EXCLUDED.attempt, fallback = EXCLUDED.fallback,
                          claimed_by = EXCLUDED.claimed_by, visible_ms = EXCLUDED.visible_ms, parked_run = NULL, parked_reason = NULL),
                  r AS (UPDATE runs SET audit_head = $20, audit_count = $21, cost_usd = $22, updated_at = $23,
                        status = COALESCE($24, status),
                        output = COALESCE($25, output),
                        error = CASE WHEN $24 = 'running' THEN NULL ELSE COALESCE($26, error) END
                        WHERE run_id = $1)
             SELECT max(id) FROM j",
        )
        .bind(&self.run_id)
        .bind(p.at)
        .bind(&p.kinds)
        .bind(&p.datas)
        .bind(&p.seqs)
        .bind(&p.dkinds)
        .bind(&p.dsteps)
        .bind(&p.ddata)
        .bind(&p.prevs)
        .bind(&p.hashes)
        .bind(&p.idem_keys)
        .bind(&p.idem_steps)
        .bind(&p.idem_outputs)
        .bind(&steps)
        .bind(&items)
        .bind(&attempts)
        .bind(&fallbacks)
        .bind(&claimed)
        .bind(&visible)
        .bind(&p.head)
        .bind(p.count)
        .bind(p.cost)
        .bind(&p.updated_at)
        .bind(p.status)
        .bind(p.output.as_deref())
        .bind(p.error.as_deref())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get(0)?)
    }
}
