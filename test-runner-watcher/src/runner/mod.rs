//! Running one suite's command as a local child process: the unit and the
//! event in its environment, a timeout, and the report it leaves behind.

use crate::config::Suite;
use crate::junit::MAX_REPORT_BYTES;
use crate::receipts::clean_text;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::process::Command;
use tollgate_domain::Unit;
use tollgate_watchers::{HandlerError, TollgateEvent};

#[cfg(test)]
mod tests;

/// Bytes of the command's output kept for a receipt when the run failed.
const OUTPUT_TAIL_BYTES: u64 = 2000;

/// How a run ended.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code; `None` when the command did not start, timed out or
    /// was ended by a signal.
    pub exit_code: Option<i32>,
    pub outcome: RunOutcome,
    /// The end of what the command printed (stdout and stderr), cleaned.
    pub output_tail: String,
}

#[derive(Debug)]
pub(crate) enum RunOutcome {
    /// The report's bytes, at most [`MAX_REPORT_BYTES`].
    Report(Vec<u8>),
    /// The report is larger than [`MAX_REPORT_BYTES`] (its size).
    Oversized(u64),
    /// There is no report to read, and why.
    Failed(String),
}

/// Runs `suite` for `unit` and `event`. Failures of the command (it is
/// missing, times out, writes no report) are in the [`Run`]; an error is
/// the watcher's own trouble (no temp dir), worth a retry.
pub(crate) async fn run(suite: &Suite, unit: &Unit, event: &TollgateEvent) -> Result<Run, HandlerError> {
    let scratch = tempfile::Builder::new()
        .prefix("tollgate-suite-")
        .tempdir()
        .map_err(|e| HandlerError::retryable(format!("cannot create a temp dir for suite {}: {e}", suite.name)))?;
    let report = report_path(suite, scratch.path());
    remove_stale(&report).await?;
    let log_path = scratch.path().join("output.log");
    let (stdout, stderr) = output_files(&log_path)?;

    let Some((program, args)) = suite.command.split_first() else {
        let outcome = RunOutcome::Failed("the suite has no command".to_owned());
        return Ok(Run { exit_code: None, outcome, output_tail: String::new() });
    };
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).stdout(stdout).stderr(stderr).kill_on_drop(true);
    if let Some(dir) = &suite.working_dir {
        command.current_dir(dir);
    }
    // The watcher's own token is no business of the suite.
    command.env_remove("TOLLGATE_TOKEN");
    for (name, value) in environment(unit, event, &report) {
        command.env(name, value);
    }

    let (exit_code, failure) = match command.spawn() {
        Err(e) => (None, Some(format!("cannot start {program:?}: {e}"))),
        Ok(mut child) => match tokio::time::timeout(Duration::from_millis(suite.timeout_ms), child.wait()).await {
            Ok(Ok(status)) => (status.code(), None),
            Ok(Err(e)) => (None, Some(format!("waiting for the command failed: {e}"))),
            Err(_) => {
                // kill_on_drop would do it too; killing here also reaps it.
                let _ = child.kill().await;
                (None, Some(format!("timed out after {} ms", suite.timeout_ms)))
            }
        },
    };
    let output_tail = tail(&log_path).await;
    let outcome = match failure {
        Some(why) => RunOutcome::Failed(why),
        None => read_report(&report).await,
    };
    Ok(Run { exit_code, outcome, output_tail })
}

/// The variables a suite sees: the unit, its parts, the event, and where
/// to write the report.
pub(crate) fn environment(unit: &Unit, event: &TollgateEvent, report: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("TOLLGATE_UNIT", unit.key().to_string()),
        ("TOLLGATE_UNIT_NAME", unit.name().to_owned()),
        ("TOLLGATE_UNIT_VERSION", unit.version().to_owned()),
        ("TOLLGATE_UNIT_RELEASE", unit.release().to_owned()),
        ("TOLLGATE_UNIT_PLATFORM", unit.platform().to_owned()),
        ("TOLLGATE_UNIT_PACKAGE", unit.package().to_owned()),
        ("TOLLGATE_EVENT_ID", event.id.clone()),
        ("TOLLGATE_EVENT_TYPE", event.event_type.clone()),
        ("TOLLGATE_REPORT", report.to_string_lossy().into_owned()),
    ]
}

/// The configured report (relative to the working dir), else a fresh file
/// in this run's scratch dir.
fn report_path(suite: &Suite, scratch: &Path) -> PathBuf {
    match (&suite.report, &suite.working_dir) {
        (Some(report), Some(dir)) => dir.join(report),
        (Some(report), None) => report.clone(),
        (None, _) => scratch.join("report.xml"),
    }
}

async fn remove_stale(report: &Path) -> Result<(), HandlerError> {
    match tokio::fs::remove_file(report).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(HandlerError::retryable(format!("cannot remove the old report {}: {e}", report.display()))),
    }
}

/// One file for stdout and stderr: a file, unlike a pipe, never blocks a
/// chatty command and needs no reader task.
fn output_files(path: &Path) -> Result<(Stdio, Stdio), HandlerError> {
    let trouble = |e: std::io::Error| HandlerError::retryable(format!("cannot create {}: {e}", path.display()));
    let file = std::fs::File::create(path).map_err(trouble)?;
    let copy = file.try_clone().map_err(trouble)?;
    Ok((Stdio::from(file), Stdio::from(copy)))
}

async fn read_report(path: &Path) -> RunOutcome {
    let size = match tokio::fs::metadata(path).await {
        Ok(meta) => meta.len(),
        Err(e) => return RunOutcome::Failed(format!("the suite wrote no report at {}: {e}", path.display())),
    };
    if size > MAX_REPORT_BYTES {
        return RunOutcome::Oversized(size);
    }
    let mut bytes = Vec::new();
    // Bounded again, in case the file grew after the size was read.
    let read = match tokio::fs::File::open(path).await {
        Ok(file) => file.take(MAX_REPORT_BYTES + 1).read_to_end(&mut bytes).await,
        Err(e) => Err(e),
    };
    match read {
        Ok(_) if bytes.len() as u64 > MAX_REPORT_BYTES => RunOutcome::Oversized(bytes.len() as u64),
        Ok(_) => RunOutcome::Report(bytes),
        Err(e) => RunOutcome::Failed(format!("cannot read the report {}: {e}", path.display())),
    }
}

/// The last [`OUTPUT_TAIL_BYTES`] of the output, or "" when unreadable.
async fn tail(path: &Path) -> String {
    let Ok(mut file) = tokio::fs::File::open(path).await else {
        return String::new();
    };
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    if file.seek(std::io::SeekFrom::Start(size.saturating_sub(OUTPUT_TAIL_BYTES))).await.is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file.take(OUTPUT_TAIL_BYTES).read_to_end(&mut bytes).await.is_err() {
        return String::new();
    }
    clean_text(String::from_utf8_lossy(&bytes).trim(), OUTPUT_TAIL_BYTES as usize)
}
