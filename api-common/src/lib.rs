//! What every Tollgate HTTP endpoint shares: the one error type (answered
//! as RFC 9457 problem+json), bearer-token authentication, request ids and
//! tracing, JSON body reading under the size limit, and JSON Schema checks
//! against the schemas in `schemas/`.

mod auth;
mod body;
mod encoding;
mod error;
mod extract;
mod http_metrics;
mod nesting;
mod rate_limit;
mod request_id;
mod schemas;

pub use auth::{Access, Authenticated};
pub use body::{parse_json, JsonBody, ReceiptBody, DSSE_ENVELOPE, MAX_BODY_BYTES};
pub use error::{ApiError, FieldError};
pub use extract::{ApiPath, ApiQuery};
pub use http_metrics::{record_duration, HttpMetrics};
pub use nesting::MAX_JSON_DEPTH;
pub use rate_limit::RateLimiter;
pub use request_id::{request_id_layer, RequestId};
pub use schemas::{SchemaKind, Schemas};
