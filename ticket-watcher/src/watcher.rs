//! The watcher: failing receipts open tickets; decided tickets become
//! receipts.

use crate::config::{Config, Verdict};
use crate::jira::JiraClient;
use crate::state::{Decision, Store, StoreError, Ticket};
use crate::text;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::Mutex;
use tollgate_domain::{Event, Receipt};
use tollgate_watchers::{
    async_trait, idempotency_key, ConfigError, Filter, HandlerError, ReceiptDraft, Reporter, TollgateEvent, Watcher,
};

/// Opens a Jira ticket when a receipt fails at the configured gate, and
/// submits a manual-approval receipt once the ticket is approved (or a
/// failing one once it is rejected).
pub struct TicketWatcher {
    name: String,
    config: Config,
    filter: Filter,
    jira: JiraClient,
    reporter: Reporter,
    /// One lock for the state: a handler and a tick never interleave, so
    /// two failures of one unit cannot both open a ticket.
    store: Mutex<Store>,
}

/// By hand: the reporter holds a token, which must never reach a log.
impl std::fmt::Debug for TicketWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketWatcher")
            .field("name", &self.name)
            .field("gate", &self.config.gate)
            .field("project", &self.config.jira.project)
            .field("server", &self.reporter.server())
            .finish_non_exhaustive()
    }
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> HandlerError {
        // A full or read-only disk may be fixed; the event is worth keeping.
        HandlerError::retryable(e)
    }
}

impl TicketWatcher {
    /// Validates `config`, reads the Jira credentials from the environment
    /// variables it names, creates `state_dir` if missing and reads the
    /// tickets recorded there.
    pub fn new(name: &str, config: Config, reporter: Reporter) -> Result<TicketWatcher, ConfigError> {
        config.validate()?;
        let jira = JiraClient::new(&config.jira)?;
        let store = Store::open(&config.state_dir).map_err(|e| ConfigError::new("state_dir", e.to_string()))?;
        let filter = Filter::all().event_type("ReceiptSubmitted").gate(config.gate.clone());
        Ok(TicketWatcher { name: name.to_owned(), config, filter, jira, reporter, store: Mutex::new(store) })
    }

    /// A failing receipt: comment on the unit's open ticket, or open one.
    /// The record is durable before this returns `Ok`.
    ///
    /// The remaining window: a crash after Jira created the issue and
    /// before its record is written leaves a ticket the state does not
    /// know, and the redelivered event opens a second one. (Jira offers
    /// no idempotent create to close it.)
    async fn failed(&self, receipt: &Receipt, submitted_at: &str) -> Result<(), HandlerError> {
        let unit = receipt.unit.key().as_str().to_owned();
        let receipt_id = receipt.id.to_string();
        let mut store = self.store.lock().await;
        store.flush().await?;
        if store.handled(&receipt_id) {
            return Ok(());
        }
        if let Some(open) = store.open_ticket(&unit, &self.config.gate) {
            let mut ticket = open.clone();
            self.jira.comment(&ticket.key, &text::another_failure(receipt, submitted_at)).await?;
            ticket.receipts.push(receipt_id);
            store.save(ticket).await?;
            return Ok(());
        }
        let summary = text::summary(&self.config.gate, &unit);
        let description = text::description(receipt, submitted_at, &self.config.approval);
        let key = self.jira.create_issue(&summary, &description).await?;
        tracing::info!(ticket = %key, unit = %unit, gate = %self.config.gate, "ticket opened");
        let ticket = Ticket {
            url: self.jira.browse_url(&key),
            key,
            unit,
            gate: self.config.gate.clone(),
            receipts: vec![receipt_id],
            opened_at: now(),
            decision: None,
            done: false,
        };
        store.save(ticket).await?;
        Ok(())
    }

    /// Moves one ticket on: read its status and submit the decision, then
    /// comment on the ticket and mark it done. Each step is recorded, so
    /// a failure resumes at the step that failed.
    async fn advance(&self, store: &mut Store, mut ticket: Ticket) -> Result<(), HandlerError> {
        if ticket.decision.is_none() {
            let status = self.jira.status(&ticket.key).await?;
            let passed = match self.config.approval.verdict(&status) {
                Verdict::Approved => true,
                Verdict::Rejected => false,
                Verdict::Undecided => return Ok(()),
            };
            let approval = &self.config.approval;
            let draft = ReceiptDraft {
                custom: Some(json!({"ticket": ticket.key, "status": status, "url": ticket.url})),
                ..ReceiptDraft::new(&ticket.unit, &approval.gate, &approval.action, passed)
            };
            let what = if passed { "approved" } else { "rejected" };
            let key = idempotency_key(&self.name, &format!("ticket-{}", ticket.key), what);
            let submitted = self.reporter.submit(&draft, &key, None).await?;
            tracing::info!(ticket = %ticket.key, status = %status, receipt = %submitted.receipt_id, "ticket decided");
            ticket.decision = Some(Decision { status, passed, receipt_id: submitted.receipt_id });
            store.save(ticket.clone()).await?;
        }
        if let Some(decision) = &ticket.decision {
            self.jira.comment(&ticket.key, &text::decision_recorded(decision.passed, &decision.receipt_id)).await?;
            ticket.done = true;
            store.save(ticket).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Watcher for TicketWatcher {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Reacts to failing receipts at the configured gate; every other
    /// event (passing receipts included, which the filter cannot tell
    /// apart) is left alone.
    async fn handle(&self, event: &TollgateEvent) -> Result<(), HandlerError> {
        if event.event_type != "ReceiptSubmitted" {
            return Ok(());
        }
        // Published data is the stored, signed data: read it through the
        // domain's upcasting by its schema version. A version newer than
        // this build knows is dead-lettered for a replay after upgrading.
        let receipt = match Event::from_stored(&event.event_type, event.schema_version, &event.data) {
            Ok(Event::ReceiptSubmitted(receipt)) => receipt,
            Ok(_) => return Ok(()),
            Err(e) => return Err(HandlerError::permanent(format!("event {} does not hold a receipt: {e}", event.id))),
        };
        if receipt.multipass || receipt.gate.as_str() != self.config.gate {
            return Ok(());
        }
        let submitted_at = event.data.get("submitted_at").and_then(Value::as_str).unwrap_or(&event.time);
        self.failed(&receipt, submitted_at).await
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.config.poll_interval_ms))
    }

    /// Polls every undecided ticket. One ticket's failure does not stop
    /// the others; the error returned at the end names each failure.
    async fn tick(&self) -> Result<(), HandlerError> {
        let mut store = self.store.lock().await;
        store.flush().await?;
        let pending = store.pending();
        let mut failures = Vec::new();
        for ticket in pending.iter().cloned() {
            let key = ticket.key.clone();
            if let Err(e) = self.advance(&mut store, ticket).await {
                tracing::warn!(ticket = %key, error = %e, "ticket not moved on; the next tick tries again");
                failures.push(format!("{key}: {e}"));
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        let summary = format!("{} of {} tickets failed: {}", failures.len(), pending.len(), failures.join("; "));
        Err(HandlerError::retryable(summary))
    }
}

/// The current time in RFC 3339 (UTC).
fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| now.unix_timestamp().to_string())
}
