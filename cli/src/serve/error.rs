//! The API's errors, each a status code and a JSON body
//! `{"error": {"code": "…", "message": "…"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use aos_runtime::store::StoreError;
use aos_runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or one the store does not know.
    #[error("{0}")]
    Unauthorized(String),
    /// The token is valid but may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or asks for something impossible.
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the run's state.
    #[error("{0}")]
    Conflict(String),
    /// The source does not check: the diagnostics in the JSON of LANGUAGE.md §6.
    #[error("the source has errors")]
    Diagnostics(Value),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Diagnostics(_) => (StatusCode::UNPROCESSABLE_ENTITY, "diagnostics"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> ApiError {
        match e {
            RuntimeError::Store(StoreError::NoSuchRun(id)) => ApiError::NotFound(format!("no run `{id}`")),
            RuntimeError::Usage(m) => ApiError::BadRequest(m),
            // A concurrent decision won the gate: one decision per gate.
            RuntimeError::Store(e @ (StoreError::AlreadyDecided { .. } | StoreError::NotWaiting { .. } | StoreError::ControlRefused { .. })) => ApiError::Conflict(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::from(RuntimeError::Store(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = match &self {
            ApiError::Diagnostics(d) => {
                let mut body = json!({"error": {"code": code, "message": self.to_string()}});
                if let (Some(o), Value::Object(d)) = (body.as_object_mut(), d) {
                    o.extend(d.clone());
                }
                body
            }
            other => json!({"error": {"code": code, "message": other.to_string()}}),
        };
        if status == StatusCode::UNAUTHORIZED {
            return (status, [(axum::http::header::WWW_AUTHENTICATE, "Bearer")], Json(body)).into_response();
        }
        (status, Json(body)).into_response()
    }
}
