-- Ingest v2: a delivery is acknowledged once it is stored as received; everything derived
-- from it is made afterwards by the indexer (store/indexer), which can rebuild it all.
--
-- `deliveries` holds each delivery exactly as it arrived: the only table the acknowledging
-- transaction writes (with its forward's queue entry). `events` is derived: one row per
-- indexed delivery, same seq, no body; so are events_fts, contacts, contacts_search,
-- contact_cards and event_shapes. `index.through` in settings is the last seq indexed,
-- written in the same transaction as what was derived.
--
-- Stores from before keep every delivery (bodies byte for byte, seq values, so forwards
-- and replays still point at theirs); their derived state is emptied here and rebuilt
-- by the indexer in the background at the next start.
CREATE TABLE deliveries (
    -- Arrival order in this store, never reused: the indexer's position, a window's cursor
    -- and the relay's sync follow it, so a delivery arriving after the newest were forgotten
    -- or pruned must not take one of their numbers.
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE, -- public, globally unique (UUIDv7): survives export/import
    received_at    INTEGER NOT NULL,     -- unix microseconds, UTC
    endpoint_id    TEXT NOT NULL,        -- kept when the endpoint is deleted
    endpoint_name  TEXT NOT NULL,        -- name at capture time
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    query          TEXT,
    headers        TEXT NOT NULL,        -- JSON list of [name, value] in arrival order
    remote_addr    TEXT,                 -- the TCP peer
    client_ip      TEXT,                 -- the sender: the peer, or what the hop in front reports
    via_tunnel     INTEGER NOT NULL DEFAULT 0,
    body           BLOB NOT NULL         -- last: reading the columns before it skips it
) STRICT;

INSERT INTO deliveries (seq, id, received_at, endpoint_id, endpoint_name, method, path, query,
    headers, remote_addr, client_ip, via_tunnel, body)
SELECT seq, id, received_at, endpoint_id, endpoint_name, method, path, query, headers,
    remote_addr, client_ip, via_tunnel, body
FROM events;

DROP TABLE events;

CREATE TABLE events (
    seq              INTEGER PRIMARY KEY,  -- deliveries.seq
    id               TEXT NOT NULL,        -- deliveries.id: attempts and repeats are ordered by (received_at, id)
    received_at      INTEGER NOT NULL,     -- deliveries.received_at, for the indexes below
    endpoint_id      TEXT NOT NULL,        -- deliveries.endpoint_id, likewise
    signature        TEXT NOT NULL,        -- valid | invalid | unsigned | no_secret
    message_id       TEXT,                 -- X-Webhook-Message-Id: one message, several attempts
    attempt          INTEGER NOT NULL,     -- 1 for the first delivery of a message
    body_hash        BLOB,                 -- SHA-256 of unsigned bodies, to spot repeats
    repeat_of        TEXT,                 -- an identical unsigned delivery shortly before
    content_type     TEXT,
    content_encoding TEXT,
    size             INTEGER NOT NULL,
    body_kind        TEXT NOT NULL,        -- json | text | binary | empty
    source           TEXT NOT NULL,
    family           TEXT NOT NULL,
    event_type       TEXT,
    label            TEXT NOT NULL,
    summary          TEXT NOT NULL,
    contact_key      TEXT,                 -- lower-cased email, for grouping
    contact_email    TEXT,
    contact_id       TEXT,
    contact_name     TEXT,
    occurred_at      TEXT,
    facts            TEXT,                 -- JSON Fact, or NULL
    variant          INTEGER,              -- fingerprint of its JSON paths (shapes.rs), or NULL
    drift            TEXT                  -- JSON list of shape changes, or NULL
) STRICT;

CREATE INDEX events_by_time     ON events (received_at);
CREATE INDEX events_by_contact  ON events (contact_key, received_at) WHERE contact_key IS NOT NULL;
CREATE INDEX events_by_type     ON events (event_type, received_at);
CREATE INDEX events_by_endpoint ON events (endpoint_id, received_at);
CREATE INDEX events_by_message  ON events (endpoint_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX events_by_body     ON events (endpoint_id, body_hash, received_at) WHERE body_hash IS NOT NULL;
CREATE INDEX events_with_drift  ON events (received_at) WHERE drift IS NOT NULL;

INSERT INTO events_fts (events_fts) VALUES ('delete-all');
INSERT INTO contacts_search (contacts_search) VALUES ('delete-all');
DELETE FROM contacts;
DELETE FROM contact_cards;
DELETE FROM event_shapes;
DELETE FROM settings WHERE key IN ('facts.backfill_through', 'index.through');
