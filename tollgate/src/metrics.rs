//! `GET /metrics` (reader role): Prometheus text for this process — request
//! durations by route, read model lag and commit-to-read-model latency, group commit, the relay's
//! lag, and each in-process watcher's counters. Read from counters in
//! memory, no query. `tollgate watch` serves its watcher's counters the
//! same way ([`watcher_router`]).

use axum::extract::{FromRef, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::sync::Arc;
use tollgate_api_common::{Access, ApiError, Authenticated, HttpMetrics};
use tollgate_eventlog::EventLog;
use tollgate_readmodels::{ProjectorMetrics, ReadStore};
use tollgate_relay::StatusReceiver;
use tollgate_watchers::StatsHandle;

/// Everything `/metrics` reports on.
#[derive(Clone)]
pub struct Sources {
    pub http: Arc<HttpMetrics>,
    pub access: Arc<Access>,
    pub log: EventLog,
    pub projector: Arc<ProjectorMetrics>,
    pub reads: ReadStore,
    pub relay: Option<StatusReceiver>,
    pub watchers: Vec<(String, StatsHandle)>,
}

impl FromRef<Sources> for Arc<Access> {
    fn from_ref(state: &Sources) -> Self {
        state.access.clone()
    }
}

pub fn router(sources: Sources) -> Router {
    Router::new().route("/metrics", get(show)).with_state(sources)
}

async fn show(State(s): State<Sources>, auth: Authenticated) -> Result<impl IntoResponse, ApiError> {
    auth.require_reader()?;
    let mut out = String::new();
    s.http.render(&mut out);
    s.projector.render(&mut out);
    let queries = s.reads.queries_run();
    let _ = writeln!(out, "# HELP tollgate_readmodel_queries_total Read-model queries run by this process.");
    let _ =
        writeln!(out, "# TYPE tollgate_readmodel_queries_total counter\ntollgate_readmodel_queries_total {queries}");

    let stats = s.log.stats();
    for (name, help, value) in [
        ("tollgate_log_batches_total", "Group-commit transactions.", stats.batches),
        ("tollgate_log_requests_total", "Append requests committed.", stats.requests),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }

    if let Some(relay) = &s.relay {
        let status = relay.borrow().to_json();
        let lag = status["lag"].as_u64().unwrap_or(0);
        let published = status["published_position"].as_u64().unwrap_or(0);
        let _ = writeln!(out, "# HELP tollgate_relay_lag_events Events committed but not yet on Kafka.");
        let _ = writeln!(out, "# TYPE tollgate_relay_lag_events gauge\ntollgate_relay_lag_events {lag}");
        let _ = writeln!(out, "# HELP tollgate_relay_position Last log position published to Kafka.");
        let _ = writeln!(out, "# TYPE tollgate_relay_position gauge\ntollgate_relay_position {published}");
    }

    render_watchers(&mut out, &s.watchers);
    Ok(([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], out))
}

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

/// Each watcher's counters, by outcome.
fn render_watchers(out: &mut String, watchers: &[(String, StatsHandle)]) {
    if watchers.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP tollgate_watcher_events_total Events per watcher, by outcome.");
    let _ = writeln!(out, "# TYPE tollgate_watcher_events_total counter");
    for (name, handle) in watchers {
        let w = handle.snapshot();
        for (outcome, value) in [
            ("handled", w.handled),
            ("retried", w.retried),
            ("dead_lettered", w.dead_lettered),
            ("filtered", w.filtered),
            ("duplicate", w.duplicates),
        ] {
            let _ = writeln!(out, "tollgate_watcher_events_total{{watcher=\"{name}\",outcome=\"{outcome}\"}} {value}");
        }
    }
}

/// `GET /metrics` and `GET /healthz` of `tollgate watch`: the watcher's
/// counters, without a token (the process has no token validator; its
/// address is chosen by whoever runs it).
pub fn watcher_router(watchers: Vec<(String, StatsHandle)>) -> Router {
    let metrics = move || {
        let mut out = String::new();
        render_watchers(&mut out, &watchers);
        std::future::ready(([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], out))
    };
    Router::new().route("/metrics", get(metrics)).route("/healthz", get(|| std::future::ready("ok")))
}
