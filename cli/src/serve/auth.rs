//! API tokens: `Authorization: Bearer TOKEN`. A token is made once
//! (`aosc token create`) and only its SHA-256 is stored; its trust is the
//! trust of the runs it starts, its groups are the approval gates it may
//! decide. `aosc serve --no-auth` (loopback only) lets every request through
//! as the local operator.

use std::sync::Arc;

use aos_compiler::ir::Trust;
use aos_runtime::store::TokenRow;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::App;

/// Who sent a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's name (`local` without authentication).
    pub name: String,
    pub trust: Trust,
    pub groups: Vec<String>,
}

impl Caller {
    /// The operator of a `--no-auth` server on loopback.
    pub fn local() -> Caller {
        Caller { name: "local".into(), trust: Trust::Admin, groups: Vec::new() }
    }

    /// How the audit log names a decision made with this token.
    pub fn audit_name(&self, by: Option<&str>) -> String {
        match by.filter(|b| !b.trim().is_empty()) {
            Some(b) => format!("{b} (token {})", self.name),
            None => format!("token {}", self.name),
        }
    }

    /// Whether this caller may decide at a gate for approver `group`:
    /// members of the group and admins may; `policy:*` and `operator` gates
    /// need an admin.
    pub fn may_decide(&self, group: &str) -> bool {
        self.trust == Trust::Admin || (!group.starts_with("policy:") && group != "operator" && self.groups.iter().any(|g| g == group))
    }

    /// Cancelling, pausing and resuming runs needs `trusted` or `admin`.
    pub fn may_control(&self) -> bool {
        self.trust >= Trust::Trusted
    }
}

/// Hex SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new token: `aos_` and 64 hex digits from the operating system's RNG.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("aos_{}", hex::encode(bytes)))
}

/// `basic|trusted|admin` as a trust level (`untrusted` is not a token's).
pub fn parse_token_trust(s: &str) -> Option<Trust> {
    match s {
        "basic" => Some(Trust::Basic),
        "trusted" => Some(Trust::Trusted),
        "admin" => Some(Trust::Admin),
        _ => None,
    }
}

fn caller_of(row: TokenRow) -> Caller {
    Caller { trust: parse_token_trust(&row.trust).unwrap_or(Trust::Basic), name: row.name, groups: row.groups }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Caller, ApiError> {
        if app.no_auth {
            return Ok(Caller::local());
        }
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(ApiError::Unauthorized("missing `Authorization: Bearer TOKEN` (make one with `aosc token create`)".into()));
        };
        match app.rt.store.token_by_hash(&hash_token(token)).await {
            Ok(Some(row)) => Ok(caller_of(row)),
            Ok(None) => Err(ApiError::Unauthorized("unknown or revoked token".into())),
            Err(e) => Err(ApiError::Internal(e.to_string())),
        }
    }
}
