//! Requests against a real HTTP receiver: what arrives, and how answers
//! are judged.
#![allow(clippy::unwrap_used)]

mod receiver;

use receiver::{stage_invalidated, stage_passed, TRACEPARENT, UNIT};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tollgate_watchers::{Filter, HandlerError, Watcher};
use tollgate_webhook_watcher::{Config, Rule, WebhookWatcher};

/// Settings that reach the local receiver: plain http to loopback.
fn local(rules: Vec<Rule>) -> Config {
    let mut config = Config::new(rules);
    config.allow_http = true;
    config.allow_private = true;
    config
}

fn watcher(config: Config) -> WebhookWatcher {
    WebhookWatcher::new("notify", config).unwrap()
}

fn message(error: &HandlerError) -> String {
    error.to_string()
}

#[tokio::test]
async fn templated_url_headers_and_body_arrive() {
    let receiver = receiver::start().await;
    let mut rule = Rule::new(
        receiver.url("/hook/{{ event_type }}/{{ unit_key | urlencode_component }}?unit={{ unit_key | urlencode }}"),
    );
    rule.method = "PUT".to_owned();
    rule.headers.insert("X-Stage".to_owned(), "{{ stage }}".to_owned());
    rule.headers.insert("Content-Type".to_owned(), "application/vnd.hook+json".to_owned());
    rule.body = Some(
        r#"{"text": {{ ("passed " ~ unit_key) | tojson }}, "gates": {{ gates | tojson }}, "at": {{ position }}}"#
            .to_owned(),
    );

    watcher(local(vec![rule])).handle(&stage_passed("01HZX0000000000000000000A1")).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.uri, "/hook/StagePassed/openssl%403.0.13-1%2Fx86_64%2Frpm?unit=openssl%403.0.13-1/x86_64/rpm");
    assert_eq!(request.headers["x-stage"], "release");
    assert_eq!(request.headers["content-type"], "application/vnd.hook+json");
    assert_eq!(request.headers["x-tollgate-event-id"], "01HZX0000000000000000000A1");
    assert_eq!(request.headers["x-tollgate-event-type"], "StagePassed");
    assert_eq!(request.headers["traceparent"], TRACEPARENT);
    assert!(request.headers.get("x-tollgate-signature").is_none(), "no secret, no signature");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, json!({"text": format!("passed {UNIT}"), "gates": ["build", "tests"], "at": 42}));
}

#[tokio::test]
async fn without_a_body_template_the_whole_event_is_sent() {
    let receiver = receiver::start().await;
    watcher(local(vec![Rule::new(receiver.url("/all"))]))
        .handle(&stage_passed("01HZX0000000000000000000A2"))
        .await
        .unwrap();

    let request = &receiver.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["id"], "01HZX0000000000000000000A2");
    assert_eq!(body["type"], "dev.tollgate.stage.passed");
    assert_eq!(body["eventtype"], "StagePassed");
    assert_eq!(body["data"]["gates"], json!(["build", "tests"]));
    assert_eq!(body["hash"], "a".repeat(64));
    assert_eq!(body["traceparent"], TRACEPARENT);
}

#[tokio::test]
async fn each_matching_rule_sends_one_request() {
    let receiver = receiver::start().await;
    let mut passed = Rule::new(receiver.url("/passed"));
    passed.filter = Filter::all().event_type("StagePassed");
    let mut invalidated = Rule::new(receiver.url("/invalidated"));
    invalidated.filter = Filter::all().event_type("dev.tollgate.stage.invalidated");
    let everything = Rule::new(receiver.url("/everything"));
    let watcher = watcher(local(vec![passed, invalidated, everything]));

    watcher.handle(&stage_invalidated("01HZX0000000000000000000B1")).await.unwrap();

    let mut paths = receiver.paths();
    paths.sort();
    assert_eq!(paths, ["/everything", "/invalidated"]);
}

