//! What the run-operating commands share: opening the store from the
//! environment, the tokio runtime, progress on stderr and the §6a report.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use aos_runtime::events::{Entry, RunStatus, Transition};
use aos_runtime::{RunReport, Runtime};

use super::exit;

/// `AOS_HOME`, default `./.aos`.
pub fn home() -> PathBuf {
    std::env::var_os("AOS_HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".aos"))
}

/// A tokio runtime for one command.
pub fn tokio() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// `AOS_REDIS_URL`, when set and not empty.
pub fn redis_url() -> Option<String> {
    std::env::var("AOS_REDIS_URL").ok().filter(|u| !u.is_empty())
}

/// Opens the store named by `AOS_DATABASE_URL`, else SQLite under `AOS_HOME`;
/// with `AOS_REDIS_URL`, events go to Redis Streams as well.
pub async fn open() -> Result<Runtime, String> {
    let url = std::env::var("AOS_DATABASE_URL").ok().filter(|u| !u.is_empty());
    let home = home();
    let store = aos_runtime::store::open(url.as_deref(), &home).await.map_err(|e| e.to_string())?;
    let mut rt = Runtime::new(store.clone(), &home);
    if let Some(redis) = redis_url() {
        let bus = aos_runtime::bus::redis::RedisBus::start(&redis, store.clone()).map_err(|e| e.to_string())?;
        rt.bus = std::sync::Arc::new(bus);
        let working = aos_runtime::tools::memory::working::Redis::new(&redis).map_err(|e| e.to_string())?;
        rt.tools = std::sync::Arc::new(aos_runtime::tools::Tools::builtin().with_memory(store, std::sync::Arc::new(working)));
        rt.cache = std::sync::Arc::new(aos_runtime::cache::RedisCache::new(&redis).map_err(|e| e.to_string())?);
    }
    Ok(rt)
}

/// How long a command waits at its end for its events to reach Redis
/// (what does not is published by the next process that starts).
const BUS_FLUSH: std::time::Duration = std::time::Duration::from_secs(3);

/// The exit status of a report (§6a).
/// Runs `body` with the store opened on a fresh tokio runtime; a runtime or
/// store that cannot be set up is reported on stderr (exit 2).
pub fn with_runtime<F, Fut>(body: F) -> u8
where
    F: FnOnce(Runtime) -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    let tokio = match tokio() {
        Ok(t) => t,
        Err(e) => {
            crate::output::error(&e);
            return exit::USAGE;
        }
    };
    tokio.block_on(async {
        match open().await {
            Ok(rt) => {
                let bus = rt.bus.clone();
                let code = body(rt).await;
                bus.flush(BUS_FLUSH).await;
                code
            }
            Err(e) => {
                crate::output::error(&e);
                exit::USAGE
            }
        }
    })
}

pub fn status_code(r: &RunReport) -> u8 {
    match r.status {
        RunStatus::Succeeded => exit::OK,
        RunStatus::WaitingApproval => exit::PAUSED,
        _ => exit::ERRORS,
    }
}

/// Prints the end of a run: the §6a object with `--json`, else the output
/// on stdout and the status on stderr.
pub fn print_report(r: &RunReport, json: bool) -> u8 {
    if json {
        outln!("{}", r.to_json());
    } else {
        match r.status {
            RunStatus::Succeeded => {
                match &r.output {
                    Some(serde_json::Value::String(s)) => outln!("{s}"),
                    Some(v) if !v.is_null() => outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
                    _ => {}
                }
                eprintln!("run {} succeeded (cost ${:.6})", r.run_id, r.cost_usd);
            }
            RunStatus::WaitingApproval => {
                eprintln!("run {} is waiting for approval:", r.run_id);
                for line in r.error.as_deref().unwrap_or("").split("; ") {
                    eprintln!("  {line}");
                }
                eprintln!("then: aosc resume {}", r.run_id);
            }
            RunStatus::Cancelled => eprintln!("run {} stopped: {}", r.run_id, r.error.as_deref().unwrap_or("interrupted")),
            _ => eprintln!("run {} failed: {}", r.run_id, r.error.as_deref().unwrap_or("unknown error")),
        }
    }
    status_code(r)
}

/// Ctrl-C (SIGINT) or SIGTERM turns the flag true; the scheduler stops
/// cleanly, the run stays resumable and the report is still printed.
pub fn interrupt_on_ctrl_c() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let name = stop_signal().await;
        eprintln!("\n{name}: stopping cleanly (the run can be resumed)");
        let _ = tx.send(true);
    });
    rx
}

/// Resolves with the name of the first stop signal (SIGINT or SIGTERM).
/// A signal that cannot be listened to is simply never received.
#[cfg(unix)]
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    async fn recv(s: &mut Option<Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = recv(&mut int) => "interrupt",
        _ = recv(&mut term) => "terminated",
    }
}

