//! Kafka for the relay tests: an independent consumer (kcat, not rdkafka's
//! Rust API), a private broker a test may stop and start, and the checks
//! every relay test makes of what was published against the log.

#![allow(dead_code)]

use crate::helpers::TestApp;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub key: String,
    pub headers: BTreeMap<String, String>,
    /// The value, parsed: a structured CloudEvent.
    pub event: Value,
}

impl Consumed {
    pub fn position(&self) -> u64 {
        self.event["position"].as_u64().expect("position attribute")
    }
}

/// Every message of `topic`, read from the beginning with kcat.
pub fn consume(brokers: &str, topic: &str) -> Vec<Consumed> {
    let out = std::process::Command::new("kcat")
        .args(["-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q", "-J"])
        .output()
        .expect("run kcat (scripts/kafka installs it)");
    assert!(out.status.success(), "kcat failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf8");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let m: Value = serde_json::from_str(line).expect("kcat -J line");
            let pairs: Vec<String> = m["headers"]
                .as_array()
                .map(|h| h.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect())
                .unwrap_or_default();
            let headers = pairs.chunks(2).map(|kv| (kv[0].clone(), kv.get(1).cloned().unwrap_or_default())).collect();
            Consumed {
                topic: m["topic"].as_str().expect("topic").to_owned(),
                partition: m["partition"].as_i64().expect("partition"),
                offset: m["offset"].as_i64().expect("offset"),
                key: m["key"].as_str().expect("a key").to_owned(),
                headers,
                event: serde_json::from_str(m["payload"].as_str().expect("payload")).expect("the value is JSON"),
            }
        })
        .collect()
}

/// Both of the app's topics.
pub fn consume_all(app: &TestApp, brokers: &str) -> Vec<Consumed> {
    let prefix = app.topic_prefix.as_deref().expect("an app with kafka");
    let mut all = consume(brokers, &format!("{prefix}units"));
    all.extend(consume(brokers, &format!("{prefix}catalog")));
    all
}

/// `GET /v1/relay`.
pub async fn relay_status(app: &TestApp) -> Value {
    relay_status_at(&app.http, &app.url, &app.reader).await
}

/// `GET /v1/relay` of the server at `url`.
pub async fn relay_status_at(http: &reqwest::Client, url: &str, token: &str) -> Value {
    let r = http.get(format!("{url}/v1/relay")).bearer_auth(token).send().await.expect("request");
    assert_eq!(r.status(), 200);
    r.json().await.expect("relay status JSON")
}

/// The log's last position, from the audit stream.
pub async fn log_head(app: &TestApp) -> u64 {
    app.audit_log().await.lines().count() as u64
}

