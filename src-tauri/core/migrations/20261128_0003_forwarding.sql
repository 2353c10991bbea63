-- Forwarding: an endpoint can pass every delivery on to the user's own handler. Each
-- delivery to forward gets a row in the same transaction that stores it, so a forward is
-- never lost to a crash; the forwarder works through the due rows and keeps the answer.
ALTER TABLE endpoints ADD COLUMN forward_to TEXT;
-- How the endpoint answers deliveries (JSON {status, headers, body, delay_ms}); NULL: a
-- fast 200.
ALTER TABLE endpoints ADD COLUMN response TEXT;

CREATE TABLE forwards (
    event_seq         INTEGER PRIMARY KEY,  -- events.seq
    target            TEXT NOT NULL,        -- the full URL the delivery goes to
    state             TEXT NOT NULL,        -- pending | delivered | failed
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_at           INTEGER NOT NULL,     -- unix µs: when the next attempt is due
    status            INTEGER,              -- the target's last HTTP status
    duration_ms       INTEGER,
    error             TEXT,                 -- why the last attempt failed
    response_headers  TEXT,                 -- JSON list of [name, value]
    response_body     BLOB,                 -- the target's answer, first 64 KiB
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE INDEX forwards_due ON forwards (next_at) WHERE state = 'pending';

-- Replays: a stored event sent again (as it was, edited, or re-signed) to the forward
-- target or any URL, each with the target's answer.
CREATE TABLE replays (
    id                INTEGER PRIMARY KEY,
    event_seq         INTEGER NOT NULL,     -- events.seq
    at                INTEGER NOT NULL,     -- unix µs
    target            TEXT NOT NULL,
    resigned          INTEGER NOT NULL,
    edited            INTEGER NOT NULL,
    status            INTEGER,
    duration_ms       INTEGER,
    error             TEXT,
    response_headers  TEXT,
    response_body     BLOB
) STRICT;

CREATE INDEX replays_by_event ON replays (event_seq, at);
