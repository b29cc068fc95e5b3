//! `sql.query` and `sql.execute` against the database `AOS_SQL_URL` names
//! (PostgreSQL or SQLite). Parameters are always bound (`$1`, `$2`, …), never
//! spliced into the SQL; rows come back as JSON objects keyed by column name.

use std::time::Duration;

use serde_json::{json, Map, Number, Value};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{Column, Row, TypeInfo, ValueRef};
use tokio::sync::OnceCell;

use super::{Tool, ToolCtx, ToolError};
use crate::store::BoxFuture;

/// How long connecting to the database may take before the step fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

enum Pool {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

/// The connection to `AOS_SQL_URL`, opened on first use and shared by both
/// tools of a runtime.
pub struct SqlDb {
    url: Option<String>,
    pool: OnceCell<Pool>,
}

impl SqlDb {
    pub fn new(url: Option<String>) -> SqlDb {
        SqlDb { url, pool: OnceCell::new() }
    }

    async fn pool(&self) -> Result<&Pool, ToolError> {
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| ToolError::Unavailable("sql tools need a database: set AOS_SQL_URL (postgres://… or sqlite://…)".into()))?;
        self.pool.get_or_try_init(|| connect(url)).await
    }
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = url.get(s + 3..at).unwrap_or("");
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", url.get(..s + 3).unwrap_or(""), url.get(at..).unwrap_or(""))
        }
        _ => url.to_string(),
    }
}

async fn connect(url: &str) -> Result<Pool, ToolError> {
    let shown = redact(url);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(url)
            .await
            .map(Pool::Pg)
            .map_err(|e| ToolError::Transport(format!("cannot connect to the SQL database `{shown}` (AOS_SQL_URL): {e}")))
    } else if url.starts_with("sqlite:") {
        let opts: SqliteConnectOptions =
            url.parse().map_err(|e| ToolError::Unavailable(format!("AOS_SQL_URL `{shown}` is not a valid SQLite URL: {e}")))?;
        SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(opts)
            .await
            .map(Pool::Sqlite)
            .map_err(|e| ToolError::Transport(format!("cannot open the SQL database `{shown}` (AOS_SQL_URL): {e}")))
    } else {
        Err(ToolError::Unavailable(format!("AOS_SQL_URL `{shown}`: expected a postgres:// or sqlite:// URL")))
    }
}

fn args(args: &Value) -> Result<(&str, Vec<Value>), ToolError> {
    let sql = args.get("sql").and_then(Value::as_str).ok_or_else(|| ToolError::BadInput("missing String argument `sql`".into()))?;
    let params = match args.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => return Err(ToolError::BadInput(format!("`params` must be a list, got {other}"))),
    };
    Ok((sql, params))
}

fn bind_pg<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    params: &[Value],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for p in params {
        q = match p {
            Value::Null => q.bind(None::<String>),
            Value::Bool(b) => q.bind(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => q.bind(i),
                None => q.bind(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.clone()),
        };
    }
    q
}

fn bind_sqlite<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    params: &[Value],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for p in params {
        q = match p {
            Value::Null => q.bind(None::<String>),
            Value::Bool(b) => q.bind(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => q.bind(i),
                None => q.bind(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.to_string()),
        };
    }
    q
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
}

fn be<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.get(..N).and_then(|s| s.try_into().ok())
}

