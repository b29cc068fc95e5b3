//! `GET /v1/runs/{id}/events`: the run's journal as Server-Sent Events, one
//! per transition, whose `id` is the journal entry's id, so a client that
//! reconnects with `Last-Event-ID` gets exactly what it missed. The stream
//! ends when the run has ended.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aos_runtime::events::{Entry, RunStatus};
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
    last_id: i64,
    pending: VecDeque<(i64, Entry)>,
    bus: tokio::sync::broadcast::Receiver<Entry>,
    ended: bool,
}

fn event_of(id: i64, e: &Entry) -> Event {
    let data = json!({"run_id": e.run_id, "at_ms": e.at_ms, "kind": e.transition.kind(), "step": e.transition.step(), "transition": e.transition});
    Event::default().id(id.to_string()).event(e.transition.kind()).data(data.to_string())
}

async fn next(mut t: Tail) -> Option<(Result<Event, Infallible>, Tail)> {
    loop {
        if let Some((id, e)) = t.pending.pop_front() {
            t.last_id = id;
            return Some((Ok(event_of(id, &e)), t));
        }
        if t.ended {
            return None;
        }
        match t.app.rt.store.journal_since(&t.run_id, t.last_id).await {
            Ok(new) if !new.is_empty() => {
                t.pending.extend(new);
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(run_id = %t.run_id, error = %e, "event stream cannot read the journal");
                return None;
            }
        }
        let status = t.app.rt.store.run(&t.run_id).await.ok().flatten().map(|r| r.status);
        let paused = t.app.runner.is_paused(&t.run_id).await;
        if matches!(status, Some(RunStatus::Succeeded | RunStatus::Failed)) || (status == Some(RunStatus::Cancelled) && !paused) || status.is_none() {
            // One last read: entries committed with the final status.
            t.ended = true;
            if let Ok(new) = t.app.rt.store.journal_since(&t.run_id, t.last_id).await {
                t.pending.extend(new);
            }
            continue;
        }
        // Wake on the bus (this process's runs) or poll (other processes').
        let _ = tokio::time::timeout(Duration::from_millis(500), t.bus.recv()).await;
    }
}

#[utoipa::path(get, path = "/v1/runs/{id}/events", params(("id" = String, Path), ("Last-Event-ID" = Option<String>, Header, description = "resume after this event id")),
    responses((status = 200, description = "text/event-stream: one event per transition (`id` = journal id, `event` = kind, `data` = JSON)"), (status = 404)))]
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
    let tail = Tail { app, run_id: id, last_id, pending: VecDeque::new(), bus, ended: false };
    Ok(Sse::new(stream::unfold(tail, next)).keep_alive(KeepAlive::default()))
}
