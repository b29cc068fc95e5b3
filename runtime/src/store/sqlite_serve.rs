//! What `aosc serve` keeps in the embedded store: API tokens (hashed), the
//! cron ticks already fired, and control requests (see migration 0030).

use sqlx::Row;

use super::sqlite::SqliteStore;
use super::{now_i64, split_groups, StoreResult, TokenRow};
use crate::ids::{now_ms, rfc3339};

fn token_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<TokenRow> {
    let groups: String = r.try_get("groups")?;
    Ok(TokenRow {
        name: r.try_get("name")?,
        hash: r.try_get("hash")?,
        trust: r.try_get("trust")?,
        groups: split_groups(&groups),
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl SqliteStore {
    pub(super) async fn token_create_inner(&self, t: TokenRow) -> StoreResult<()> {
        let exists = sqlx::query("SELECT 1 FROM api_tokens WHERE name = ?").bind(&t.name).fetch_optional(self.pool()).await?;
        if exists.is_some() {
            return Err(super::StoreError::Unsupported(format!(
                "a token named `{}` exists already (revoked tokens keep their name); choose another name",
                t.name
            )));
        }
        sqlx::query("INSERT INTO api_tokens (name, hash, trust, groups, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&t.name)
            .bind(&t.hash)
            .bind(&t.trust)
            .bind(t.groups.join(","))
            .bind(&t.created_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub(super) async fn tokens_inner(&self) -> StoreResult<Vec<TokenRow>> {
        let rows = sqlx::query("SELECT name, hash, trust, groups, created_at, revoked_at FROM api_tokens ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(token_row).collect()
    }

    pub(super) async fn token_revoke_inner(&self, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL")
            .bind(rfc3339(now_ms()))
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn token_by_hash_inner(&self, hash: &str) -> StoreResult<Option<TokenRow>> {
        let row = sqlx::query("SELECT name, hash, trust, groups, created_at, revoked_at FROM api_tokens WHERE hash = ? AND revoked_at IS NULL")
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    pub(super) async fn claim_tick_inner(&self, key: &str, tick_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query("INSERT OR IGNORE INTO cron_ticks (trigger_key, tick_ms, fired_at_ms) VALUES (?, ?, ?)")
            .bind(key)
            .bind(tick_ms)
            .bind(now_i64())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn last_tick_inner(&self, key: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT MAX(tick_ms) FROM cron_ticks WHERE trigger_key = ?").bind(key).fetch_one(self.pool()).await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    pub(super) async fn request_control_inner(&self, run_id: &str, action: &str, by: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO run_control (run_id, action, by, at_ms) VALUES (?, ?, ?, ?) \
             ON CONFLICT(run_id) DO UPDATE SET action = excluded.action, by = excluded.by, at_ms = excluded.at_ms",
        )
        .bind(run_id)
        .bind(action)
        .bind(by)
        .bind(now_i64())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(super) async fn take_control_inner(&self) -> StoreResult<Vec<(String, String, String)>> {
        let mut tx = self.pool().begin().await?;
        let rows = sqlx::query("SELECT run_id, action, by FROM run_control ORDER BY at_ms").fetch_all(&mut *tx).await?;
        sqlx::query("DELETE FROM run_control").execute(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    }

    pub(super) async fn set_paused_inner(&self, run_id: &str, by: Option<&str>) -> StoreResult<()> {
        match by {
            Some(by) => {
                sqlx::query(
                    "INSERT INTO run_pauses (run_id, by, at_ms) VALUES (?, ?, ?) \
                     ON CONFLICT(run_id) DO UPDATE SET by = excluded.by, at_ms = excluded.at_ms",
                )
                .bind(run_id)
                .bind(by)
                .bind(now_i64())
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM run_pauses WHERE run_id = ?").bind(run_id).execute(self.pool()).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn paused_inner(&self, run_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT by FROM run_pauses WHERE run_id = ?").bind(run_id).fetch_optional(self.pool()).await?;
        row.map(|r| r.try_get::<String, _>(0).map_err(super::StoreError::from)).transpose()
    }
}