/// PostgreSQL's binary NUMERIC: ndigits, weight, sign, dscale, then base-10000
/// digits. Rendered as a decimal string, then as a JSON number when it fits.
fn pg_numeric(b: &[u8]) -> Option<Value> {
    let ndigits = i16::from_be_bytes(be(b)?);
    let weight = i16::from_be_bytes(be(b.get(2..)?)?);
    let sign = u16::from_be_bytes(be(b.get(4..)?)?);
    let dscale = u16::from_be_bytes(be(b.get(6..)?)?);
    if sign == 0xC000 {
        return Some(Value::String("NaN".into()));
    }
    let mut digits = Vec::new();
    for i in 0..usize::try_from(ndigits).ok()? {
        digits.push(i16::from_be_bytes(be(b.get(8 + 2 * i..)?)?));
    }
    let mut int = String::new();
    let mut frac = String::new();
    for (i, d) in digits.iter().enumerate() {
        let pos = i64::from(weight) - i as i64;
        if pos >= 0 {
            if int.is_empty() {
                int = d.to_string();
            } else {
                int.push_str(&format!("{d:04}"));
            }
        } else {
            frac.push_str(&format!("{d:04}"));
        }
    }
    // Digit groups omitted between the last digit and the decimal point are zeros.
    let last_pos = i64::from(weight) - digits.len() as i64 + 1;
    if last_pos > 0 && !int.is_empty() {
        for _ in 0..last_pos {
            int.push_str("0000");
        }
    }
    // Leading zero groups after the point when weight < -1.
    if weight < -1 {
        frac = "0000".repeat(usize::try_from(-i64::from(weight) - 1).ok()?) + &frac;
    }
    if int.is_empty() {
        int = "0".into();
    }
    let scale = usize::from(dscale);
    while frac.len() < scale {
        frac.push('0');
    }
    frac.truncate(scale);
    let text = format!("{}{int}{}{frac}", if sign == 0x4000 { "-" } else { "" }, if scale > 0 { "." } else { "" });
    Some(serde_json::from_str::<Number>(&text).map(Value::Number).unwrap_or(Value::String(text)))
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// PostgreSQL's epoch (2000-01-01) in days since 1970-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

fn pg_timestamp(micros: i64, tz: bool) -> String {
    let secs = micros.div_euclid(1_000_000);
    let us = micros.rem_euclid(1_000_000);
    let (y, m, d) = civil(secs.div_euclid(86_400) + PG_EPOCH_DAYS);
    let s = secs.rem_euclid(86_400);
    let frac = if us == 0 { String::new() } else { format!(".{us:06}") };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}{}", s / 3600, s / 60 % 60, s % 60, if tz { "Z" } else { "" })
}

fn pg_value(row: &PgRow, i: usize) -> Result<Value, ToolError> {
    let raw = row.try_get_raw(i).map_err(|e| ToolError::Failed(e.to_string()))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_string();
    let col = row.columns().get(i).map(|c| c.name().to_string()).unwrap_or_default();
    let err = |e: sqlx::Error| ToolError::Failed(format!("column `{col}` ({ty}): {e}"));
    let bytes = || raw.as_bytes().map_err(|e| ToolError::Failed(format!("column `{col}` ({ty}): {e}")));
    let malformed = |what: &str| ToolError::Failed(format!("column `{col}`: malformed {what} value"));
    Ok(match ty.as_str() {
        "BOOL" => Value::Bool(row.try_get::<bool, _>(i).map_err(err)?),
        "INT2" => json!(row.try_get::<i16, _>(i).map_err(err)?),
        "INT4" => json!(row.try_get::<i32, _>(i).map_err(err)?),
        "INT8" => json!(row.try_get::<i64, _>(i).map_err(err)?),
        "FLOAT4" => float(f64::from(row.try_get::<f32, _>(i).map_err(err)?)),
        "FLOAT8" => float(row.try_get::<f64, _>(i).map_err(err)?),
        "JSON" | "JSONB" => row.try_get::<Value, _>(i).map_err(err)?,
        "BYTEA" => Value::String(hex::encode(row.try_get::<Vec<u8>, _>(i).map_err(err)?)),
        "NUMERIC" => pg_numeric(bytes()?).ok_or_else(|| malformed("NUMERIC"))?,
        "DATE" => {
            let days = i32::from_be_bytes(be(bytes()?).ok_or_else(|| malformed("DATE"))?);
            let (y, m, d) = civil(i64::from(days) + PG_EPOCH_DAYS);
            Value::String(format!("{y:04}-{m:02}-{d:02}"))
        }
        "TIMESTAMP" | "TIMESTAMPTZ" => {
            let micros = i64::from_be_bytes(be(bytes()?).ok_or_else(|| malformed("TIMESTAMP"))?);
            Value::String(pg_timestamp(micros, ty == "TIMESTAMPTZ"))
        }
        "UUID" => {
            let h = hex::encode(bytes()?);
            match (h.get(..8), h.get(8..12), h.get(12..16), h.get(16..20), h.get(20..)) {
                (Some(a), Some(b), Some(c), Some(d), Some(e)) => Value::String(format!("{a}-{b}-{c}-{d}-{e}")),
                _ => Value::String(h),
            }
        }
        _ => match row.try_get::<String, _>(i) {
            Ok(s) => Value::String(s),
            Err(_) => {
                return Err(ToolError::Failed(format!(
                    "column `{col}` has type {ty}, which sql.query cannot convert to JSON; cast it in the SQL (e.g. `{col}::text`)"
                )));
            }
        },
    })
}

