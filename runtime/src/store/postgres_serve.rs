//! What `aosc serve` keeps in the shared store (PostgreSQL migration 0020):
//! API tokens (hashed), the cron ticks already fired, control requests and
//! paused runs. The same rows as the SQLite store's `sqlite_serve`, so that
//! several servers and workers on one database share them.

use sqlx::Row;

use super::postgres::PostgresStore;
use super::{now_i64, split_groups, StoreError, StoreResult, TokenRow};
use crate::ids::{now_ms, rfc3339};

fn token_row(r: &sqlx::postgres::PgRow) -> StoreResult<TokenRow> {
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

const TOKEN_COLUMNS: &str = "name, hash, trust, groups, created_at, revoked_at";

impl PostgresStore {
    pub(super) async fn token_create_inner(&self, t: TokenRow) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO api_tokens (name, hash, trust, groups, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&t.name)
        .bind(&t.hash)
        .bind(&t.trust)
        .bind(t.groups.join(","))
        .bind(&t.created_at)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Unsupported(format!(
                "a token named `{}` exists already (revoked tokens keep their name); choose another name",
                t.name
            )));
        }
        Ok(())
    }

    pub(super) async fn tokens_inner(&self) -> StoreResult<Vec<TokenRow>> {
        let rows = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name")).fetch_all(self.pool()).await?;
        rows.iter().map(token_row).collect()
    }

    pub(super) async fn token_revoke_inner(&self, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(rfc3339(now_ms()))
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn token_by_hash_inner(&self, hash: &str) -> StoreResult<Option<TokenRow>> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL"))
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    pub(super) async fn claim_tick_inner(&self, key: &str, tick_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query("INSERT INTO cron_ticks (trigger_key, tick_ms, fired_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(key)
            .bind(tick_ms)
            .bind(now_i64())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn last_tick_inner(&self, key: &str) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT MAX(tick_ms) FROM cron_ticks WHERE trigger_key = $1").bind(key).fetch_one(self.pool()).await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    pub(super) async fn request_control_inner(&self, run_id: &str, action: &str, by: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO run_control (run_id, action, by, at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (run_id) DO UPDATE SET action = excluded.action, by = excluded.by, at_ms = excluded.at_ms",
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
        // One statement: two servers polling at once each get a request at
        // most once.
        let rows = sqlx::query("DELETE FROM run_control RETURNING run_id, action, by, at_ms").fetch_all(self.pool()).await?;
        let mut out: Vec<(i64, (String, String, String))> = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((r.try_get(3)?, (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)));
        }
        out.sort_by_key(|(at, _)| *at);
        Ok(out.into_iter().map(|(_, req)| req).collect())
    }

    pub(super) async fn set_paused_inner(&self, run_id: &str, by: Option<&str>) -> StoreResult<()> {
        match by {
            Some(by) => {
                sqlx::query(
                    "INSERT INTO run_pauses (run_id, by, at_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (run_id) DO UPDATE SET by = excluded.by, at_ms = excluded.at_ms",
                )
                .bind(run_id)
                .bind(by)
                .bind(now_i64())
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM run_pauses WHERE run_id = $1").bind(run_id).execute(self.pool()).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn paused_inner(&self, run_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT by FROM run_pauses WHERE run_id = $1").bind(run_id).fetch_optional(self.pool()).await?;
        row.map(|r| r.try_get::<String, _>(0).map_err(StoreError::from)).transpose()
    }
}
