//! Verification of the hash chain and signatures, pure and without I/O:
//! what `tollgate audit verify` runs over records from a data directory, a
//! server's NDJSON stream or an export file. It trusts only the public keys
//! it is given.
//!
//! Events come in two forms, behind [`Verifiable`]: the owned
//! [`RecordedEvent`] (from a data dir) and the [`RawEvent`] borrowed from an
//! export line, whose `data` and `metadata` are hashed as the line writes
//! them and only re-canonicalized when that hash is not the recorded one
//! (see [`crate::chain`] for why this accepts exactly what the spec does).

use ed25519_dalek::{Signature, VerifyingKey};
use std::collections::HashMap;

use crate::chain::{
    decode_signature, event_hash, is_hex_of, raw_event_hash, signed_message, stored_event_hash, GENESIS_HASH,
};
use crate::types::{RawEvent, RecordedEvent, StoredEvent};

/// What the verifier reads of an event, whichever form it comes in.
pub trait Verifiable: Sync {
    /// Global position.
    fn position(&self) -> u64;
    /// The recorded hash of the previous event.
    fn prev_hash(&self) -> &str;
    /// The recorded hash of this event.
    fn hash(&self) -> &str;
    /// Id of the key that signed it.
    fn key_id(&self) -> &str;
    /// The recorded signature.
    fn signature(&self) -> &str;
    /// The hash of the event's content (steps 1 to 3 of [`crate::chain`]),
    /// when it is the recorded [`hash`](Verifiable::hash); `None` otherwise.
    fn content_hash(&self) -> Option<[u8; 32]>;
}

/// The [`Verifiable`] accessors of an event form that holds them as fields
/// of those names (all three forms do).
macro_rules! chain_fields {
    () => {
        fn position(&self) -> u64 {
            self.position
        }
        fn prev_hash(&self) -> &str {
            &self.prev_hash
        }
        fn hash(&self) -> &str {
            &self.hash
        }
        fn key_id(&self) -> &str {
            &self.key_id
        }
        fn signature(&self) -> &str {
            &self.signature
        }
    };
}

impl Verifiable for RecordedEvent {
    chain_fields!();
    fn content_hash(&self) -> Option<[u8; 32]> {
        let hash = event_hash(self);
        is_hex_of(&hash, &self.hash).then_some(hash)
    }
}

impl Verifiable for StoredEvent {
    chain_fields!();
    fn content_hash(&self) -> Option<[u8; 32]> {
        stored_event_hash(self).filter(|hash| is_hex_of(hash, &self.hash))
    }
}

impl Verifiable for RawEvent<'_> {
    chain_fields!();
    fn content_hash(&self) -> Option<[u8; 32]> {
        raw_event_hash(self)
    }
}

/// Why an event fails verification. Every variant names the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Positions are not consecutive: an event was removed or reordered.
    #[error("position {found}: expected position {expected} (an event is missing or out of order)")]
    Gap {
        /// The position that should have come next.
        expected: u64,
        /// The position that came.
        found: u64,
    },
    /// `prev_hash` is not the previous event's hash.
    #[error("position {position}: prev_hash does not match the previous event's hash")]
    BrokenChain {
        /// The event.
        position: u64,
    },
    /// The recorded hash is not the hash of the event's content.
    #[error("position {position}: hash does not match the event's content")]
    HashMismatch {
        /// The event.
        position: u64,
    },
    /// The event names a key the verifier was not given.
    #[error("position {position}: signed by unknown key {key_id}")]
    UnknownKey {
        /// The event.
        position: u64,
        /// The key id it names.
        key_id: String,
    },
    /// The signature does not verify with the named key.
    #[error("position {position}: signature does not verify")]
    BadSignature {
        /// The event.
        position: u64,
    },
}

/// Checks events fed in log order, starting at position 1 (or after a
/// trusted checkpoint, see [`ChainVerifier::resume`]).
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    keys: HashMap<String, VerifyingKey>,
    last_position: u64,
    last_hash: String,
    verified: u64,
}

