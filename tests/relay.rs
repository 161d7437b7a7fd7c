//! The Kafka relay against a real broker (scripts/test starts one and sets
//! TOLLGATE_TEST_KAFKA_BROKERS): every event of the log reaches Kafka as a
//! CloudEvent, at least once and in each unit's order, across a `kill -9`,
//! a broker restart and (on PostgreSQL) the death of the leading process.
//! What was published is read back with kcat, a different Kafka client.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;
mod kafka_helpers;

use helpers::*;
use kafka_helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_eventlog::{verify_batch, verifying_key_from_jwk, RecordedEvent};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn ci_runs_the_relay_tests_against_a_real_broker() {
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(kafka_brokers().is_some(), "CI must run the relay tests against Kafka: use scripts/test");
    }
}

#[tokio::test]
async fn without_brokers_no_relay_runs() {
    let app = spawn_app().await;
    assert_eq!(relay_status(&app).await, json!({"enabled": false}));
}

/// A receipt for `unit` with the test's trace context.
async fn submit(app: &TestApp, unit: &str, gate: &str, action: &str) -> Value {
    let body = json!({"unit": unit, "gate": gate, "action": action, "multipass": true});
    let r = app
        .request(Method::POST, "/v1/receipts", &app.submitter)
        .header("traceparent", TRACEPARENT)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "submit {unit} {gate}/{action}");
    r.json().await.unwrap()
}

#[tokio::test]
async fn every_event_is_published_as_a_verifiable_cloudevent_in_unit_order() {
    let Some(brokers) = brokers_or_skip("every_event_is_published") else { return };
    let app = spawn_app_with_kafka(&brokers, &[]).await;
    app.define_release().await;
    // Units interleaved, so that per-unit order is not just log order.
    let mut first = None;
    for (gate, action) in [("build", "compile"), ("build", "package"), ("test", "unit-tests")] {
        for i in 0..4 {
            let answer = submit(&app, &unit(i), gate, action).await;
            first.get_or_insert(answer["id"].as_str().unwrap().to_owned());
        }
    }
    let revoke = json!({"reason": "flaky runner"});
    let r = app.post(&format!("/v1/receipts/{}/revoke", first.unwrap()), &app.admin, &revoke).await;
    assert_eq!(r.status(), 200);

    let audit = app.audit_log().await;
    let head = audit.lines().count() as u64;
    wait_published(&app, head, Duration::from_secs(30)).await;
    let consumed = consume_all(&app, &brokers);
    let prefix = app.topic_prefix.clone().unwrap();
    assert_eq!(check_against_log(&consumed, &audit, &prefix), 0, "no redelivery without a failure");

    let mut types = BTreeSet::new();
    for c in &consumed {
        let ce = &c.event;
        assert_eq!((ce["specversion"].as_str(), ce["source"].as_str()), (Some("1.0"), Some("tollgate")));
        assert_eq!(ce["datacontenttype"], "application/json");
        assert!(ce["data"].is_object());
        let stream = ce["stream"].as_str().unwrap();
        assert_eq!(ce["subject"].as_str(), stream.split_once(':').map(|(_, s)| s));
        // The binary-mode headers repeat the attributes.
        for attr in ["specversion", "id", "type", "source", "subject", "time"] {
            assert_eq!(c.headers.get(&format!("ce_{attr}")).map(String::as_str), ce[attr].as_str(), "ce_{attr}");
        }
        assert_eq!(c.headers["content-type"], "application/cloudevents+json; charset=UTF-8");
        // Trace context travels from the request (the revocation had none).
        let metadata: Value = serde_json::from_str(ce["metadata"].as_str().unwrap()).unwrap();
        let traced = metadata.get("traceparent").and_then(Value::as_str);
        assert_eq!(c.headers.get("traceparent").map(String::as_str), traced, "traceparent header");
        assert_eq!(ce.get("traceparent").and_then(Value::as_str), traced);
        if ce["type"] == "dev.tollgate.stage.passed" {
            assert_eq!(traced, Some(TRACEPARENT));
        }
        types.insert(ce["type"].as_str().unwrap().to_owned());
    }
    let expected: BTreeSet<String> = [
        "gate.defined",
        "stage.defined",
        "receipt.submitted",
        "receipt.revoked",
        "gate.passed",
        "gate.invalidated",
        "stage.passed",
        "stage.invalidated",
    ]
    .iter()
    .map(|t| format!("dev.tollgate.{t}"))
    .collect();
    assert_eq!(types, expected);

    // A consumer that trusts only the public key verifies every event,
    // and the chain, from the messages alone.
    let jwks: Value = app.http.get(format!("{}/v1/keys", app.url)).send().await.unwrap().json().await.unwrap();
    let keys: HashMap<_, _> =
        jwks["keys"].as_array().unwrap().iter().map(|k| verifying_key_from_jwk(k).unwrap()).collect();
    let mut events: BTreeMap<u64, RecordedEvent> = BTreeMap::new();
    for c in &consumed {
        let ev = tollgate_relay::envelope::recorded_event(&c.event).expect("all attributes");
        events.insert(ev.position, ev);
    }
    let events: Vec<RecordedEvent> = events.into_values().collect();
    assert_eq!(verify_batch(keys, &events).expect("hashes, chain and signatures verify"), head);
}

