//! Triggers of the registered programs. `trigger: cron("…")` fires on its
//! schedule: a tick is claimed in the store before it fires, so each fires
//! at most once even across restarts, and the latest tick missed while the
//! server was down fires once on start. `trigger: event("name")` fires on
//! `POST /v1/events/{name}` with the body as inputs.

use std::collections::BTreeMap;
use std::sync::Arc;

use aos_compiler::ir::{Program, Trigger, Trust};
use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use serde_json::Value;

use super::error::ApiError;
use super::App;

/// Runs started by a schedule have this trust (no token stands behind them).
const CRON_TRUST: Trust = Trust::Basic;

/// Missed ticks are looked for among at most this many occurrences.
const MAX_CATCH_UP_SCAN: usize = 100_000;

/// Parses a schedule: five fields (minute precision) or six (with seconds).
pub fn parse_schedule(expr: &str) -> Result<Cron, croner::errors::CronError> {
    Cron::new(expr).with_seconds_optional().parse()
}

fn to_ms(t: &DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The latest occurrence in (after, now], if any.
pub fn latest_missed(cron: &Cron, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut latest = None;
    let mut t = after;
    for _ in 0..MAX_CATCH_UP_SCAN {
        match cron.find_next_occurrence(&t, false) {
            Ok(next) if next <= now => {
                latest = Some(next);
                t = next;
            }
            _ => break,
        }
    }
    latest
}

struct CronJob {
    key: String,
    program: Arc<Program>,
    workflow: String,
    cron: Cron,
}

async fn fire(app: &Arc<App>, job: &CronJob, tick: DateTime<Utc>, why: &str) {
    match app.rt.store.claim_tick(&job.key, to_ms(&tick)).await {
        Ok(true) => match super::api::start_run(app, &job.program, Some(&job.workflow), BTreeMap::new(), CRON_TRUST).await {
            Ok(run_id) => tracing::info!(trigger = %job.key, tick = %tick.to_rfc3339(), run_id = %run_id, why, "cron trigger fired"),
            Err(e) => tracing::error!(trigger = %job.key, tick = %tick.to_rfc3339(), error = %e, "cron trigger could not start its run"),
        },
        Ok(false) => tracing::debug!(trigger = %job.key, tick = %tick.to_rfc3339(), "tick fired already"),
        Err(e) => tracing::error!(trigger = %job.key, error = %e, "cannot record the cron tick"),
    }
}

async fn run_job(app: Arc<App>, job: CronJob) {
    // A tick missed while no server ran fires once, now.
    match app.rt.store.last_tick(&job.key).await {
        Ok(Some(last_ms)) => {
            if let Some(last) = Utc.timestamp_millis_opt(last_ms).single()
                && let Some(missed) = latest_missed(&job.cron, last, Utc::now())
            {
                fire(&app, &job, missed, "missed while down").await;
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!(trigger = %job.key, error = %e, "cannot read the last cron tick"),
    }
    let mut from = Utc::now();
    loop {
        let next = match job.cron.find_next_occurrence(&from, false) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(trigger = %job.key, error = %e, "the schedule has no next tick; it stops");
                return;
            }
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        fire(&app, &job, next, "scheduled").await;
        from = next;
    }
}

/// Starts one task per cron-triggered workflow of the registered programs.
pub fn spawn_cron(app: Arc<App>) {
    for (name, program) in app.programs.iter() {
        for (wf_name, wf) in &program.workflows {
            let Some(Trigger::Cron { expr }) = &wf.trigger else { continue };
            let key = format!("{name}/{wf_name}");
            match parse_schedule(expr) {
                Ok(cron) => {
                    tracing::info!(trigger = %key, schedule = %expr, "cron trigger armed");
                    let job = CronJob { key, program: program.clone(), workflow: wf_name.clone(), cron };
                    tokio::spawn(run_job(app.clone(), job));
                }
                Err(e) => tracing::error!(trigger = %key, schedule = %expr, error = %e, "cron schedule does not parse; the trigger is off"),
            }
        }
    }
}

/// Starts every workflow of the registered programs waiting for `event`.
pub async fn fire_event(app: &Arc<App>, event: &str, inputs: BTreeMap<String, Value>, trust: Trust) -> Result<Vec<String>, ApiError> {
    let mut started = Vec::new();
    for (_, program) in app.programs.iter() {
        for (wf_name, wf) in &program.workflows {
            if matches!(&wf.trigger, Some(Trigger::Event { name }) if name == event) {
                started.push(super::api::start_run(app, program, Some(wf_name), inputs.clone(), trust).await?);
            }
        }
    }
    if started.is_empty() {
        return Err(ApiError::NotFound(format!("no registered workflow has `trigger: event(\"{event}\")`")));
    }
    Ok(started)
}
