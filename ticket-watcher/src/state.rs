//! Which tickets the watcher opened and where each stands: one JSON file
//! per ticket in `state_dir`, replaced atomically (temporary file, fsync,
//! rename, fsync of the directory), so a crash leaves either the old or
//! the new record, never half of one.

use crate::config::is_issue_key;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One ticket the watcher opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ticket {
    /// The issue key, e.g. `SEC-42`.
    pub key: String,
    pub unit: String,
    /// The failing gate the ticket is about.
    pub gate: String,
    /// Where a person looks at it.
    pub url: String,
    /// Ids of the failing receipts it is about; the first opened it.
    pub receipts: Vec<String>,
    /// When it was opened (RFC 3339).
    pub opened_at: String,
    /// The decision, once its receipt has been submitted.
    #[serde(default)]
    pub decision: Option<Decision>,
    /// The decision has been commented on the ticket: nothing is left to do.
    #[serde(default)]
    pub done: bool,
}

/// What the ticket's status decided and the receipt that recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Decision {
    pub status: String,
    pub passed: bool,
    pub receipt_id: String,
}

impl Ticket {
    /// Still waiting for a decision: new failures are commented here
    /// rather than opening another ticket.
    pub(crate) fn is_open(&self) -> bool {
        self.decision.is_none()
    }
}

/// Reading or writing the state failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("ticket state {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("ticket state {path} is not a ticket record: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("{0:?} is not an issue key, so it cannot name a state file")]
    BadKey(String),
    #[error("the task writing the ticket state failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Every ticket, in memory and on disk.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    tickets: BTreeMap<String, Ticket>,
    /// Keys whose last write failed: memory is ahead of the disk until
    /// [`Store::flush`] succeeds.
    unsaved: BTreeSet<String>,
}

impl Store {
    /// Creates `dir` if missing and reads every record in it.
    pub(crate) fn open(dir: &Path) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io { path: dir.to_owned(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut tickets = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            // Leftover temporary files of an interrupted write are ignored:
            // the record they were replacing is still in place.
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
            let ticket: Ticket =
                serde_json::from_slice(&text).map_err(|source| StoreError::Corrupt { path: path.clone(), source })?;
            tickets.insert(ticket.key.clone(), ticket);
        }
        Ok(Store { dir: dir.to_owned(), tickets, unsaved: BTreeSet::new() })
    }

    /// Whether a failing receipt has already been handled.
    pub(crate) fn handled(&self, receipt_id: &str) -> bool {
        self.tickets.values().any(|t| t.receipts.iter().any(|r| r == receipt_id))
    }

    /// The undecided ticket about `unit` at `gate`, if any.
    pub(crate) fn open_ticket(&self, unit: &str, gate: &str) -> Option<&Ticket> {
        self.tickets.values().find(|t| t.is_open() && t.unit == unit && t.gate == gate)
    }

    /// Tickets with work left (a status to poll or a comment to add).
    pub(crate) fn pending(&self) -> Vec<Ticket> {
        self.tickets.values().filter(|t| !t.done).cloned().collect()
    }

    /// Keeps `ticket` in memory and writes it durably. When the write
    /// fails, memory stays ahead (so a retry does not open the ticket
    /// again) and the record is written by the next [`Store::flush`].
    pub(crate) async fn save(&mut self, ticket: Ticket) -> Result<(), StoreError> {
        let key = ticket.key.clone();
        self.tickets.insert(key.clone(), ticket);
        self.unsaved.insert(key);
        self.flush().await
    }

    /// Writes every record whose last write failed.
    pub(crate) async fn flush(&mut self) -> Result<(), StoreError> {
        while let Some(key) = self.unsaved.first().cloned() {
            if let Some(ticket) = self.tickets.get(&key) {
                let (dir, record) = (self.dir.clone(), ticket.clone());
                tokio::task::spawn_blocking(move || write_durably(&dir, &record)).await??;
            }
            self.unsaved.remove(&key);
        }
        Ok(())
    }
}

/// Temporary file, fsync, rename over the record, fsync the directory
/// (so the rename itself survives a power loss).
fn write_durably(dir: &Path, ticket: &Ticket) -> Result<(), StoreError> {
    // Keys come from Jira; only well-formed ones become file names.
    if !is_issue_key(&ticket.key) {
        return Err(StoreError::BadKey(ticket.key.clone()));
    }
    let name = &ticket.key;
    let path = dir.join(format!("{name}.json"));
    let tmp = dir.join(format!("{name}.json.tmp"));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io { path, source }
    };
    let text =
        serde_json::to_vec_pretty(ticket).map_err(|source| StoreError::Corrupt { path: path.clone(), source })?;
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&text).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    sync_dir(dir).map_err(io(dir))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
