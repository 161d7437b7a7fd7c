//! The watcher SDK against a real broker (scripts/test starts one and sets
//! TOLLGATE_TEST_KAFKA_BROKERS): a real `tollgate serve` publishes its log,
//! and watchers consume its units topic. Filtering, retries, the
//! dead-letter topic with commit, and dedupe by event id.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;
mod kafka_helpers;

use helpers::*;
use kafka_helpers::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_watchers::*;

#[test]
fn ci_runs_the_watcher_tests_against_a_real_broker() {
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(kafka_brokers().is_some(), "CI must run the watcher tests against Kafka: use scripts/test");
    }
}

/// Units 1 and 2 pass stage `release`: six events each on the units
/// topic (three receipts, two gate passes, one stage pass). Returns the
/// app and its units topic once everything is published.
async fn two_units_pass(brokers: &str) -> (TestApp, String) {
    let app = spawn_app_with_kafka(brokers, &[]).await;
    app.define_release().await;
    for i in [1, 2] {
        submit(&app, &unit(i), "build", "compile").await;
        submit(&app, &unit(i), "build", "package").await;
        submit(&app, &unit(i), "test", "unit-tests").await;
    }
    wait_published(&app, log_head(&app).await, Duration::from_secs(30)).await;
    let topic = format!("{}units", app.topic_prefix.as_deref().unwrap());
    (app, topic)
}

const UNIT_EVENTS: u64 = 12;

async fn submit(app: &TestApp, unit: &str, gate: &str, action: &str) {
    let body = serde_json::json!({"unit": unit, "gate": gate, "action": action, "multipass": true});
    assert_eq!(app.post("/v1/receipts", &app.submitter, &body).await.status(), 201);
}

/// A watcher that records what it handled; `outcome(n)` decides call n.
struct Recorder {
    filter: Filter,
    calls: AtomicU32,
    seen: Mutex<Vec<TollgateEvent>>,
    outcome: fn(u32) -> Result<(), HandlerError>,
}

impl Recorder {
    fn new(filter: Filter, outcome: fn(u32) -> Result<(), HandlerError>) -> Recorder {
        Recorder { filter, calls: AtomicU32::new(0), seen: Mutex::new(Vec::new()), outcome }
    }

    fn seen(&self) -> Vec<TollgateEvent> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Watcher for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    fn filter(&self) -> &Filter {
        &self.filter
    }

    async fn handle(&self, event: &TollgateEvent) -> Result<(), HandlerError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        (self.outcome)(n)?;
        self.seen.lock().unwrap().push(event.clone());
        Ok(())
    }
}

fn stage_passed_of_unit_1() -> Filter {
    Filter::all().event_type("StagePassed").unit_pattern("pkg1@*/oci")
}

fn options() -> RuntimeOptions {
    RuntimeOptions {
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        max_attempts: 3,
        session_timeout: Duration::from_secs(6),
        ..RuntimeOptions::default()
    }
}

fn runtime(brokers: &str, topic: &str, group: &str) -> KafkaRuntime {
    KafkaRuntime::new(brokers, topic, group, options())
}

