//! `file.read` of a FIFO planted in the workspace (issue 17, finding 9):
//! refused at once instead of blocking the step (and the process) forever.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use aos_runtime::tools::{Tool, ToolCtx, file};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_read_of_a_fifo_is_refused_without_blocking() {
    let ws = tempfile::tempdir().unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(ws.path().join("trap"))
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(ws.path().join("ok.txt"), "fine").unwrap();
    let ctx = ToolCtx {
        workspace: ws.path().to_path_buf(),
        idempotency_key: None,
        run_id: "r".into(),
        step: "s".into(),
        ..Default::default()
    };
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        file::Read.call(json!({"path": "trap"}), &ctx),
    )
    .await;
    let err = out.expect("file.read of a FIFO blocked").unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        file::Read
            .call(json!({"path": "ok.txt"}), &ctx)
            .await
            .unwrap(),
        json!("fine")
    );
}
