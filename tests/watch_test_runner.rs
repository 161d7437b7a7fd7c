//! The test-runner watcher and `tollgate junit` against a real `tollgate
//! serve`: a stage passing for a unit runs the registered suites with the
//! unit in their environment, and their JUnit reports come back as
//! receipts; a malformed report is a failing receipt saying where it
//! broke; `tollgate junit` exits 0 or 3 by the report and never submits a
//! file twice.

// A failed expectation in a test is the test failing: panics are the point.
#![allow(clippy::unwrap_used)]

mod helpers;

use helpers::*;
use serde_json::{json, Value};
use std::path::Path;
use tollgate_test_runner_watcher::{Config, TestRunnerWatcher};
use tollgate_watchers::{Reporter, TollgateEvent, Watcher};

/// Gate `build` (compile) in stage `build`; gate `test` with the actions
/// the suites below report, and gate `ci` for the CLI's reports.
async fn define(app: &TestApp) {
    let gates = [
        ("build", json!(["compile"])),
        ("test", json!(["math", "openssl", "broken", "slow", "missing"])),
        ("ci", json!(["math", "strings", "report"])),
    ];
    for (gate, actions) in gates {
        let r = app.post("/v1/gates", &app.admin, &json!({"name": gate, "required_actions": actions})).await;
        assert_eq!(r.status(), 201, "define gate {gate}");
    }
    let r = app.post("/v1/stages", &app.admin, &json!({"name": "build", "gates": ["build"]})).await;
    assert_eq!(r.status(), 201, "define stage build");
}

/// Suite `unit-tests` writes suite `Math` (passing) and a suite named by
/// `$TOLLGATE_UNIT_NAME` (failing); suite `broken` writes malformed XML.
/// A case's time is the shell's pid, so that no two runs report alike.
fn watcher(app: &TestApp) -> TestRunnerWatcher {
    let good = r#"cat > "$TOLLGATE_REPORT" <<EOF
<testsuites>
  <testsuite name="Math"><testcase name="adds" time="$$"/><testcase name="later"><skipped/></testcase></testsuite>
  <testsuite name="$TOLLGATE_UNIT_NAME"><testcase name="links"><failure message="undefined symbol"/></testcase></testsuite>
</testsuites>
EOF
exit 1"#;
    let broken = r#"printf '<testsuites>\n<testsuite name="x">\n</testsuites>' > "$TOLLGATE_REPORT""#;
    let config: Config = serde_json::from_value(json!({
        "on": {"types": ["StagePassed"], "stage": "build"},
        "gate": "test",
        "suites": [
            {"name": "unit-tests", "command": ["sh", "-c", good], "timeout_ms": 30000},
            {"name": "broken", "command": ["sh", "-c", broken]},
        ]
    }))
    .unwrap();
    let reporter = Reporter::new(&app.url, &app.submitter).unwrap();
    TestRunnerWatcher::new("tests-after-build", config, reporter).unwrap()
}

async fn stage_passed(app: &TestApp) -> TollgateEvent {
    let events = app.published_events().await;
    events.into_iter().find(|e| e.event_type == "StagePassed" && e.stage() == Some("build")).unwrap()
}