fn fresh_group() -> String {
    format!("g{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Runs `watcher` until `done(stats)` holds (then `linger` longer), and
/// stops it. A counter moves in the same poll as the commit that follows
/// it, so once `done` is seen the offsets behind it are committed.
async fn run_until(
    runtime: &KafkaRuntime,
    watcher: Arc<dyn Watcher>,
    linger: Duration,
    done: impl Fn(&WatcherStats) -> bool,
) -> WatcherStats {
    let stats = runtime.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let waiter = async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(&stats.snapshot()) {
            assert!(Instant::now() < deadline, "watcher did not get there: {:?}", stats.snapshot());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(linger).await;
        let _ = stop.send(());
    };
    let shutdown = async {
        let _ = stopped.await;
    };
    let (result, ()) = tokio::join!(runtime.run(watcher, shutdown), waiter);
    result.unwrap()
}

#[tokio::test]
async fn the_filter_passes_only_stage_passed_of_the_unit_pattern() {
    let Some(brokers) = brokers_or_skip("the_filter_passes_only") else { return };
    let (_app, topic) = two_units_pass(&brokers).await;
    let watcher = Arc::new(Recorder::new(stage_passed_of_unit_1(), |_| Ok(())));
    let stats = run_until(&runtime(&brokers, &topic, &fresh_group()), watcher.clone(), Duration::ZERO, |s| {
        s.handled + s.filtered == UNIT_EVENTS
    })
    .await;
    assert_eq!(stats, WatcherStats { handled: 1, filtered: 11, ..WatcherStats::default() });
    let seen = watcher.seen();
    assert_eq!(seen.len(), 1);
    let event = &seen[0];
    assert_eq!((event.ce_type.as_str(), event.event_type.as_str()), ("dev.tollgate.stage.passed", "StagePassed"));
    assert_eq!(event.unit_key(), Some(unit(1).as_str()));
    assert_eq!(event.subject, unit(1));
    assert_eq!(event.stage(), Some("release"));
    assert_eq!(event.gates().collect::<Vec<_>>(), ["build", "test"]);
}

#[tokio::test]
async fn a_handler_failing_twice_is_retried_and_the_event_handled_once() {
    let Some(brokers) = brokers_or_skip("a_handler_failing_twice") else { return };
    let (_app, topic) = two_units_pass(&brokers).await;
    let watcher = Arc::new(Recorder::new(stage_passed_of_unit_1(), |n| {
        if n <= 2 {
            Err(HandlerError::retryable("flaky"))
        } else {
            Ok(())
        }
    }));
    let stats = run_until(&runtime(&brokers, &topic, &fresh_group()), watcher.clone(), Duration::ZERO, |s| {
        s.handled + s.filtered == UNIT_EVENTS
    })
    .await;
    assert_eq!(stats, WatcherStats { handled: 1, retried: 2, filtered: 11, ..WatcherStats::default() });
    assert_eq!(watcher.calls.load(Ordering::SeqCst), 3);
    assert_eq!(watcher.seen().len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_and_committed() {
    let Some(brokers) = brokers_or_skip("a_permanent_failure") else { return };
    let (app, topic) = two_units_pass(&brokers).await;
    let group = fresh_group();
    let failing =
        Arc::new(Recorder::new(stage_passed_of_unit_1(), |_| Err(HandlerError::permanent("no pipeline for pkg1"))));
    let stats = run_until(&runtime(&brokers, &topic, &group), failing.clone(), Duration::ZERO, |s| {
        s.dead_lettered + s.filtered == UNIT_EVENTS
    })
    .await;
    assert_eq!(stats, WatcherStats { dead_lettered: 1, filtered: 11, ..WatcherStats::default() });
    assert_eq!(failing.calls.load(Ordering::SeqCst), 1, "a permanent failure is not retried");

    let dlq = consume(&brokers, &dead_letter_topic(&topic, "recorder"));
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].key, unit(1));
    assert_eq!(dlq[0].event["type"], "dev.tollgate.stage.passed");
    let reason = &dlq[0].headers[DLQ_REASON_HEADER];
    assert!(reason.contains("no pipeline for pkg1"), "{reason}");
    assert_eq!(dlq[0].headers["tollgate-dlq-topic"], topic);
    assert_eq!(dlq[0].headers["ce_type"], "dev.tollgate.stage.passed", "the original headers travel along");

    // A new consumer in the same group starts after everything committed:
    // it sees only a receipt published afterwards.
    submit(&app, &unit(3), "build", "compile").await;
    wait_published(&app, log_head(&app).await, Duration::from_secs(30)).await;
    let everything = Arc::new(Recorder::new(Filter::all(), |_| Ok(())));
    let stats =
        run_until(&runtime(&brokers, &topic, &group), everything.clone(), Duration::from_secs(2), |s| s.handled >= 1)
            .await;
    assert_eq!(stats, WatcherStats { handled: 1, ..WatcherStats::default() });
    let seen = everything.seen();
    assert_eq!((seen[0].event_type.as_str(), seen[0].subject.as_str()), ("ReceiptSubmitted", unit(3).as_str()));
}

#[tokio::test]
async fn a_duplicate_event_id_is_handled_once() {
    let Some(brokers) = brokers_or_skip("a_duplicate_event_id") else { return };
    let (_app, topic) = two_units_pass(&brokers).await;
    // The relay's at-least-once republication, by hand: the same message again.
    let original =
        consume(&brokers, &topic).into_iter().find(|c| c.event["type"] == "dev.tollgate.stage.passed").unwrap();
    let mut kcat = std::process::Command::new("kcat")
        .args(["-P", "-b", &brokers, "-t", &topic, "-p", &original.partition.to_string(), "-k", &original.key])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = kcat.stdin.take().unwrap();
        writeln!(stdin, "{}", serde_json::to_string(&original.event).unwrap()).unwrap();
    }
    assert!(kcat.wait().unwrap().success());

    let watcher = Arc::new(Recorder::new(Filter::all().event_type("dev.tollgate.stage.passed"), |_| Ok(())));
    let stats = run_until(&runtime(&brokers, &topic, &fresh_group()), watcher.clone(), Duration::ZERO, |s| {
        s.handled + s.filtered + s.duplicates == UNIT_EVENTS + 1
    })
    .await;
    assert_eq!(stats, WatcherStats { handled: 2, filtered: 10, duplicates: 1, ..WatcherStats::default() });
    let ids: Vec<String> = watcher.seen().into_iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 2, "each unit's StagePassed once: {ids:?}");
    assert!(ids.contains(&original.event["id"].as_str().unwrap().to_owned()));
}

