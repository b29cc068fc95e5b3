//! The audit chain detects a changed, removed or reordered record and names it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aos_compiler::ir::{SimOptions, Trust};
use aos_runtime::audit::Verdict;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::testkit::*;
use aos_runtime::{RunOptions, Runtime};

async fn setup() -> (tempfile::TempDir, Runtime, Arc<SqliteStore>, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("aos.db")).await.unwrap());
    let rt = Runtime::new(store.clone(), dir.path());
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    let mut wf = workflow("a");
    wf.budget_usd = Some(1.0);
    for i in 0..4 {
        add(&mut wf, llm(&format!("s{i}"), "executor", s(&format!("p{i}"))));
    }
    p.workflows.insert("a".into(), wf);
    let r = rt.run(&p, "a", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    (dir, rt, store, r.run_id)
}

#[tokio::test]
async fn intact_chain_verifies() {
    let (_d, rt, _s, id) = setup().await;
    match rt.verify_audit(&id).await.unwrap() {
        Verdict::Intact { records } => assert!(records >= 8, "{records}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn changed_record_is_named() {
    let (_d, rt, store, id) = setup().await;
    sqlx::query("UPDATE audit SET data = replace(data, 'true', 'false') WHERE run_id = ? AND seq = 3")
        .bind(&id)
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(
        rt.verify_audit(&id).await.unwrap(),
        Verdict::Broken { seq: 3, reason: "record 3 was changed (its hash does not match its content)".into() }
    );
}

#[tokio::test]
async fn removed_record_is_named() {
    let (_d, rt, store, id) = setup().await;
    sqlx::query("DELETE FROM audit WHERE run_id = ? AND seq = 2").bind(&id).execute(store.pool()).await.unwrap();
    match rt.verify_audit(&id).await.unwrap() {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 2);
            assert!(reason.contains("record 2 is missing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn removed_last_record_is_named() {
    let (_d, rt, store, id) = setup().await;
    let n: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit WHERE run_id = ?").bind(&id).fetch_one(store.pool()).await.unwrap();
    sqlx::query("DELETE FROM audit WHERE run_id = ? AND seq = ?").bind(&id).bind(n).execute(store.pool()).await.unwrap();
    match rt.verify_audit(&id).await.unwrap() {
        Verdict::Broken { seq, .. } => assert_eq!(seq as i64, n),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn reordered_records_are_named() {
    let (_d, rt, store, id) = setup().await;
    // Swap the contents of records 2 and 3 (keeping their seq numbers), as an
    // attacker reordering history would.
    let pool = store.pool();
    sqlx::query("UPDATE audit SET seq = -1 WHERE run_id = ? AND seq = 2").bind(&id).execute(pool).await.unwrap();
    sqlx::query("UPDATE audit SET seq = 2 WHERE run_id = ? AND seq = 3").bind(&id).execute(pool).await.unwrap();
    sqlx::query("UPDATE audit SET seq = 3 WHERE run_id = ? AND seq = -1").bind(&id).execute(pool).await.unwrap();
    match rt.verify_audit(&id).await.unwrap() {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 2);
            assert!(reason.contains("out of order"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