#[tokio::test]
async fn a_passed_stage_runs_the_suites_and_their_reports_become_receipts() {
    let app = spawn_app().await;
    define(&app).await;
    app.submit("build", "compile", true).await;
    let event = stage_passed(&app).await;
    let watcher = watcher(&app);
    assert!(watcher.filter().matches(&event));

    watcher.handle(&event).await.unwrap();

    let receipts = app.receipts_at("test").await;
    let outcomes: Vec<(&str, bool)> =
        receipts.iter().map(|r| (r["action"].as_str().unwrap(), r["multipass"].as_bool().unwrap())).collect();
    // "openssl" is the unit's name: the suite saw it in its environment.
    assert_eq!(outcomes, [("math", true), ("openssl", false), ("broken", false)]);
    let math = &receipts[0]["custom"];
    assert_eq!(
        (math["tests"].as_u64(), math["skipped"].as_u64(), math["exit_code"].as_i64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(receipts[1]["custom"]["failure_messages"], json!(["links: undefined symbol"]));
    let parse_error = receipts[2]["custom"]["parse_error"].as_str().unwrap();
    assert!(parse_error.starts_with("malformed XML at line 3, column 1: "), "{parse_error}");
    assert_eq!(receipts[2]["unit"]["name"], "openssl");

    // Redelivered: the suites run again and report other times, but the
    // first receipts stand and the log takes nothing new.
    let log = app.audit_log().await;
    watcher.handle(&event).await.unwrap();
    assert_eq!(app.audit_log().await, log);
}

#[tokio::test]
async fn events_without_a_unit_are_left_alone() {
    let app = spawn_app().await;
    define(&app).await;
    let gate_defined = app.published_events().await.into_iter().find(|e| e.event_type == "GateDefined").unwrap();
    let log = app.audit_log().await;
    watcher(&app).handle(&gate_defined).await.unwrap();
    assert_eq!(app.audit_log().await, log);
}

#[tokio::test]
async fn a_suite_that_hangs_or_cannot_start_fails_with_the_reason() {
    let app = spawn_app().await;
    define(&app).await;
    app.submit("build", "compile", true).await;
    let config: Config = serde_json::from_value(json!({
        "on": {"types": ["StagePassed"]},
        "gate": "test",
        "suites": [
            {"name": "slow", "command": ["sh", "-c", "echo warming up; exec sleep 30"], "timeout_ms": 300},
            {"name": "missing", "command": ["/nonexistent/run-tests"]},
        ]
    }))
    .unwrap();
    let watcher = TestRunnerWatcher::new("hangs", config, Reporter::new(&app.url, &app.submitter).unwrap()).unwrap();
    let started = std::time::Instant::now();
    watcher.handle(&stage_passed(&app).await).await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the timeout was not enforced");

    let receipts = app.receipts_at("test").await;
    assert_eq!(receipts.len(), 2);
    assert_eq!((receipts[0]["action"].as_str(), receipts[0]["multipass"].as_bool()), (Some("slow"), Some(false)));
    assert_eq!(receipts[0]["custom"], json!({"error": "timed out after 300 ms", "output_tail": "warming up"}));
    assert_eq!((receipts[1]["action"].as_str(), receipts[1]["multipass"].as_bool()), (Some("missing"), Some(false)));
    let error = receipts[1]["custom"]["error"].as_str().unwrap();
    assert!(error.starts_with("cannot start \"/nonexistent/run-tests\""), "{error}");
}

const PASSING: &str =
    r#"<testsuite name="Math"><testcase name="adds"/><testcase name="later"><skipped/></testcase></testsuite>"#;
const FAILING: &str = r#"<testsuites><testsuite name="math"><testcase name="adds"/></testsuite>
<testsuite name="strings"><testcase name="trim"><error message="boom"/></testcase></testsuite></testsuites>"#;
const OTHER_UNIT: &str = "zlib@1.3-2/x86_64/rpm";

fn junit(app: &TestApp, file: &Path, unit: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["junit", file.to_str().unwrap(), "--gate", "ci", "--unit", unit];
    args.extend_from_slice(extra);
    app.cli(&app.submitter, &args)
}

#[tokio::test]
async fn tollgate_junit_exits_by_the_report_and_submits_a_file_once() {
    let app = spawn_app().await;
    define(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let (passing, failing, malformed) =
        (dir.path().join("pass.xml"), dir.path().join("fail.xml"), dir.path().join("report.xml"));
    std::fs::write(&passing, PASSING).unwrap();
    std::fs::write(&failing, FAILING).unwrap();
    std::fs::write(&malformed, "<testsuites><testsuite></testsuites>").unwrap();

    let out = junit(&app, &passing, UNIT, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed.as_array().unwrap().len(), 1);
    assert_eq!(printed[0]["action"], "math");
    assert_eq!(printed[0]["multipass"], true);
    assert_eq!(printed[0]["custom"]["tests"], 2);
    assert!(printed[0]["id"].as_str().is_some_and(|id| id.len() == 26), "{printed}");
    assert!(printed[0]["events"].is_array());

    // A retried CI job: the same answer, nothing new in the log.
    let log = app.audit_log().await;
    let again = junit(&app, &passing, UNIT, &["-o", "json"]);
    assert_eq!(again.status.code(), Some(0));
    let replayed: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(replayed[0]["id"], printed[0]["id"]);
    assert_eq!(replayed[0]["replayed"], true);
    assert_eq!(app.audit_log().await, log);

    let out = junit(&app, &failing, OTHER_UNIT, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.lines().any(|l| l.starts_with("math ") && l.contains("pass")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("strings ") && l.contains("FAIL")), "{table}");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "1 of 2 receipts failed");

    let out = junit(&app, &malformed, OTHER_UNIT, &["--granularity", "case"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let receipts = app.receipts_at("ci").await;
    let last = receipts.last().unwrap();
    assert_eq!((last["action"].as_str(), last["multipass"].as_bool()), (Some("report"), Some(false)));
    assert!(last["custom"]["parse_error"].as_str().unwrap().starts_with("malformed XML at line 1, column "));
    assert_eq!(receipts.len(), 4, "math, then math and strings, then report");

    // A refusal (the gate does not exist) is an ordinary error.
    let out = app.cli(&app.submitter, &["junit", passing.to_str().unwrap(), "--gate", "nope", "--unit", UNIT]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: submitting math"));
}
