//! What the model fabric keeps in the embedded store: the response cache
//! (migration 0080) and the models' measured statistics (0081).

use sqlx::Row;

use super::sqlite::SqliteStore;
use super::StoreResult;

/// Milliseconds as SQLite's INTEGER (saturating: far expiries stay far).
fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteStore {
    pub(super) async fn cache_get_inner(&self, key: &str, now_ms: u64) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT entry FROM response_cache WHERE key = ? AND expires_ms > ?")
            .bind(key)
            .bind(ms(now_ms))
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    pub(super) async fn cache_put_inner(&self, key: &str, entry: &str, now_ms: u64, expires_ms: u64) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM response_cache WHERE expires_ms <= ?").bind(ms(now_ms)).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO response_cache (key, entry, created_ms, expires_ms) VALUES (?, ?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET entry = excluded.entry, created_ms = excluded.created_ms, expires_ms = excluded.expires_ms",
        )
        .bind(key)
        .bind(entry)
        .bind(ms(now_ms))
        .bind(ms(expires_ms))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn stats_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<crate::stats::ModelStats> {
    let n = |c: &str| -> StoreResult<u64> { Ok(u64::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0)) };
    Ok(crate::stats::ModelStats {
        key: r.try_get("model_key")?,
        calls: n("calls")?,
        errors: n("errors")?,
        latency_ms_total: n("latency_ms_total")?,
        cost_usd_total: r.try_get("cost_usd_total")?,
        verified: n("verified")?,
        verified_ok: n("verified_ok")?,
        updated_ms: n("updated_ms")?,
    })
}

impl SqliteStore {
    pub(super) async fn record_model_sample_inner(&self, s: &crate::stats::Sample, now_ms: u64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO model_stats (model_key, calls, errors, latency_ms_total, cost_usd_total, verified, verified_ok, updated_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_key) DO UPDATE SET \
             calls = model_stats.calls + excluded.calls, errors = model_stats.errors + excluded.errors, \
             latency_ms_total = model_stats.latency_ms_total + excluded.latency_ms_total, \
             cost_usd_total = model_stats.cost_usd_total + excluded.cost_usd_total, \
             verified = model_stats.verified + excluded.verified, verified_ok = model_stats.verified_ok + excluded.verified_ok, \
             updated_ms = excluded.updated_ms",
        )
        .bind(&s.key)
        .bind(1i64)
        .bind(i64::from(!s.ok))
        .bind(ms(s.latency_ms))
        .bind(s.cost_usd)
        .bind(i64::from(s.verified.is_some()))
        .bind(i64::from(s.verified == Some(true)))
        .bind(ms(now_ms))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(super) async fn model_stats_inner(&self) -> StoreResult<Vec<crate::stats::ModelStats>> {
        let rows = sqlx::query(
            "SELECT model_key, calls, errors, latency_ms_total, cost_usd_total, verified, verified_ok, updated_ms FROM model_stats ORDER BY model_key",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(stats_row).collect()
    }
}
