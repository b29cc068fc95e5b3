//! Logs through `tracing`: human lines on stderr, or JSON lines with
//! `AOS_LOG_FORMAT=json`; the level from `RUST_LOG` (default `info`). Lines
//! about a run carry `run_id` (the span of its execution) and `step`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AOS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests calling `run` twice in one process) is harmless.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}
