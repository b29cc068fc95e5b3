//! The REST API under `/v1`. Each handler checks who asks, then calls the
//! runtime as the CLI commands do.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aos_compiler::FileLoader;
use aos_compiler::diagnostic::to_json;
use aos_compiler::ir::Program;
use aos_runtime::events::RunStatus;
use aos_runtime::store::FleetAction;
use aos_runtime::Verdict;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::ApiError;
use super::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/runs", post(create_run).get(list_runs))
        .route("/v1/runs/{id}", get(get_run))
        .route("/v1/runs/{id}/approve", post(approve))
        .route("/v1/runs/{id}/deny", post(deny))
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route("/v1/runs/{id}/pause", post(pause))
        .route("/v1/runs/{id}/resume", post(resume))
        .route("/v1/runs/{id}/events", get(super::events::run_events))
        .route("/v1/runs/{id}/graph", get(run_graph))
        .route("/v1/check", post(check))
        .route("/v1/events/{name}", post(fire_event))
        .route("/v1/openapi.json", get(super::openapi::document))
        .route("/metrics", get(super::metrics::scrape))
        .merge(super::dashboard::routes())
        .with_state(app)
}

/// Sources sent over HTTP may not read the server's files.
struct NoFiles;

impl FileLoader for NoFiles {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("`{}`: a source sent to the API cannot use files of the server; register it with --programs", path.display()),
        ))
    }
}

/// `POST /v1/runs`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateRun {
    /// The `.aos` text to check and run.
    pub source: Option<String>,
    /// Or the name of a program registered with `--programs DIR`.
    pub program: Option<String>,
    /// The workflow (default: the program's only one).
    pub workflow: Option<String>,
    /// The workflow's inputs by parameter name.
    #[schema(value_type = Object)]
    pub inputs: Option<BTreeMap<String, Value>>,
}

/// `{"run_id", "status"}`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Created {
    pub run_id: String,
    pub status: String,
}

/// Checks `source` as the CLI does; `Err` carries the §6 diagnostics JSON.
fn checked(source: &str) -> Result<(Program, Value), ApiError> {
    let analysis = aos_compiler::check("request.aos", source, &NoFiles);
    let diags = to_json(&analysis.diagnostics, &analysis.sources);
    match analysis.program {
        Some(p) if !analysis.diagnostics.iter().any(|d| d.is_error()) => Ok((p, diags)),
        _ => Err(ApiError::Diagnostics(diags)),
    }
}

/// Creates a run of `program` with the caller's trust and starts it.
pub async fn start_run(
    app: &Arc<App>,
    program: &Program,
    workflow: Option<&str>,
    inputs: BTreeMap<String, Value>,
    trust: aos_compiler::ir::Trust,
) -> Result<String, ApiError> {
    let wf = match workflow {
        Some(w) => w.to_string(),
        None => aos_runtime::default_workflow(program)?,
    };
    let run_id = app.rt.create(program, &wf, inputs, trust).await?;
    tracing::info!(run_id = %run_id, workflow = %wf, "run created");
    let priority = program.workflows.get(&wf).map_or(0, |w| w.priority);
    app.runner.start(run_id.clone(), priority);
    Ok(run_id)
}

#[utoipa::path(post, path = "/v1/runs", request_body = CreateRun,
    responses((status = 201, body = Created), (status = 422, description = "the source does not check: `diagnostics` as in `aosc check --format json`"),
              (status = 400), (status = 401), (status = 404)))]
pub async fn create_run(State(app): State<Arc<App>>, caller: Caller, Json(req): Json<CreateRun>) -> Result<(StatusCode, Json<Created>), ApiError> {
    let program: Arc<Program> = match (&req.source, &req.program) {
        (Some(src), None) => Arc::new(checked(src)?.0),
        (None, Some(name)) => app.programs.get(name).cloned().ok_or_else(|| ApiError::NotFound(format!("no program `{name}` (register it with --programs DIR)")))?,
        _ => return Err(ApiError::BadRequest("give exactly one of `source` and `program`".into())),
    };
    let run_id = start_run(&app, &program, req.workflow.as_deref(), req.inputs.unwrap_or_default(), caller.trust).await?;
    Ok((StatusCode::CREATED, Json(Created { run_id, status: RunStatus::Running.as_str().into() })))
}

/// Filters and paging of `GET /v1/runs`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// `running`, `succeeded`, `failed`, `waiting_approval` or `cancelled`.
    pub status: Option<String>,
    pub workflow: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[utoipa::path(get, path = "/v1/runs", params(ListQuery),
    responses((status = 200, description = "`{\"runs\": [{run_id, workflow, status, started_at, cost_usd}], \"total\", \"next_offset\"}`, newest first"), (status = 401)))]