#[tokio::test]
async fn kill_9_mid_drain_repeats_at_most_and_never_skips() {
    let Some(brokers) = brokers_or_skip("kill_9_mid_drain") else { return };
    // Slow, so that the backlog is still draining at the kill.
    let mut app = spawn_app_with_kafka(&brokers, &["--relay-max-rate", "40"]).await;
    app.define_release().await;
    fill(&app, 60).await;
    let head = log_head(&app).await;
    let before = wait_published(&app, 1, Duration::from_secs(30)).await;
    let checkpoint = before["published_position"].as_u64().unwrap();
    assert!(checkpoint < head, "the backlog is still draining ({checkpoint} of {head})");
    // Restarted at full speed, and killed again as soon as the checkpoint moves.
    app.serve_args.retain(|a| a != "--relay-max-rate" && a != "40");
    app.crash_and_restart().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while relay_status(&app).await["published_position"].as_u64().unwrap() <= checkpoint {
        assert!(Instant::now() < deadline, "the relay resumed after the crash");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.crash_and_restart().await;

    wait_published(&app, head, Duration::from_secs(60)).await;
    let audit = app.audit_log().await;
    let duplicates = check_against_log(&consume_all(&app, &brokers), &audit, app.topic_prefix.as_deref().unwrap());
    println!("{head} events, {duplicates} delivered twice after the crashes");
}

#[tokio::test]
async fn commands_go_on_while_the_broker_is_down_and_the_backlog_drains_after() {
    if brokers_or_skip("broker_down").is_none() {
        return;
    }
    // A broker of this test's own: the shared one stays up for the others.
    let broker = PrivateBroker::start();
    let app = spawn_app_with_kafka(&broker.bootstrap, &[]).await;
    app.define_release().await;
    wait_published(&app, 3, Duration::from_secs(60)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let last_position = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for t in 0..2u64 {
        let (http, url, token) = (app.http.clone(), app.url.clone(), app.submitter.clone());
        let (stop, acked, last_position) = (stop.clone(), acked.clone(), last_position.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let action = ["compile", "package"][(n % 2) as usize];
                let body =
                    json!({"unit": unit(t * 1000 + n / 3), "gate": "build", "action": action, "multipass": true});
                let r = http.post(format!("{url}/v1/receipts")).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 201, "a command failed while Kafka was away");
                let answer: Value = r.json().await.unwrap();
                last_position.fetch_max(answer["position"].as_u64().unwrap(), Ordering::Relaxed);
                acked.fetch_add(1, Ordering::Relaxed);
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.stop().await;
    let acked_at_stop = acked.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = acked.load(Ordering::Relaxed) - acked_at_stop;
    assert!(during > 10, "commands are accepted while Kafka is down ({during})");
    let status = relay_status(&app).await;
    assert!(
        status["published_position"].as_u64().unwrap() < last_position.load(Ordering::Relaxed),
        "nothing reaches Kafka while it is down: {status}"
    );
    broker.restart().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    let audit = app.audit_log().await;
    let head = audit.lines().count() as u64;
    wait_published(&app, head, Duration::from_secs(60)).await;
    let consumed = consume_all(&app, &broker.bootstrap);
    let duplicates = check_against_log(&consumed, &audit, app.topic_prefix.as_deref().unwrap());
    println!("{head} events ({during} receipts while the broker was down), {duplicates} delivered twice");
}

#[tokio::test]
async fn on_postgresql_one_relay_leads_and_another_takes_over_when_it_dies() {
    let Some(brokers) = brokers_or_skip("one_relay_leads") else { return };
    if !postgres_backend() {
        println!("one_relay_leads skipped: runs with TOLLGATE_TEST_BACKEND=postgres (scripts/test's second pass)");
        return;
    }
    let database = fresh_database().await;
    let data_dir = tempfile::tempdir().unwrap();
    let (admin, reader) = (mint(data_dir.path(), "alice", "admin"), mint(data_dir.path(), "bob", "reader"));
    let auditor = mint(data_dir.path(), "carol", "auditor");
    let prefix = fresh_topic_prefix();
    let args: Vec<String> = ["--kafka-brokers", &brokers, "--kafka-topic-prefix", &prefix].map(String::from).to_vec();
    let mut servers = vec![
        start_with(data_dir.path(), Some(&database), &args).await,
        start_with(data_dir.path(), Some(&database), &args).await,
    ];
    let http = reqwest::Client::new();
    let roles = |servers: &Vec<(tokio::process::Child, String)>| {
        let urls: Vec<String> = servers.iter().map(|(_, url)| url.clone()).collect();
        let (http, reader) = (http.clone(), reader.clone());
        async move {
            let mut roles = Vec::new();
            for url in urls {
                roles.push(relay_status_at(&http, &url, &reader).await["role"].as_str().unwrap().to_owned());
            }
            roles
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let now = roles(&servers).await;
        if let (1, Some(i)) = (now.iter().filter(|r| *r == "leading").count(), now.iter().position(|r| r == "leading"))
        {
            if now.iter().filter(|r| *r == "standby").count() == 1 {
                break i;
            }
        }
        assert!(Instant::now() < deadline, "exactly one relay leads: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let post =
        |url: &str, path: &str, body: Value| http.post(format!("{url}{path}")).bearer_auth(&admin).json(&body).send();
    let survivor_url = servers[1 - leader].1.clone();
    // Every append goes through the standby: the leader publishes what
    // another process appended.
    assert_eq!(post(&survivor_url, "/v1/gates", json!({"name": "build"})).await.unwrap().status(), 201);
    for i in 0..10 {
        let body = json!({"unit": unit(i), "gate": "build", "action": "compile", "multipass": true});
        assert_eq!(post(&survivor_url, "/v1/receipts", body).await.unwrap().status(), 201);
    }
    // The leader dies (its session, and so its lock, with it).
    servers[leader].0.kill().await.unwrap();
    for i in 0..10 {
        let body = json!({"unit": unit(i), "gate": "build", "action": "package", "multipass": true});
        assert_eq!(post(&survivor_url, "/v1/receipts", body).await.unwrap().status(), 201);
    }
    let audit = http.get(format!("{survivor_url}/v1/audit/events")).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(audit.status(), 200);
    let audit = audit.text().await.unwrap();
    let head = audit.lines().count() as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = relay_status_at(&http, &survivor_url, &reader).await;
        if status["role"] == "leading" && status["published_position"].as_u64().unwrap() >= head {
            break;
        }
        assert!(Instant::now() < deadline, "the survivor took over and published everything: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut consumed = consume(&brokers, &format!("{prefix}units"));
    consumed.extend(consume(&brokers, &format!("{prefix}catalog")));
    check_against_log(&consumed, &audit, &prefix);
}
