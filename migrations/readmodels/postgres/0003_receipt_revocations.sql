-- Revocations get a table of their own instead of four columns of
-- rm_receipts set by an UPDATE. A receipt's row is then written once and
-- never changed: the live projector appends a revocation row (a few dozen
-- bytes of WAL instead of a rewritten receipt of a kilobyte), and a
-- rebuild loads revocations like any other rows instead of updating
-- receipts it has already loaded. Queries join the two.
--
-- The receipts index is keyed by log position: nothing looks a receipt up
-- by id any more, so the index on receipt ids goes (the revocations' own
-- key, over a few rows, comes instead).
--
-- Submission times follow log positions (a receipt is stamped by the server
-- as it is appended), so rows lie on disk in time order and a BRIN index
-- answers time windows: built with one pass over the table and no sort,
-- and a few pages in size, where a B-tree over the time text was the
-- slowest sort of a rebuild. `autosummarize` has autovacuum summarize each
-- range of pages as the live projector fills it.
--
-- Read models are disposable: `receipts` starts again empty at
-- generation 1 and is folded from the start of the log when `serve` next
-- runs; until it catches up, receipt lists are incomplete. The other
-- projections are untouched. To upgrade a large log, stop every server
-- (an older one would still write the dropped columns) and run
-- `tollgate rebuild receipts`, which applies this migration and fills the
-- read model in bulk, before starting them again.

DROP TABLE rm_receipts;
DELETE FROM rm_checkpoints WHERE name = 'receipts';
UPDATE rm_projections SET active_generation = 1 WHERE name = 'receipts';

CREATE TABLE rm_receipts (
    generation     BIGINT  NOT NULL,
    position       BIGINT  NOT NULL,
    receipt_id     TEXT    COLLATE "C" NOT NULL,
    unit_key       TEXT    COLLATE "C" NOT NULL,
    gate           TEXT    COLLATE "C" NOT NULL,
    action         TEXT    COLLATE "C" NOT NULL,
    multipass      BIGINT  NOT NULL,
    producer       TEXT    COLLATE "C" NOT NULL,
    submitted_at   TEXT    COLLATE "C" NOT NULL,
    custom         TEXT    NOT NULL,   -- JSON
    artifacts      TEXT    NOT NULL,   -- JSON array
    PRIMARY KEY (generation, position)
) PARTITION BY LIST (generation);
CREATE INDEX rm_receipts_unit ON rm_receipts (unit_key, position);
CREATE INDEX rm_receipts_gate ON rm_receipts (gate, action, position);
CREATE INDEX rm_receipts_producer ON rm_receipts (producer, position);
CREATE INDEX rm_receipts_time ON rm_receipts USING brin (submitted_at) WITH (autosummarize = on);

CREATE TABLE rm_receipt_revocations (
    generation  BIGINT  NOT NULL,
    receipt_id  TEXT    COLLATE "C" NOT NULL,
    revoked_at  TEXT    NOT NULL,
    revoked_by  TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    PRIMARY KEY (generation, receipt_id)
) PARTITION BY LIST (generation);