pub async fn list_runs(State(app): State<Arc<App>>, _caller: Caller, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    if let Some(s) = q.status.as_deref().filter(|s| RunStatus::parse(s).is_none()) {
        return Err(ApiError::BadRequest(format!("unknown status `{s}` (running, succeeded, failed, waiting_approval, cancelled)")));
    }
    let rows = app.rt.store.runs().await?;
    let matching: Vec<_> = rows
        .iter()
        .filter(|r| q.status.as_deref().is_none_or(|s| r.status.as_str() == s))
        .filter(|r| q.workflow.as_deref().is_none_or(|w| r.workflow == w))
        .collect();
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let offset = q.offset.unwrap_or(0);
    let page: Vec<Value> = matching.iter().skip(offset).take(limit).map(|r| aos_runtime::inspect::run_list_json(r)).collect();
    let next = (offset + page.len() < matching.len()).then_some(offset + page.len());
    Ok(Json(json!({"runs": page, "total": matching.len(), "next_offset": next})))
}

#[utoipa::path(get, path = "/v1/runs/{id}", params(("id" = String, Path, description = "run id")),
    responses((status = 200, description = "the object `aosc show --json` prints"), (status = 404), (status = 401)))]
pub async fn get_run(State(app): State<Arc<App>>, _caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    let mut v = app.rt.show(&id).await?;
    if app.runner.is_paused(&id).await
        && let Some(o) = v.as_object_mut()
    {
        o.insert("status".into(), json!("paused"));
    }
    Ok(Json(v))
}

/// `POST /v1/runs/{id}/approve` and `/deny`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DecideBody {
    /// The step waiting at the gate.
    pub step: String,
    /// Who decides (recorded with the token's name).
    pub by: Option<String>,
    pub note: Option<String>,
}

/// The approver group the step waits for, if it waits.
async fn waiting_group(app: &App, run_id: &str, step: &str) -> Result<Option<String>, ApiError> {
    let journal = app.rt.store.journal(run_id).await?;
    let mut group = None;
    for e in &journal {
        match &e.transition {
            aos_runtime::events::Transition::ApprovalRequested { step: s, group: g, .. } if s == step => group = Some(g.clone()),
            aos_runtime::events::Transition::ApprovalGranted { step: s, .. } | aos_runtime::events::Transition::ApprovalDenied { step: s, .. } if s == step => group = None,
            _ => {}
        }
    }
    Ok(group)
}

async fn decide(app: Arc<App>, caller: Caller, id: String, body: DecideBody, verdict: Verdict) -> Result<Json<Value>, ApiError> {
    if app.rt.store.run(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no run `{id}`")));
    }
    let Some(group) = waiting_group(&app, &id, &body.step).await? else {
        return Err(ApiError::Conflict(format!("step `{}` of run `{id}` is not waiting for approval", body.step)));
    };
    if !caller.may_decide(&group) {
        return Err(ApiError::Forbidden(format!(
            "token `{}` may not decide at step `{}`: it needs a token in group `{group}` or with trust admin",
            caller.name, body.step
        )));
    }
    let by = caller.audit_name(body.by.as_deref());
    app.rt.decide(&id, &body.step, verdict, &by, body.note.as_deref()).await?;
    tracing::info!(run_id = %id, step = %body.step, by = %by, verdict = ?verdict, "approval decided");
    app.runner.start(id.clone(), app.runner.priority_of(&id).await);
    Ok(Json(json!({"run_id": id, "step": body.step, "decision": if verdict == Verdict::Approve { "approved" } else { "denied" }, "by": by})))
}

#[utoipa::path(post, path = "/v1/runs/{id}/approve", request_body = DecideBody, params(("id" = String, Path)),
    responses((status = 200), (status = 403, description = "the token is not in the gate's group nor admin"), (status = 404), (status = 409)))]
pub async fn approve(State(app): State<Arc<App>>, caller: Caller, UrlPath(id): UrlPath<String>, Json(b): Json<DecideBody>) -> Result<Json<Value>, ApiError> {
    decide(app, caller, id, b, Verdict::Approve).await
}

#[utoipa::path(post, path = "/v1/runs/{id}/deny", request_body = DecideBody, params(("id" = String, Path)),
    responses((status = 200), (status = 403), (status = 404), (status = 409)))]
pub async fn deny(State(app): State<Arc<App>>, caller: Caller, UrlPath(id): UrlPath<String>, Json(b): Json<DecideBody>) -> Result<Json<Value>, ApiError> {
    decide(app, caller, id, b, Verdict::Deny).await
}

fn need_control(caller: &Caller) -> Result<(), ApiError> {
    if caller.may_control() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("token `{}` (trust basic) may not cancel, pause or resume runs: that needs trusted or admin", caller.name)))
    }
}

#[utoipa::path(post, path = "/v1/runs/{id}/cancel", params(("id" = String, Path)),
    responses((status = 200, description = "the run ended `cancelled`"), (status = 403), (status = 404), (status = 400)))]
pub async fn cancel(State(app): State<Arc<App>>, caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    need_control(&caller)?;
    if app.rt.fleet_control(&id, FleetAction::Cancel, &caller.audit_name(None)).await? {
        return Ok(Json(app.rt.show(&id).await?));
    }
    app.runner.cancel(&id, &caller.audit_name(None)).await?;
    app.runner.settle(&id).await;
    Ok(Json(app.rt.show(&id).await?))
}

