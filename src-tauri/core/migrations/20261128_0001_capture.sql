-- Endpoints: each has a secret token that is the path of its webhook URL (/h/{token}).
CREATE TABLE endpoints (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    token       TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,          -- unix microseconds
    is_default  INTEGER NOT NULL DEFAULT 0,
    secret      TEXT                       -- systeme.io Settings-webhook secret; stays local
) STRICT;

-- One row per delivery, body byte for byte. Decoded fields are derived from the body and
-- headers at capture time so that listing and grouping never re-parse payloads.
CREATE TABLE events (
    seq              INTEGER PRIMARY KEY,  -- insertion order; ties on received_at
    id               TEXT NOT NULL UNIQUE, -- public, globally unique (UUIDv7): survives export/import
    received_at      INTEGER NOT NULL,     -- unix microseconds, UTC
    endpoint_id      TEXT NOT NULL,        -- kept when the endpoint is deleted
    endpoint_name    TEXT NOT NULL,        -- name at capture time, for deleted or imported endpoints
    method           TEXT NOT NULL,
    path             TEXT NOT NULL,
    query            TEXT,
    headers          TEXT NOT NULL,        -- JSON list of [name, value] in arrival order
    remote_addr      TEXT,                 -- the TCP peer (behind a tunnel: the tunnel's local end)
    client_ip        TEXT,                 -- the sender: the peer, or what the tunnel reports
    via_tunnel       INTEGER NOT NULL DEFAULT 0,
    signature        TEXT NOT NULL DEFAULT 'unsigned', -- valid | invalid | unsigned | no_secret
    message_id       TEXT,                 -- X-Webhook-Message-Id: one message, several attempts
    attempt          INTEGER NOT NULL DEFAULT 1, -- 1 for the first delivery of a message
    body_hash        BLOB,                 -- SHA-256 of unsigned bodies, to spot repeats
    repeat_of        TEXT,                 -- an identical unsigned delivery shortly before
    content_type     TEXT,
    content_encoding TEXT,
    size             INTEGER NOT NULL,
    body_kind        TEXT NOT NULL,        -- json | text | binary | empty
    source           TEXT NOT NULL,        -- systeme_automation | systeme_settings | json | form | text | binary | empty
    family           TEXT NOT NULL,
    event_type       TEXT,
    label            TEXT NOT NULL,
    summary          TEXT NOT NULL,
    contact_key      TEXT,                 -- lower-cased email, for grouping
    contact_email    TEXT,                 -- as it arrived
    contact_id       TEXT,
    contact_name     TEXT,
    occurred_at      TEXT,
    -- Last: SQLite reads a row's columns in order, so every column after a large body
    -- would cost a walk through its overflow pages.
    body             BLOB NOT NULL
) STRICT;

CREATE INDEX events_by_time     ON events (received_at);
CREATE INDEX events_by_contact  ON events (contact_key, received_at) WHERE contact_key IS NOT NULL;
CREATE INDEX events_by_type     ON events (event_type, received_at);
CREATE INDEX events_by_endpoint ON events (endpoint_id, received_at);
CREATE INDEX events_by_message  ON events (endpoint_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX events_by_body     ON events (endpoint_id, body_hash, received_at) WHERE body_hash IS NOT NULL;

-- Maintained by the writer in the same transaction as the event, so the list of contacts
-- never needs a GROUP BY over a million rows.
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
    contentless_delete = 1,
    tokenize = 'trigram remove_diacritics 1'
);

-- Full-text index over the decoded payload text (unicode escapes resolved), keyed by seq.
CREATE VIRTUAL TABLE events_fts USING fts5 (
    text,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Small key/value settings for the install (API token, ...).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
