//! `GET /metrics`: request durations by method and route template, beside
//! the read models' and the log's counters.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;

/// The `_count` of the request-duration histogram of `route`, 0 if absent.
fn requests(text: &str, route: &str) -> u64 {
    let name = format!("tollgate_http_request_duration_seconds_count{{route=\"{route}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(name.as_str())).map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn request_durations_are_counted_per_route_template() {
    let app = spawn_app().await;
    app.define_release().await;
    for (gate, action) in [("build", "compile"), ("build", "package"), ("test", "unit-tests")] {
        app.submit(gate, action, true).await;
    }
    let key = UNIT.replace('/', "%2F");
    for _ in 0..2 {
        assert_eq!(app.get(&format!("/v1/units/{key}/explain"), &app.reader).await.status(), 200);
    }
    let text = app.get("/metrics", &app.reader).await.text().await.unwrap();
    assert_eq!(requests(&text, "POST /v1/receipts"), 3, "{text}");
    // One series for the route, whatever unit was asked about.
    assert_eq!(requests(&text, "GET /v1/units/{key}/explain"), 2, "{text}");
    assert!(!text.contains("openssl"), "{text}");
    assert!(text.contains("# TYPE tollgate_http_request_duration_seconds histogram"));
    let bucket = "tollgate_http_request_duration_seconds_bucket{route=\"POST /v1/receipts\",le=\"+Inf\"} 3";
    assert!(text.contains(bucket), "{text}");
}
