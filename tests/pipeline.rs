//! The whole loop in the embedded default: `tollgate serve --watchers FILE`
//! runs the four built-in watchers inside the server, following its log,
//! and they report back with receipts.
//!
//! A passing build passes stage `build`; the test-runner watcher runs a
//! suite whose receipt passes stage `test`; the promotion watcher copies the
//! artifact from `testing` to `stable` and records it; a failing security
//! scan opens a ticket in a Jira stand-in; its approval becomes the
//! manual-approval receipt that passes stage `release`; the webhook
//! receiver gets the signed call. The log then verifies.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;
mod stand_ins;

use helpers::*;
use serde_json::{json, Value};
use stand_ins::*;
use std::future::Future;
use std::time::{Duration, Instant};

const UNIT_PATH: &str = "openssl%403.0.13-1%2Fx86_64%2Frpm";
const ARTIFACT: &str = "openssl-3.0.13-1.x86_64.rpm";
const WEBHOOK_SECRET: &str = "pipeline-hmac-key";

/// A suite that writes a passing JUnit report named after the unit.
const SUITE: &str = r#"cat > "$TOLLGATE_REPORT" <<EOF
<testsuite name="unit-suite" tests="2"><testcase name="$TOLLGATE_UNIT_NAME-loads"/><testcase name="handshake"/></testsuite>
EOF"#;

/// The watchers' file, with this test's stand-ins and directories
/// in place of the `@NAME@` markers.
fn watchers_file(repo: &str, tickets: &str, jira_url: &str, hook_port: u16) -> String {
    let suite_command = serde_json::to_string(&json!(["sh", "-c", SUITE])).unwrap();
    r#"
[runtime]
backoff_base_ms = 50
backoff_cap_ms = 500

[watchers.run-tests]
kind = "test-runner"
on = { types = ["StagePassed"], stage = "build" }
gate = "tests"
[[watchers.run-tests.suites]]
name = "unit-suite"
command = @SUITE_COMMAND@

[watchers.promote]
kind = "promotion"
stage = "test"
from = "testing"
to = "stable"
repository = { type = "directory", root = "@REPO@", file = "{name}-{version}-{release}.{platform}.{package}" }

[watchers.security-tickets]
kind = "ticket"
gate = "scan"
state_dir = "@TICKETS@"
poll_interval_ms = 200
[watchers.security-tickets.jira]
url = "@JIRA_URL@"
project = "SEC"
auth = { token_env = "PIPELINE_JIRA_TOKEN" }
[watchers.security-tickets.approval]
gate = "approval"

[watchers.notify]
kind = "webhook"
secret_env = "PIPELINE_WEBHOOK_SECRET"
allow_http = true
allow_private = true
[[watchers.notify.rules]]
filter = { types = ["StagePassed"], stage = "release" }
url = "http://127.0.0.1:@HOOK_PORT@/released/{{ unit_key | urlencode_component }}"
"#
    .replace("@SUITE_COMMAND@", &suite_command)
    .replace("@REPO@", repo)
    .replace("@TICKETS@", tickets)
    .replace("@JIRA_URL@", jira_url)
    .replace("@HOOK_PORT@", &hook_port.to_string())
}

/// Polls `probe` until it yields a value, for at most a minute.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn unit_view(app: &TestApp) -> Value {
    app.get(&format!("/v1/units/{UNIT_PATH}"), &app.reader).await.json().await.unwrap()
}

fn stage_passed(view: &Value, stage: &str) -> bool {
    view["stages"].as_array().into_iter().flatten().any(|s| s["stage"] == stage && s["passed"] == true)
}

async fn define_pipeline(app: &TestApp) {
    for (gate, actions) in [
        ("build", json!(["compile"])),
        ("tests", json!(["unit-suite"])),
        ("promotion", json!(["promote"])),
        ("scan", json!(["security-scan"])),
        ("approval", json!(["manual-approval"])),
    ] {
        let r = app.post("/v1/gates", &app.admin, &json!({"name": gate, "required_actions": actions})).await;
        assert_eq!(r.status(), 201, "define gate {gate}");
    }
    for (stage, gates) in [
        ("build", json!(["build"])),
        ("test", json!(["tests"])),
        ("release", json!(["tests", "promotion", "approval"])),
    ] {
        let r = app.post("/v1/stages", &app.admin, &json!({"name": stage, "gates": gates})).await;
        assert_eq!(r.status(), 201, "define stage {stage}");
    }
}

