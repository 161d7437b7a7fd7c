//! `tollgate watch NAME --config FILE`: one built-in watcher as its own
//! process, in a Kafka consumer group on the relay's topic, reporting back
//! to the server over HTTP. Needs the broker scripts/test starts.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;
mod stand_ins;

use helpers::*;
use stand_ins::*;
use std::time::{Duration, Instant};

#[test]
fn ci_runs_the_watch_command_against_a_real_broker() {
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(kafka_brokers().is_some(), "CI must run the watch command tests against Kafka: use scripts/test");
    }
}

fn config(brokers: &str, prefix: &str, server: &str, hook_port: u16) -> String {
    format!(
        r#"
[tollgate]
server = "{server}"
token_env = "WATCH_TEST_TOKEN"

[kafka]
brokers = "{brokers}"
topic_prefix = "{prefix}"

[watchers.notify]
kind = "webhook"
allow_http = true
allow_private = true
[[watchers.notify.rules]]
filter = {{ types = ["StagePassed"], stage = "release" }}
url = "http://127.0.0.1:{hook_port}/released"
"#
    )
}

#[tokio::test]
async fn a_watcher_process_consumes_kafka_and_stops_cleanly() {
    let Some(brokers) = brokers_or_skip("a_watcher_process_consumes_kafka") else { return };
    let app = spawn_app_with_kafka(&brokers, &[]).await;
    let (hook_port, received) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchers.toml");
    std::fs::write(&path, config(&brokers, app.topic_prefix.as_deref().unwrap(), &app.url, hook_port)).unwrap();

    let mut watch = tokio::process::Command::new(BIN)
        .args(["watch", "notify", "--metrics-addr", "127.0.0.1:0", "--config"])
        .arg(&path)
        .env("WATCH_TEST_TOKEN", &app.submitter)
        .env("TOLLGATE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let metrics_url = metrics_url(&mut watch).await;

    app.define_release().await;
    app.submit("build", "compile", true).await;
    app.submit("build", "package", true).await;
    app.submit("test", "unit-tests", true).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while received.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the webhook was never called");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (path, headers, _) = received.lock().unwrap()[0].clone();
    assert_eq!(path, "/released");
    assert_eq!(headers["x-tollgate-event-type"], "StagePassed");

    // Its counters, for a scraper: the events it was given were handled
    // (the webhook's rules pick the one to call about), none failed.
    let client = reqwest::Client::new();
    let counter = |text: &str, outcome: &str| -> u64 {
        let name = format!(r#"tollgate_watcher_events_total{{watcher="notify",outcome="{outcome}"}} "#);
        let line = text.lines().find_map(|l| l.strip_prefix(name.as_str()));
        line.unwrap_or_else(|| panic!("no {outcome} counter in {text}")).parse().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let text = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
        if counter(&text, "handled") >= 1 {
            break text;
        }
        assert!(Instant::now() < deadline, "the handled event was never counted: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((counter(&metrics, "retried"), counter(&metrics, "dead_lettered")), (0, 0), "{metrics}");
    let health = client.get(metrics_url.replace("/metrics", "/healthz")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");

    // SIGTERM: the watcher commits what it handled and exits 0.
    let pid = watch.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(30), watch.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(received.lock().unwrap().len(), 1, "one stage passed, one call");
}

/// The metrics URL the watcher prints on its first line.
async fn metrics_url(watch: &mut tokio::process::Child) -> String {
    use tokio::io::AsyncBufReadExt;
    let stdout = watch.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), tokio::io::BufReader::new(stdout).read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    line.trim().strip_prefix("tollgate watch metrics on ").unwrap_or_else(|| panic!("{line}")).to_owned()
}

#[tokio::test]
async fn a_bad_config_names_the_setting_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchers.toml");
    let text = config("127.0.0.1:1", "t.", "http://127.0.0.1:1", 1).replace("allow_http = true\n", "");
    std::fs::write(&path, text).unwrap();
    let watch = |name: &str| {
        let mut command = std::process::Command::new(BIN);
        command.args(["watch", name, "--config"]).arg(&path).env("WATCH_TEST_TOKEN", "a-token");
        command.output().unwrap()
    };
    let out = watch("notify");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("watchers.notify.rules[0].url"), "{stderr}");

    let out = watch("absent");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no watcher absent"));
}
