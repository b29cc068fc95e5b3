//! What the model fabric keeps in the embedded store: the response cache
//! (migration 0080).

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
