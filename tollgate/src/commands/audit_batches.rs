//! Feeding `tollgate audit verify`'s events to the verifier as a pipeline,
//! so that every core stays busy: the calling thread collects events into
//! chunks; one worker per core takes the next chunk, parses it (export
//! lines stay in one buffer per chunk and the events borrow from it) and
//! checks it on its own with [`verify_run`]; a joining thread appends the
//! checked runs to the chain in log order. There is no barrier between
//! chunks: a worker that finishes early takes the next one.

use anyhow::{bail, Context};
use ed25519_dalek::VerifyingKey;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tollgate_eventlog::{verify_run, ChainVerifier, RawEvent, StoredEvent, VerifiedRun};

/// Events per chunk: one ed25519 batch equation each.
pub(super) const CHUNK: usize = 4096;

/// Bytes read from an export file at a time.
const READ_BLOCK: u64 = 1 << 20;

/// Events to check, in the form they were read.
enum Chunk {
    /// Export lines.
    Lines(Lines),
    /// Records from a data dir.
    Stored(Vec<StoredEvent>),
}

/// A worker's answer for chunk `seq`: the run it proved, or `None` with
/// the chunk given back so the joiner can name what failed. Line buffers
/// always come back, to be reused.
struct Checked {
    seq: u64,
    run: Option<VerifiedRun>,
    chunk: Option<Chunk>,
}

/// What was verified.
pub(super) struct Verified {
    pub(super) events: u64,
    /// The trusted key ids, for the report.
    pub(super) key_ids: Vec<String>,
}

/// The reading end of the pipeline. The first failure stops the pipeline;
/// the next call here then returns that failure.
pub(super) struct Batcher {
    /// Records from a data dir, not sent yet.
    pending: Vec<StoredEvent>,
    /// Export lines, not sent yet.
    lines: Lines,
    /// Numbers the chunks, for the joiner to put them back in order.
    next_seq: u64,
    /// `None` once the pipeline has been closed.
    work: Option<SyncSender<(u64, Chunk)>>,
    /// Line buffers the joiner is done with.
    spare: Receiver<Lines>,
    workers: Vec<JoinHandle<()>>,
    /// Answers with the events verified and the chunks joined.
    joiner: Option<JoinHandle<anyhow::Result<(u64, u64)>>>,
    key_ids: Vec<String>,
}

impl Batcher {
    pub(super) fn new(keys: HashMap<String, VerifyingKey>) -> Self {
        use std::io::IsTerminal;
        let mut key_ids: Vec<String> = keys.keys().cloned().collect();
        key_ids.sort();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        // Up to one chunk waiting per worker: the reader keeps ahead without
        // holding much more than two chunks per core in memory.
        let (work, chunks) = mpsc::sync_channel(cores);
        let chunks = Arc::new(Mutex::new(chunks));
        let (done, answers) = mpsc::channel();
        let (give_back, spare) = mpsc::channel();
        let shared_keys = Arc::new(keys.clone());
        let workers = (0..cores)
            .map(|_| {
                let (chunks, done, keys) = (chunks.clone(), done.clone(), shared_keys.clone());
                std::thread::spawn(move || check_chunks(&chunks, &done, &keys))
            })
            .collect();
        let progress = std::io::stderr().is_terminal();
        let verifier = ChainVerifier::new(keys);
        let joiner = std::thread::spawn(move || join_in_order(verifier, answers, give_back, progress));
        Self {
            pending: Vec::with_capacity(CHUNK),
            lines: Lines::default(),
            next_seq: 0,
            work: Some(work),
            spare,
            workers,
            joiner: Some(joiner),
            key_ids,
        }
    }

    pub(super) fn push(&mut self, event: StoredEvent) -> anyhow::Result<()> {
        self.pending.push(event);
        if self.pending.len() >= CHUNK {
            let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
            self.send(Chunk::Stored(chunk))?;
        }
        Ok(())
    }

    /// Queues line `number` of an export (blank lines are skipped).
    pub(super) fn push_line(&mut self, number: usize, line: &[u8]) -> anyhow::Result<()> {
        self.lines.push(number, line);
        self.send_full_lines()
    }

    /// Reads a whole export, a block at a time straight into the chunks
    /// (one copy of every byte, by the kernel), numbering its lines from 1.
    pub(super) fn read_all(&mut self, reader: &mut impl Read) -> anyhow::Result<()> {
        let mut numbered = 0;
        let mut rest = Vec::new();
        loop {
            let more = self.lines.fill(reader, &mut numbered, &mut rest).context("reading the export")?;
            self.send_full_lines()?;
            if !more {
                return Ok(());
            }
        }
    }

