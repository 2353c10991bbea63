-- Events gain what they say about their contact and funnel (`facts`, see facts.rs) and how
-- they differed from their type's shape before them (`drift`, see shapes.rs). Both go
-- before the body, so the events table is rebuilt with the same rows and seq values (the
-- full-text index is keyed by seq and stays valid). Events stored before this change are
-- derived afterwards, in the background, up to `facts.backfill_through`.
CREATE TABLE events_next (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    received_at      INTEGER NOT NULL,
    endpoint_id      TEXT NOT NULL,
    endpoint_name    TEXT NOT NULL,
    method           TEXT NOT NULL,
    path             TEXT NOT NULL,
    query            TEXT,
    headers          TEXT NOT NULL,
    remote_addr      TEXT,
    client_ip        TEXT,
    via_tunnel       INTEGER NOT NULL DEFAULT 0,
    signature        TEXT NOT NULL DEFAULT 'unsigned',
    message_id       TEXT,
    attempt          INTEGER NOT NULL DEFAULT 1,
    body_hash        BLOB,
    repeat_of        TEXT,
    content_type     TEXT,
    content_encoding TEXT,
    size             INTEGER NOT NULL,
    body_kind        TEXT NOT NULL,
    source           TEXT NOT NULL,
    family           TEXT NOT NULL,
    event_type       TEXT,
    label            TEXT NOT NULL,
    summary          TEXT NOT NULL,
    contact_key      TEXT,
    contact_email    TEXT,
    contact_id       TEXT,
    contact_name     TEXT,
    occurred_at      TEXT,
    facts            TEXT,                 -- JSON Fact, or NULL when the event carries none
    drift            TEXT,                 -- JSON list of shape changes, or NULL
    body             BLOB NOT NULL
) STRICT;

INSERT INTO events_next (seq, id, received_at, endpoint_id, endpoint_name, method, path, query,
    headers, remote_addr, client_ip, via_tunnel, signature, message_id, attempt, body_hash,
    repeat_of, content_type, content_encoding, size, body_kind, source, family, event_type,
    label, summary, contact_key, contact_email, contact_id, contact_name, occurred_at, body)
SELECT seq, id, received_at, endpoint_id, endpoint_name, method, path, query,
    headers, remote_addr, client_ip, via_tunnel, signature, message_id, attempt, body_hash,
    repeat_of, content_type, content_encoding, size, body_kind, source, family, event_type,
    label, summary, contact_key, contact_email, contact_id, contact_name, occurred_at, body
FROM events;

INSERT INTO settings (key, value)
SELECT 'facts.backfill_through', CAST(max(seq) AS TEXT) FROM events HAVING count(*) > 0;

DROP TABLE events;
ALTER TABLE events_next RENAME TO events;

CREATE INDEX events_by_time     ON events (received_at);
CREATE INDEX events_by_contact  ON events (contact_key, received_at) WHERE contact_key IS NOT NULL;
CREATE INDEX events_by_type     ON events (event_type, received_at);
CREATE INDEX events_by_endpoint ON events (endpoint_id, received_at);
CREATE INDEX events_by_message  ON events (endpoint_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX events_by_body     ON events (endpoint_id, body_hash, received_at) WHERE body_hash IS NOT NULL;
CREATE INDEX events_with_drift  ON events (received_at) WHERE drift IS NOT NULL;

-- The stored contact card (contact_card.rs), current through the event (through_at,
-- through_seq). A missing row means "rebuild from the events".
CREATE TABLE contact_cards (
    contact_key  TEXT PRIMARY KEY,
    card         TEXT NOT NULL,
    through_at   INTEGER NOT NULL,
    through_seq  INTEGER NOT NULL
) STRICT;

-- Per event type: deliveries learned from and, per JSON path, how often it appeared with
-- which kinds of value (shapes.rs).
CREATE TABLE event_shapes (
    event_type  TEXT PRIMARY KEY,
    deliveries  INTEGER NOT NULL,
    shape       TEXT NOT NULL
) STRICT;
