-- The event log: append-only, hash-chained, signed. Written only by the
-- eventlog sequencer (see eventlog/src/chain.rs for the hash and signature
-- rules); the shapes mirror migrations/sqlite/0001_events.sql.
--
-- data / metadata are TEXT, not JSONB, on purpose: they hold the canonical
-- JSON text that was hashed and signed, and JSONB would re-serialise it
-- (key order, number formatting, whitespace), breaking verification.
CREATE TABLE events (
    position        BIGINT  PRIMARY KEY CHECK (position > 0),  -- global, 1-based, gap-free
    event_id        TEXT    NOT NULL UNIQUE,                   -- ULID
    stream          TEXT    NOT NULL,
    category        TEXT    NOT NULL,                          -- stream text before the first ':'
    stream_version  BIGINT  NOT NULL CHECK (stream_version > 0), -- 1-based within the stream
    event_type      TEXT    NOT NULL,
    schema_version  BIGINT  NOT NULL,
    data            TEXT    NOT NULL,                          -- canonical JSON
    metadata        TEXT    NOT NULL,                          -- canonical JSON
    recorded_at     TEXT    NOT NULL,                          -- RFC 3339 UTC, as hashed
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    key_id          TEXT    NOT NULL,
    signature       TEXT    NOT NULL,
    UNIQUE (stream, stream_version)
);

-- read_category("gate:") walks one category in log order.
CREATE INDEX events_category_position ON events (category, position);

-- One row per idempotency key: a retried request with the same key and the
-- same request hash gets the events [first_position, last_position] back.
CREATE TABLE idempotency (
    scope           TEXT    NOT NULL,                          -- the principal
    key             TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,                          -- hex sha256 of the request
    first_position  BIGINT  NOT NULL,
    last_position   BIGINT  NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Append-only at the database level too: history is never rewritten.
-- A row trigger refuses UPDATE and DELETE; TRUNCATE skips row triggers, so a
-- statement trigger refuses it separately.
CREATE FUNCTION tollgate_refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION tollgate_refuse_rewrite();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_refuse_rewrite();
CREATE TRIGGER idempotency_append_only BEFORE UPDATE OR DELETE ON idempotency
    FOR EACH ROW EXECUTE FUNCTION tollgate_refuse_rewrite();
CREATE TRIGGER idempotency_no_truncate BEFORE TRUNCATE ON idempotency
    FOR EACH STATEMENT EXECUTE FUNCTION tollgate_refuse_rewrite();

-- Belt and braces: nobody but the owner may even try.
REVOKE UPDATE, DELETE, TRUNCATE ON events, idempotency FROM PUBLIC;

-- Recommendation: triggers stop mistakes, not the table's owner (who can
-- DISABLE TRIGGER or DROP them). Run the migrations as the owner role, and
-- run Tollgate as a separate service role that can only read and insert:
--
--   CREATE ROLE tollgate_service LOGIN PASSWORD '...';
--   GRANT CONNECT ON DATABASE tollgate TO tollgate_service;
--   GRANT USAGE ON SCHEMA public TO tollgate_service;
--   GRANT SELECT ON _sqlx_migrations TO tollgate_service;
--   GRANT SELECT, INSERT ON events, idempotency TO tollgate_service;
--   REVOKE UPDATE, DELETE, TRUNCATE ON events, idempotency FROM tollgate_service;
--
-- EventLog::open_postgres skips migrating when every migration is already
-- applied, so the service role needs no CREATE privilege.
