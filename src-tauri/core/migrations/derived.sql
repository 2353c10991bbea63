-- The schema of the derived file (`hookscope-derived.db`, beside `hookscope.db`): what the
-- indexer derives from the deliveries, all of which `hookscope reindex` can make again.
-- It is not migrated: a derived file made with another schema version (its user_version)
-- is replaced by an empty one and derived again. Raise DERIVED_SCHEMA in store/db.rs with
-- any change here.
--
-- One row per indexed delivery, same seq as deliveries.seq (in the other file), no body.
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
    drift            TEXT,                 -- JSON list of shape changes, or NULL
    search_hash      INTEGER,              -- hash of the text in events_fts: erasure checks the text it makes again
    -- The repeat window (REPEAT_WINDOW_MICROS, five minutes) received_at falls in: a
    -- repeat is looked up in two of them, and the bodies' index grows at its end, not at
    -- random places (one random page per delivery, a tenth of a catch-up's CPU).
    repeat_bucket    INTEGER GENERATED ALWAYS AS (received_at / 300000000) VIRTUAL
) STRICT;
CREATE INDEX events_by_time     ON events (received_at);
CREATE INDEX events_by_contact  ON events (contact_key, received_at) WHERE contact_key IS NOT NULL;
CREATE INDEX events_by_type     ON events (event_type, received_at);
CREATE INDEX events_by_endpoint ON events (endpoint_id, received_at);
CREATE INDEX events_by_message  ON events (endpoint_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX events_by_body     ON events (endpoint_id, repeat_bucket, body_hash, received_at, id) WHERE body_hash IS NOT NULL;
CREATE INDEX events_with_drift  ON events (received_at) WHERE drift IS NOT NULL;

-- Full-text index over the decoded payload text, keyed by seq: contentless with
-- secure-delete, so an erased row's tokens leave the index at once.
CREATE VIRTUAL TABLE events_fts USING fts5 (
    text,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO events_fts (events_fts, rank) VALUES ('secure-delete', 1);

CREATE TABLE contacts (
    id               INTEGER PRIMARY KEY,
    key              TEXT NOT NULL UNIQUE, -- lower-cased email
    name             TEXT,
    contact_id       TEXT,
    events           INTEGER NOT NULL,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    last_event_id    TEXT NOT NULL,
    last_event_type  TEXT,
    last_label       TEXT NOT NULL,
    last_summary     TEXT NOT NULL,
    search_text      TEXT                  -- what contacts_search holds for this row
) STRICT;

CREATE INDEX contacts_by_activity ON contacts (last_seen, key);

-- Substring search over email and name as the user types (trigrams), keyed by contacts.id.
CREATE VIRTUAL TABLE contacts_search USING fts5 (
    text,
    content = '',
    tokenize = 'trigram remove_diacritics 1'
);
INSERT INTO contacts_search (contacts_search, rank) VALUES ('secure-delete', 1);

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

-- How many events and contacts there are, kept as rows come and go: the window's counters
-- and /api/status read one row instead of counting a table (O(n): 11–154 ms at page load
-- on 100k events). Events are counted by the indexer per batch and by erasure per row
-- (a trigger costs ~10 µs CPU per inserted row, a tenth of indexing one delivery);
-- contacts by triggers (a contact is inserted once, then updated).
CREATE TABLE row_counts (
    name  TEXT PRIMARY KEY,   -- 'events' | 'contacts'
    n     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO row_counts (name, n) VALUES ('events', 0), ('contacts', 0);

CREATE TRIGGER contacts_counted_in AFTER INSERT ON contacts
BEGIN
    UPDATE row_counts SET n = n + 1 WHERE name = 'contacts';
END;
CREATE TRIGGER contacts_counted_out AFTER DELETE ON contacts
BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'contacts';
END;

-- What the derived state is and where it stands (the other file's are in `settings`).
CREATE TABLE derived_settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT;