    fn send_full_lines(&mut self) -> anyhow::Result<()> {
        if self.lines.len() >= CHUNK {
            // A new buffer starts as large as this one, not to grow by doubling.
            let spare = self.spare.try_recv().unwrap_or_else(|_| Lines::with_capacity_of(&self.lines));
            let chunk = std::mem::replace(&mut self.lines, spare);
            self.send(Chunk::Lines(chunk))?;
        }
        Ok(())
    }

    /// Hands a chunk to the workers; when the pipeline has stopped on a
    /// failure, returns that failure.
    fn send(&mut self, chunk: Chunk) -> anyhow::Result<()> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let sent = self.work.as_ref().is_some_and(|work| work.send((seq, chunk)).is_ok());
        if sent {
            return Ok(());
        }
        // The workers stop early only when the joiner has stopped on a failure.
        self.close().and_then(|_| bail!("audit verify stopped before the end of the log"))
    }

    /// Checks what is left and waits for the pipeline to drain: what was
    /// verified, or the first failure.
    pub(super) fn finish(mut self) -> anyhow::Result<Verified> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.send(Chunk::Stored(chunk))?;
        }
        if !self.lines.is_empty() {
            let chunk = std::mem::take(&mut self.lines);
            self.send(Chunk::Lines(chunk))?;
        }
        let events = self.close()?;
        Ok(Verified { events, key_ids: std::mem::take(&mut self.key_ids) })
    }

    /// Closes the pipeline and waits for it: the number of events verified,
    /// or the failure that stopped it.
    fn close(&mut self) -> anyhow::Result<u64> {
        self.work = None;
        for worker in self.workers.drain(..) {
            // A worker only panics on a bug; its chunk is then missing below.
            worker.join().ok();
        }
        let Some(joiner) = self.joiner.take() else { bail!("audit verify already stopped") };
        let (events, chunks) = joiner.join().unwrap_or_else(|_| bail!("audit verify's joining thread failed"))?;
        if chunks != self.next_seq {
            bail!("audit verify checked {chunks} of {} chunks: a checking thread failed", self.next_seq);
        }
        Ok(events)
    }
}

/// A worker: checks chunks until the reader closes the pipeline or the
/// joiner stops listening.
fn check_chunks(chunks: &Mutex<Receiver<(u64, Chunk)>>, done: &Sender<Checked>, keys: &HashMap<String, VerifyingKey>) {
    loop {
        let next = match chunks.lock() {
            Ok(chunks) => chunks.recv(),
            Err(_) => return,
        };
        let Ok((seq, chunk)) = next else { return };
        let checked = match chunk {
            Chunk::Lines(lines) => {
                let run = lines.parse_all().and_then(|events| verify_run(keys, &events));
                Checked { seq, run, chunk: Some(Chunk::Lines(lines)) }
            }
            Chunk::Stored(events) => match verify_run(keys, &events) {
                // Freed here, on this core, rather than by the joiner.
                Some(run) => Checked { seq, run: Some(run), chunk: None },
                None => Checked { seq, run: None, chunk: Some(Chunk::Stored(events)) },
            },
        };
        if done.send(checked).is_err() {
            return;
        }
    }
}

/// The joiner: appends the workers' runs to the chain in the order the
/// chunks were read, until the workers are gone or one fails; the number of
/// events verified and of chunks joined.
fn join_in_order(
    mut verifier: ChainVerifier,
    answers: Receiver<Checked>,
    give_back: Sender<Lines>,
    progress: bool,
) -> anyhow::Result<(u64, u64)> {
    let started = std::time::Instant::now();
    let mut early = BTreeMap::new();
    let mut next_seq = 0;
    for answer in answers {
        early.insert(answer.seq, answer);
        while let Some(answer) = early.remove(&next_seq) {
            next_seq += 1;
            match (&answer.run, &answer.chunk) {
                (Some(run), _) => verifier.append(run).map_err(failed)?,
                (None, Some(Chunk::Lines(lines))) => check_each_line(&mut verifier, lines)?,
                (None, Some(Chunk::Stored(events))) => verifier.check_each(events).map_err(failed)?,
                (None, None) => bail!("audit verify lost a chunk"),
            }
            if let Some(Chunk::Lines(mut lines)) = answer.chunk {
                lines.clear();
                // The reader may have finished and gone; the buffer is then freed.
                give_back.send(lines).ok();
            }
            if progress {
                let verified = verifier.verified();
                let rate = verified as f64 / started.elapsed().as_secs_f64().max(1e-3);
                eprint!("\r{verified} events verified ({rate:.0}/s)");
            }
        }
    }
    if progress {
        eprintln!();
    }
    Ok((verifier.verified(), next_seq))
}

/// Goes through lines whose chunk failed one by one, so the error names
/// the first line that is no event or the first position that fails.
fn check_each_line(verifier: &mut ChainVerifier, lines: &Lines) -> anyhow::Result<()> {
    for (number, span) in &lines.spans {
        let event = lines.parse(span).with_context(|| format!("line {number} is not an event"))?;
        verifier.check(&event).map_err(failed)?;
    }
    Ok(())
}