#[utoipa::path(post, path = "/v1/runs/{id}/pause", params(("id" = String, Path)),
    responses((status = 200, description = "the run stopped cleanly; `resume` continues it"), (status = 403), (status = 409)))]
pub async fn pause(State(app): State<Arc<App>>, caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    need_control(&caller)?;
    if app.rt.fleet_control(&id, FleetAction::Pause, &caller.audit_name(None)).await? {
        return Ok(Json(json!({"run_id": id, "status": "paused"})));
    }
    if !app.runner.pause(&id, &caller.audit_name(None)).await {
        return Err(ApiError::Conflict(format!("run `{id}` is not executing on this server")));
    }
    app.runner.settle(&id).await;
    Ok(Json(json!({"run_id": id, "status": "paused"})))
}

#[utoipa::path(post, path = "/v1/runs/{id}/resume", params(("id" = String, Path)),
    responses((status = 200), (status = 403), (status = 404), (status = 409)))]
pub async fn resume(State(app): State<Arc<App>>, caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    need_control(&caller)?;
    let row = app.rt.store.run(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no run `{id}`")))?;
    if app.rt.fleet_control(&id, FleetAction::Resume, &caller.audit_name(None)).await? {
        return Ok(Json(json!({"run_id": id, "status": "running"})));
    }
    let cancelled = row.status == RunStatus::Cancelled && !app.runner.is_paused(&id).await;
    if matches!(row.status, RunStatus::Succeeded | RunStatus::Failed) || cancelled {
        return Err(ApiError::Conflict(format!("run `{id}` has ended ({}); `aosc resume` can still continue an interrupted run", row.status.as_str())));
    }
    app.runner.start(id.clone(), app.runner.priority_of(&id).await);
    Ok(Json(json!({"run_id": id, "status": "running"})))
}

/// `POST /v1/check`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckBody {
    pub source: String,
}

#[utoipa::path(post, path = "/v1/check", request_body = CheckBody,
    responses((status = 200, description = "`{\"diagnostics\": [...], \"cost\": {workflow: bound}}` as `aosc check --format json --cost`")))]
pub async fn check(_caller: Caller, Json(b): Json<CheckBody>) -> Json<Value> {
    let analysis = aos_compiler::check("request.aos", &b.source, &NoFiles);
    let mut v = to_json(&analysis.diagnostics, &analysis.sources);
    if let (Some(o), Ok(cost)) = (v.as_object_mut(), serde_json::to_value(&analysis.cost.workflows)) {
        o.insert("cost".into(), cost);
    }
    Json(v)
}

#[utoipa::path(post, path = "/v1/events/{name}", params(("name" = String, Path, description = "the event a `trigger: event(\"name\")` waits for")),
    request_body(content = Object, description = "the inputs of the workflows it starts"),
    responses((status = 202, description = "`{\"runs\": [run ids]}`"), (status = 401)))]
pub async fn fire_event(State(app): State<Arc<App>>, caller: Caller, UrlPath(name): UrlPath<String>, body: Option<Json<Value>>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let inputs: BTreeMap<String, Value> = match body.map(|Json(b)| b) {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m.into_iter().collect(),
        Some(_) => return Err(ApiError::BadRequest("the body of an event is a JSON object: the workflow's inputs".into())),
    };
    let runs = super::triggers::fire_event(&app, &name, inputs, caller.trust).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"event": name, "runs": runs}))))
}

#[utoipa::path(get, path = "/v1/runs/{id}/graph", params(("id" = String, Path)),
    responses((status = 200, description = "the run's step graph from its IR: `{\"steps\": [{name, kind, deps, approval, cost_bound_usd}], \"budget_usd\"}`")))]
pub async fn run_graph(State(app): State<Arc<App>>, _caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Json<Value>, ApiError> {
    let row = app.rt.store.run(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no run `{id}`")))?;
    let program: Program = serde_json::from_str(&app.rt.store.program(&id).await?).map_err(|e| ApiError::Internal(e.to_string()))?;
    let wf = program.workflows.get(&row.workflow).ok_or_else(|| ApiError::Internal(format!("run `{id}` names an unknown workflow")))?;
    let steps: Vec<Value> = wf
        .steps
        .iter()
        .map(|s| json!({"name": s.name, "kind": s.kind, "deps": s.deps, "approval": s.approval, "cost_bound_usd": s.cost.usd}))
        .collect();
    let audit = match app.rt.verify_audit(&id).await {
        Ok(aos_runtime::audit::Verdict::Intact { records }) => json!({"intact": true, "records": records}),
        Ok(aos_runtime::audit::Verdict::Broken { seq, reason }) => json!({"intact": false, "seq": seq, "reason": reason}),
        Err(e) => json!({"intact": false, "reason": e.to_string()}),
    };
    Ok(Json(json!({"workflow": wf.name, "budget_usd": wf.budget_usd, "cost_bound_usd": wf.cost_bound_usd, "steps": steps, "audit": audit})))
}
