//! What can go wrong while promoting or withdrawing, and whether trying
//! again can help.

use std::path::{Path, PathBuf};
use tollgate_watchers::HandlerError;

/// A failed promotion or withdrawal.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PromotionError {
    /// The event names no unit, or one whose file name breaks a rule.
    #[error("{0}")]
    BadEvent(String),
    /// Nothing to promote.
    #[error("the artifact {} does not exist", .0.display())]
    MissingSource(PathBuf),
    /// The source disagrees with its `.sha256` sidecar.
    #[error("{} hashes to {actual} but its sidecar {} says {expected}", .path.display(), .sidecar.display())]
    SidecarMismatch { path: PathBuf, sidecar: PathBuf, expected: String, actual: String },
    /// The sidecar holds no digest.
    #[error("the sidecar {} does not start with a sha256 hex digest", .0.display())]
    BadSidecar(PathBuf),
    /// The target channel already holds other bytes under the same name.
    #[error("{} already holds a different artifact (sha256 {existing}, promoting {promoting}); it is never overwritten", .path.display())]
    TargetDiffers { path: PathBuf, existing: String, promoting: String },
    /// The copy does not hash like its source (it changed while copied,
    /// or the disk is failing).
    #[error("the copy of {} hashes to {copy}, the source to {source_digest}", .path.display())]
    CopyMismatch { path: PathBuf, copy: String, source_digest: String },
    /// A file operation failed.
    #[error("{op} {}: {source}", .path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    /// The blocking file task did not finish.
    #[error("the file task stopped: {0}")]
    Task(String),
    /// The repository could not be reached or did not answer in time.
    #[error("cannot reach the repository at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The repository answered with an error status.
    #[error("the repository refused ({status}): {detail}")]
    Refused { status: u16, detail: String },
    /// The repository answered 2xx with something other than the promised JSON.
    #[error("the repository's answer is not {{\"uri\", \"sha256\"}}: {0}")]
    BadAnswer(String),
}

impl PromotionError {
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PromotionError {
        let path = path.to_owned();
        move |source| PromotionError::Io { op, path, source }
    }

    /// Whether another attempt could succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            PromotionError::CopyMismatch { .. }
            | PromotionError::Io { .. }
            | PromotionError::Task(_)
            | PromotionError::Unreachable { .. } => true,
            PromotionError::Refused { status, .. } => *status == 429 || *status >= 500,
            PromotionError::BadEvent(_)
            | PromotionError::MissingSource(_)
            | PromotionError::SidecarMismatch { .. }
            | PromotionError::BadSidecar(_)
            | PromotionError::TargetDiffers { .. }
            | PromotionError::BadAnswer(_) => false,
        }
    }
}

impl From<PromotionError> for HandlerError {
    fn from(e: PromotionError) -> HandlerError {
        if e.is_retryable() {
            HandlerError::retryable(e)
        } else {
            HandlerError::permanent(e)
        }
    }
}
