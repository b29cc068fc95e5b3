//! `aosc worker`: a step worker of the fleet, on the shared PostgreSQL store.

use std::sync::Arc;

use aos_runtime::store::postgres::PostgresStore;
use aos_runtime::{Runtime, Worker, WorkerOptions};

use super::exit;
use super::runtime as rtx;

/// Take ready steps of queued runs (`aosc run FILE --detach`) from the
/// shared store, run them and commit their results; any number of workers
/// on any machines share the work.
#[derive(clap::Args)]
#[command(after_help = "Needs AOS_DATABASE_URL=postgres://… (the store every worker and `aosc run --detach` share).
With AOS_REDIS_URL=redis://… ready steps come through the Redis stream aos:tasks (group aos:workers);
PostgreSQL stays the truth (each claim goes through the task row; a sweep finds what Redis lost).
Steps are claimed with SELECT … FOR UPDATE SKIP LOCKED; a claim is a lease of AOS_LEASE_MS
(default 15000): a worker killed mid-step loses its steps to the others when it expires, and
each such step runs again only when its effect allows (as `aosc resume` decides).
SIGTERM or Ctrl-C: the worker stops claiming, finishes and commits the steps it runs, exits 0.

Examples:
  AOS_DATABASE_URL=postgres://aos@db/aos aosc worker --concurrency 16
  aosc worker --once          run what is ready now, then exit")]
pub struct WorkerArgs {
    /// Attempts in flight at once in this process.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Exit when no step is ready and nothing is in flight.
    #[arg(long)]
    pub once: bool,
}

/// `AOS_DATABASE_URL` when it names PostgreSQL, else the error to print.
pub fn postgres_url(what: &str) -> Result<String, String> {
    match std::env::var("AOS_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Ok(u),
        Some(_) | None => Err(format!(
            "{what} needs the shared store: set AOS_DATABASE_URL=postgres://USER@HOST/DB (workers and `aosc run --detach` must share one PostgreSQL database)"
        )),
    }
}

pub fn run(args: &WorkerArgs) -> u8 {
    let url = match postgres_url("`aosc worker`") {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let tokio = match rtx::tokio() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    tokio.block_on(async move {
        let pg = match PostgresStore::open_with(&url, None, std::time::Duration::from_secs(2)).await {
            Ok(pg) => Arc::new(pg),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        };
        let store: Arc<dyn aos_runtime::store::Store> = pg.clone();
        let home = rtx::home();
        let mut rt = Runtime::new(store.clone(), &home);
        let redis = rtx::redis_url();
        if let Some(redis) = &redis {
            match aos_runtime::bus::redis::RedisBus::start(redis, store.clone()) {
                Ok(bus) => rt.bus = Arc::new(bus),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::USAGE;
                }
            }
            match aos_runtime::tools::memory::working::Redis::new(redis) {
                Ok(w) => rt.tools = Arc::new(aos_runtime::tools::Tools::builtin().with_memory(store.clone(), Arc::new(w))),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::USAGE;
                }
            }
        }
        let opts = WorkerOptions { concurrency: args.concurrency as usize, once: args.once, ..WorkerOptions::default() };
        let (tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let name = rtx::stop_signal().await;
            eprintln!("worker: {name}: finishing the steps in flight, then stopping");
            let _ = tx.send(true);
        });
        let bus = rt.bus.clone();
        let lease = opts.lease_ms;
        let mut w = Worker::new(rt, pg, opts, Box::new(|m: &str| eprintln!("worker: {m}"))).stop_on(stop);
        // `--once` polls the task table: it must see what is ready now.
        let stream = match &redis {
            Some(url) if !args.once => match aos_runtime::bus::dispatch::Dispatch::new(url) {
                Ok(d) => Some(std::sync::Arc::new(d)),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::USAGE;
                }
            },
            _ => None,
        };
        let dispatch = if let Some(d) = stream {
            w = w.with_dispatch(d);
            format!(
                "taking steps from Redis Streams ({} group {}: XREADGROUP, XACK after commit, XAUTOCLAIM after the lease), claimed in PostgreSQL (FOR UPDATE SKIP LOCKED), the task table swept every {} ms",
                aos_runtime::bus::dispatch::TASKS,
                aos_runtime::bus::dispatch::GROUP,
                aos_runtime::driver_sweep_ms()
            )
        } else {
            "taking steps from PostgreSQL (SELECT … FOR UPDATE SKIP LOCKED)".to_string()
        };
        let events = if redis.is_some() { "; events also go to Redis Streams (AOS_REDIS_URL)" } else { "" };
        eprintln!("worker {}: {dispatch}, concurrency {}, lease {lease} ms{events}", w.id(), args.concurrency);
        let out = w.run().await;
        bus.flush(std::time::Duration::from_secs(3)).await;
        match out {
            Ok(s) => {
                eprintln!(
                    "worker stopped: {} attempt(s) run, {} commit(s), {} step(s) taken over from expired leases, {} result(s) dropped (claim lost); tasks: {} from the Redis stream ({} by XAUTOCLAIM), {} from the task table",
                    s.attempts, s.commits, s.reclaimed, s.dropped, s.from_stream, s.autoclaimed, s.swept
                );
                exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::ERRORS
            }
        }
    })
}