#[tokio::test]
async fn a_unit_travels_from_build_to_release_through_the_watchers() {
    let (jira_url, jira) = start_jira().await;
    let (hook_port, received) = start_receiver().await;
    let dirs = tempfile::tempdir().unwrap();
    let repo = dirs.path().join("repo");
    std::fs::create_dir_all(repo.join("testing")).unwrap();
    std::fs::write(repo.join("testing").join(ARTIFACT), b"an rpm's bytes").unwrap();
    let config = dirs.path().join("watchers.toml");
    let tickets = dirs.path().join("tickets");
    let text = watchers_file(repo.to_str().unwrap(), tickets.to_str().unwrap(), &jira_url, hook_port);
    std::fs::write(&config, text).unwrap();
    // The server reads its watchers' secrets from its environment, which
    // it inherits from this test (the only one in this binary).
    std::env::set_var("PIPELINE_JIRA_TOKEN", AUTH.trim_start_matches("Bearer "));
    std::env::set_var("PIPELINE_WEBHOOK_SECRET", WEBHOOK_SECRET);

    let app = spawn_app_with(vec!["--watchers".into(), config.to_str().unwrap().into()]).await;
    define_pipeline(&app).await;

    // Build passes: the suite runs, its receipt passes `test`, the
    // artifact is promoted.
    app.submit("build", "compile", true).await;
    let promoted = repo.join("stable").join(ARTIFACT);
    eventually("the promotion", || async { promoted.exists().then_some(()) }).await;
    assert_eq!(std::fs::read(&promoted).unwrap(), b"an rpm's bytes");
    let view = eventually("stage test and the promotion receipt", || async {
        let view = unit_view(&app).await;
        let promoted =
            view["gates"].as_array().into_iter().flatten().any(|g| g["gate"] == "promotion" && g["passed"] == true);
        (stage_passed(&view, "test") && promoted).then_some(view)
    })
    .await;
    assert!(!stage_passed(&view, "release"), "no approval yet: {view}");

    // A failing scan opens one ticket; its approval passes `release`.
    let scan = json!({"unit": UNIT, "gate": "scan", "action": "security-scan", "multipass": false,
                      "custom": {"cves": ["CVE-2026-0001"]}});
    assert_eq!(app.post("/v1/receipts", &app.submitter, &scan).await.status(), 201);
    let ticket = eventually("the ticket", || async { jira_issues(&jira).first().cloned() }).await;
    assert!(ticket.summary.contains(UNIT), "{}", ticket.summary);
    set_status(&jira, &ticket.key, "Approved");

    let (path, headers, body) =
        eventually("the webhook call", || async { received.lock().unwrap().first().cloned() }).await;
    assert_eq!(path, format!("/released/{UNIT_PATH}"));
    let timestamp: u64 = headers["x-tollgate-timestamp"].to_str().unwrap().parse().unwrap();
    let signature = headers["x-tollgate-signature"].to_str().unwrap();
    assert_eq!(signature, tollgate_webhook_watcher::sign(WEBHOOK_SECRET.as_bytes(), timestamp, &body));
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((event["eventtype"].as_str(), event["data"]["stage"].as_str()), (Some("StagePassed"), Some("release")));
    assert!(stage_passed(&unit_view(&app).await, "release"));
    assert_eq!(jira_issues(&jira).len(), 1, "one failing scan, one ticket");

    // Every watcher reported as itself, and the log still verifies.
    let producers: Vec<String> = app
        .published_events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "ReceiptSubmitted")
        .inspect(|e| assert_eq!(e.data["producer"]["issuer"], "tollgate-local", "{e:?}"))
        .map(|e| e.data["producer"]["subject"].as_str().unwrap().to_owned())
        .collect();
    for watcher in ["watcher:run-tests", "watcher:promote", "watcher:security-tickets"] {
        assert!(producers.iter().any(|p| p == watcher), "{watcher} in {producers:?}");
    }

    // Each watcher keeps its place in the log: after a crash and restart
    // nothing is handled twice (a later event proves they caught up).
    let mut app = app;
    app.crash_and_restart().await;
    let receipts_before = producers.len();
    let later = json!({"unit": UNIT, "gate": "scan", "action": "security-scan", "multipass": true});
    let answer: Value = app.post("/v1/receipts", &app.submitter, &later).await.json().await.unwrap();
    let head = answer["position"].as_u64().unwrap();
    for watcher in ["run-tests", "promote", "security-tickets", "notify"] {
        let file = app.data_path().join("watchers").join(format!("{watcher}.position"));
        eventually(&format!("{watcher} to reach position {head}"), || async {
            let at: u64 = std::fs::read_to_string(&file).ok()?.trim().parse().ok()?;
            (at >= head).then_some(())
        })
        .await;
    }
    assert_eq!(received.lock().unwrap().len(), 1, "the release was announced once");
    assert_eq!(jira_issues(&jira).len(), 1);
    let receipts_after = app.published_events().await.iter().filter(|e| e.event_type == "ReceiptSubmitted").count();
    assert_eq!(receipts_after, receipts_before + 1, "only the later scan was added");

    let out = app.stop().await.verify();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
