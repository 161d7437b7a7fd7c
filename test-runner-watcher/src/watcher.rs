//! The watcher: on each selected event, run every suite for the event's
//! unit and submit the receipts of its report.

use crate::config::{Config, Suite};
use crate::junit::{JunitError, MAX_REPORT_BYTES};
use crate::receipts::{parse_error_receipt, receipts_from_xml};
use crate::runner::{self, Run, RunOutcome};
use serde_json::{json, Value};
use tollgate_domain::Unit;
use tollgate_watchers::{
    async_trait, idempotency_key, ConfigError, Filter, HandlerError, ReceiptDraft, Reporter, SubmitError,
    TollgateEvent, Watcher,
};
use tracing::Instrument;

/// Runs registered test suites when a selected event arrives and reports
/// their results as receipts.
#[derive(Debug)]
pub struct TestRunnerWatcher {
    name: String,
    config: Config,
    reporter: Reporter,
}

impl TestRunnerWatcher {
    /// Validates `config`; the watcher's `name` keys its receipts'
    /// idempotency and names its dead-letter topic.
    pub fn new(name: &str, config: Config, reporter: Reporter) -> Result<TestRunnerWatcher, ConfigError> {
        if name.trim().is_empty() {
            return Err(ConfigError::new("name", "must not be empty"));
        }
        config.validate()?;
        Ok(TestRunnerWatcher { name: name.to_owned(), config, reporter })
    }

    /// The receipts of one run: the report's, or one failing receipt for
    /// the suite. Each carries the command's `exit_code` when it had one;
    /// receipts of a run without a readable report carry the end of its
    /// output too.
    async fn receipts(&self, suite: &Suite, unit: &str, run: Run) -> Result<Vec<ReceiptDraft>, HandlerError> {
        let gate = self.config.gate.clone();
        let mut drafts = match run.outcome {
            RunOutcome::Report(xml) => {
                let (unit, granularity, action) = (unit.to_owned(), self.config.granularity, suite.name.clone());
                // Parsing up to 32 MiB is CPU work: keep it off the async threads.
                tokio::task::spawn_blocking(move || receipts_from_xml(&unit, &gate, granularity, &action, &xml))
                    .await
                    .map_err(|e| HandlerError::retryable(format!("reading the report of {} failed: {e}", suite.name)))?
            }
            RunOutcome::Oversized(size) => {
                let error = JunitError::TooLarge { size, max: MAX_REPORT_BYTES };
                vec![parse_error_receipt(unit, &gate, &suite.name, &error)]
            }
            RunOutcome::Failed(why) => {
                let mut draft = ReceiptDraft::new(unit, &gate, &suite.name, false);
                draft.custom = Some(json!({ "error": why }));
                vec![draft]
            }
        };
        for draft in &mut drafts {
            let Some(Value::Object(custom)) = draft.custom.as_mut() else { continue };
            if let Some(code) = run.exit_code {
                custom.insert("exit_code".into(), json!(code));
            }
            let no_report = custom.contains_key("error") || custom.contains_key("parse_error");
            if no_report && !run.output_tail.is_empty() {
                custom.insert("output_tail".into(), json!(run.output_tail));
            }
        }
        Ok(drafts)
    }

    async fn run_suite(&self, suite: &Suite, unit: &Unit, event: &TollgateEvent) -> Result<(), HandlerError> {
        let run = runner::run(suite, unit, event).await?;
        tracing::info!(exit_code = ?run.exit_code, "suite finished");
        let drafts = self.receipts(suite, unit.key().as_str(), run).await?;
        for draft in drafts {
            // The suite's name keeps apart equal report names of two suites.
            let key = idempotency_key(&self.name, &event.id, &format!("{}/{}", suite.name, draft.action));
            match self.reporter.submit(&draft, &key, event.traceparent.as_deref()).await {
                Ok(submitted) => tracing::info!(
                    action = %draft.action, multipass = draft.multipass, receipt = %submitted.receipt_id,
                    replayed = submitted.replayed, "receipt submitted"
                ),
                // A redelivered event runs the suite again; when this run's
                // result differs, the first receipt for the event stands.
                Err(SubmitError::KeyReused(_)) => {
                    tracing::warn!(action = %draft.action, "already reported for this event; the first receipt stands")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Watcher for TestRunnerWatcher {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> &Filter {
        &self.config.on
    }

    /// Runs the suites one after the other. A redelivered event runs them
    /// again, but the idempotency keys (watcher, event, suite, action) let
    /// only the first receipts into the log.
    async fn handle(&self, event: &TollgateEvent) -> Result<(), HandlerError> {
        let Some(key) = event.unit_key() else {
            tracing::debug!(event = %event.id, "not about a unit; nothing to test");
            return Ok(());
        };
        let unit = Unit::from_key(key)
            .map_err(|e| HandlerError::permanent(format!("event {} names an invalid unit {key:?}: {e}", event.id)))?;
        for suite in &self.config.suites {
            let span = tracing::info_span!("suite", watcher = %self.name, event = %event.id, suite = %suite.name);
            self.run_suite(suite, &unit, event).instrument(span).await?;
        }
        Ok(())
    }
}
