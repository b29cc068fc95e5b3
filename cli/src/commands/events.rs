//! `aosc events`: a run's events (or every run's), from Redis Streams when
//! `AOS_REDIS_URL` is set, else from the store's journal. From Redis, a
//! run's streamed answers (`llm.delta`, never journaled) come too, each
//! between its attempt's start and end.

use std::time::Duration;

use aos_runtime::bus::live::{Live, Mark, Merge};
use aos_runtime::bus::redis::{event_json, RedisEvents};
use aos_runtime::events::Transition;
use aos_runtime::fabric::stream::{Delta, DELTA_KIND};
use aos_runtime::Runtime;
use serde_json::{json, Value};

use super::exit;
use super::runtime as rtx;

/// Print the events of a run, or of every run; `--follow` waits for more.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc events 01J9Z8Q6W5K3M2N1P0R9S8T7V6          the run's events so far
  aosc events 01J9Z8Q6W5K3M2N1P0R9S8T7V6 --follow until the run ends or pauses
  aosc events --follow --json                     every run's events, one JSON object a line

With AOS_REDIS_URL set the events are read from Redis Streams (aos:run:RUN_ID,
aos:events); without it, from the journal in the store.")]
pub struct EventsArgs {
    /// The run (every run when omitted).
    pub run_id: Option<String>,
    /// Keep waiting for new events (with a run: until it ends or pauses).
    #[arg(long)]
    pub follow: bool,
    /// One JSON object a line: {"id", "run_id", "at_ms", "kind", "transition"}
    /// (a streamed piece of an answer: {"id": null, …, "kind": "llm.delta", "delta"}).
    #[arg(long)]
    pub json: bool,
}

/// Where events are read from.
enum Source {
    Redis(RedisEvents, Merge),
    Store { after: i64 },
}

/// What an event (as printed) means to the merge of deltas.
fn mark(e: &Value) -> Mark {
    match serde_json::from_value::<Transition>(e["transition"].clone()) {
        Ok(t) => Mark::of(e["run_id"].as_str().unwrap_or(""), &t),
        Err(_) => Mark::Other,
    }
}

/// A delta as `--json` prints it: no journal id.
fn delta_json(d: &Delta) -> Value {
    json!({"id": null, "run_id": d.run_id, "at_ms": d.at_ms, "kind": DELTA_KIND, "delta": d})
}

/// True for the event after which a followed run has nothing more to say.
fn ends_run(e: &Value) -> bool {
    matches!(e["kind"].as_str(), Some("run.succeeded" | "run.failed" | "run.paused" | "run.interrupted"))
}

fn print(e: &Value, json: bool) {
    if json {
        println!("{e}");
        return;
    }
    if e["kind"] == DELTA_KIND {
        let d = &e["delta"];
        let item = d["item"].as_u64().map(|i| format!(" item {i}")).unwrap_or_default();
        println!("{:>8} {} {DELTA_KIND} {}{item} {}", "", e["run_id"].as_str().unwrap_or(""), d["step"].as_str().unwrap_or(""), d["text"]);
        return;
    }
    let step = e["transition"]["step"].as_str().map(|s| format!(" {s}")).unwrap_or_default();
    let item = e["transition"]["item"].as_u64().map(|i| format!(" item {i}")).unwrap_or_default();
    println!("{:>8} {} {}{step}{item}", e["id"], e["run_id"].as_str().unwrap_or(""), e["kind"].as_str().unwrap_or(""));
}

async fn next(rt: &Runtime, src: &mut Source, run: Option<&str>, block: bool) -> Result<Vec<Value>, String> {
    match src {
        Source::Redis(r, merge) => {
            let (events, deltas) = r.next_live(block.then_some(1000)).await?;
            Ok(merge
                .push(events, deltas, mark)
                .into_iter()
                .map(|l| match l {
                    Live::Event(e) => e,
                    Live::Delta(d) => delta_json(&d),
                })
                .collect())
        }
        Source::Store { after } => {
            let rows = match run {
                Some(id) => rt.store.journal_since(id, *after).await,
                None => rt.store.events_since(*after, 500).await,
            }
            .map_err(|e| e.to_string())?;
            if rows.is_empty() && block {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(rows
                .into_iter()
                .map(|(id, e)| {
                    *after = id;
                    let t = serde_json::to_value(&e.transition).unwrap_or(Value::Null);
                    event_json(id, &e.run_id, e.at_ms, e.transition.kind(), t)
                })
                .collect())
        }
    }
}

pub fn run(args: &EventsArgs) -> u8 {
    rtx::with_runtime(|rt| async move {
        if let Some(id) = &args.run_id {
            match rt.store.run(id).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    eprintln!("error: no run `{id}` in this store");
                    return exit::USAGE;
                }
                Err(e) => {
                    crate::output::error(&e);
                    return exit::ERRORS;
                }
            }
        }
        let mut src = match rtx::redis_url() {
            Some(url) => {
                // What this or an earlier process could not publish yet goes first.
                rt.bus.flush(Duration::from_secs(5)).await;
                match RedisEvents::open(&url, args.run_id.as_deref()).await {
                    Ok(r) => Source::Redis(r, Merge::new()),
                    Err(e) => {
                        eprintln!("warning: {e}; reading the journal in the store instead");
                        Source::Store { after: 0 }
                    }
                }
            }
            None => Source::Store { after: 0 },
        };
        let mut interrupted = rtx::interrupt_on_ctrl_c();
        // Followed with a run: stop once its last event so far ends or pauses it.
        let mut ended = false;
        let mut caught_up = false;
        loop {
            let batch = tokio::select! {
                b = next(&rt, &mut src, args.run_id.as_deref(), caught_up && args.follow) => b,
                _ = interrupted.changed() => return exit::OK,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    crate::output::error(&e);
                    return exit::ERRORS;
                }
            };
            for e in &batch {
                print(e, args.json);
                ended = ends_run(e);
            }
            if batch.is_empty() {
                if !args.follow || (ended && args.run_id.is_some()) {
                    return exit::OK;
                }
                caught_up = true;
            }
        }
    })
}