impl ChainVerifier {
    /// A verifier trusting `keys` (key id → public key), expecting position 1 next.
    pub fn new(keys: HashMap<String, VerifyingKey>) -> Self {
        Self::resume(keys, 0, GENESIS_HASH.to_owned())
    }

    /// A verifier continuing after a trusted `(position, hash)` checkpoint.
    pub fn resume(keys: HashMap<String, VerifyingKey>, position: u64, hash: String) -> Self {
        ChainVerifier { keys, last_position: position, last_hash: hash, verified: 0 }
    }

    /// Checks the chain link, the hash and the signature of `ev`, which must
    /// be the event right after the last one checked.
    pub fn check<E: Verifiable>(&mut self, ev: &E) -> Result<(), VerifyError> {
        let (sig, key) = self.check_link_and_hash(ev)?;
        key.verify_strict(&signed_message(&sig.0), &sig.1)
            .map_err(|_| VerifyError::BadSignature { position: ev.position() })?;
        self.advance(ev);
        Ok(())
    }

    /// How many events were verified so far.
    pub fn verified(&self) -> u64 {
        self.verified
    }

    /// Position of the last verified event (0 before any).
    pub fn last_position(&self) -> u64 {
        self.last_position
    }

    /// Everything but the signature check; returns what the signature check needs.
    fn check_link_and_hash<E: Verifiable>(&self, ev: &E) -> Result<(([u8; 32], Signature), VerifyingKey), VerifyError> {
        let position = ev.position();
        self.follows(position, ev.prev_hash())?;
        let hash = ev.content_hash().ok_or(VerifyError::HashMismatch { position })?;
        let key = *self
            .keys
            .get(ev.key_id())
            .ok_or_else(|| VerifyError::UnknownKey { position, key_id: ev.key_id().to_owned() })?;
        let sig = decode_signature(ev.signature()).ok_or(VerifyError::BadSignature { position })?;
        Ok(((hash, sig), key))
    }

    fn advance<E: Verifiable>(&mut self, ev: &E) {
        self.last_position = ev.position();
        self.last_hash.clear();
        self.last_hash.push_str(ev.hash());
        self.verified += 1;
    }

    /// Checks a run of consecutive events with ed25519 batch verification,
    /// several times faster than one by one, spread over the machine's cores
    /// for large runs: each core checks a chunk on its own with
    /// [`verify_run`], and the chunks are then joined to the chain in order.
    /// A chunk that fails is re-checked one by one, so the error names the
    /// first bad position; on error the verifier has advanced past the
    /// events that did verify.
    pub fn check_batch<E: Verifiable>(&mut self, events: &[E]) -> Result<(), VerifyError> {
        let workers =
            if events.len() >= PARALLEL_FROM { std::thread::available_parallelism().map_or(1, usize::from) } else { 1 };
        let chunk = events.len().div_ceil(workers).max(1);
        let keys = &self.keys;
        let runs = std::thread::scope(|scope| {
            let handles: Vec<_> = events.chunks(chunk).map(|evs| scope.spawn(move || verify_run(keys, evs))).collect();
            handles.into_iter().map(|h| h.join().ok().flatten()).collect::<Vec<_>>()
        });
        for (events, run) in events.chunks(chunk).zip(runs) {
            match run {
                Some(run) => self.append(&run)?,
                None => self.check_each(events)?,
            }
        }
        Ok(())
    }

    /// Joins a run checked apart by [`verify_run`] to the chain: it must
    /// start right after the last event verified. Otherwise the error is the
    /// one [`check`](ChainVerifier::check) gives the run's first event, and
    /// the verifier stays where it was.
    pub fn append(&mut self, run: &VerifiedRun) -> Result<(), VerifyError> {
        self.follows(run.first_position, &run.prev_hash)?;
        // The run was checked with keys given to `verify_run`: each must be
        // one this verifier trusts, under the same id.
        for (position, key_id, key) in &run.signers {
            if self.keys.get(key_id) != Some(key) {
                return Err(VerifyError::UnknownKey { position: *position, key_id: key_id.clone() });
            }
        }
        self.last_position = run.last_position;
        self.last_hash.clone_from(&run.hash);
        self.verified += run.last_position - run.first_position + 1;
        Ok(())
    }

