//! How long the API takes to answer, per route: a latency histogram for
//! each method and route template (`POST /v1/receipts`,
//! `GET /v1/units/{key}/explain`), so the label set stays as small as the
//! API, whatever the paths asked for.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tollgate_metrics::{histogram_header, LatencyHistogram};

/// Request durations by route, shared by the middleware and `/metrics`.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    routes: RwLock<BTreeMap<String, Arc<LatencyHistogram>>>,
}

impl HttpMetrics {
    /// The histogram of `route`, made on first use.
    fn route(&self, route: &str) -> Arc<LatencyHistogram> {
        // A panic while holding the lock cannot leave the map half-changed.
        let read = self.routes.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(histogram) = read.get(route) {
            return histogram.clone();
        }
        drop(read);
        let mut write = self.routes.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        write.entry(route.to_owned()).or_default().clone()
    }

    /// Prometheus text: `tollgate_http_request_duration_seconds` by route.
    pub fn render(&self, out: &mut String) {
        let name = "tollgate_http_request_duration_seconds";
        histogram_header(out, name, "From a request's arrival to its response, by method and route.");
        let routes = self.routes.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (route, histogram) in routes.iter() {
            histogram.render_series(out, name, &format!("route=\"{route}\""));
        }
    }
}

/// Middleware (a route layer, so the route is known): times every request
/// a route answers.
pub async fn record_duration(State(metrics): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = match req.extensions().get::<MatchedPath>() {
        Some(path) => format!("{} {}", req.method(), path.as_str()),
        None => format!("{} (unmatched)", req.method()),
    };
    let response = next.run(req).await;
    metrics.route(&route).observe(started.elapsed());
    response
}
