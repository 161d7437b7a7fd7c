//! Ticket watcher: open a Jira ticket on a failing receipt, and turn its approval into a receipt.
//!
//! When a receipt fails at the watched gate (a security scan, say), the
//! watcher opens a Jira issue for the unit (REST API v2), or comments on
//! the unit's ticket that is still open. Every poll interval it reads the
//! status of its open tickets: an approved status becomes a passing
//! receipt at the approval gate (`manual-approval`, with the ticket key,
//! status and link as custom facts), a rejected status a failing one, and
//! the ticket gets a comment naming the receipt.
//!
//! What it opened is kept in `state_dir`, one JSON file per ticket,
//! written durably before the event counts as handled. Receipts are
//! submitted with idempotency keys derived from the ticket key, so a
//! repeated tick replays rather than submitting twice. The one window
//! left: a crash between creating the issue and writing its record can
//! open a duplicate ticket when the event is redelivered.
//!
//! ```toml
//! [watchers.security-tickets]
//! kind = "ticket"
//! gate = "scan"                      # failing receipts here open tickets
//! state_dir = "/var/lib/tollgate/tickets"
//! poll_interval_ms = 30000
//!
//! [watchers.security-tickets.jira]
//! url = "https://jira.example.com"
//! project = "SEC"
//! issue_type = "Bug"
//! timeout_ms = 10000
//! # Basic with user and API token; leave out user_env for a Bearer token.
//! auth = { user_env = "JIRA_USER", token_env = "JIRA_TOKEN" }
//!
//! [watchers.security-tickets.approval]
//! gate = "approval"
//! action = "manual-approval"
//! statuses = ["Approved", "Done", "Closed"]
//! rejected_statuses = ["Rejected", "Won't Do"]
//! ```

mod config;
mod jira;
mod state;
mod text;
mod watcher;

#[cfg(test)]
mod tests;

pub use config::{Approval, Config, Jira, JiraAuth};
pub use watcher::TicketWatcher;
