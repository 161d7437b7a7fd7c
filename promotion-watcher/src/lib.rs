//! Promotion watcher: promote a unit's artifact between repository
//! channels when a stage passes, withdraw it when the stage is invalidated.
//!
//! On `StagePassed` for the configured stage it promotes the unit's artifact
//! from channel `from` to channel `to`, then submits a receipt
//! (`multipass: true`, the artifact's URI and digest) to `gate`/`action`, so
//! later stages can gate on the promotion. On `StageInvalidated` for that
//! stage it withdraws the artifact from `to` and submits a failing receipt
//! for the same gate and action, so whatever was gated on the promotion
//! stops passing.
//!
//! ```toml
//! [watchers.promote-stable]
//! kind = "promotion"
//! stage = "build"
//! gate = "promotion"       # default
//! action = "promote"       # default
//! from = "testing"
//! to = "stable"
//! repository = { type = "directory", root = "/srv/repo", file = "{name}-{version}-{release}.{platform}.{package}" }
//! # or: repository = { type = "http", url = "https://repo.example/promote", token_env = "REPO_TOKEN", timeout_ms = 30000 }
//! ```
//!
//! - **Directory repositories** keep one directory per channel. Promoting
//!   hashes the source (and checks its `<file>.sha256` sidecar, if any),
//!   copies it to a hidden temporary file in the target channel, fsyncs,
//!   re-hashes the copy and renames it into place without replacing
//!   anything. A target with the same digest is already promoted; one with
//!   another digest is a permanent error (never overwritten). Withdrawing
//!   moves the file to `root/.withdrawn/<channel>/<file>.<event id>`:
//!   nothing is deleted.
//! - **HTTP repositories** get one `POST` per promotion or withdrawal:
//!   `{"action": "promote"|"withdraw", "unit", "from", "to", "event_id"}`,
//!   with `Authorization: Bearer` from `token_env` when set. A promotion
//!   expects a 2xx JSON answer `{"uri", "sha256"}` (optionally `"name"`), a
//!   withdrawal any 2xx. The endpoint must answer a repeated request (same
//!   `event_id`) as done. Transport errors, timeouts, 429 and 5xx are
//!   retried; other statuses and malformed answers are permanent.
//! - **Receipts** carry the idempotency key `NAME:EVENT:promote` (or
//!   `:withdraw`), so a redelivered event replays the first receipt. The
//!   gate must be defined in Tollgate and list the action: a refused
//!   receipt (4xx) is a permanent error and the event is dead-lettered.

mod config;
mod digest;
mod directory;
mod error;
mod http;
mod template;

pub use config::{Config, Repository};

use config::Checked;
use directory::DirectoryRepo;
use error::PromotionError;
use http::HttpRepo;
use serde_json::json;
use std::path::PathBuf;
use tollgate_domain::Unit;
use tollgate_watchers::{
    async_trait, idempotency_key, Artifact, ConfigError, Filter, HandlerError, ReceiptDraft, Reporter, TollgateEvent,
    Watcher,
};
use tracing::{info, instrument};

/// The artifact in the target channel after a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Promoted {
    uri: String,
    sha256: String,
    name: Option<String>,
    /// It was there already (an earlier attempt or delivery did it).
    already: bool,
}

/// Where a withdrawn artifact went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Withdrawn {
    moved_to: Option<PathBuf>,
    /// It was gone already.
    already: bool,
}

#[derive(Debug, Clone)]
enum Backend {
    Directory(DirectoryRepo),
    Http(HttpRepo),
}

/// Promotes on `StagePassed`, withdraws on `StageInvalidated` (see the
/// crate documentation).
#[derive(Clone)]
pub struct PromotionWatcher {
    name: String,
    config: Config,
    backend: Backend,
    reporter: Reporter,
    filter: Filter,
}

impl PromotionWatcher {
    /// Checks `config` and builds the watcher; `name` is the watcher's
    /// name (it keys dead letters and idempotency keys: keep it stable).
    pub fn new(name: &str, config: Config, reporter: Reporter) -> Result<PromotionWatcher, ConfigError> {
        let backend = match config.check()? {
            Checked::Directory { root, file } => {
                Backend::Directory(DirectoryRepo { root, file, from: config.from.clone(), to: config.to.clone() })
            }
            Checked::Http { url, token, timeout_ms } => Backend::Http(
                HttpRepo::new(url, token, timeout_ms, config.from.clone(), config.to.clone())
                    .map_err(|e| ConfigError::new("repository", format!("cannot build an HTTP client: {e}")))?,
            ),
        };
        let filter = Filter::all().event_type("StagePassed").event_type("StageInvalidated").stage(&config.stage);
        Ok(PromotionWatcher { name: name.to_owned(), config, backend, reporter, filter })
    }

    #[instrument(skip_all, fields(watcher = %self.name, unit = %unit.key(), event = %event.id), err)]
    async fn promote(&self, event: &TollgateEvent, unit: &Unit) -> Result<(), HandlerError> {
        let promoted = match &self.backend {
            Backend::Directory(repo) => repo.promote(unit).await?,
            Backend::Http(repo) => repo.promote(unit.key().as_str(), &event.id).await?,
        };
        info!(uri = %promoted.uri, sha256 = %promoted.sha256, already = promoted.already, "promoted");
        let mut draft = ReceiptDraft::new(unit.key().as_str(), &self.config.gate, &self.config.action, true);
        draft.custom = Some(json!({"from": self.config.from, "to": self.config.to, "event": event.id}));
        draft.artifacts.push(Artifact { uri: promoted.uri, sha256: promoted.sha256, name: promoted.name });
        self.report(event, &draft, "promote").await
    }

