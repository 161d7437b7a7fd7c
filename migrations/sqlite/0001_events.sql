-- The event log: append-only, hash-chained, signed. Written only by the
-- eventlog sequencer; see eventlog/src/chain.rs for the hash and signature rules.
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,          -- global, 1-based, gap-free
    event_id        TEXT    NOT NULL UNIQUE,       -- ULID
    stream          TEXT    NOT NULL,
    category        TEXT    NOT NULL,              -- stream text before the first ':'
    stream_version  INTEGER NOT NULL,              -- 1-based within the stream
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    data            TEXT    NOT NULL,              -- canonical JSON
    metadata        TEXT    NOT NULL,              -- canonical JSON
    recorded_at     TEXT    NOT NULL,              -- RFC 3339 UTC
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    key_id          TEXT    NOT NULL,
    signature       TEXT    NOT NULL,
    UNIQUE (stream, stream_version)
);

CREATE INDEX events_category_position ON events (category, position);

-- One row per idempotency key: a retried request with the same key and the
-- same request hash gets the events [first_position, last_position] back.
CREATE TABLE idempotency (
    scope           TEXT    NOT NULL,              -- the principal
    key             TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,              -- hex sha256 of the request
    first_position  INTEGER NOT NULL,
    last_position   INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Append-only at the database level too: history is never rewritten.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER idempotency_no_update BEFORE UPDATE ON idempotency
BEGIN
    SELECT RAISE(ABORT, 'idempotency keys are append-only');
END;

CREATE TRIGGER idempotency_no_delete BEFORE DELETE ON idempotency
BEGIN
    SELECT RAISE(ABORT, 'idempotency keys are append-only');
END;
