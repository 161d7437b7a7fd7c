#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

const UNIT: &str = "openssl@3.0.13-1/x86_64/rpm";

const REPORT: &str = r#"<testsuites>
  <testsuite name="Math Suite">
    <testcase name="adds" time="0.5"/>
    <testcase name="divides" time="0.25"><failure message="expected 2, got 3"/></testcase>
    <testcase name="roots"><skipped/></testcase>
    <testcase name="logs"><error message="disk gone"/></testcase>
  </testsuite>
  <testsuite name="strings"><testcase name="concat" time="0.1"/><testcase name="trim"><skipped/></testcase></testsuite>
</testsuites>"#;

fn receipts(granularity: Granularity, xml: &str) -> Vec<ReceiptDraft> {
    receipts_from_xml(UNIT, "test", granularity, "fallback", xml.as_bytes())
}

#[test]
fn one_receipt_per_suite_with_counts_from_the_cases() {
    let drafts = receipts(Granularity::Suite, REPORT);
    assert_eq!(drafts.len(), 2);
    let (math, strings) = (&drafts[0], &drafts[1]);
    assert_eq!((math.unit.as_str(), math.gate.as_str(), math.action.as_str()), (UNIT, "test", "math-suite"));
    assert!(!math.multipass);
    assert_eq!(
        math.custom,
        Some(json!({"suite": "Math Suite", "tests": 4, "failures": 1, "errors": 1, "skipped": 1, "time_s": 0.75,
            "failure_messages": ["divides: expected 2, got 3", "logs: disk gone"]}))
    );
    assert_eq!(strings.action, "strings");
    assert!(strings.multipass, "skipped cases do not fail a suite");
    assert_eq!(strings.custom.as_ref().unwrap()["skipped"], 1);
    assert!(strings.custom.as_ref().unwrap().get("failure_messages").is_none());
}

#[test]
fn one_receipt_per_case_named_suite_dot_case() {
    let drafts = receipts(Granularity::Case, REPORT);
    let actions: Vec<&str> = drafts.iter().map(|d| d.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "math-suite.adds",
            "math-suite.divides",
            "math-suite.roots",
            "math-suite.logs",
            "strings.concat",
            "strings.trim"
        ]
    );
    let passes: Vec<bool> = drafts.iter().map(|d| d.multipass).collect();
    assert_eq!(passes, [true, false, true, false, true, true]);
    assert_eq!(drafts[1].custom.as_ref().unwrap()["case"], "divides");
    assert_eq!(drafts[1].custom.as_ref().unwrap()["tests"], 1);
}

#[test]
fn suites_of_one_name_merge_and_clashing_names_stay_apart() {
    let xml = r#"<testsuites>
      <testsuite name="a"><testcase name="x"/></testsuite>
      <testsuite name="A"><testcase name="y"><failure/></testcase></testsuite>
      <testsuite name="a"><testcase name="z"/></testsuite>
    </testsuites>"#;
    let drafts = receipts(Granularity::Suite, xml);
    assert_eq!(drafts.len(), 2, "the two suites named a are one receipt");
    assert_eq!(drafts[0].custom.as_ref().unwrap()["tests"], 2);
    assert_ne!(drafts[0].action, drafts[1].action, "a and A must not share an action");
    assert!(drafts.iter().all(|d| tollgate_domain::ActionName::parse(&d.action).is_ok()));
}

#[test]
fn failure_messages_are_bounded_and_cleaned() {
    let cases: String = (0..20)
        .map(|i| format!(r#"<testcase name="c{i}"><failure message="a&#13;b{}"/></testcase>"#, "m".repeat(900)))
        .collect();
    let drafts = receipts(Granularity::Suite, &format!(r#"<testsuite name="s">{cases}</testsuite>"#));
    let messages = drafts[0].custom.as_ref().unwrap()["failure_messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 5);
    let first = messages[0].as_str().unwrap();
    assert_eq!(first.chars().count(), 501, "500 characters and an ellipsis");
    assert!(first.starts_with("c0: a b"), "{first}");
    assert_eq!(drafts[0].custom.as_ref().unwrap()["failures"], 20, "counts are not bounded");
}

#[test]
fn an_unreadable_report_is_one_failing_receipt() {
    let drafts = receipts(Granularity::Suite, "<testsuites><testsuite name=\"a\"></testsuites>");
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].action, "fallback");
    assert!(!drafts[0].multipass);
    let error = drafts[0].custom.as_ref().unwrap()["parse_error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("malformed XML at line 1, column "), "{error}");
    let wrong_root = receipts(Granularity::Case, "<html/>");
    assert_eq!(
        wrong_root[0].custom,
        Some(json!({"parse_error": "the root element is <html>, not <testsuites> or <testsuite>"}))
    );
}

#[test]
fn granularity_reads_from_text_and_config() {
    assert_eq!("case".parse::<Granularity>(), Ok(Granularity::Case));
    assert!("tests".parse::<Granularity>().is_err());
    #[derive(serde::Deserialize)]
    struct Holder {
        g: Granularity,
    }
    let holder: Holder = serde_json::from_value(json!({"g": "suite"})).unwrap();
    assert_eq!(holder.g, Granularity::Suite);
    assert_eq!(Granularity::default(), Granularity::Suite);
}

#[test]
fn blob_like_text_is_left_out() {
    let blob: String = "QUJDRGVmZ2hpSktMbW5vcFFSU3R1dnd4WVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk".repeat(3);
    assert_eq!(clean_text(&blob, 500), "(omitted: looks like encoded binary data)");
    assert_eq!(clean_text("plain\ttext\r\n", 500), "plain\ttext \n");
}
