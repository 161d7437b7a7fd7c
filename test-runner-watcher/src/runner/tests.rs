#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;
use std::time::Instant;

fn event() -> TollgateEvent {
    serde_json::from_value(json!({
        "id": "01JEVENT", "source": "tollgate", "type": "dev.tollgate.stage.passed",
        "subject": "openssl@3.0.13-1/x86_64/rpm", "time": "2025-01-01T00:00:00Z",
        "data": {"stage": "build"}, "eventtype": "StagePassed", "schemaversion": 1, "position": 7,
        "stream": "unit:openssl@3.0.13-1/x86_64/rpm", "streamversion": 3, "metadata": "{}",
        "prevhash": "", "hash": "", "keyid": "", "signature": ""
    }))
    .unwrap()
}

fn unit() -> Unit {
    Unit::from_key("openssl@3.0.13-1/linux/arm64/rpm").unwrap()
}

fn suite(script: &str) -> Suite {
    Suite {
        name: "unit-tests".into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        working_dir: None,
        timeout_ms: 10_000,
        report: None,
    }
}

async fn report_text(script: &str) -> (Run, String) {
    let run = run(&suite(script), &unit(), &event()).await.unwrap();
    let text = match &run.outcome {
        RunOutcome::Report(bytes) => String::from_utf8(bytes.clone()).unwrap(),
        other => panic!("no report: {other:?}"),
    };
    (run, text)
}

#[tokio::test]
async fn the_unit_and_the_event_are_in_the_environment() {
    let script = r#"printf '%s|%s|%s|%s|%s|%s|%s|%s|%s' "$TOLLGATE_UNIT" "$TOLLGATE_UNIT_NAME" \
        "$TOLLGATE_UNIT_VERSION" "$TOLLGATE_UNIT_RELEASE" "$TOLLGATE_UNIT_PLATFORM" "$TOLLGATE_UNIT_PACKAGE" \
        "$TOLLGATE_EVENT_ID" "$TOLLGATE_EVENT_TYPE" "${TOLLGATE_TOKEN:-no token}" > "$TOLLGATE_REPORT""#;
    // Only this test touches the variable; the watcher's token must not leak.
    std::env::set_var("TOLLGATE_TOKEN", "the watcher's secret");
    let (run, text) = report_text(script).await;
    assert_eq!(run.exit_code, Some(0));
    assert_eq!(text, "openssl@3.0.13-1/linux/arm64/rpm|openssl|3.0.13|1|linux/arm64|rpm|01JEVENT|StagePassed|no token");
}

#[tokio::test]
async fn each_run_gets_a_fresh_report_file() {
    let (_, first) = report_text(r#"echo "$TOLLGATE_REPORT" > "$TOLLGATE_REPORT""#).await;
    let (_, second) = report_text(r#"echo "$TOLLGATE_REPORT" > "$TOLLGATE_REPORT""#).await;
    assert_ne!(first, second);
    assert!(!Path::new(first.trim()).exists(), "the scratch dir is removed after the run");
}

#[tokio::test]
async fn a_nonzero_exit_keeps_the_report() {
    let (run, text) = report_text(r#"echo '<testsuite name="s"/>' > "$TOLLGATE_REPORT"; exit 3"#).await;
    assert_eq!(run.exit_code, Some(3));
    assert_eq!(text.trim(), r#"<testsuite name="s"/>"#);
}

#[tokio::test]
async fn a_slow_command_is_killed_at_the_timeout() {
    let mut slow = suite("echo started; exec sleep 30");
    slow.timeout_ms = 300;
    let started = Instant::now();
    let run = run(&slow, &unit(), &event()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(matches!(&run.outcome, RunOutcome::Failed(why) if why == "timed out after 300 ms"), "{run:?}");
    assert_eq!(run.exit_code, None);
    assert_eq!(run.output_tail, "started");
}

#[tokio::test]
async fn a_missing_program_is_a_failed_run() {
    let mut missing = suite("");
    missing.command = vec!["/nonexistent/run-tests".into()];
    let run = run(&missing, &unit(), &event()).await.unwrap();
    assert!(
        matches!(&run.outcome, RunOutcome::Failed(why) if why.starts_with("cannot start \"/nonexistent/run-tests\""))
    );
}

#[tokio::test]
async fn no_report_is_a_failed_run_with_the_output() {
    let run = run(&suite("echo boom >&2; exit 1"), &unit(), &event()).await.unwrap();
    assert_eq!(run.exit_code, Some(1));
    assert!(matches!(&run.outcome, RunOutcome::Failed(why) if why.starts_with("the suite wrote no report")));
    assert_eq!(run.output_tail, "boom");
}

#[tokio::test]
async fn a_configured_report_is_read_and_a_stale_one_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut configured =
        suite(r#"test "$TOLLGATE_REPORT" = "$PWD/out/junit.xml" && echo '<testsuite/>' > out/junit.xml"#);
    configured.working_dir = Some(dir.path().to_owned());
    configured.report = Some("out/junit.xml".into());
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let run1 = run(&configured, &unit(), &event()).await.unwrap();
    assert!(matches!(&run1.outcome, RunOutcome::Report(b) if b == b"<testsuite/>\n"), "{run1:?}");

    configured.command = vec!["true".into()];
    let run2 = run(&configured, &unit(), &event()).await.unwrap();
    assert!(matches!(run2.outcome, RunOutcome::Failed(_)), "the report of run 1 must not count for run 2");
}

#[tokio::test]
async fn an_oversized_report_is_not_read() {
    let run = run(&suite(r#"truncate -s 40M "$TOLLGATE_REPORT""#), &unit(), &event()).await.unwrap();
    assert!(matches!(run.outcome, RunOutcome::Oversized(size) if size == 40 * 1024 * 1024), "{run:?}");
}
