//! Orchestration overhead per step, with a zero-latency `sim` model and the
//! durable SQLite journal on: a 10k-step chain and a 10k-wide fan-out.
//!
//!     cargo bench -p aos-runtime --bench orchestration
//!     AOS_BENCH_STEPS=2000 cargo bench -p aos-runtime --bench orchestration
//!
//! Prints steps/s, journal bytes per step and peak memory per pending step
//! (VmHWM growth over the run divided by the steps, which are all pending at
//! the start of a chain).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aos_compiler::ir::{FanOut, Program, SimOptions, Trust};
use aos_runtime::events::RunStatus;
use aos_runtime::store::sqlite::SqliteStore;
use aos_runtime::store::Store;
use aos_runtime::testkit::*;
use aos_runtime::{RunOptions, Runtime};
use serde_json::json;

fn vm_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn chain(n: usize) -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("zero", SimOptions::default())]);
    let mut wf = workflow("chain");
    for i in 0..n {
        let prompt = if i == 0 { s("start") } else { interp(vec![s("next after "), step_ref(&format!("s{}", i - 1))]) };
        let mut st = llm(&format!("s{i}"), "executor", prompt);
        st.max_tokens = 24;
        add(&mut wf, st);
    }
    wf.ret_expr = Some(step_ref(&format!("s{}", n - 1)));
    p.workflows.insert("chain".into(), wf);
    p
}

fn fan(n: usize) -> Program {
    let mut p = program();
    with_role(&mut p, "executor", vec![sim_model("zero", SimOptions::default())]);
    let mut wf = workflow("fan");
    let mut st = llm("each", "executor", interp(vec![s("item "), var("x")]));
    st.max_tokens = 24;
    st.fan_out = Some(FanOut { var: "x".into(), items: lit(json!((0..n).collect::<Vec<_>>())), max_items: Some(n as u64), concurrency: None });
    add(&mut wf, st);
    wf.ret_expr = Some(lit(json!(null)));
    p.workflows.insert("fan".into(), wf);
    p
}

async fn bench(name: &str, p: Program, wf: &str, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("aos.db")).await.unwrap());
    let rt = Runtime::new(store.clone(), dir.path());
    let before = vm_kib("VmRSS:");
    let id = rt.create(&p, wf, BTreeMap::new(), Trust::Basic).await.unwrap();
    let t = Instant::now();
    let r = rt.execute(&id, RunOptions::default()).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.status, RunStatus::Succeeded, "{r:?}");
    let hwm = vm_kib("VmHWM:");
    let bytes = store.journal_bytes(&id).await.unwrap();
    let db = std::fs::metadata(dir.path().join("aos.db")).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(dir.path().join("aos.db-wal")).map(|m| m.len()).unwrap_or(0);
    println!(
        "| {name} | {steps} | {secs:.2} s | {:.0} | {:.0} B | {:.0} B | {} MiB | {:.2} KiB |",
        steps as f64 / secs,
        bytes as f64 / steps as f64,
        db as f64 / steps as f64,
        hwm / 1024,
        hwm.saturating_sub(before) as f64 / steps as f64,
    );
}

fn main() {
    let n: usize = std::env::var("AOS_BENCH_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("| scenario | steps | wall | steps/s | journal/step | db file/step | peak RSS (VmHWM) | peak growth/step |");
    println!("|---|---|---|---|---|---|---|---|");
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    if only.as_deref().is_none_or(|o| o == "chain") {
        rt.block_on(bench("chain", chain(n), "chain", n));
    }
    if only.as_deref().is_none_or(|o| o == "fan") {
        rt.block_on(bench("fan-out", fan(n), "fan", n));
    }
}