    #[instrument(skip_all, fields(watcher = %self.name, unit = %unit.key(), event = %event.id), err)]
    async fn withdraw(&self, event: &TollgateEvent, unit: &Unit) -> Result<(), HandlerError> {
        let withdrawn = match &self.backend {
            Backend::Directory(repo) => repo.withdraw(unit, &event.id).await?,
            Backend::Http(repo) => repo.withdraw(unit.key().as_str(), &event.id).await?,
        };
        info!(moved_to = ?withdrawn.moved_to, already = withdrawn.already, "withdrawn");
        let mut draft = ReceiptDraft::new(unit.key().as_str(), &self.config.gate, &self.config.action, false);
        draft.custom = Some(json!({"withdrawn_from": self.config.to, "stage": self.config.stage, "event": event.id}));
        self.report(event, &draft, "withdraw").await
    }

    async fn report(&self, event: &TollgateEvent, draft: &ReceiptDraft, what: &str) -> Result<(), HandlerError> {
        let key = idempotency_key(&self.name, &event.id, what);
        let submitted = self.reporter.submit(draft, &key, event.traceparent.as_deref()).await?;
        info!(receipt = %submitted.receipt_id, replayed = submitted.replayed, "receipt submitted");
        Ok(())
    }
}

// By hand: the reporter holds a bearer token, which must never be printed.
impl std::fmt::Debug for PromotionWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromotionWatcher")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("server", &self.reporter.server())
            .finish_non_exhaustive()
    }
}

/// The event's unit, and an event id safe to put in a file name.
fn unit_of(event: &TollgateEvent) -> Result<Unit, PromotionError> {
    let id_ok = !event.id.is_empty() && event.id.len() <= 64 && event.id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !id_ok {
        return Err(PromotionError::BadEvent(format!("event id {:?} is not a ULID", event.id)));
    }
    let key = event.unit_key().ok_or_else(|| PromotionError::BadEvent(format!("event {} has no unit", event.id)))?;
    Unit::from_key(key).map_err(|e| PromotionError::BadEvent(format!("event {}: unit key {key:?}: {e}", event.id)))
}

#[async_trait]
impl Watcher for PromotionWatcher {
    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> &Filter {
        &self.filter
    }

    async fn handle(&self, event: &TollgateEvent) -> Result<(), HandlerError> {
        // The runtime filters already; checking again keeps direct calls safe.
        if !self.filter.matches(event) {
            return Ok(());
        }
        let unit = unit_of(event)?;
        match event.event_type.as_str() {
            "StagePassed" => self.promote(event, &unit).await,
            "StageInvalidated" => self.withdraw(event, &unit).await,
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, id: &str, stage: &str) -> TollgateEvent {
        serde_json::from_value(json!({
            "id": id, "source": "tollgate", "type": "dev.tollgate.stage.passed",
            "subject": "openssl@3.0.13-1/x86_64/rpm", "time": "2025-01-01T00:00:00Z",
            "data": {"unit_key": "openssl@3.0.13-1/x86_64/rpm", "stage": stage, "gates": ["build"], "receipts": []},
            "eventtype": event_type, "schemaversion": 1, "position": 7,
            "stream": "unit:openssl@3.0.13-1/x86_64/rpm", "streamversion": 3, "metadata": "{}",
            "prevhash": "", "hash": "", "keyid": "", "signature": ""
        }))
        .unwrap()
    }

    fn watcher(root: &std::path::Path, from: &str) -> Result<PromotionWatcher, ConfigError> {
        let config: Config = serde_json::from_value(json!({
            "stage": "build", "from": from, "to": "stable",
            "repository": {"type": "directory", "root": root, "file": "{name}-{version}.{package}"}
        }))
        .unwrap();
        // Nothing listens on port 1: any receipt submission would fail the handler.
        PromotionWatcher::new("promote-stable", config, Reporter::new("http://127.0.0.1:1", "token").unwrap())
    }

    #[test]
    fn the_constructor_names_the_bad_field() {
        assert_eq!(watcher(std::path::Path::new("/r"), "../up").unwrap_err().field, "from");
        let w = watcher(std::path::Path::new("/r"), "testing").unwrap();
        assert!(!format!("{w:?}").contains("token"), "{w:?}");
        assert_eq!(w.filter().stage.as_deref(), Some("build"));
        assert_eq!(w.filter().types, ["StagePassed", "StageInvalidated"]);
    }

    #[test]
    fn event_ids_that_could_name_other_files_are_refused() {
        assert!(unit_of(&event("StagePassed", "01JABCDEF", "build")).is_ok());
        for bad in ["../../etc", "a/b", "", "x.y"] {
            assert!(matches!(unit_of(&event("StagePassed", bad, "build")), Err(PromotionError::BadEvent(_))), "{bad}");
        }
    }

    #[tokio::test]
    async fn other_stages_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("testing")).unwrap();
        std::fs::write(dir.path().join("testing/openssl-3.0.13.rpm"), "bytes").unwrap();
        let w = watcher(dir.path(), "testing").unwrap();
        w.handle(&event("StagePassed", "01JABCDEF", "release")).await.unwrap();
        assert!(!dir.path().join("stable").exists());
        // The right stage does promote; the receipt then cannot be submitted.
        let err = w.handle(&event("StagePassed", "01JABCDEF", "build")).await.unwrap_err();
        assert!(matches!(err, HandlerError::Retryable(_)), "{err}");
        assert!(dir.path().join("stable/openssl-3.0.13.rpm").exists());
    }
}