    /// Whether an event at `position` whose `prev_hash` is given comes
    /// right after the last one verified: the chain link of every check.
    fn follows(&self, position: u64, prev_hash: &str) -> Result<(), VerifyError> {
        let expected = self.last_position + 1;
        if position != expected {
            return Err(VerifyError::Gap { expected, found: position });
        }
        if prev_hash != self.last_hash {
            return Err(VerifyError::BrokenChain { position });
        }
        Ok(())
    }

    /// Checks `events` one by one, to report the first failing position: a
    /// run [`verify_run`] refused.
    pub fn check_each<E: Verifiable>(&mut self, events: &[E]) -> Result<(), VerifyError> {
        // `check` uses verify_strict, which is at least as strict as the batch
        // equation, so a batch failure always resurfaces here with its position.
        events.iter().try_for_each(|ev| self.check(ev))
    }
}

/// Runs shorter than this are checked on one thread: spawning costs more
/// than it saves.
const PARALLEL_FROM: usize = 512;

/// A run of consecutive events whose links, hashes and signatures were
/// found to hold among themselves by [`verify_run`]; where it starts and
/// ends, and whether its keys are trusted, is left for
/// [`ChainVerifier::append`] to check when it joins the run to the chain.
#[derive(Debug, Clone)]
pub struct VerifiedRun {
    first_position: u64,
    /// The recorded `prev_hash` of the first event.
    prev_hash: String,
    last_position: u64,
    /// The recorded hash of the last event.
    hash: String,
    /// Every key that signed events of the run: the first position it
    /// signed, its id and the key the signatures were checked with.
    signers: Vec<(u64, String, VerifyingKey)>,
}

/// Checks a run of events on its own, without a verifier's state, so that
/// runs can be checked on several threads at once: positions consecutive,
/// each `prev_hash` the hash before it, every hash the hash of its content,
/// every key trusted and every signature good (one batch equation for the
/// run). `None` when the run is empty or anything in it fails; checking the
/// run one by one with [`ChainVerifier::check`] then names the position.
pub fn verify_run<E: Verifiable>(keys: &HashMap<String, VerifyingKey>, events: &[E]) -> Option<VerifiedRun> {
    let (first, last) = (events.first()?, events.last()?);
    let linked = events.windows(2).all(|pair| {
        pair[0].position().checked_add(1) == Some(pair[1].position()) && pair[1].prev_hash() == pair[0].hash()
    });
    if !linked {
        return None;
    }
    let mut messages = Vec::with_capacity(events.len());
    let mut sigs = Vec::with_capacity(events.len());
    let mut event_keys = Vec::with_capacity(events.len());
    let mut signers: Vec<(u64, String, VerifyingKey)> = Vec::new();
    for ev in events {
        let key = *keys.get(ev.key_id())?;
        if !signers.iter().any(|(_, id, _)| id == ev.key_id()) {
            signers.push((ev.position(), ev.key_id().to_owned(), key));
        }
        event_keys.push(key);
        messages.push(signed_message(&ev.content_hash()?));
        sigs.push(decode_signature(ev.signature())?);
    }
    let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    ed25519_dalek::verify_batch(&refs, &sigs, &event_keys).ok()?;
    Some(VerifiedRun {
        first_position: first.position(),
        prev_hash: first.prev_hash().to_owned(),
        last_position: last.position(),
        hash: last.hash().to_owned(),
        signers,
    })
}

/// Verifies a whole log from position 1 with batch signature verification;
/// returns the number of events verified.
pub fn verify_batch<E: Verifiable>(keys: HashMap<String, VerifyingKey>, events: &[E]) -> Result<u64, VerifyError> {
    let mut verifier = ChainVerifier::new(keys);
    for chunk in events.chunks(1024) {
        verifier.check_batch(chunk)?;
    }
    Ok(verifier.verified())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
