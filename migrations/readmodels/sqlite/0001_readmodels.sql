-- Read models: folded from the log by the projectors in crate `readmodels`,
-- disposable and rebuildable (`tollgate rebuild`). They live in a file of
-- their own (readmodels.db in the data dir), beside the log; the PostgreSQL twin
-- of this file is migrations/readmodels/postgres/0001_readmodels.sql.
--
-- Every table is keyed by `generation`: a rebuild fills generation N+1
-- while N keeps serving, then one UPDATE of rm_projections swaps them.
-- Booleans are 0/1 integers and times RFC 3339 TEXT, so one set of queries
-- serves both backends.

-- Which generation of each projection serves queries.
CREATE TABLE rm_projections (
    name               TEXT    PRIMARY KEY,
    active_generation  INTEGER NOT NULL
);

-- How far each generation of each projection has folded the log; written
-- in the same transaction as the rows it covers.
CREATE TABLE rm_checkpoints (
    name        TEXT    NOT NULL,
    generation  INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (name, generation)
);

-- Projection `units`: every unit, and what the log decided for each of its
-- gates and stages (GatePassed / GateInvalidated, StagePassed / StageInvalidated).
CREATE TABLE rm_units (
    generation      INTEGER NOT NULL,
    unit_key        TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    release         TEXT    NOT NULL,
    platform        TEXT    NOT NULL,
    package         TEXT    NOT NULL,
    first_position  INTEGER NOT NULL,
    last_position   INTEGER NOT NULL,
    updated_at      TEXT    NOT NULL,
    PRIMARY KEY (generation, unit_key)
);
CREATE INDEX rm_units_name ON rm_units (generation, name, unit_key);

CREATE TABLE rm_unit_gates (
    generation  INTEGER NOT NULL,
    unit_key    TEXT    NOT NULL,
    gate        TEXT    NOT NULL,
    passed      INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (generation, unit_key, gate)
);

CREATE TABLE rm_unit_stages (
    generation  INTEGER NOT NULL,
    unit_key    TEXT    NOT NULL,
    stage       TEXT    NOT NULL,
    passed      INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (generation, unit_key, stage)
);
CREATE INDEX rm_unit_stages_stage ON rm_unit_stages (generation, stage, passed, unit_key);

-- Projection `receipts`: an index of every receipt.
CREATE TABLE rm_receipts (
    generation     INTEGER NOT NULL,
    receipt_id     TEXT    NOT NULL,
    position       INTEGER NOT NULL,
    unit_key       TEXT    NOT NULL,
    gate           TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    multipass      INTEGER NOT NULL,
    producer       TEXT    NOT NULL,
    submitted_at   TEXT    NOT NULL,
    custom         TEXT    NOT NULL,   -- JSON
    artifacts      TEXT    NOT NULL,   -- JSON array
    revoked        INTEGER NOT NULL,
    revoked_at     TEXT,
    revoked_by     TEXT,
    revoke_reason  TEXT,
    PRIMARY KEY (generation, receipt_id)
);
CREATE UNIQUE INDEX rm_receipts_position ON rm_receipts (generation, position);
CREATE INDEX rm_receipts_unit ON rm_receipts (generation, unit_key, position);
CREATE INDEX rm_receipts_gate ON rm_receipts (generation, gate, action, position);
CREATE INDEX rm_receipts_producer ON rm_receipts (generation, producer, position);
CREATE INDEX rm_receipts_time ON rm_receipts (generation, submitted_at, position);

-- Projection `definitions`: gates and stages as last defined.
CREATE TABLE rm_definitions (
    generation  INTEGER NOT NULL,
    kind        TEXT    NOT NULL,      -- gate | stage
    name        TEXT    NOT NULL,
    definition  TEXT    NOT NULL,      -- JSON
    enabled     INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (generation, kind, name)
);

-- Projection `timeline`: every event of every unit, in order, summarised.
CREATE TABLE rm_timeline (
    generation   INTEGER NOT NULL,
    unit_key     TEXT    NOT NULL,
    position     INTEGER NOT NULL,
    event_type   TEXT    NOT NULL,
    recorded_at  TEXT    NOT NULL,
    summary      TEXT    NOT NULL,
    PRIMARY KEY (generation, unit_key, position)
);
