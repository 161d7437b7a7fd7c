//! Bearer-token authentication as an extractor: a handler that takes
//! [`Authenticated`] cannot run without a valid token.

use crate::ApiError;
use crate::RateLimiter;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::sync::Arc;
use tollgate_auth::{Principal, Role, TokenValidator};

/// Who may call: the trusted token issuers, and how often each caller may.
pub struct Access {
    pub tokens: TokenValidator,
    pub limits: RateLimiter,
}

/// The caller, proven by a bearer token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl Authenticated {
    /// Refuses with 403 unless the caller holds `role`.
    pub fn require(&self, role: Role) -> Result<&Principal, ApiError> {
        if self.0.has(role) {
            Ok(&self.0)
        } else {
            Err(self.deny(format!("this needs the {role} role")))
        }
    }

    /// Refuses with 403 unless the caller may read units, gates and
    /// stages (`reader` or `admin`).
    pub fn require_reader(&self) -> Result<&Principal, ApiError> {
        self.require(Role::Reader)
    }

    /// Refuses with 403 unless the caller may replay the log (`auditor`
    /// or `admin`): neither a CI job's token nor a reader's opens it.
    pub fn require_auditor(&self) -> Result<&Principal, ApiError> {
        self.require(Role::Auditor)
    }

    /// A 403 for this caller, logged: denials are how a leaked or
    /// misconfigured token shows itself.
    pub fn deny(&self, why: String) -> ApiError {
        let principal = &self.0;
        let roles: Vec<&str> = principal.roles().iter().map(|r| r.as_str()).collect();
        tracing::warn!(principal = %principal.identity(), roles = ?roles, reason = %why, "access denied");
        ApiError::Forbidden(why)
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<Access>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'".into()))?;
        let access = Arc::<Access>::from_ref(state);
        let principal = access.tokens.validate(token).await.map_err(|e| {
            tracing::info!(reason = %e, "token refused");
            ApiError::Unauthorized(e.to_string())
        })?;
        access
            .limits
            .check(&principal.identity())
            .map_err(|wait| ApiError::RateLimited { retry_after_secs: wait.as_secs().max(1) })?;
        tracing::Span::current().record("principal", principal.subject.as_str());
        Ok(Authenticated(principal))
    }
}
