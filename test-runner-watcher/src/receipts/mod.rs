//! A report turned into receipts: one per suite or one per case.

use crate::junit::{self, JunitError, Outcome, Report, TestCase};
use crate::names::unique_action_names;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::str::FromStr;
use tollgate_watchers::ReceiptDraft;

#[cfg(test)]
mod tests;

/// Failure messages kept in one receipt.
const MAX_MESSAGES: usize = 5;
/// Characters kept of one message.
const MAX_MESSAGE_CHARS: usize = 500;

/// One receipt per suite (the default) or per case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// Action = the suite's name.
    #[default]
    Suite,
    /// Action = `suite.case`.
    Case,
}

impl FromStr for Granularity {
    type Err = String;
    fn from_str(s: &str) -> Result<Granularity, String> {
        match s {
            "suite" => Ok(Granularity::Suite),
            "case" => Ok(Granularity::Case),
            other => Err(format!("granularity must be suite or case, not {other:?}")),
        }
    }
}

/// The receipts of `xml` for `unit` at `gate`: those of the report, or,
/// when it cannot be read, one failing receipt for `fallback_action`
/// whose `custom.parse_error` says why.
pub fn receipts_from_xml(
    unit: &str,
    gate: &str,
    granularity: Granularity,
    fallback_action: &str,
    xml: &[u8],
) -> Vec<ReceiptDraft> {
    match junit::parse(xml) {
        Ok(report) => report_receipts(unit, gate, granularity, &report),
        Err(e) => vec![parse_error_receipt(unit, gate, fallback_action, &e)],
    }
}

/// The failing receipt of a report that could not be read.
pub fn parse_error_receipt(unit: &str, gate: &str, action: &str, error: &JunitError) -> ReceiptDraft {
    let mut draft = ReceiptDraft::new(unit, gate, action, false);
    draft.custom = Some(json!({ "parse_error": clean_text(&error.to_string(), MAX_MESSAGE_CHARS) }));
    draft
}

/// The receipts of a parsed report. `multipass` is true when no case
/// failed or errored (skipped cases pass); `custom` holds `suite` (and
/// `case`) as written in the report, the counts `tests`, `failures`,
/// `errors`, `skipped`, the summed `time_s`, and up to five
/// `failure_messages`. Suites (or cases) of the same name are merged.
pub fn report_receipts(unit: &str, gate: &str, granularity: Granularity, report: &Report) -> Vec<ReceiptDraft> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for suite in &report.suites {
        match granularity {
            Granularity::Suite => add(&mut groups, &mut index, suite.name.clone(), &suite.name, None, &suite.cases),
            Granularity::Case => {
                for case in &suite.cases {
                    let full = format!("{}.{}", suite.name, case.name);
                    add(&mut groups, &mut index, full, &suite.name, Some(&case.name), std::slice::from_ref(case));
                }
            }
        }
    }
    let names: Vec<&str> = groups.iter().map(|g| g.full_name.as_str()).collect();
    let actions = unique_action_names(&names);
    groups.iter().zip(actions).map(|(group, action)| group.receipt(unit, gate, &action)).collect()
}

/// The cases reported under one name.
struct Group<'a> {
    full_name: String,
    suite: String,
    case: Option<String>,
    cases: Vec<&'a TestCase>,
}

fn add<'a>(
    groups: &mut Vec<Group<'a>>,
    index: &mut HashMap<String, usize>,
    full_name: String,
    suite: &str,
    case: Option<&str>,
    cases: &'a [TestCase],
) {
    if let Some(&at) = index.get(&full_name) {
        groups[at].cases.extend(cases);
        return;
    }
    index.insert(full_name.clone(), groups.len());
    groups.push(Group {
        full_name,
        suite: suite.to_owned(),
        case: case.map(str::to_owned),
        cases: cases.iter().collect(),
    });
}

impl Group<'_> {
    fn receipt(&self, unit: &str, gate: &str, action: &str) -> ReceiptDraft {
        let count = |f: fn(&Outcome) -> bool| self.cases.iter().filter(|c| f(&c.outcome)).count();
        let failures = count(|o| matches!(o, Outcome::Failed(_)));
        let errors = count(|o| matches!(o, Outcome::Errored(_)));
        let skipped = count(|o| matches!(o, Outcome::Skipped));
        let time_s = (self.cases.iter().map(|c| c.time_s).sum::<f64>() * 1000.0).round() / 1000.0;
        let mut custom = Map::new();
        custom.insert("suite".into(), json!(clean_text(&self.suite, MAX_MESSAGE_CHARS)));
        if let Some(case) = &self.case {
            custom.insert("case".into(), json!(clean_text(case, MAX_MESSAGE_CHARS)));
        }
        custom.insert("tests".into(), json!(self.cases.len()));
        custom.insert("failures".into(), json!(failures));
        custom.insert("errors".into(), json!(errors));
        custom.insert("skipped".into(), json!(skipped));
        custom.insert("time_s".into(), json!(time_s));
        let messages: Vec<String> = self
            .cases
            .iter()
            .filter_map(|c| match &c.outcome {
                Outcome::Failed(m) | Outcome::Errored(m) => Some(format!("{}: {m}", c.name)),
                Outcome::Passed | Outcome::Skipped => None,
            })
            .take(MAX_MESSAGES)
            .map(|m| clean_text(&m, MAX_MESSAGE_CHARS))
            .collect();
        if !messages.is_empty() {
            custom.insert("failure_messages".into(), json!(messages));
        }
        let mut draft = ReceiptDraft::new(unit, gate, action, failures == 0 && errors == 0);
        draft.custom = Some(Value::Object(custom));
        draft
    }
}

/// Text from a test run made fit for a receipt, which refuses control
/// characters and anything that looks like an encoded blob: control
/// characters other than newlines and tabs become spaces, the text is cut
/// to `max` characters, and a blob-like text is replaced by a note.
pub(crate) fn clean_text(text: &str, max: usize) -> String {
    let mut out: String =
        text.chars().map(|c| if c.is_control() && !matches!(c, '\n' | '\t') { ' ' } else { c }).take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    if tollgate_domain::find_blob(&Value::String(out.clone()), "").is_some() {
        return "(omitted: looks like encoded binary data)".to_owned();
    }
    out
}
