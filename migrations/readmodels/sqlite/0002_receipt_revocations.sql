-- Revocations get a table of their own instead of four columns of
-- rm_receipts set by an UPDATE: a receipt's row is written once and never
-- changed, and queries join the two. The receipts index is keyed by log
-- position (nothing looks a receipt up by id any more).
--
-- Read models are disposable: `receipts` starts again empty at
-- generation 1 and is folded from the start of the log when `serve` next
-- runs; until it catches up, receipt lists are incomplete. The other
-- projections are untouched. Stop every server before upgrading: an
-- older one would still write the dropped columns.

DROP TABLE rm_receipts;
DELETE FROM rm_checkpoints WHERE name = 'receipts';
UPDATE rm_projections SET active_generation = 1 WHERE name = 'receipts';

CREATE TABLE rm_receipts (
    generation     INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    receipt_id     TEXT    NOT NULL,
    unit_key       TEXT    NOT NULL,
    gate           TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    multipass      INTEGER NOT NULL,
    producer       TEXT    NOT NULL,
    submitted_at   TEXT    NOT NULL,
    custom         TEXT    NOT NULL,   -- JSON
    artifacts      TEXT    NOT NULL,   -- JSON array
    PRIMARY KEY (generation, position)
);
CREATE INDEX rm_receipts_unit ON rm_receipts (generation, unit_key, position);
CREATE INDEX rm_receipts_gate ON rm_receipts (generation, gate, action, position);
CREATE INDEX rm_receipts_producer ON rm_receipts (generation, producer, position);
CREATE INDEX rm_receipts_time ON rm_receipts (generation, submitted_at, position);

CREATE TABLE rm_receipt_revocations (
    generation  INTEGER NOT NULL,
    receipt_id  TEXT    NOT NULL,
    revoked_at  TEXT    NOT NULL,
    revoked_by  TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    PRIMARY KEY (generation, receipt_id)
);
