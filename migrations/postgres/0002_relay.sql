-- The Kafka relay's checkpoint: the last log position whose delivery (and
-- every earlier one's) Kafka confirmed. Written only by the relay, through
-- its own connection; one row per relay (the name includes the topic prefix).
-- Unlike the log, the row is updated in place: it is a cursor, not history.
--
-- With the restricted service role of 0001_events.sql, also:
--   GRANT SELECT, INSERT, UPDATE ON relay_checkpoints TO tollgate_service;
CREATE TABLE relay_checkpoints (
    name        TEXT    PRIMARY KEY,
    position    BIGINT  NOT NULL CHECK (position >= 0)
);
