//! Channels as directories: `root/<channel>/<file>`.
//!
//! Promoting copies (the source channel keeps its file), verifies the copy
//! by digest and renames it into place without ever replacing a file;
//! withdrawing moves the file to `root/.withdrawn/<channel>/`. Nothing is
//! deleted, so an operator can always see what was promoted and when it
//! was taken back.

use crate::digest::{check_sidecar, sha256_file};
use crate::error::PromotionError;
use crate::template::FileTemplate;
use crate::{Promoted, Withdrawn};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tollgate_domain::Unit;

/// Where withdrawn files go, beside the channels (channel names never
/// start with `.`, so it cannot be one).
const WITHDRAWN: &str = ".withdrawn";

/// A directory repository with its two channels.
#[derive(Debug, Clone)]
pub(crate) struct DirectoryRepo {
    pub(crate) root: PathBuf,
    pub(crate) file: FileTemplate,
    pub(crate) from: String,
    pub(crate) to: String,
}

impl DirectoryRepo {
    /// Copies the unit's file from `from` to `to`; already there with the
    /// same digest counts as done.
    pub(crate) async fn promote(&self, unit: &Unit) -> Result<Promoted, PromotionError> {
        let name =
            self.file.render(unit).map_err(|rule| PromotionError::BadEvent(format!("unit {}: {rule}", unit.key())))?;
        let source = self.root.join(&self.from).join(&name);
        let channel = self.root.join(&self.to);
        blocking(move || promote_file(&source, &channel, &name)).await
    }

    /// Moves the unit's file out of `to` into
    /// `root/.withdrawn/<to>/<file>.<event id>`; absent counts as done.
    pub(crate) async fn withdraw(&self, unit: &Unit, event_id: &str) -> Result<Withdrawn, PromotionError> {
        let name =
            self.file.render(unit).map_err(|rule| PromotionError::BadEvent(format!("unit {}: {rule}", unit.key())))?;
        let channel = self.root.join(&self.to);
        let graveyard = self.root.join(WITHDRAWN).join(&self.to);
        let kept = format!("{name}.{event_id}");
        blocking(move || withdraw_file(&channel.join(&name), &graveyard, &kept)).await
    }
}

/// Runs file work on the blocking pool: hashing is CPU and disk bound.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PromotionError> + Send + 'static,
) -> Result<T, PromotionError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| PromotionError::Task(e.to_string()))?
}

fn promote_file(source: &Path, channel: &Path, name: &str) -> Result<Promoted, PromotionError> {
    let digest = sha256_file(source)?.ok_or_else(|| PromotionError::MissingSource(source.to_owned()))?;
    check_sidecar(source, &digest)?;
    let target = channel.join(name);
    if let Some(existing) = sha256_file(&target)? {
        return already_there(channel, &target, name, existing, digest);
    }
    fs::create_dir_all(channel).map_err(PromotionError::io("create", channel))?;
    // Hidden, and unique per attempt, so a crashed attempt never collides
    // with the next one nor looks like a promoted artifact.
    let mut partial = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(channel)
        .map_err(PromotionError::io("create a temporary file in", channel))?;
    let mut input = match File::open(source) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(PromotionError::MissingSource(source.to_owned())),
        Err(e) => return Err(PromotionError::io("open", source)(e)),
    };
    std::io::copy(&mut input, partial.as_file_mut()).map_err(PromotionError::io("copy to", partial.path()))?;
    partial.as_file().sync_all().map_err(PromotionError::io("fsync", partial.path()))?;
    let copy = sha256_file(partial.path())?.unwrap_or_default();
    if copy != digest {
        return Err(PromotionError::CopyMismatch { path: source.to_owned(), copy, source_digest: digest });
    }
    // No-clobber rename: a file that appeared meanwhile is compared, never replaced.
    if let Err(e) = partial.persist_noclobber(&target) {
        if e.error.kind() != ErrorKind::AlreadyExists {
            return Err(PromotionError::io("rename into", &target)(e.error));
        }
        let existing = sha256_file(&target)?.unwrap_or_default();
        return already_there(channel, &target, name, existing, digest);
    }
    sync_dir(channel)?;
    Ok(Promoted { uri: file_uri(&target)?, sha256: digest, name: Some(name.to_owned()), already: false })
}

/// The target exists: done if it holds the same bytes, refused otherwise.
fn already_there(
    channel: &Path,
    target: &Path,
    name: &str,
    existing: String,
    digest: String,
) -> Result<Promoted, PromotionError> {
    if existing != digest {
        return Err(PromotionError::TargetDiffers { path: target.to_owned(), existing, promoting: digest });
    }
    // An earlier attempt may have renamed and crashed before its fsync.
    sync_dir(channel)?;
    Ok(Promoted { uri: file_uri(target)?, sha256: digest, name: Some(name.to_owned()), already: true })
}

fn withdraw_file(target: &Path, graveyard: &Path, kept: &str) -> Result<Withdrawn, PromotionError> {
    let destination = graveyard.join(kept);
    // This event already moved it: a later promotion's file stays put.
    if exists(&destination)? {
        return Ok(Withdrawn { moved_to: Some(destination), already: true });
    }
    if !exists(target)? {
        return Ok(Withdrawn { moved_to: None, already: true });
    }
    fs::create_dir_all(graveyard).map_err(PromotionError::io("create", graveyard))?;
    match fs::rename(target, &destination) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Withdrawn { moved_to: None, already: true }),
        Err(e) => return Err(PromotionError::io("move", target)(e)),
    }
    sync_dir(graveyard)?;
    if let Some(channel) = target.parent() {
        sync_dir(channel)?;
    }
    Ok(Withdrawn { moved_to: Some(destination), already: false })
}

fn exists(path: &Path) -> Result<bool, PromotionError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(PromotionError::io("inspect", path)(e)),
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), PromotionError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(PromotionError::io("fsync", dir))
}

/// Everything but unreserved characters and `/` is escaped in a path.
const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `file:///absolute/path`, percent-encoded (receipts refuse URIs with spaces).
fn file_uri(path: &Path) -> Result<String, PromotionError> {
    let absolute = std::path::absolute(path).map_err(PromotionError::io("resolve", path))?;
    let text = absolute.to_str().ok_or_else(|| {
        PromotionError::BadEvent(format!("{} is not UTF-8 and cannot be a file URI", absolute.display()))
    })?;
    Ok(format!("file://{}", utf8_percent_encode(text, PATH)))
}

#[cfg(test)]
mod tests;
