//! Feeding `tollgate audit verify`'s events to the verifier in batches:
//! export lines collected into one buffer and parsed on every core into
//! events borrowing from it, records from a data dir as they come.

use anyhow::{bail, Context};
use ed25519_dalek::VerifyingKey;
use std::collections::HashMap;
use std::io::BufRead;
use tollgate_eventlog::{ChainVerifier, RawEvent, StoredEvent, VerifyError};

/// Events verified per batch (split over the cores by the verifier).
pub(super) const BATCH: usize = 8192;

/// Feeds events to the verifier in batches, showing progress on a terminal.
/// Export lines are collected into one buffer per batch and parsed on every
/// core into [`RawEvent`]s borrowing from it: their `data` and `metadata`
/// are hashed as written, so no JSON tree is built per event.
pub(super) struct Batcher {
    pub(super) verifier: ChainVerifier,
    /// Events read from a data dir, not checked yet.
    pending: Vec<StoredEvent>,
    /// Export lines not checked yet.
    lines: Lines,
    started: std::time::Instant,
    progress: bool,
    /// The trusted key ids, for the report.
    pub(super) key_ids: Vec<String>,
}

impl Batcher {
    pub(super) fn new(keys: HashMap<String, VerifyingKey>) -> Self {
        use std::io::IsTerminal;
        let mut key_ids: Vec<String> = keys.keys().cloned().collect();
        key_ids.sort();
        Self {
            key_ids,
            verifier: ChainVerifier::new(keys),
            pending: Vec::with_capacity(BATCH),
            lines: Lines::default(),
            started: std::time::Instant::now(),
            progress: std::io::stderr().is_terminal(),
        }
    }

    pub(super) fn push(&mut self, event: StoredEvent) -> anyhow::Result<()> {
        self.pending.push(event);
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues line `number` of an export (blank lines are skipped).
    pub(super) fn push_line(&mut self, number: usize, line: &[u8]) -> anyhow::Result<()> {
        self.lines.push(number, line);
        if self.lines.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Reads line `number` of an export file straight into the batch;
    /// `false` at the end of the file.
    pub(super) fn read_line(&mut self, number: usize, reader: &mut impl BufRead) -> anyhow::Result<bool> {
        if !self.lines.read_line(number, reader).context("reading the export")? {
            return Ok(false);
        }
        if self.lines.len() >= BATCH {
            self.flush()?;
        }
        Ok(true)
    }

    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            let checked = self.verifier.check_batch(&batch);
            drop_in_parallel(batch);
            self.checked(checked)?;
        }
        if !self.lines.is_empty() {
            let events = parse_lines(&self.lines)?;
            let checked = self.verifier.check_batch(&events);
            drop(events);
            // Keep the buffers' capacity for the next batch.
            self.lines.clear();
            self.checked(checked)?;
        }
        Ok(())
    }

    /// The command's error for a failed batch; progress for a good one.
    fn checked(&self, result: Result<(), VerifyError>) -> anyhow::Result<()> {
        result.map_err(|e| anyhow::anyhow!("audit verify failed: {e}"))?;
        if self.progress {
            let verified = self.verifier.verified();
            let rate = verified as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            eprint!("\r{verified} events verified ({rate:.0}/s)");
        }
        Ok(())
    }

    /// Ends the progress line, if one was drawn.
    pub(super) fn finish(&self) {
        if self.progress {
            eprintln!();
        }
    }
}

/// A batch of export lines in one buffer, so that none is allocated alone.
#[derive(Default)]
struct Lines {
    text: Vec<u8>,
    /// Each line's number and where it sits in `text`.
    spans: Vec<(usize, std::ops::Range<usize>)>,
}

impl Lines {
    fn len(&self) -> usize {
        self.spans.len()
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Appends line `number` unless it is blank.
    fn push(&mut self, number: usize, line: &[u8]) {
        let start = self.text.len();
        self.text.extend_from_slice(line);
        self.keep_unless_blank(number, start);
    }

    /// Reads line `number` from `reader` straight into the batch, unless it
    /// is blank; `false` at the end of the input.
    fn read_line(&mut self, number: usize, reader: &mut impl BufRead) -> std::io::Result<bool> {
        let start = self.text.len();
        if reader.read_until(b'\n', &mut self.text)? == 0 {
            return Ok(false);
        }
        self.keep_unless_blank(number, start);
        Ok(true)
    }

    fn keep_unless_blank(&mut self, number: usize, start: usize) {
        if self.text[start..].iter().all(u8::is_ascii_whitespace) {
            self.text.truncate(start);
        } else {
            self.spans.push((number, start..self.text.len()));
        }
    }

    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }
}

/// The events of a batch of export lines, parsed on every core.
fn parse_lines(lines: &Lines) -> anyhow::Result<Vec<RawEvent<'_>>> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = lines.spans.len().div_ceil(workers).max(1);
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .spans
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(n, span)| {
                            serde_json::from_slice::<RawEvent<'_>>(&lines.text[span.clone()])
                                .with_context(|| format!("line {n} is not an event"))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| bail!("parsing the export failed"))).collect::<Vec<_>>()
    });
    let mut events = Vec::with_capacity(lines.spans.len());
    for part in parts {
        events.extend(part?);
    }
    Ok(events)
}

/// Frees a batch on every core: freeing thousands of parsed events costs
/// as much as a tenth of the check when this thread does it alone.
fn drop_in_parallel<T: Send>(mut items: Vec<T>) {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    if workers < 2 || items.len() < 2 {
        return;
    }
    let chunk = items.len().div_ceil(workers);
    std::thread::scope(|scope| {
        while items.len() > chunk {
            let tail = items.split_off(items.len() - chunk);
            scope.spawn(move || drop(tail));
        }
        drop(items);
    });
}
