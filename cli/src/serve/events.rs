//! `GET /v1/runs/{id}/events`: the run's journal as Server-Sent Events, one
//! per transition, whose `id` is the journal entry's id, so a client that
//! reconnects with `Last-Event-ID` gets exactly what it missed. The stream
//! ends when the run has ended.
//!
//! Between them, the run's streamed answers as `llm.delta` events (when
//! this server executes the run): no `id` (they are not journaled, so a
//! reconnect neither skips nor repeats journal entries because of them),
//! each after its attempt's `step.started` and before its end
//! ([`aos_runtime::bus::live::Merge`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aos_runtime::bus::live::{Live, Mark, Merge};
use aos_runtime::events::{Entry, RunStatus};
use aos_runtime::fabric::stream::{Delta, DELTA_KIND};
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::App;

struct Tail {
    app: Arc<App>,
    run_id: String,
    /// The last journal id read.
    last_id: i64,
    pending: VecDeque<Live<(i64, Entry)>>,
    bus: tokio::sync::broadcast::Receiver<Entry>,
    deltas: tokio::sync::broadcast::Receiver<Delta>,
    /// Deltas received, not yet merged.
    got: Vec<Delta>,
    merge: Merge,
    ended: bool,
}

impl Tail {
    /// Takes the run's deltas received so far.
    fn drain_deltas(&mut self) {
        use tokio::sync::broadcast::error::TryRecvError;
        loop {
            match self.deltas.try_recv() {
                Ok(d) if d.run_id == self.run_id => self.got.push(d),
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    }

    /// Reads the journal past `last_id`, then the deltas, and queues both
    /// in order. Returns false when the journal cannot be read.
    async fn read(&mut self) -> bool {
        let new = match self.app.rt.store.journal_since(&self.run_id, self.last_id).await {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(run_id = %self.run_id, error = %e, "event stream cannot read the journal");
                return false;
            }
        };
        if let Some((id, _)) = new.last() {
            self.last_id = *id;
        }
        self.drain_deltas();
        let got = std::mem::take(&mut self.got);
        self.pending.extend(self.merge.push(new, got, |(_, e)| Mark::of(&e.run_id, &e.transition)));
        true
    }
}

fn event_of(id: i64, e: &Entry) -> Event {
    let data = json!({"run_id": e.run_id, "at_ms": e.at_ms, "kind": e.transition.kind(), "step": e.transition.step(), "transition": e.transition});
    Event::default().id(id.to_string()).event(e.transition.kind()).data(data.to_string())
}

fn delta_event(d: &Delta) -> Event {
    let data = json!({"run_id": d.run_id, "at_ms": d.at_ms, "kind": DELTA_KIND, "step": d.step, "delta": d});
    Event::default().event(DELTA_KIND).data(data.to_string())
}

async fn next(mut t: Tail) -> Option<(Result<Event, Infallible>, Tail)> {
    loop {
        if let Some(l) = t.pending.pop_front() {
            let ev = match l {
                Live::Event((id, e)) => event_of(id, &e),
                Live::Delta(d) => delta_event(&d),
            };
            return Some((Ok(ev), t));
        }
        if t.ended {
            return None;
        }
        if !t.read().await {
            return None;
        }
        if !t.pending.is_empty() {
            continue;
        }
        let status = t.app.rt.store.run(&t.run_id).await.ok().flatten().map(|r| r.status);
        let paused = t.app.runner.is_paused(&t.run_id).await;
        if matches!(status, Some(RunStatus::Succeeded | RunStatus::Failed)) || (status == Some(RunStatus::Cancelled) && !paused) || status.is_none() {
            // One last read: entries committed with the final status.
            t.ended = true;
            t.read().await;
            continue;
        }
        // Wake on the bus (this process's runs) or poll (other processes').
        let wake = async {
            tokio::select! {
                _ = t.bus.recv() => None,
                d = t.deltas.recv() => d.ok(),
            }
        };
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(500), wake).await
            && d.run_id == t.run_id
        {
            t.got.push(d);
        }
    }
}

#[utoipa::path(get, path = "/v1/runs/{id}/events", params(("id" = String, Path), ("Last-Event-ID" = Option<String>, Header, description = "resume after this event id")),
    responses((status = 200, description = "text/event-stream: one event per transition (`id` = journal id, `event` = kind, `data` = JSON), and `llm.delta` events (no `id`; `data.delta` = {step, item, attempt, model, offset, text}) for the text of streamed answers"), (status = 404)))]
pub async fn run_events(
    State(app): State<Arc<App>>,
    _caller: Caller,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if app.rt.store.run(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no run `{id}`")));
    }
    let last_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
    let bus = app.rt.bus.subscribe();
    let deltas = app.rt.bus.subscribe_deltas();
    let tail = Tail { app, run_id: id, last_id, pending: VecDeque::new(), bus, deltas, got: Vec::new(), merge: Merge::new(), ended: false };
    Ok(Sse::new(stream::unfold(tail, next)).keep_alive(KeepAlive::default()))
}
