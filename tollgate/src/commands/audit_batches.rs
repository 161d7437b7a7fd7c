//! Feeding `tollgate audit verify`'s events to the verifier as a pipeline,
//! so that every core stays busy: the calling thread collects events into
//! chunks; one worker per core takes the next chunk, parses it (export
//! lines stay in one buffer per chunk and the events borrow from it) and
//! checks it on its own with [`verify_run`]; a joining thread appends the
//! checked runs to the chain in log order. There is no barrier between
//! chunks: a worker that finishes early takes the next one.

use super::audit_lines::{Lines, Reading, CHUNK};
use anyhow::{bail, Context};
use ed25519_dalek::VerifyingKey;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tollgate_eventlog::{verify_run, ChainVerifier, StoredEvent, VerifiedRun};

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
    /// Line buffers made so far, at most [`Batcher::max_buffers`]: a chunk
    /// in the reader's hands, one queued and one checked per core, and
    /// those checked ahead of a slower one and waiting to be joined.
    buffers: usize,
    max_buffers: usize,
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
        // Up to one chunk waiting per worker, so the reader keeps ahead.
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
            buffers: 1,
            max_buffers: 3 * cores + 1,
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
        let mut reading = Reading::default();
        loop {
            let more = self.lines.fill(reader, &mut reading)?;
            self.send_full_lines()?;
            if !more {
                return Ok(());
            }
        }
    }

    fn send_full_lines(&mut self) -> anyhow::Result<()> {
        if self.lines.is_full() {
            let spare = self.spare_lines()?;
            let chunk = std::mem::replace(&mut self.lines, spare);
            self.send(Chunk::Lines(chunk))?;
        }
        Ok(())
    }

    /// An empty line buffer: one the joiner gave back, a new one while
    /// fewer than [`Batcher::max_buffers`] exist, or else the next one the
    /// joiner gives back, waiting for it. That bounds the memory held
    /// however far some workers get ahead of another.
    fn spare_lines(&mut self) -> anyhow::Result<Lines> {
        if let Ok(lines) = self.spare.try_recv() {
            return Ok(lines);
        }
        if self.buffers < self.max_buffers {
            self.buffers += 1;
            // As large as this one, not to grow by doubling.
            return Ok(Lines::with_capacity_of(&self.lines));
        }
        // No buffer comes back only when the joiner stopped on a failure.
        self.spare.recv().map_err(|_| self.stopped_early())
    }

    /// The failure that stopped the pipeline before the end of the input.
    fn stopped_early(&mut self) -> anyhow::Error {
        match self.close() {
            Err(found) => found,
            Ok(_) => anyhow::anyhow!("audit verify stopped before the end of the log"),
        }
    }

    /// Ends the pipeline once the input was `fed`: what was verified, or
    /// the first failure. When reading failed, a failure found in what was
    /// read before comes first in the log and is the one reported.
    pub(super) fn end(self, fed: anyhow::Result<()>) -> anyhow::Result<Verified> {
        match fed {
            Ok(()) => self.finish(),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The error to report when reading stops on `err`: a failure found
    /// in what was read before (the whole lines collected so far are
    /// checked first), since it comes first in the log; `err` otherwise.
    fn fail(mut self, err: anyhow::Error) -> anyhow::Error {
        if self.joiner.is_none() {
            return err;
        }
        match self.send_pending().and_then(|()| self.close()) {
            Err(found) => found,
            Ok(_) => err,
        }
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
        Err(self.stopped_early())
    }

    /// Checks what is left and waits for the pipeline to drain: what was
    /// verified, or the first failure.
    fn finish(mut self) -> anyhow::Result<Verified> {
        self.send_pending()?;
        let events = self.close()?;
        Ok(Verified { events, key_ids: std::mem::take(&mut self.key_ids) })
    }

    /// Sends the events and whole lines collected but not sent yet.
    fn send_pending(&mut self) -> anyhow::Result<()> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.send(Chunk::Stored(chunk))?;
        }
        if !self.lines.is_empty() {
            let chunk = std::mem::take(&mut self.lines);
            self.send(Chunk::Lines(chunk))?;
        }
        Ok(())
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
        let lost = LostOnPanic { seq, done };
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
        drop(lost);
        if done.send(checked).is_err() {
            return;
        }
    }
}

/// Tells the joiner that chunk `seq` is lost if its worker panics, so that
/// it stops with an error instead of waiting for the chunk (and the reader
/// for the buffers it holds).
struct LostOnPanic<'a> {
    seq: u64,
    done: &'a Sender<Checked>,
}

impl Drop for LostOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.done.send(Checked { seq: self.seq, run: None, chunk: None }).ok();
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
                (None, None) => bail!("audit verify lost a chunk: a checking thread failed"),
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
