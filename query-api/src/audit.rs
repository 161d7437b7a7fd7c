//! `GET /v1/audit/events?from=N`: the log as NDJSON, one event a line, read
//! page by page so the log is never held in memory.

use crate::QueryState;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tollgate_api_common::{ApiError, ApiQuery, Authenticated};

const PAGE: u32 = 1000;

#[derive(Deserialize)]
pub struct AuditQuery {
    /// First position to send; 1 when absent.
    from: Option<u64>,
}

pub async fn events(
    State(state): State<QueryState>,
    auth: Authenticated,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    auth.require_auditor()?;
    let from = query.from.unwrap_or(1).max(1);
    // The end is fixed when the request starts, so a reader of a busy log
    // gets a consistent prefix instead of a stream that never ends.
    let head = state.log.head().await.map_err(ApiError::internal)?;
    let log = state.log.clone();
    let pages = futures::stream::unfold(Some(from), move |next| {
        let log = log.clone();
        async move {
            let next = next.filter(|n| *n <= head)?;
            match log.read_from(next, PAGE).await {
                Ok(events) => {
                    let events: Vec<_> = events.into_iter().filter(|e| e.position <= head).collect();
                    let after = events.last().map(|e| e.position + 1);
                    let mut chunk = Vec::new();
                    for event in &events {
                        if serde_json::to_writer(&mut chunk, event).is_err() {
                            return Some((Err(std::io::Error::other("event not serializable")), None));
                        }
                        chunk.push(b'\n');
                    }
                    Some((Ok(Bytes::from(chunk)), after))
                }
                Err(e) => {
                    tracing::error!(error = ?e, "audit stream failed");
                    Some((Err(std::io::Error::other("reading the log failed")), None))
                }
            }
        }
    });
    Ok(([(CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(pages)).into_response())
}
