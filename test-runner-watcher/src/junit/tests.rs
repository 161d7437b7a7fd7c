#![allow(clippy::unwrap_used)]

use super::*;

const SUITES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="99" failures="0">
  <testsuite name="math" tests="1">
    <testcase name="adds" classname="math.Add" time="0.5"/>
    <testcase name="divides" classname="math.Div" time="0.25">
      <failure message="expected 2, got 3" type="AssertionError">trace</failure>
    </testcase>
    <testcase name="roots"><skipped/></testcase>
    <testcase name="logs"><error type="IOError">
        disk gone
        more</error></testcase>
  </testsuite>
  <testsuite name="strings">
    <testcase name="concat" time="bad"/>
  </testsuite>
</testsuites>"#;

#[test]
fn suites_and_cases_are_read_from_the_cases() {
    let report = parse(SUITES.as_bytes()).unwrap();
    let names: Vec<&str> = report.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["math", "strings"]);
    let math = &report.suites[0];
    assert_eq!(math.cases.len(), 4, "the tests=\"1\" attribute is not trusted");
    assert_eq!(math.cases[0].outcome, Outcome::Passed);
    assert_eq!(math.cases[0].classname, "math.Add");
    assert_eq!(math.cases[0].time_s, 0.5);
    assert_eq!(math.cases[1].outcome, Outcome::Failed("expected 2, got 3".into()));
    assert_eq!(math.cases[2].outcome, Outcome::Skipped);
    assert_eq!(math.cases[3].outcome, Outcome::Errored("disk gone".into()), "first text line without a message");
    assert_eq!(report.suites[1].cases[0].time_s, 0.0, "an unreadable time counts as 0");
}

#[test]
fn a_bare_testsuite_is_a_report() {
    let report = parse(br#"<testsuite name="solo"><testcase name="a"/></testsuite>"#).unwrap();
    assert_eq!(report.suites.len(), 1);
    assert_eq!(report.suites[0].name, "solo");
}

#[test]
fn nested_suites_keep_their_own_cases() {
    let xml = r#"<testsuites>
      <testsuite name="outer">
        <testcase name="top"/>
        <testsuite name="inner"><testcase name="deep"><failure/></testcase></testsuite>
        <testsuite><testcase name="anonymous"/></testsuite>
      </testsuite>
      <testsuite name="container"><testsuite name="leaf"><testcase name="x"/></testsuite></testsuite>
    </testsuites>"#;
    let report = parse(xml.as_bytes()).unwrap();
    let shape: Vec<(&str, usize)> = report.suites.iter().map(|s| (s.name.as_str(), s.cases.len())).collect();
    assert_eq!(shape, [("outer", 1), ("inner", 1), ("outer", 1), ("leaf", 1)], "containers without cases are left out");
    assert_eq!(report.suites[1].cases[0].outcome, Outcome::Failed(String::new()));
}

#[test]
fn an_error_wins_over_a_failure() {
    let xml =
        r#"<testsuite name="s"><testcase name="c"><failure message="f"/><error message="e"/></testcase></testsuite>"#;
    assert_eq!(parse(xml.as_bytes()).unwrap().suites[0].cases[0].outcome, Outcome::Errored("e".into()));
}

#[test]
fn an_empty_suite_is_kept_but_an_empty_report_is_refused() {
    let report = parse(br#"<testsuites><testsuite name="none"/></testsuites>"#).unwrap();
    assert_eq!(report.suites[0].cases.len(), 0);
    assert_eq!(parse(b"<testsuites/>"), Err(JunitError::NoSuites));
}

#[test]
fn malformed_xml_names_the_position() {
    let err = parse(b"<testsuites>\n  <testsuite name=\"a\">\n  </testsuites>").unwrap_err();
    let JunitError::Malformed { line, column, ref message } = err else { panic!("{err:?}") };
    assert_eq!((line, column), (3, 3));
    assert!(message.contains("testsuite"), "{message}");
    assert!(err.to_string().starts_with("malformed XML at line 3, column 3: "), "{err}");
    assert!(matches!(parse(b"not xml at all"), Err(JunitError::Malformed { line: 1, .. })));
    assert!(matches!(parse(b""), Err(JunitError::Malformed { .. })));
}

#[test]
fn a_wrong_root_is_refused() {
    assert_eq!(parse(b"<html><testsuite/></html>"), Err(JunitError::WrongRoot("html".into())));
}

#[test]
fn dtds_are_refused() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE testsuites [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
<testsuites><testsuite name="&lol2;"/></testsuites>"#;
    let err = parse(xml.as_bytes()).unwrap_err();
    assert!(matches!(&err, JunitError::Malformed { message, .. } if message.contains("DTD")), "{err}");
}

#[test]
fn oversized_reports_are_refused_before_parsing() {
    let big = vec![b' '; MAX_REPORT_BYTES as usize + 1];
    assert_eq!(parse(&big), Err(JunitError::TooLarge { size: MAX_REPORT_BYTES + 1, max: MAX_REPORT_BYTES }));
}

#[test]
fn non_utf8_is_refused() {
    assert_eq!(parse(b"<testsuite name=\"\xff\"/>"), Err(JunitError::NotUtf8 { offset: 17 }));
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 5000;
    let xml = format!("{}<testcase name=\"c\"/>{}", "<testsuite>".repeat(depth), "</testsuite>".repeat(depth));
    let report = parse(xml.as_bytes()).unwrap();
    assert_eq!(report.suites.len(), 1, "only the innermost suite holds a case");
}
