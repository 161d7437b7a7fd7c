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

    /// Verifies every line `reader` gives (an export file). A thread of its
    /// own reads the next batch of lines while this one is checked; two
    /// buffers go back and forth between them, so their memory is reused
    /// rather than returned and faulted in again for every batch.
    pub(super) fn read_all(&mut self, reader: impl BufRead + Send + 'static) -> anyhow::Result<()> {
        self.flush()?;
        let (full, filled) = std::sync::mpsc::sync_channel::<std::io::Result<(Lines, bool)>>(1);
        let (empty, emptied) = std::sync::mpsc::channel::<Lines>();
        for _ in 0..2 {
            // Cannot fail: the receiver is alive.
            let _ = empty.send(Lines::default());
        }
        let reading = std::thread::spawn(move || {
            let mut reader = reader;
            let mut number = 0;
            // Ends when the checking side hangs up (it failed) or at the end.
            while let Ok(mut lines) = emptied.recv() {
                let read = lines.read_batch(&mut number, &mut reader, BATCH);
                let end = !matches!(read, Ok(true));
                if full.send(read.map(|more| (lines, more))).is_err() || end {
                    break;
                }
            }
        });
        let mut outcome = Ok(());
        for read in filled {
            let checked = read.context("reading the export").and_then(|(lines, _)| {
                let checked = self.check_lines(&lines);
                let _ = empty.send(lines);
                checked
            });
            if let Err(e) = checked {
                outcome = Err(e);
                break;
            }
        }
        drop(empty);
        reading.join().map_err(|_| anyhow::anyhow!("reading the export failed"))?;
        outcome
    }

    pub(super) fn flush(&mut self) -> anyhow::Result<()> {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            let checked = self.verifier.check_batch(&batch);
            drop_in_parallel(batch);
            self.checked(checked)?;
        }
        if !self.lines.is_empty() {
            let lines = std::mem::take(&mut self.lines);
            self.check_lines(&lines)?;
            // Keep the buffers' capacity for the next batch.
            self.lines = lines;
            self.lines.clear();
        }
        Ok(())
    }

    /// Parses `lines` on every core and checks them.
    fn check_lines(&mut self, lines: &Lines) -> anyhow::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let events = parse_lines(lines)?;
        let checked = self.verifier.check_batch(&events);
        drop(events);
        self.checked(checked)
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

    /// Empties the batch and reads up to `max` lines from `reader` into it,
    /// blank ones skipped, numbering them on from `number`; `false` at the
    /// end of the input.
    fn read_batch(&mut self, number: &mut usize, reader: &mut impl BufRead, max: usize) -> std::io::Result<bool> {
        self.clear();
        while self.len() < max {
            let start = self.text.len();
            if reader.read_until(b'\n', &mut self.text)? == 0 {
                return Ok(false);
            }
            *number += 1;
            self.keep_unless_blank(*number, start);
        }
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
