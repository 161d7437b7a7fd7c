//! The promotion watcher against a real `tollgate serve`: a passing build
//! promotes the artifact from `testing` to `stable` and its receipt passes
//! stage `release`; a redelivered event appends nothing; a failing build
//! withdraws the artifact and the promotion stops passing.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use tollgate_promotion_watcher::{Config, PromotionWatcher};
use tollgate_watchers::{Reporter, TollgateEvent, Watcher};

const KEY: &str = "openssl%403.0.13-1%2Fx86_64%2Frpm";
const FILE: &str = "openssl-3.0.13-1.x86_64.rpm";

/// Gates `build` (compile) and `promotion` (promote); stage `build` of
/// [build] and stage `release` of [build, promotion].
async fn define(app: &TestApp) {
    for (gate, action) in [("build", "compile"), ("promotion", "promote")] {
        let r = app.post("/v1/gates", &app.admin, &json!({"name": gate, "required_actions": [action]})).await;
        assert_eq!(r.status(), 201, "define gate {gate}");
    }
    for (stage, gates) in [("build", json!(["build"])), ("release", json!(["build", "promotion"]))] {
        let r = app.post("/v1/stages", &app.admin, &json!({"name": stage, "gates": gates})).await;
        assert_eq!(r.status(), 201, "define stage {stage}");
    }
}

fn watcher(app: &TestApp, root: &Path) -> PromotionWatcher {
    let config: Config = serde_json::from_value(json!({
        "stage": "build",
        "from": "testing",
        "to": "stable",
        "repository": {"type": "directory", "root": root, "file": "{name}-{version}-{release}.{platform}.{package}"}
    }))
    .unwrap();
    let reporter = Reporter::new(&app.url, &app.submitter).unwrap();
    PromotionWatcher::new("promote-stable", config, reporter).unwrap()
}

/// The last published event of `event_type` for `stage`.
async fn last_stage_event(app: &TestApp, event_type: &str, stage: &str) -> TollgateEvent {
    let events = app.published_events().await;
    events.into_iter().rev().find(|e| e.event_type == event_type && e.stage() == Some(stage)).unwrap()
}

async fn stage_passed(app: &TestApp, stage: &str) -> bool {
    let view: Value = app.get(&format!("/v1/units/{KEY}"), &app.reader).await.json().await.unwrap();
    let stages = view["stages"].as_array().unwrap();
    let found = stages.iter().find(|s| s["stage"] == stage).unwrap_or_else(|| panic!("stage {stage} in {view}"));
    found["passed"].as_bool().unwrap()
}

#[tokio::test]
async fn a_passing_build_is_promoted_and_a_failing_one_withdrawn() {
    let app = spawn_app().await;
    define(&app).await;
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join("testing")).unwrap();
    let bytes = b"an rpm, byte for byte";
    std::fs::write(repo.path().join("testing").join(FILE), bytes).unwrap();
    let digest = hex::encode(Sha256::digest(bytes));
    let watcher = watcher(&app, repo.path());

    let answer = app.submit("build", "compile", true).await;
    assert!(event_types(&answer).contains(&"StagePassed".to_owned()));
    let passed = last_stage_event(&app, "StagePassed", "build").await;
    assert!(watcher.filter().matches(&passed));
    assert!(!stage_passed(&app, "release").await);

    watcher.handle(&passed).await.unwrap();
    let promoted = repo.path().join("stable").join(FILE);
    assert_eq!(hex::encode(Sha256::digest(std::fs::read(&promoted).unwrap())), digest);
    assert!(stage_passed(&app, "release").await, "the promotion receipt passes release");
    let receipts = app.receipts_at("promotion").await;
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["action"], "promote");
    assert_eq!(receipts[0]["multipass"], true);
    assert_eq!(receipts[0]["custom"], json!({"from": "testing", "to": "stable", "event": passed.id}));
    assert_eq!(receipts[0]["artifacts"][0]["sha256"], digest.as_str());
    assert_eq!(receipts[0]["artifacts"][0]["name"], FILE);
    assert!(receipts[0]["artifacts"][0]["uri"].as_str().unwrap().starts_with("file:///"));

    // Redelivered: the file is already there and the receipt is replayed.
    let submitted_before = count(&app, "ReceiptSubmitted").await;
    watcher.handle(&passed).await.unwrap();
    assert_eq!(count(&app, "ReceiptSubmitted").await, submitted_before);

    let failed = app.submit("build", "compile", false).await;
    assert!(event_types(&failed).contains(&"StageInvalidated".to_owned()));
    let invalidated = last_stage_event(&app, "StageInvalidated", "build").await;
    assert!(watcher.filter().matches(&invalidated));
    watcher.handle(&invalidated).await.unwrap();

    assert!(!promoted.exists(), "withdrawn from stable");
    let kept = repo.path().join(".withdrawn/stable").join(format!("{FILE}.{}", invalidated.id));
    assert_eq!(std::fs::read(kept).unwrap(), bytes, "moved aside, not deleted");
    let receipts = app.receipts_at("promotion").await;
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[1]["multipass"], false);
    assert_eq!(receipts[1]["action"], "promote");
    assert_eq!(receipts[1]["custom"], json!({"withdrawn_from": "stable", "stage": "build", "event": invalidated.id}));

    // A passing build again leaves release held back by the withdrawal.
    app.submit("build", "compile", true).await;
    assert!(stage_passed(&app, "build").await);
    assert!(!stage_passed(&app, "release").await, "the failing promotion receipt holds release back");
}

async fn count(app: &TestApp, event_type: &str) -> usize {
    app.published_events().await.iter().filter(|e| e.event_type == event_type).count()
}