fn failed(e: tollgate_eventlog::VerifyError) -> anyhow::Error {
    anyhow::anyhow!("audit verify failed: {e}")
}

/// A chunk of export lines in one buffer, so that none is allocated alone.
#[derive(Default)]
struct Lines {
    text: Vec<u8>,
    /// Each line's number and where it sits in `text`.
    spans: Vec<(usize, std::ops::Range<usize>)>,
}

impl Lines {
    /// An empty buffer with room for a chunk like `other`.
    fn with_capacity_of(other: &Lines) -> Self {
        Self { text: Vec::with_capacity(other.text.capacity()), spans: Vec::with_capacity(CHUNK) }
    }

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
        self.keep_unless_blank(number, start, self.text.len());
    }

    /// Reads `reader` a block at a time into the buffer until it holds a
    /// chunk of lines or the input ends; the lines are numbered after
    /// `numbered`. Bytes past the chunk's last line move to `rest`, which
    /// the next call starts with. `false` once the input is used up.
    fn fill(&mut self, reader: &mut impl Read, numbered: &mut usize, rest: &mut Vec<u8>) -> std::io::Result<bool> {
        let mut line_start = self.text.len();
        self.text.append(rest);
        let mut ended = false;
        while self.len() < CHUNK {
            match memchr::memchr(b'\n', &self.text[line_start..]) {
                Some(at) => {
                    *numbered += 1;
                    self.keep_unless_blank(*numbered, line_start, line_start + at + 1);
                    line_start += at + 1;
                }
                None if ended => {
                    // The last line, without its newline.
                    if line_start < self.text.len() {
                        *numbered += 1;
                        self.keep_unless_blank(*numbered, line_start, self.text.len());
                    }
                    return Ok(false);
                }
                None => ended = reader.by_ref().take(READ_BLOCK).read_to_end(&mut self.text)? == 0,
            }
        }
        rest.extend_from_slice(&self.text[line_start..]);
        self.text.truncate(line_start);
        Ok(true)
    }

    /// Keeps `text[start..end]` as line `number` unless it is blank (its
    /// bytes then stay in `text`, unreferenced).
    fn keep_unless_blank(&mut self, number: usize, start: usize, end: usize) {
        if !self.text[start..end].iter().all(u8::is_ascii_whitespace) {
            self.spans.push((number, start..end));
        }
    }

    /// The event on the line at `span`.
    fn parse(&self, span: &std::ops::Range<usize>) -> serde_json::Result<RawEvent<'_>> {
        serde_json::from_slice(&self.text[span.clone()])
    }

    /// Every line's event; `None` if any line is not one (then
    /// [`parse`](Lines::parse) them one by one to learn which). The text is
    /// checked to be UTF-8 once, not string by string.
    fn parse_all(&self) -> Option<Vec<RawEvent<'_>>> {
        let text = std::str::from_utf8(&self.text).ok()?;
        let mut events = Vec::with_capacity(self.spans.len());
        for (_, span) in &self.spans {
            events.push(serde_json::from_str(text.get(span.clone())?).ok()?);
        }
        Some(events)
    }

    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every chunk `fill` makes of `input`: its lines' numbers and text.
    fn chunks(input: &[u8]) -> Vec<Vec<(usize, String)>> {
        let (mut reader, mut numbered, mut rest) = (input, 0, Vec::new());
        let mut chunks = Vec::new();
        loop {
            let mut lines = Lines::default();
            let more = lines.fill(&mut reader, &mut numbered, &mut rest).unwrap();
            let text = |span: &std::ops::Range<usize>| String::from_utf8(lines.text[span.clone()].to_vec()).unwrap();
            chunks.push(lines.spans.iter().map(|(n, span)| (*n, text(span))).collect());
            if !more {
                return chunks;
            }
        }
    }

    #[test]
    fn lines_are_numbered_across_chunks_blank_ones_skipped_and_the_last_kept_without_its_newline() {
        assert_eq!(chunks(b"a\n \r\n\nb\r\nc"), [vec![(1, "a\n".into()), (4, "b\r\n".into()), (5, "c".into())]]);
        assert_eq!(chunks(b""), [vec![]]);

        // A chunk's worth of lines and three more, then a blank last line.
        let mut input = String::new();
        for n in 1..=CHUNK + 3 {
            input.push_str(&format!("line {n}\n"));
        }
        input.push_str("  ");
        let chunks = chunks(input.as_bytes());
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].len(), CHUNK);
        assert_eq!(chunks[0][CHUNK - 1], (CHUNK, format!("line {CHUNK}\n")));
        let last: Vec<usize> = chunks[1].iter().map(|(n, _)| *n).collect();
        assert_eq!(last, [CHUNK + 1, CHUNK + 2, CHUNK + 3]);
    }
}
