//! A chunk of export lines in one buffer, as `tollgate audit verify` reads
//! them: filled a block at a time straight from the file (or a line at a
//! time from a server's stream), blank lines dropped, every line numbered
//! as the file numbers it.

use anyhow::Context;
use std::io::Read;
use std::ops::Range;
use tollgate_eventlog::RawEvent;

/// Lines per chunk: one ed25519 batch equation each.
pub(super) const CHUNK: usize = 4096;

/// Bytes read from an export file at a time.
const READ_BLOCK: u64 = 1 << 20;

/// How long a line may grow without its end before it is refused: an
/// event's data and metadata are at most 1 MiB (`MAX_EVENT_BYTES`) and its
/// other fields a few hundred bytes, so no event comes near it, and a
/// hostile export cannot make the command hold an endless line.
pub(super) const MAX_LINE: usize = 8 << 20;

/// Bytes of lines after which a chunk is full however few lines it holds,
/// so that long lines cannot make a chunk hold [`CHUNK`] times
/// [`MAX_LINE`]; a chunk of typical events (1.5 KB) holds about 6 MiB.
pub(super) const CHUNK_BYTES: usize = 32 << 20;

/// Export lines in one buffer, so that none is allocated alone.
#[derive(Default)]
pub(super) struct Lines {
    text: Vec<u8>,
    /// Each kept line's number and where it sits in `text`.
    pub(super) spans: Vec<(usize, Range<usize>)>,
}

/// Where [`Lines::fill`] stands in the input between two chunks.
#[derive(Default)]
pub(super) struct Reading {
    /// Lines numbered so far.
    numbered: usize,
    /// Bytes read past the last chunk's last line.
    rest: Vec<u8>,
    /// The input has ended.
    ended: bool,
    /// A read failed; returned once the lines read before it are kept.
    failed: Option<std::io::Error>,
}

impl Lines {
    /// An empty buffer with room for a chunk like `other`, as far as a
    /// chunk of typical events goes.
    pub(super) fn with_capacity_of(other: &Lines) -> Self {
        let room = other.text.capacity().min(CHUNK_BYTES / 4);
        Self { text: Vec::with_capacity(room), spans: Vec::with_capacity(CHUNK) }
    }

    pub(super) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the chunk is full, by lines or by bytes.
    pub(super) fn is_full(&self) -> bool {
        chunk_full(self.spans.len(), self.text.len())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Appends line `number` unless it is blank.
    pub(super) fn push(&mut self, number: usize, line: &[u8]) {
        if !is_blank(line) {
            let start = self.text.len();
            self.text.extend_from_slice(line);
            self.spans.push((number, start..self.text.len()));
        }
    }

    /// Reads `reader` a block at a time into the buffer until it holds a
    /// chunk of lines ([`CHUNK`] lines or [`CHUNK_BYTES`]) or the input
    /// ends. Blank lines are dropped as they are found, by moving the lines
    /// after them down, so the buffer holds only the chunk's lines and the
    /// one being read. `false` once the input is used up. On a read error
    /// the whole lines read before it are kept, for the caller to check,
    /// and the error is returned.
    pub(super) fn fill(&mut self, reader: &mut impl Read, reading: &mut Reading) -> anyhow::Result<bool> {
        // `text[..kept]` holds the kept lines, `text[line..]` what is not
        // numbered yet; `text[line..searched]` has no newline.
        let mut kept = self.text.len();
        self.text.append(&mut reading.rest);
        let (mut line, mut searched) = (kept, kept);
        while !chunk_full(self.len(), kept) {
            if let Some(at) = memchr::memchr(b'\n', &self.text[searched..]) {
                let end = searched + at + 1;
                reading.numbered += 1;
                kept = self.keep(reading.numbered, line..end, kept);
                (line, searched) = (end, end);
                continue;
            }
            if let Some(err) = reading.failed.take() {
                // The unfinished line goes with the error.
                self.text.truncate(kept);
                return Err(err).context("reading the export");
            }
            if reading.ended {
                // The last line, without its newline.
                if line < self.text.len() {
                    reading.numbered += 1;
                    kept = self.keep(reading.numbered, line..self.text.len(), kept);
                }
                self.text.truncate(kept);
                return Ok(false);
            }
            let pending = self.text.len() - line;
            if pending > MAX_LINE {
                self.text.truncate(kept);
                return Err(too_long(reading.numbered + 1));
            }
            // Drop what blank lines left between the kept lines and this one.
            if line != kept {
                self.text.copy_within(line.., kept);
                self.text.truncate(kept + pending);
                line = kept;
            }
            // What is here has no newline: search only what comes next.
            searched = self.text.len();
            // A failed read may still have appended what it got: those bytes
            // are searched for whole lines before the error is returned.
            match reader.by_ref().take(READ_BLOCK).read_to_end(&mut self.text) {
                Ok(read) => reading.ended = read == 0,
                Err(err) => reading.failed = Some(err),
            }
        }
        reading.rest.extend_from_slice(&self.text[line..]);
        self.text.truncate(kept);
        Ok(true)
    }

    /// Keeps `text[span]` as line `number` unless it is blank, moved down
    /// to `kept` (the end of the lines kept so far); the new end.
    fn keep(&mut self, number: usize, span: Range<usize>, kept: usize) -> usize {
        if is_blank(&self.text[span.clone()]) {
            return kept;
        }
        let len = span.len();
        if span.start != kept {
            self.text.copy_within(span, kept);
        }
        self.spans.push((number, kept..kept + len));
        kept + len
    }

    /// The event on the line at `span`.
    pub(super) fn parse(&self, span: &Range<usize>) -> serde_json::Result<RawEvent<'_>> {
        serde_json::from_slice(&self.text[span.clone()])
    }

