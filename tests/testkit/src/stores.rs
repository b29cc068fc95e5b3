//! The store under test, SQLite or PostgreSQL, so that one test body runs
//! against both. A PostgreSQL store gets a schema of its own in the test
//! server (`AOS_TEST_PG_URL`, else a server started for the test), so tests
//! running at once never see each other's rows.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use aos_runtime::store::postgres::PostgresStore;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::store::Store;

use crate::services::Postgres;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>, Postgres),
}

/// A store of `kind` and a scratch directory (the runtime's home).
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
}

fn unique_schema() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("t_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos)
}

impl TestStore {
    /// `None` (said loudly) when PostgreSQL is wanted and cannot be had outside CI.
    pub async fn open(kind: Kind) -> Option<TestStore> {
        let dir = tempfile::tempdir().unwrap();
        let backend = match kind {
            Kind::Sqlite => Backend::Sqlite(Arc::new(SqliteStore::open(&dir.path().join("aos.db")).await.unwrap())),
            Kind::Postgres => {
                let pg = Postgres::start()?;
                let store = PostgresStore::open_in_schema(&pg.url, Some(&unique_schema())).await.unwrap();
                Backend::Postgres(Arc::new(store), pg)
            }
        };
        Some(TestStore { dir, backend })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match &self.backend {
            Backend::Sqlite(s) => s.clone(),
            Backend::Postgres(s, _) => s.clone(),
        }
    }

    /// Runs one SQL statement behind the store's back (values inlined).
    pub async fn exec(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite(s) => {
                sqlx::query(sql).execute(s.pool()).await.unwrap();
            }
            Backend::Postgres(s, _) => {
                sqlx::query(sql).execute(s.pool()).await.unwrap();
            }
        }
    }

    /// One integer from SQL.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match &self.backend {
            Backend::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
            Backend::Postgres(s, _) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
        }
    }
}

/// Defines `mod sqlite { #[tokio::test] fn NAME }` and `mod postgres { … }`
/// for each `async fn NAME(kind: Kind)` listed.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name($crate::stores::Kind::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name($crate::stores::Kind::Postgres).await })*
        }
    };
}
