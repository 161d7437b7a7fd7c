//! Test-runner watcher: run a registered suite on an event, turn its JUnit
//! XML into receipts.
//!
//! When a selected event arrives (say `StagePassed` for stage `build`),
//! [`TestRunnerWatcher`] runs each configured suite for the event's unit,
//! one after the other, reads the JUnit/xUnit report the suite wrote and
//! submits receipts to one gate: one per suite of the report (or one per
//! test case), passing when no case failed or errored. A run that cannot
//! produce a readable report (the command is missing, times out, writes no
//! report or malformed XML) submits one failing receipt named after the
//! suite, saying why.
//!
//! ```toml
//! [watchers.integration]
//! kind = "test-runner"
//! on = { types = ["StagePassed"], stage = "build" }
//! gate = "test"
//! granularity = "suite"          # or "case"
//!
//! [[watchers.integration.suites]]
//! name = "integration"
//! command = ["./run-integration.sh", "--junit"]
//! working_dir = "/srv/suites"
//! timeout_ms = 600000
//! ```
//!
//! A suite's command runs directly (no shell) with these variables:
//! `TOLLGATE_UNIT` (the unit key), `TOLLGATE_UNIT_NAME`, `_VERSION`,
//! `_RELEASE`, `_PLATFORM`, `_PACKAGE`, `TOLLGATE_EVENT_ID`,
//! `TOLLGATE_EVENT_TYPE`, and `TOLLGATE_REPORT`: where to write the XML
//! (a fresh file per run, or the configured `report`). The watcher's own
//! `TOLLGATE_TOKEN` is removed. On timeout the command's process is
//! killed; processes it started in the background are not tracked.
//!
//! Suites run as local child processes of the watcher, and that is the
//! only runner there is. A suite that must run elsewhere (a container, a
//! cluster job) needs a local command that starts it there, waits, and
//! leaves the report at `TOLLGATE_REPORT`.
//!
//! The conversion alone ([`junit::parse`], [`receipts_from_xml`]) also
//! serves `tollgate junit`, which turns any CI job's report into receipts.

mod config;
pub mod junit;
mod names;
mod receipts;
mod runner;
mod watcher;

pub use config::{Config, Suite};
pub use names::{action_name, unique_action_names};
pub use receipts::{parse_error_receipt, receipts_from_xml, report_receipts, Granularity};
pub use watcher::TestRunnerWatcher;