#[cfg(not(unix))]
pub async fn stop_signal() -> &'static str {
    match tokio::signal::ctrl_c().await {
        Ok(()) => "interrupt",
        Err(_) => std::future::pending().await,
    }
}

#[derive(Default, Clone)]
struct Row {
    state: String,
    attempts: u32,
    items: Option<(u32, u32)>,
    /// What the router did that the user should see (a fallback).
    note: String,
    /// The streamed answer so far (its tail is the note).
    tail: String,
}

/// Shows progress on stderr: a live table on a terminal, plain lines
/// otherwise. Returns when the bus closes or the task is aborted.
pub fn progress(rt: &Runtime) -> tokio::task::JoinHandle<()> {
    let mut rx = rt.bus.subscribe();
    let live = std::io::stderr().is_terminal();
    // Streamed answers (`aosc run --stream`, or any run on a terminal).
    let mut deltas = rt.fabric.streams().then(|| rt.bus.subscribe_deltas());
    tokio::spawn(async move {
        let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
        let mut order: Vec<(String, String)> = Vec::new();
        let mut cost = 0.0f64;
        let mut drawn = 0usize;
        let mut streaming: Option<String> = None;
        loop {
            let got = match deltas.as_mut() {
                Some(d) => tokio::select! {
                    e = rx.recv() => Got::Entry(e),
                    d = d.recv() => match d {
                        Ok(d) => Got::Delta(d),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => {
                            deltas = None;
                            continue;
                        }
                    },
                },
                None => Got::Entry(rx.recv().await),
            };
            let e: Entry = match got {
                Got::Entry(Ok(e)) => e,
                Got::Entry(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Got::Entry(Err(_)) => break,
                Got::Delta(d) if !live => {
                    super::stream::print_delta(&mut streaming, &d);
                    continue;
                }
                Got::Delta(d) => {
                    // The live table shows the tail of the answer so far.
                    let key = (d.run_id.clone(), d.step.clone());
                    if !rows.contains_key(&key) {
                        order.push(key.clone());
                    }
                    let row = rows.entry(key).or_default();
                    if d.offset == 0 {
                        row.tail.clear();
                    }
                    row.tail.push_str(&d.text);
                    row.note = format!("  {}", super::stream::tail(&row.tail, 40));
                    drawn = draw(&rows, &order, cost, drawn);
                    continue;
                }
            };
            cost += e.transition.spent();
            if !live {
                if streaming.take().is_some() {
                    eprintln!();
                }
                if let Some(line) = plain_line(&e) {
                    eprintln!("{line}");
                }
                continue;
            }
            let Some(step) = e.transition.step() else { continue };
            let key = (e.run_id.clone(), step.to_string());
            if !rows.contains_key(&key) {
                order.push(key.clone());
            }
            let row = rows.entry(key).or_default();
            match &e.transition {
                Transition::AttemptStarted { attempt, item: None, .. } => {
                    row.state = "running".into();
                    row.attempts = *attempt;
                }
                Transition::AttemptStarted { item: Some(_), .. } => {
                    row.state = "running".into();
                    row.attempts += 1;
                }
                Transition::FanOutPlanned { items, .. } => row.items = Some((0, *items)),
                Transition::ItemSucceeded { .. } => {
                    if let Some((d, _)) = row.items.as_mut() {
                        *d += 1;
                    }
                }
                Transition::AttemptFailed { retry_in_ms: Some(_), .. } => row.state = "retrying".into(),
                Transition::StepSucceeded { .. } => row.state = "succeeded".into(),
                Transition::StepFailed { .. } => row.state = "failed".into(),
                Transition::StepSkipped { .. } => row.state = "skipped".into(),
                Transition::ApprovalRequested { .. } => row.state = "waiting approval".into(),
                Transition::ApprovalGranted { .. } => row.state = "approved".into(),
                Transition::Routed { .. } => match routed_note(&e.transition, true) {
                    Some(note) => row.note = format!("  {note}"),
                    None => continue,
                },
                _ => {}
            }
            drawn = draw(&rows, &order, cost, drawn);
        }
    })
}

/// What the progress printer received.
enum Got {
    Entry(Result<Entry, tokio::sync::broadcast::error::RecvError>),
    Delta(aos_runtime::fabric::stream::Delta),
}

/// Redraws the live table over the `drawn` lines of the last one; returns
/// how many lines it drew.
fn draw(rows: &BTreeMap<(String, String), Row>, order: &[(String, String)], cost: f64, drawn: usize) -> usize {
    let mut out = String::new();
    if drawn > 0 {
        out.push_str(&format!("\x1b[{drawn}A"));
    }
    for k in order {
        let r = rows.get(k).cloned().unwrap_or_default();
        let name = if k.0.contains('.') { format!("  {}/{}", k.0.rsplit('.').next().unwrap_or(""), k.1) } else { k.1.clone() };
        let items = r.items.map(|(d, n)| format!(" {d}/{n} items")).unwrap_or_default();
        out.push_str(&format!("\x1b[2K  {name:<28} {:<17} attempts {}{items}{}\n", r.state, r.attempts, r.note));
    }
    out.push_str(&format!("\x1b[2K  cost so far ${cost:.6}\n"));
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(out.as_bytes());
    let _ = err.flush();
    order.len() + 1
}

fn plain_line(e: &Entry) -> Option<String> {
    let step = e.transition.step().unwrap_or("");
    let who = if e.run_id.contains('.') { format!("[{}] ", e.run_id.split_once('.').map(|x| x.1).unwrap_or("")) } else { String::new() };
    Some(match &e.transition {
        Transition::AttemptStarted { attempt, item, fallback, .. } => {
            let it = item.map(|i| format!(" item {i}")).unwrap_or_default();
            let fb = if *fallback { " (fallback)" } else { "" };
            if item.is_some() {
                return None;
            }
            format!("{who}step {step}{it}: started, attempt {attempt}{fb}")
        }
        Transition::FanOutPlanned { items, .. } => format!("{who}step {step}: fan-out over {items} item(s)"),
        Transition::AttemptFailed { attempt, error, retry_in_ms, item, .. } => {
            let it = item.map(|i| format!(" item {i}")).unwrap_or_default();
            match retry_in_ms {
                Some(ms) => format!("{who}step {step}{it}: attempt {attempt} failed ({error}); retrying in {ms}ms"),
                None => format!("{who}step {step}{it}: attempt {attempt} failed ({error})"),
            }
        }
        Transition::StepSucceeded { usage, .. } => format!("{who}step {step}: succeeded (cost ${:.6})", usage.cost_usd),
        Transition::StepFailed { error, .. } => format!("{who}step {step}: failed: {error}"),
        Transition::StepSkipped { reason, .. } => format!("{who}step {step}: skipped ({reason})"),
        Transition::ApprovalRequested { reason, .. } => format!("{who}step {step}: waiting for approval ({reason})"),
        Transition::ApprovalGranted { by, .. } => format!("{who}step {step}: approved by {by}"),
        Transition::ApprovalDenied { by, .. } => format!("{who}step {step}: denied by {by}"),
        Transition::AttemptInterrupted { action, attempt, .. } => format!("{who}step {step}: attempt {attempt} was interrupted; {action}"),
        Transition::Routed { item, .. } => {
            let it = item.map(|i| format!(" item {i}")).unwrap_or_default();
            format!("{who}step {step}{it}: {}", routed_note(&e.transition, false)?)
        }
        Transition::AgentTool { item, turn, tool, error, .. } => {
            let it = item.map(|i| format!(" item {i}")).unwrap_or_default();
            match error {
                Some(err) => format!("{who}step {step}{it}: turn {turn}: tool {tool} failed ({err})"),
                None => format!("{who}step {step}{it}: turn {turn}: called tool {tool}"),
            }
        }
        _ => return None,
    })
}

/// The router's choices worth a line of progress: a fallback to the next
/// model of a role, and a reply beyond the bound the cost proof assumed.
/// `short`: for the live table, on one line.
fn routed_note(t: &Transition, short: bool) -> Option<String> {
    let Transition::Routed { kind, data, .. } = t else { return None };
    let s = |k: &str| data.get(k).and_then(serde_json::Value::as_str).unwrap_or("?");
    match kind.as_str() {
        "cache_hit" => Some(format!("answered from the cache (saved ${:.6})", data.get("saved_usd").and_then(serde_json::Value::as_f64).unwrap_or(0.0))),
        "fallback" if short => Some(format!("fallback {} -> {}", s("from"), s("to"))),
        "reply_over_bound" if short => Some(format!("reply over bound ({} B)", data.get("bytes").cloned().unwrap_or_default())),
        "fallback" => Some(format!("fallback from `{}` to `{}` (role `{}`): {}", s("from"), s("to"), s("role"), s("because"))),
        "reply_over_bound" => Some(format!(
            "the reply of `{}` is {} bytes, over the {} bytes the cost bound assumed (kept whole)",
            s("model"),
            data.get("bytes").cloned().unwrap_or_default(),
            data.get("max_reply_bytes").cloned().unwrap_or_default()
        )),
        _ => None,
    }
}

/// Runs `fut` with progress shown, then waits for the progress task to flush.
pub async fn with_progress<F: std::future::Future<Output = T>, T>(rt: &Runtime, fut: F) -> T {
    let handle = progress(rt);
    let out = fut.await;
    // Let the printer catch up with the last events, then stop it.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    handle.abort();
    out
}
