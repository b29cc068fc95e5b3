//! `aosc serve`: the HTTP API, metrics, triggers and the dashboard over the
//! same runtime the CLI uses. Handlers are thin: they check who asks, then
//! call [`aos_runtime::Runtime`] (create, execute, decide, show) as the
//! commands do.

mod api;
mod auth;
mod dashboard;
mod error;
mod events;
mod logs;
mod metrics;
mod openapi;
mod programs;
mod runner;
mod slots;
mod triggers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use aos_runtime::Runtime;

use crate::commands::exit;
use crate::commands::runtime as rtx;

pub use auth::{hash_token, new_token, parse_token_trust};

/// Serve the HTTP API (`/v1`), Prometheus metrics (`/metrics`), cron and
/// event triggers, and the web dashboard (`/`).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  aosc token create --name ci --trust trusted
  aosc serve --programs examples/
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/v1/runs

Environment: AOS_HOME, AOS_DATABASE_URL (the store), AOS_LOG_FORMAT=json (JSON log lines), RUST_LOG.")]
pub struct ServeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// A folder of `.aos` files: each is a program named after its file,
    /// startable by name, whose cron and event triggers fire.
    #[arg(long, value_name = "DIR")]
    pub programs: Option<PathBuf>,
    /// Accept requests without a token (only on a loopback address).
    #[arg(long)]
    pub no_auth: bool,
    /// How many runs execute at once; more wait in the queue.
    #[arg(long, default_value_t = 8)]
    pub max_runs: usize,
    /// Do not stream answers: no `llm.delta` events on the runs' event
    /// streams (the providers' non-streaming APIs are used).
    #[arg(long)]
    pub no_stream: bool,
}

/// What every handler shares.
pub struct App {
    pub rt: Runtime,
    pub no_auth: bool,
    pub programs: programs::Programs,
    pub runner: Arc<runner::Runner>,
    pub metrics: metrics::Metrics,
}

pub fn run(args: &ServeArgs) -> u8 {
    logs::init();
    if args.no_auth && !args.addr.ip().is_loopback() {
        eprintln!("error: --no-auth is allowed only on a loopback address (not {}); create a token with `aosc token create`", args.addr);
        return exit::USAGE;
    }
    let programs = match &args.programs {
        Some(dir) => match programs::Programs::load(dir) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        },
        None => programs::Programs::default(),
    };
    rtx::with_runtime(|mut rt| async move {
        if !args.no_stream {
            // The text of answers goes out as `llm.delta` events as it arrives.
            rt.fabric = Arc::new(aos_runtime::fabric::Fabric::from_env().streaming(rt.bus.clone()));
        }
        let metrics = match metrics::Metrics::new() {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error: cannot set up metrics: {e}");
                return exit::USAGE;
            }
        };
        let app = Arc::new(App { runner: Arc::new(runner::Runner::new(rt.clone(), args.max_runs)), rt, no_auth: args.no_auth, programs, metrics });
        let listener = match tokio::net::TcpListener::bind(args.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.addr);
                return exit::USAGE;
            }
        };
        let addr = listener.local_addr().unwrap_or(args.addr);
        metrics::spawn_observer(app.clone());
        runner::spawn_control_poller(app.clone());
        triggers::spawn_cron(app.clone());
        tracing::info!(%addr, programs = app.programs.len(), auth = !app.no_auth, "aosc serve listening");
        eprintln!("aosc serve: listening on http://{addr}");
        let router = api::router(app.clone());
        let served = axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await;
        // Runs still executing stop cleanly; `aosc resume` (or the next
        // `aosc serve`) continues them.
        app.runner.interrupt_all().await;
        match served {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: the server stopped: {e}");
                exit::ERRORS
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
