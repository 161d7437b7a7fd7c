//! JUnit/xUnit XML reports, read into suites and cases.
//!
//! Accepted: a `<testsuites>` root holding `<testsuite>` elements (nested
//! suites too), or a bare `<testsuite>` root. Counts come from the
//! `<testcase>` elements themselves: the `tests`/`failures` attributes
//! that tools write on suites are often stale or absent, so they are not
//! read. The input is bounded ([`MAX_REPORT_BYTES`], checked before
//! parsing) and documents with a DTD are refused (no entity expansion).

use roxmltree::{Document, Node, ParsingOptions};

#[cfg(test)]
mod tests;

/// The largest report read, in bytes.
pub const MAX_REPORT_BYTES: u64 = 32 * 1024 * 1024;

/// A parsed report: the suites that hold test cases, in document order.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub suites: Vec<TestSuite>,
}

/// One suite and its own cases (cases of nested suites belong to those).
#[derive(Debug, Clone, PartialEq)]
pub struct TestSuite {
    /// The `name` attribute; a nested suite without one takes its
    /// parent's, a top-level one is `""`.
    pub name: String,
    pub cases: Vec<TestCase>,
}

/// One test case.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub name: String,
    /// The `classname` attribute, or `""`.
    pub classname: String,
    /// The `time` attribute in seconds, 0 when absent or unreadable.
    pub time_s: f64,
    pub outcome: Outcome,
}

/// What happened to a case. When a case holds several markers, an
/// `<error>` wins over a `<failure>`, which wins over `<skipped>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// An assertion failed (`<failure>`), with its message.
    Failed(String),
    /// The test could not run to an end (`<error>`), with its message.
    Errored(String),
    Skipped,
}

/// Why a report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JunitError {
    #[error("the report is {size} bytes, more than the {max} allowed")]
    TooLarge { size: u64, max: u64 },
    #[error("the report is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    /// Includes a DTD, which is refused.
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Malformed { message: String, line: u32, column: u32 },
    #[error("the root element is <{0}>, not <testsuites> or <testsuite>")]
    WrongRoot(String),
    #[error("the report holds no test suite")]
    NoSuites,
}

/// Reads a report from its bytes.
pub fn parse(xml: &[u8]) -> Result<Report, JunitError> {
    let size = xml.len() as u64;
    if size > MAX_REPORT_BYTES {
        return Err(JunitError::TooLarge { size, max: MAX_REPORT_BYTES });
    }
    let text = std::str::from_utf8(xml).map_err(|e| JunitError::NotUtf8 { offset: e.valid_up_to() })?;
    // The defaults refuse DTDs; spelled out so that it stays that way.
    let options = ParsingOptions { allow_dtd: false, ..ParsingOptions::default() };
    let doc = Document::parse_with_options(text, options).map_err(|e| {
        let pos = e.pos();
        JunitError::Malformed { message: e.to_string(), line: pos.row, column: pos.col }
    })?;
    let root = doc.root_element();
    let suites = match root.tag_name().name() {
        "testsuites" => collect_suites(root, ""),
        "testsuite" => collect_suites(doc.root(), ""),
        other => return Err(JunitError::WrongRoot(other.chars().take(64).collect())),
    };
    if suites.is_empty() {
        return Err(JunitError::NoSuites);
    }
    Ok(Report { suites })
}

/// Every `<testsuite>` below `parent` (depth first, document order) that
/// holds cases or holds no other suite. Iterative: a hostile report must
/// not be able to exhaust the stack with deep nesting.
fn collect_suites(parent: Node, parent_name: &str) -> Vec<TestSuite> {
    let mut out = Vec::new();
    let mut stack: Vec<(Node, String)> =
        child_suites(parent).rev().map(|node| (node, parent_name.to_owned())).collect();
    while let Some((node, inherited)) = stack.pop() {
        let name = node.attribute("name").map_or(inherited, str::to_owned);
        let cases: Vec<TestCase> = elements(node, "testcase").map(read_case).collect();
        let nested: Vec<Node> = child_suites(node).collect();
        if !cases.is_empty() || nested.is_empty() {
            out.push(TestSuite { name: name.clone(), cases });
        }
        stack.extend(nested.into_iter().rev().map(|child| (child, name.clone())));
    }
    out
}

fn child_suites<'a, 'input>(node: Node<'a, 'input>) -> impl DoubleEndedIterator<Item = Node<'a, 'input>> {
    elements(node, "testsuite").collect::<Vec<_>>().into_iter()
}

fn elements<'a, 'input>(node: Node<'a, 'input>, tag: &'static str) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(move |n| n.is_element() && n.tag_name().name() == tag)
}

fn read_case(node: Node) -> TestCase {
    let message = |tag| elements(node, tag).next().map(marker_message);
    let outcome = if let Some(m) = message("error") {
        Outcome::Errored(m)
    } else if let Some(m) = message("failure") {
        Outcome::Failed(m)
    } else if elements(node, "skipped").next().is_some() {
        Outcome::Skipped
    } else {
        Outcome::Passed
    };
    TestCase {
        name: node.attribute("name").unwrap_or_default().to_owned(),
        classname: node.attribute("classname").unwrap_or_default().to_owned(),
        time_s: node
            .attribute("time")
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|t| t.is_finite())
            .unwrap_or(0.0),
        outcome,
    }
}

/// A `<failure>`'s or `<error>`'s message: the `message` attribute, else
/// the first non-empty line of its text, else its `type`.
fn marker_message(node: Node) -> String {
    if let Some(m) = node.attribute("message").filter(|m| !m.trim().is_empty()) {
        return m.trim().to_owned();
    }
    let text = node.text().and_then(|t| t.lines().map(str::trim).find(|l| !l.is_empty()));
    text.or_else(|| node.attribute("type")).unwrap_or_default().to_owned()
}