    /// Every line's event; `None` if any line is not one (then
    /// [`parse`](Lines::parse) them one by one to learn which). The text is
    /// checked to be UTF-8 once, not string by string.
    pub(super) fn parse_all(&self) -> Option<Vec<RawEvent<'_>>> {
        let text = std::str::from_utf8(&self.text).ok()?;
        let mut events = Vec::with_capacity(self.spans.len());
        for (_, span) in &self.spans {
            events.push(serde_json::from_str(text.get(span.clone())?).ok()?);
        }
        Some(events)
    }

    pub(super) fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
    }
}

/// The error for line `number`, still without its end after [`MAX_LINE`] bytes.
pub(super) fn too_long(number: usize) -> anyhow::Error {
    anyhow::anyhow!("line {number} is longer than any event ({MAX_LINE} bytes at most)")
}

/// Whether `lines` kept lines of `bytes` in all make a full chunk.
fn chunk_full(lines: usize, bytes: usize) -> bool {
    lines >= CHUNK || bytes >= CHUNK_BYTES
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every chunk `fill` makes of `input`: its lines' numbers and text,
    /// and the bytes its buffer holds.
    fn chunks(input: &[u8]) -> Vec<(Vec<(usize, String)>, usize)> {
        let (mut reader, mut reading) = (input, Reading::default());
        let mut chunks = Vec::new();
        loop {
            let mut lines = Lines::default();
            let more = lines.fill(&mut reader, &mut reading).unwrap();
            let text = |span: &Range<usize>| String::from_utf8(lines.text[span.clone()].to_vec()).unwrap();
            chunks.push((lines.spans.iter().map(|(n, span)| (*n, text(span))).collect(), lines.text.len()));
            if !more {
                return chunks;
            }
        }
    }

    #[test]
    fn lines_are_numbered_across_chunks_blank_ones_dropped_and_the_last_kept_without_its_newline() {
        let lines = vec![(1, "a\n".into()), (4, "b\r\n".into()), (5, "c".into())];
        assert_eq!(chunks(b"a\n \r\n\nb\r\nc"), [(lines, 6)]);
        assert_eq!(chunks(b""), [(vec![], 0)]);

        // A chunk's worth of lines and three more, then a blank last line.
        let mut input = String::new();
        for n in 1..=CHUNK + 3 {
            input.push_str(&format!("line {n}\n"));
        }
        input.push_str("  ");
        let chunks = chunks(input.as_bytes());
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].0.len(), CHUNK);
        assert_eq!(chunks[0].0[CHUNK - 1], (CHUNK, format!("line {CHUNK}\n")));
        let last: Vec<usize> = chunks[1].0.iter().map(|(n, _)| *n).collect();
        assert_eq!(last, [CHUNK + 1, CHUNK + 2, CHUNK + 3]);
    }

    #[test]
    fn blank_lines_take_no_room_however_many_there_are() {
        // Three read blocks of newlines around two events.
        let blanks = "\n".repeat(3 * READ_BLOCK as usize);
        let input = format!("{{\"a\":1}}\n{blanks}{{\"b\":2}}\n{blanks}");
        let [(lines, bytes)] = chunks(input.as_bytes()).try_into().unwrap();
        assert_eq!(lines, [(1, "{\"a\":1}\n".into()), (2 + blanks.len(), "{\"b\":2}\n".into())]);
        assert_eq!(bytes, 16);
    }

    #[test]
    fn a_line_longer_than_any_event_is_refused_by_its_number() {
        let input = format!("{{}}\n\n{}", "x".repeat(MAX_LINE + 2));
        let mut lines = Lines::default();
        let err = lines.fill(&mut input.as_bytes(), &mut Reading::default()).err().unwrap();
        assert_eq!(err.to_string(), format!("line 3 is longer than any event ({MAX_LINE} bytes at most)"));
        // Just under the limit, it is read (and left to the parser to judge).
        let input = "y".repeat(MAX_LINE - 1);
        let mut lines = Lines::default();
        assert!(!lines.fill(&mut input.as_bytes(), &mut Reading::default()).unwrap());
        assert_eq!(lines.spans, [(1, 0..MAX_LINE - 1)]);
    }

    /// A reader that fails, as a disk can.
    struct Broken;

    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("the disk went away"))
        }
    }

    #[test]
    fn a_read_error_keeps_the_whole_lines_read_before_it() {
        let mut reader = b"{\"a\":1}\n\n{\"b\":2}\n{\"c\"".chain(Broken);
        let (mut lines, mut reading) = (Lines::default(), Reading::default());
        let err = lines.fill(&mut reader, &mut reading).err().unwrap();
        assert_eq!(format!("{err:#}"), "reading the export: the disk went away");
        assert_eq!(lines.spans, [(1, 0..8), (3, 8..16)]);
        assert_eq!(lines.text, b"{\"a\":1}\n{\"b\":2}\n");
    }

    #[test]
    fn long_lines_fill_a_chunk_by_its_bytes() {
        let line = format!("{}\n", "z".repeat((1 << 20) - 1));
        let input = line.repeat(CHUNK_BYTES / line.len() + 3);
        let chunks = chunks(input.as_bytes());
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].0.len(), CHUNK_BYTES / line.len());
        assert_eq!(chunks[1].0.len(), 3);
        assert_eq!(chunks[1].0[0].0, CHUNK_BYTES / line.len() + 1);
    }
}
