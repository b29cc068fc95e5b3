//! The audit chain detects a changed, removed or reordered record and names
//! it, in the SQLite store and in the PostgreSQL store alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aos_testkit::{both_stores, stores};

use std::collections::BTreeMap;

use aos_compiler::ir::{SimOptions, Trust};
use aos_runtime::audit::Verdict;
use aos_runtime::testkit::*;
use aos_runtime::{RunOptions, Runtime};
use stores::{Kind, TestStore};

async fn setup(kind: Kind) -> Option<(TestStore, Runtime, String)> {
    let ts = TestStore::open(kind).await?;
    let rt = Runtime::new(ts.store(), ts.dir.path());
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    let mut wf = workflow("a");
    wf.budget_usd = Some(1.0);
    for i in 0..4 {
        add(&mut wf, llm(&format!("s{i}"), "executor", s(&format!("p{i}"))));
    }
    p.workflows.insert("a".into(), wf);
    let r = rt.run(&p, "a", BTreeMap::new(), Trust::Basic, RunOptions::default()).await.unwrap();
    Some((ts, rt, r.run_id))
}

async fn intact_chain_verifies(kind: Kind) {
    let Some((_ts, rt, id)) = setup(kind).await else { return };
    match rt.verify_audit(&id).await.unwrap() {
        Verdict::Intact { records } => assert!(records >= 8, "{records}"),
        other => panic!("{other:?}"),
    }
}

async fn changed_record_is_named(kind: Kind) {
    let Some((ts, rt, id)) = setup(kind).await else { return };
    ts.exec(&format!("UPDATE audit SET data = replace(data, 'true', 'false') WHERE run_id = '{id}' AND seq = 3")).await;
    assert_eq!(
        rt.verify_audit(&id).await.unwrap(),
        Verdict::Broken { seq: 3, reason: "record 3 was changed (its hash does not match its content)".into() }
    );
}

async fn removed_record_is_named(kind: Kind) {
    let Some((ts, rt, id)) = setup(kind).await else { return };
    ts.exec(&format!("DELETE FROM audit WHERE run_id = '{id}' AND seq = 2")).await;
    match rt.verify_audit(&id).await.unwrap() {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 2);
            assert!(reason.contains("record 2 is missing"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

async fn removed_last_record_is_named(kind: Kind) {
    let Some((ts, rt, id)) = setup(kind).await else { return };
    let n = ts.scalar(&format!("SELECT MAX(seq) FROM audit WHERE run_id = '{id}'")).await;
    ts.exec(&format!("DELETE FROM audit WHERE run_id = '{id}' AND seq = {n}")).await;
    match rt.verify_audit(&id).await.unwrap() {
        Verdict::Broken { seq, .. } => assert_eq!(seq as i64, n),
        other => panic!("{other:?}"),
    }
}

async fn reordered_records_are_named(kind: Kind) {
    let Some((ts, rt, id)) = setup(kind).await else { return };
    // Swap the contents of records 2 and 3 (keeping their seq numbers), as an
    // attacker reordering history would.
    ts.exec(&format!("UPDATE audit SET seq = -1 WHERE run_id = '{id}' AND seq = 2")).await;
    ts.exec(&format!("UPDATE audit SET seq = 2 WHERE run_id = '{id}' AND seq = 3")).await;
    ts.exec(&format!("UPDATE audit SET seq = 3 WHERE run_id = '{id}' AND seq = -1")).await;
    match rt.verify_audit(&id).await.unwrap() {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 2);
            assert!(reason.contains("out of order"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

both_stores!(
    intact_chain_verifies,
    changed_record_is_named,
    removed_record_is_named,
    removed_last_record_is_named,
    reordered_records_are_named,
);
