//! The run-time depth limit on workflow calls: a workflow that calls itself
//! fails at [`MAX_CALL_DEPTH`] instead of creating sub-runs without end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use aos_compiler::ir::{SimOptions, Trust};
use aos_runtime::events::RunStatus;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::store::Store;
use aos_runtime::testkit::*;
use aos_runtime::{call_depth, RunOptions, Runtime, MAX_CALL_DEPTH};

#[test]
fn depth_counts_calls_not_items() {
    assert_eq!(call_depth("01J9Z8"), 0);
    assert_eq!(call_depth("01J9Z8.a"), 1);
    assert_eq!(call_depth("01J9Z8.a.3"), 1);
    assert_eq!(call_depth("01J9Z8.a.3.b"), 2);
    assert_eq!(call_depth("01J9Z8.a.b.c2"), 3);
}

#[tokio::test]
async fn a_workflow_that_calls_itself_fails_at_the_depth_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("aos.db")).await.unwrap());
    let rt = Runtime::new(store.clone(), dir.path());
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("echo", SimOptions::default())]);
    let mut wf = workflow("again");
    add(&mut wf, call("deeper", "again", vec![]));
    wf.ret_expr = Some(step_ref("deeper"));
    p.workflows.insert("again".into(), wf);

    let r = tokio::time::timeout(std::time::Duration::from_secs(60), rt.run(&p, "again", BTreeMap::new(), Trust::Basic, RunOptions::default()))
        .await
        .expect("the recursion ended")
        .unwrap();
    assert_eq!(r.status, RunStatus::Failed, "{r:?}");
    let error = r.error.unwrap();
    assert!(error.contains("workflow call depth limit"), "{error}");
    assert!(error.contains(&format!("limit of {MAX_CALL_DEPTH}")), "{error}");
    // Exactly MAX_CALL_DEPTH sub-runs exist below the root, one per level.
    let deepest = format!("{}{}", r.run_id, ".deeper".repeat(MAX_CALL_DEPTH));
    let row = store.run(&deepest).await.unwrap().expect("the deepest allowed sub-run exists");
    assert_eq!(row.status, RunStatus::Failed);
    let too_deep = format!("{deepest}.deeper");
    assert!(store.run(&too_deep).await.unwrap().is_none(), "a sub-run past the limit was created");
}