/// Waits at a barrier for its partner unit; a serial runtime would hold
/// one unit's event while the other waits behind it, so both time out.
struct Rendezvous {
    filter: Filter,
    units: [String; 2],
    barrier: tokio::sync::Barrier,
}

#[async_trait]
impl Watcher for Rendezvous {
    fn name(&self) -> &str {
        "rendezvous"
    }

    fn filter(&self) -> &Filter {
        &self.filter
    }

    async fn handle(&self, event: &TollgateEvent) -> Result<(), HandlerError> {
        if !self.units.iter().any(|u| event.unit_key() == Some(u.as_str())) {
            return Ok(());
        }
        match tokio::time::timeout(Duration::from_secs(15), self.barrier.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(HandlerError::permanent("the other unit's event never ran alongside this one")),
        }
    }
}

#[tokio::test]
async fn partitions_are_handled_concurrently_each_in_order() {
    let Some(brokers) = brokers_or_skip("partitions_are_handled_concurrently") else { return };
    let app = spawn_app_with_kafka(&brokers, &[]).await;
    app.define_release().await;
    for i in 1..=6 {
        submit(&app, &unit(i), "build", "compile").await;
    }
    wait_published(&app, log_head(&app).await, Duration::from_secs(30)).await;
    let topic = format!("{}units", app.topic_prefix.as_deref().unwrap());
    // Two units whose messages sit in different partitions.
    let consumed = consume(&brokers, &topic);
    let mut by_partition: std::collections::BTreeMap<i64, String> = std::collections::BTreeMap::new();
    for c in &consumed {
        by_partition.entry(c.partition).or_insert_with(|| c.key.clone());
    }
    let mut picked = by_partition.into_values();
    let (Some(a), Some(b)) = (picked.next(), picked.next()) else {
        panic!("six units all landed in one partition: {consumed:?}");
    };

    let watcher = Arc::new(Rendezvous {
        filter: Filter::all().event_type("ReceiptSubmitted"),
        units: [a, b],
        barrier: tokio::sync::Barrier::new(2),
    });
    let stats = run_until(&runtime(&brokers, &topic, &fresh_group()), watcher, Duration::ZERO, |s| {
        s.handled + s.dead_lettered == 6
    })
    .await;
    assert_eq!(stats, WatcherStats { handled: 6, ..WatcherStats::default() });
}