#[tokio::test]
async fn server_errors_are_retryable_and_not_found_is_permanent() {
    let receiver = receiver::start().await;
    let event = stage_passed("01HZX0000000000000000000C1");

    let err = watcher(local(vec![Rule::new(receiver.url("/status/500"))])).handle(&event).await.unwrap_err();
    assert!(matches!(err, HandlerError::Retryable(_)), "{err}");
    let text = message(&err);
    assert!(text.contains("rules[0]") && text.contains("127.0.0.1") && text.contains("500"), "{text}");
    assert!(text.contains("answer 500 second line"), "the answer's start, on one line: {text}");

    let err = watcher(local(vec![Rule::new(receiver.url("/status/429"))])).handle(&event).await.unwrap_err();
    assert!(matches!(err, HandlerError::Retryable(_)), "{err}");

    let err = watcher(local(vec![Rule::new(receiver.url("/status/404"))])).handle(&event).await.unwrap_err();
    assert!(matches!(err, HandlerError::Permanent(_)), "{err}");
    assert!(message(&err).contains("404"), "{err}");
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_fails() {
    let receiver = receiver::start().await;
    let err = watcher(local(vec![Rule::new(receiver.url("/status/302"))]))
        .handle(&stage_passed("01HZX0000000000000000000D1"))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::Permanent(_)), "{err}");
    assert!(message(&err).contains("302"), "{err}");
    assert_eq!(receiver.paths(), ["/status/302"], "/landed is never requested");
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retried() {
    let receiver = receiver::start().await;
    let mut config = local(vec![Rule::new(receiver.url("/slow"))]);
    config.timeout_ms = 300;
    let started = Instant::now();
    let err = watcher(config).handle(&stage_passed("01HZX0000000000000000000E1")).await.unwrap_err();
    assert!(matches!(err, HandlerError::Retryable(_)), "{err}");
    assert!(message(&err).contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4), "gave up at the timeout, not the answer");
}

#[tokio::test]
async fn an_oversized_answer_is_cut_off() {
    let receiver = receiver::start().await;
    let mut config = local(vec![Rule::new(receiver.url("/huge"))]);
    config.max_response_bytes = 1024;
    config.timeout_ms = 60_000;
    watcher(config).handle(&stage_passed("01HZX0000000000000000000F1")).await.unwrap();

    // The client stops reading and drops the connection: the receiver's
    // body stream is dropped long before it could have been sent whole.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !receiver.huge_dropped.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the huge body was never abandoned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!receiver.huge_finished.load(Ordering::SeqCst), "the whole body was read");
}

#[tokio::test]
async fn an_undefined_template_value_is_permanent_and_sends_nothing() {
    let receiver = receiver::start().await;
    let mut rule = Rule::new(receiver.url("/hook"));
    rule.body = Some("{{ data.no_such_field }}".to_owned());
    let err = watcher(local(vec![rule])).handle(&stage_passed("01HZX0000000000000000000G1")).await.unwrap_err();
    assert!(matches!(err, HandlerError::Permanent(_)), "{err}");
    let text = message(&err);
    assert!(text.contains("rules[0].body") && text.contains("undefined"), "{text}");
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn a_retry_does_not_call_the_rules_that_already_succeeded() {
    let receiver = receiver::start().await;
    let watcher = watcher(local(vec![Rule::new(receiver.url("/ok")), Rule::new(receiver.url("/status/503"))]));
    let event = stage_passed("01HZX0000000000000000000H1");

    for _ in 0..2 {
        let err = watcher.handle(&event).await.unwrap_err();
        assert!(matches!(err, HandlerError::Retryable(_)), "{err}");
        assert!(message(&err).contains("rules[1]"), "{err}");
    }

    assert_eq!(receiver.paths(), ["/ok", "/status/503", "/status/503"]);
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    // Bind and drop to get a local port with nobody listening.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let rule = Rule::new(format!("http://127.0.0.1:{port}/hook?token=s3cr3t"));
    let err = watcher(local(vec![rule])).handle(&stage_passed("01HZX0000000000000000000J1")).await.unwrap_err();
    assert!(matches!(err, HandlerError::Retryable(_)), "{err}");
    let text = message(&err);
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains("s3cr3t"), "the URL's query stays out of messages: {text}");
}
