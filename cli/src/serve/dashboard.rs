//! The web dashboard at `/`: one page of plain HTML, CSS and JavaScript,
//! embedded in the binary (no CDN). It reads the same `/v1` API as any
//! client: the runs, live; a run's step graph from its IR, step states over
//! Server-Sent Events, attempts, cost per step against the budget, the audit
//! status, and Approve/Deny buttons at gates.

use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::App;

const INDEX_HTML: &str = include_str!("static/index.html");
const APP_JS: &str = include_str!("static/app.js");
const STYLE_CSS: &str = include_str!("static/style.css");

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|| async { ([(CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response() }))
        .route("/app.js", get(|| async { ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS).into_response() }))
        .route("/style.css", get(|| async { ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLE_CSS).into_response() }))
}