/// Waits until the relay's checkpoint reaches `position`.
pub async fn wait_published(app: &TestApp, position: u64, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let status = relay_status(app).await;
        if status["published_position"].as_u64().unwrap_or(0) >= position {
            return status;
        }
        assert!(Instant::now() < deadline, "relay did not publish up to {position} in {timeout:?}: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the consumers saw against the log (the audit stream's NDJSON):
/// every position of the log at least once (no gaps), nothing that is not
/// in the log, each unit's messages in one partition of the units topic
/// and, taking first deliveries, in log order. Returns the number of
/// duplicate deliveries.
pub fn check_against_log(consumed: &[Consumed], audit: &str, prefix: &str) -> usize {
    let log: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).expect("audit line")).collect();
    let seen: BTreeSet<u64> = consumed.iter().map(Consumed::position).collect();
    let expected: BTreeSet<u64> = (1..=log.len() as u64).collect();
    let missing: Vec<&u64> = expected.difference(&seen).collect();
    assert!(missing.is_empty(), "positions never published (gaps): {missing:?}");
    assert_eq!(seen, expected, "published positions that are not in the log");

    let mut partitions: BTreeMap<&str, BTreeSet<(String, i64)>> = BTreeMap::new();
    let mut streams: BTreeMap<(String, i64), Vec<&Consumed>> = BTreeMap::new();
    for c in consumed {
        let ev = &log[(c.position() - 1) as usize];
        assert_eq!(c.event["id"], ev["event_id"], "position {} carries its own event", c.position());
        assert_eq!(c.event["hash"], ev["hash"]);
        let stream = ev["stream"].as_str().expect("stream");
        let (topic, key) = match stream.split_once(':') {
            Some(("unit", unit)) => (format!("{prefix}units"), unit.to_owned()),
            _ => (format!("{prefix}catalog"), stream.to_owned()),
        };
        assert_eq!((c.topic.as_str(), c.key.as_str()), (topic.as_str(), key.as_str()), "topic and key of {stream}");
        partitions.entry(stream).or_default().insert((c.topic.clone(), c.partition));
        streams.entry((c.topic.clone(), c.partition)).or_default().push(c);
    }
    for (stream, parts) in &partitions {
        assert_eq!(parts.len(), 1, "{stream} is spread over {parts:?}");
    }
    // Within a partition, the first delivery of each position comes in log
    // order (a redelivery after a crash may repeat earlier ones).
    let mut duplicates = 0;
    for ((topic, partition), mut messages) in streams {
        messages.sort_by_key(|c| c.offset);
        let mut firsts = Vec::new();
        let mut seen = BTreeSet::new();
        for c in messages {
            if seen.insert(c.position()) {
                firsts.push(c.position());
            } else {
                duplicates += 1;
            }
        }
        assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{topic}[{partition}] out of log order: {firsts:?}");
    }
    duplicates
}

/// A single-node broker of one test's own (scripts/kafka in a temp dir),
/// which the test may stop and start; stopped when dropped.
pub struct PrivateBroker {
    pub bootstrap: String,
    dir: TempDir,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka")
}

fn run_script(action: &str, dir: &std::path::Path) -> String {
    let out = std::process::Command::new(script()).arg(action).arg(dir).output().expect("run scripts/kafka");
    assert!(out.status.success(), "scripts/kafka {action} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

async fn run_script_async(action: &str, dir: &std::path::Path) -> String {
    let out = tokio::process::Command::new(script()).arg(action).arg(dir).output().await.expect("run scripts/kafka");
    assert!(out.status.success(), "scripts/kafka {action} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

impl PrivateBroker {
    pub fn start() -> PrivateBroker {
        let dir = tempfile::tempdir().expect("temp dir");
        let bootstrap = run_script("start", dir.path());
        PrivateBroker { bootstrap, dir }
    }

    /// Stops it (SIGTERM: a controlled shutdown) without blocking the
    /// runtime, so the test's load keeps running meanwhile.
    pub async fn stop(&self) {
        run_script_async("stop", self.dir.path()).await;
    }

    /// Starts it again on the same port and data.
    pub async fn restart(&self) {
        let bootstrap = run_script_async("start", self.dir.path()).await;
        assert_eq!(bootstrap, self.bootstrap, "same address after a restart");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script()).arg("stop").arg(self.dir.path()).output();
    }
}

/// A unit of the relay tests (its platform has a `/`, like OCI platforms).
pub fn unit(i: u64) -> String {
    format!("pkg{i}@1.{i}-1/linux/arm64/oci")
}

/// `units` units, each with the three receipts that pass its release stage
/// (six events each), submitted by four clients at once.
pub async fn fill(app: &TestApp, units: u64) {
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (http, url, token) = (app.http.clone(), app.url.clone(), app.submitter.clone());
        tasks.push(tokio::spawn(async move {
            for i in (t..units).step_by(4) {
                for (gate, action) in [("build", "compile"), ("build", "package"), ("test", "unit-tests")] {
                    let body = json!({"unit": unit(i), "gate": gate, "action": action, "multipass": true});
                    let r = http.post(format!("{url}/v1/receipts")).bearer_auth(&token).json(&body).send().await;
                    assert_eq!(r.unwrap().status(), 201);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
