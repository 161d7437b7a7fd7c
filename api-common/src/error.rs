//! The one API error type, answered as `application/problem+json`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_domain::InvalidField;

/// One field that broke one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub rule: String,
}

impl From<InvalidField> for FieldError {
    fn from(e: InvalidField) -> Self {
        FieldError { field: e.field, rule: e.rule }
    }
}

/// A value that broke its input rule is a 422 naming the field.
impl From<InvalidField> for ApiError {
    fn from(e: InvalidField) -> Self {
        ApiError::Validation(vec![e.into()])
    }
}

/// Every way a request can fail, each with its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all (400).
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// Valid JSON, or a body, that cannot be taken as it is sent (400):
    /// nested too deeply, malformed gzip, a batch of GraphQL operations.
    #[error("{0}")]
    BadRequest(String),
    /// The body broke schema or input rules (422), naming each field.
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    /// A domain rule refused the command (422).
    #[error("{detail}")]
    Domain { detail: String, field: Option<String> },
    #[error("{0}")]
    NotFound(String),
    /// The state changed under the request (409).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unsupported content type: {0}")]
    UnsupportedMediaType(String),
    /// A `Content-Encoding` other than gzip (415).
    #[error("unsupported content encoding {0:?}; send the body as it is or with Content-Encoding: gzip")]
    UnsupportedEncoding(String),
    #[error("too many requests from this caller; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Anything else: logged whole, answered with a generic message.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError { field: field.into(), rule: rule.into() }])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    /// The same error with its fields seen from an enclosing document, e.g.
    /// a receipt's `/gate` as `/data/gate` inside a CloudEvent.
    pub fn under(self, prefix: &str) -> Self {
        match self {
            ApiError::Validation(errors) => ApiError::Validation(
                errors
                    .into_iter()
                    .map(|e| FieldError { field: format!("{prefix}{}", e.field), rule: e.rule })
                    .collect(),
            ),
            ApiError::Domain { detail, field: Some(field) } => {
                ApiError::Domain { detail, field: Some(format!("{prefix}{field}")) }
            }
            other => other,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) | ApiError::Domain { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) | ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed-json",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Validation(_) => "validation",
            ApiError::Domain { .. } => "domain-rule",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::TooLarge { .. } => "too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::UnsupportedEncoding(_) => "unsupported-encoding",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::Internal(_) => "internal",
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        let single;
        let errors: &[FieldError] = match &self {
            ApiError::Validation(errors) => errors,
            ApiError::Domain { field: Some(field), detail } => {
                single = [FieldError { field: field.clone(), rule: detail.clone() }];
                &single
            }
            _ => &[],
        };
        let detail = match &self {
            ApiError::Validation(errors) => {
                errors.iter().map(|e| format!("{}: {}", e.field, e.rule)).collect::<Vec<_>>().join("; ")
            }
            other => other.to_string(),
        };
        let problem = Problem {
            problem_type: format!("urn:tollgate:problem:{}", self.kind()),
            title: status.canonical_reason().unwrap_or("error"),
            status: status.as_u16(),
            detail,
            errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let ApiError::RateLimited { retry_after_secs } = &self {
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if let ApiError::UnsupportedEncoding(_) = &self {
            // RFC 9110 §15.5.16: say which codings would have been taken.
            response.headers_mut().insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
