-- The Kafka relay's checkpoint: the last log position whose delivery (and
-- every earlier one's) Kafka confirmed. Written only by the relay, through
-- its own connection; one row per relay (the name includes the topic prefix).
CREATE TABLE relay_checkpoints (
    name        TEXT    PRIMARY KEY,
    position    INTEGER NOT NULL CHECK (position >= 0)
);