fn sqlite_value(row: &SqliteRow, i: usize) -> Result<Value, ToolError> {
    let raw = row.try_get_raw(i).map_err(|e| ToolError::Failed(e.to_string()))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let ty = raw.type_info().name().to_string();
    let col = row.columns().get(i).map(|c| c.name().to_string()).unwrap_or_default();
    let declared = row.columns().get(i).map(|c| c.type_info().name().to_string()).unwrap_or_default();
    let err = |e: sqlx::Error| ToolError::Failed(format!("column `{col}`: {e}"));
    Ok(match ty.as_str() {
        "INTEGER" | "INT8" | "BOOLEAN" if declared == "BOOLEAN" => Value::Bool(row.try_get::<i64, _>(i).map_err(err)? != 0),
        "INTEGER" | "INT8" | "BOOLEAN" => json!(row.try_get::<i64, _>(i).map_err(err)?),
        "REAL" => float(row.try_get::<f64, _>(i).map_err(err)?),
        "BLOB" => Value::String(hex::encode(row.try_get::<Vec<u8>, _>(i).map_err(err)?)),
        _ => Value::String(row.try_get::<String, _>(i).map_err(err)?),
    })
}

fn object(names: Vec<String>, values: Vec<Value>) -> Value {
    Value::Object(names.into_iter().zip(values).collect::<Map<_, _>>())
}

/// `sql.query`: rows as JSON objects.
pub struct Query(pub std::sync::Arc<SqlDb>);
/// `sql.execute`: `{ rows_affected }`.
pub struct Execute(pub std::sync::Arc<SqlDb>);

fn sql_error(e: sqlx::Error) -> ToolError {
    match e {
        sqlx::Error::Database(d) => ToolError::Failed(format!("the database refused the SQL: {}", d.message())),
        e @ (sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_)) => {
            ToolError::Transport(format!("the SQL failed: {e}"))
        }
        other => ToolError::Failed(format!("the SQL failed: {other}")),
    }
}

impl Tool for Query {
    fn call<'a>(&'a self, a: Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let (sql, params) = args(&a)?;
            let rows = match self.0.pool().await? {
                Pool::Pg(pool) => {
                    let rows = bind_pg(sqlx::query(sql), &params).fetch_all(pool).await.map_err(sql_error)?;
                    let mut out = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let names = row.columns().iter().map(|c| c.name().to_string()).collect();
                        let values = (0..row.len()).map(|i| pg_value(row, i)).collect::<Result<Vec<_>, _>>()?;
                        out.push(object(names, values));
                    }
                    out
                }
                Pool::Sqlite(pool) => {
                    let rows = bind_sqlite(sqlx::query(sql), &params).fetch_all(pool).await.map_err(sql_error)?;
                    let mut out = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let names = row.columns().iter().map(|c| c.name().to_string()).collect();
                        let values = (0..row.len()).map(|i| sqlite_value(row, i)).collect::<Result<Vec<_>, _>>()?;
                        out.push(object(names, values));
                    }
                    out
                }
            };
            Ok(Value::Array(rows))
        })
    }
}

impl Tool for Execute {
    fn call<'a>(&'a self, a: Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let (sql, params) = args(&a)?;
            let n = match self.0.pool().await? {
                Pool::Pg(pool) => bind_pg(sqlx::query(sql), &params).execute(pool).await.map_err(sql_error)?.rows_affected(),
                Pool::Sqlite(pool) => {
                    bind_sqlite(sqlx::query(sql), &params).execute(pool).await.map_err(sql_error)?.rows_affected()
                }
            };
            Ok(json!({ "rows_affected": n }))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numeric_and_dates_render() {
        // 1234.50 : ndigits 2, weight 0, sign +, dscale 2, digits [1234, 5000]
        let b = [0, 2, 0, 0, 0, 0, 0, 2, 0x04, 0xD2, 0x13, 0x88];
        assert_eq!(pg_numeric(&b), Some(json!(1234.5)));
        // -0.05 : ndigits 1, weight -1, sign -, dscale 2, digits [500]
        let b = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 2, 0x01, 0xF4];
        assert_eq!(pg_numeric(&b), Some(json!(-0.05)));
        // 20000 : ndigits 1, weight 1, digits [2]
        let b = [0, 1, 0, 1, 0, 0, 0, 0, 0, 2];
        assert_eq!(pg_numeric(&b), Some(json!(20000)));
        assert_eq!(civil(PG_EPOCH_DAYS), (2000, 1, 1));
        assert_eq!(pg_timestamp(86_400_000_000 + 3_723_000_000, true), "2000-01-02T01:02:03Z");
        assert_eq!(redact("postgres://u:secret@h:5/db"), "postgres://u:***@h:5/db");
    }
}
