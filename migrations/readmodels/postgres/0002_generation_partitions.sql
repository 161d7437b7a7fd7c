-- Every read-model table becomes a table partitioned by generation: one
-- partition per generation (`rm_receipts_g2` holds generation 2 of
-- rm_receipts). A rebuild loads a new generation into a table of its own
-- with no index to maintain, builds the indexes once at the end and
-- attaches it; the old generation goes with one DROP TABLE instead of a
-- DELETE of every row. Queries and the live projector keep naming the
-- parent tables; `ReadStore::ensure_generation` creates a generation's
-- partitions before anything is folded into it.
--
-- Read models are disposable: the tables are dropped and recreated
-- empty, every checkpoint goes back to 0, and the projectors fold the log
-- again from the start when `serve` next runs.

DROP TABLE rm_units, rm_unit_gates, rm_unit_stages, rm_receipts, rm_definitions, rm_timeline;
DELETE FROM rm_checkpoints;
UPDATE rm_projections SET active_generation = 1;

-- Unique keys must hold the partition key (generation); the other indexes
-- leave it out, since a partition holds one generation only. Keys compare
-- byte by byte (COLLATE "C"), whatever the database's locale: pages come
-- in the order SQLite gives them, and sorting an index costs a memcmp per
-- comparison instead of a locale-aware one.

CREATE TABLE rm_units (
    generation      BIGINT  NOT NULL,
    unit_key        TEXT    COLLATE "C" NOT NULL,
    name            TEXT    COLLATE "C" NOT NULL,
    version         TEXT    NOT NULL,
    release         TEXT    NOT NULL,
    platform        TEXT    NOT NULL,
    package         TEXT    NOT NULL,
    first_position  BIGINT  NOT NULL,
    last_position   BIGINT  NOT NULL,
    updated_at      TEXT    NOT NULL,
    PRIMARY KEY (generation, unit_key)
) PARTITION BY LIST (generation);
CREATE INDEX rm_units_name ON rm_units (name, unit_key);

CREATE TABLE rm_unit_gates (
    generation  BIGINT  NOT NULL,
    unit_key    TEXT    COLLATE "C" NOT NULL,
    gate        TEXT    COLLATE "C" NOT NULL,
    passed      BIGINT  NOT NULL,
    position    BIGINT  NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (generation, unit_key, gate)
) PARTITION BY LIST (generation);

CREATE TABLE rm_unit_stages (
    generation  BIGINT  NOT NULL,
    unit_key    TEXT    COLLATE "C" NOT NULL,
    stage       TEXT    COLLATE "C" NOT NULL,
    passed      BIGINT  NOT NULL,
    position    BIGINT  NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (generation, unit_key, stage)
) PARTITION BY LIST (generation);
CREATE INDEX rm_unit_stages_stage ON rm_unit_stages (stage, passed, unit_key);

CREATE TABLE rm_receipts (
    generation     BIGINT  NOT NULL,
    receipt_id     TEXT    COLLATE "C" NOT NULL,
    position       BIGINT  NOT NULL,
    unit_key       TEXT    COLLATE "C" NOT NULL,
    gate           TEXT    COLLATE "C" NOT NULL,
    action         TEXT    COLLATE "C" NOT NULL,
    multipass      BIGINT  NOT NULL,
    producer       TEXT    COLLATE "C" NOT NULL,
    submitted_at   TEXT    COLLATE "C" NOT NULL,
    custom         TEXT    NOT NULL,   -- JSON
    artifacts      TEXT    NOT NULL,   -- JSON array
    revoked        BIGINT  NOT NULL,
    revoked_at     TEXT,
    revoked_by     TEXT,
    revoke_reason  TEXT,
    PRIMARY KEY (generation, receipt_id)
) PARTITION BY LIST (generation);
CREATE UNIQUE INDEX rm_receipts_position ON rm_receipts (generation, position);
CREATE INDEX rm_receipts_unit ON rm_receipts (unit_key, position);
CREATE INDEX rm_receipts_gate ON rm_receipts (gate, action, position);
CREATE INDEX rm_receipts_producer ON rm_receipts (producer, position);
CREATE INDEX rm_receipts_time ON rm_receipts (submitted_at, position);

CREATE TABLE rm_definitions (
    generation  BIGINT  NOT NULL,
    kind        TEXT    COLLATE "C" NOT NULL,      -- gate | stage
    name        TEXT    COLLATE "C" NOT NULL,
    definition  TEXT    NOT NULL,      -- JSON
    enabled     BIGINT  NOT NULL,
    position    BIGINT  NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (generation, kind, name)
) PARTITION BY LIST (generation);

CREATE TABLE rm_timeline (
    generation   BIGINT  NOT NULL,
    unit_key     TEXT    COLLATE "C" NOT NULL,
    position     BIGINT  NOT NULL,
    event_type   TEXT    NOT NULL,
    recorded_at  TEXT    NOT NULL,
    summary      TEXT    NOT NULL,
    PRIMARY KEY (generation, unit_key, position)
) PARTITION BY LIST (generation);
