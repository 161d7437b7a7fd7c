//! A small real HTTP receiver standing in for a webhook endpoint, and
//! event builders.

#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tollgate_watchers::TollgateEvent;

pub const UNIT: &str = "openssl@3.0.13-1/x86_64/rpm";
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// What `/huge` would send in full: far more than any socket buffers.
pub const HUGE_BYTES: usize = 256 * 1024 * 1024;
const HUGE_CHUNK: usize = 64 * 1024;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The receiver's address and what it saw.
#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Set when `/huge`'s body stream is dropped; `huge_finished` when it
    /// ran to its end.
    pub huge_dropped: Arc<AtomicBool>,
    pub huge_finished: Arc<AtomicBool>,
}

impl Receiver {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.uri).collect()
    }
}

/// Answers by path: `/status/{code}` with that code (a 302 points at
/// `/landed`), `/slow` after five seconds, `/huge` with an enormous body,
/// anything else 200.
pub async fn start() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = Receiver {
        port: listener.local_addr().unwrap().port(),
        received: Arc::default(),
        huge_dropped: Arc::default(),
        huge_finished: Arc::default(),
    };
    let state = receiver.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let state = state.clone();
        async move {
            let path = uri.path().to_owned();
            state.received.lock().unwrap().push(Received { method, uri: uri.to_string(), headers, body });
            answer(&state, &path).await
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    receiver
}

async fn answer(state: &Receiver, path: &str) -> Response {
    if let Some(code) = path.strip_prefix("/status/") {
        let status = StatusCode::from_u16(code.parse().unwrap()).unwrap();
        return (status, [("location", "/landed")], format!("answer {code}\nsecond line")).into_response();
    }
    match path {
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late".into_response()
        }
        "/huge" => Body::from_stream(huge_body(state)).into_response(),
        _ => "ok".into_response(),
    }
}

/// Records its own end: finished (sent everything) or dropped.
struct Progress {
    sent: usize,
    dropped: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

fn huge_body(state: &Receiver) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let progress = Progress { sent: 0, dropped: state.huge_dropped.clone(), finished: state.huge_finished.clone() };
    futures::stream::unfold(progress, |mut progress| async move {
        if progress.sent >= HUGE_BYTES {
            progress.finished.store(true, Ordering::SeqCst);
            return None;
        }
        progress.sent += HUGE_CHUNK;
        Some((Ok(Bytes::from(vec![b'x'; HUGE_CHUNK])), progress))
    })
}

/// A `StagePassed` event as the relay publishes it.
pub fn stage_passed(id: &str) -> TollgateEvent {
    serde_json::from_value(json!({
        "specversion": "1.0",
        "id": id,
        "source": "tollgate",
        "type": "dev.tollgate.stage.passed",
        "subject": UNIT,
        "time": "2024-06-01T12:00:00.000000Z",
        "datacontenttype": "application/json",
        "data": {
            "unit_key": UNIT,
            "stage": "release",
            "gates": ["build", "tests"],
            "receipts": ["01HZX5V3Q8J6W2B7N4K9M1C0DE"]
        },
        "eventtype": "StagePassed",
        "schemaversion": 1,
        "position": 42,
        "stream": format!("unit:{UNIT}"),
        "streamversion": 7,
        "metadata": "{}",
        "prevhash": "0".repeat(64),
        "hash": "a".repeat(64),
        "keyid": "key-1",
        "signature": "c2lnbmF0dXJl",
        "traceparent": TRACEPARENT
    }))
    .unwrap()
}

/// A `StageInvalidated` event, which rules filtering on `StagePassed` skip.
pub fn stage_invalidated(id: &str) -> TollgateEvent {
    let mut event = stage_passed(id);
    event.ce_type = "dev.tollgate.stage.invalidated".to_owned();
    event.event_type = "StageInvalidated".to_owned();
    event.data = json!({"unit_key": UNIT, "stage": "release", "failing_gates": ["tests"]});
    event
}
