//! The watcher's settings (`[watchers.NAME]` with `kind = "ticket"`) and
//! their validation.

use serde::Deserialize;
use std::path::PathBuf;
use tollgate_domain::{ActionName, GateName};
use tollgate_watchers::ConfigError;

/// Settings of one ticket watcher.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gate whose failing receipts open a ticket (e.g. a security scan).
    pub gate: String,
    /// Where tickets are opened.
    pub jira: Jira,
    /// What a ticket's approval (or rejection) becomes in Tollgate.
    pub approval: Approval,
    /// The directory holding one JSON file per ticket; created if missing.
    pub state_dir: PathBuf,
    /// How often open tickets are polled for their status.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
}

/// The Jira server and project (REST API v2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jira {
    /// Base URL, e.g. `https://jira.example.com` (with a context path if the
    /// server has one). No credentials in it: they come from `auth`.
    pub url: String,
    /// The project key tickets are opened in, e.g. `SEC`.
    pub project: String,
    /// The issue type of new tickets.
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// Where the credentials are read from.
    pub auth: JiraAuth,
    /// The longest one Jira request may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Names of environment variables holding the credentials: with
/// `user_env`, HTTP Basic (user and API token); without it, a Bearer
/// personal access token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraAuth {
    /// The variable holding the user name (Basic authentication).
    #[serde(default)]
    pub user_env: Option<String>,
    /// The variable holding the API token or personal access token.
    pub token_env: String,
}

/// The receipt a decided ticket becomes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The gate the receipt is submitted to (a manual-approval gate).
    pub gate: String,
    /// The receipt's action.
    #[serde(default = "default_action")]
    pub action: String,
    /// Ticket statuses that mean approved: a passing receipt.
    #[serde(default = "default_statuses")]
    pub statuses: Vec<String>,
    /// Ticket statuses that mean rejected: a failing receipt.
    #[serde(default = "default_rejected_statuses")]
    pub rejected_statuses: Vec<String>,
}

fn default_poll_interval_ms() -> u64 {
    30_000
}

fn default_issue_type() -> String {
    "Bug".to_owned()
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_action() -> String {
    "manual-approval".to_owned()
}

fn default_statuses() -> Vec<String> {
    ["Approved", "Done", "Closed"].map(str::to_owned).to_vec()
}

fn default_rejected_statuses() -> Vec<String> {
    ["Rejected", "Won't Do"].map(str::to_owned).to_vec()
}

/// What a ticket status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Approved,
    Rejected,
    Undecided,
}

impl Approval {
    /// Jira status names are compared without regard to case, since
    /// workflows differ in capitalisation.
    pub(crate) fn verdict(&self, status: &str) -> Verdict {
        let within = |list: &[String]| list.iter().any(|s| s.eq_ignore_ascii_case(status));
        if within(&self.statuses) {
            Verdict::Approved
        } else if within(&self.rejected_statuses) {
            Verdict::Rejected
        } else {
            Verdict::Undecided
        }
    }
}

impl Config {
    /// Checks every rule that does not need the environment.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        GateName::parse(&self.gate).map_err(|e| ConfigError::new("gate", e.rule))?;
        GateName::parse(&self.approval.gate).map_err(|e| ConfigError::new("approval.gate", e.rule))?;
        ActionName::parse(&self.approval.action).map_err(|e| ConfigError::new("approval.action", e.rule))?;
        if self.approval.gate == self.gate {
            // A rejection's failing receipt would open a ticket about itself.
            return Err(ConfigError::new("approval.gate", "must differ from gate"));
        }
        if self.poll_interval_ms == 0 {
            return Err(ConfigError::new("poll_interval_ms", "must be greater than 0"));
        }
        self.jira.validate()?;
        check_statuses("approval.statuses", &self.approval.statuses)?;
        check_statuses("approval.rejected_statuses", &self.approval.rejected_statuses)?;
        for (i, status) in self.approval.rejected_statuses.iter().enumerate() {
            if self.approval.verdict(status) == Verdict::Approved {
                return Err(ConfigError::new(
                    format!("approval.rejected_statuses[{i}]"),
                    "must not also be an approved status",
                ));
            }
        }
        Ok(())
    }
}

impl Jira {
    fn validate(&self) -> Result<(), ConfigError> {
        let url =
            reqwest::Url::parse(&self.url).map_err(|e| ConfigError::new("jira.url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new("jira.url", "must be an http or https URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::new("jira.url", "must not hold credentials (use jira.auth)"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError::new("jira.url", "must not have a query or fragment"));
        }
        if !is_project_key(&self.project) {
            return Err(ConfigError::new(
                "jira.project",
                "must be a project key: an uppercase letter, then uppercase letters, digits or '_'",
            ));
        }
        if self.issue_type.trim().is_empty() {
            return Err(ConfigError::new("jira.issue_type", "must not be empty"));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new("jira.timeout_ms", "must be greater than 0"));
        }
        if self.auth.token_env.is_empty() {
            return Err(ConfigError::new("jira.auth.token_env", "must name an environment variable"));
        }
        if self.auth.user_env.as_deref() == Some("") {
            return Err(ConfigError::new("jira.auth.user_env", "must name an environment variable"));
        }
        Ok(())
    }
}

fn check_statuses(field: &str, statuses: &[String]) -> Result<(), ConfigError> {
    if statuses.is_empty() {
        return Err(ConfigError::new(field, "must list at least one status"));
    }
    match statuses.iter().position(|s| s.trim().is_empty()) {
        Some(i) => Err(ConfigError::new(format!("{field}[{i}]"), "must not be empty")),
        None => Ok(()),
    }
}

/// Jira's default project key rule.
pub(crate) fn is_project_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_uppercase())
        && key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// An issue key as Jira hands them out (`SEC-42`): checked before it is
/// put into a request path.
pub(crate) fn is_issue_key(key: &str) -> bool {
    key.rsplit_once('-').is_some_and(|(project, number)| {
        is_project_key(project) && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit())
    })
}
