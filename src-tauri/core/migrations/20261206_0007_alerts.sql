-- Alerts: what the user asked to be told about (alert_rules) and what was raised
-- (alerts). A rule's episode (one subject: an endpoint, an event type, a forward target,
-- a sender) raises one alert; it stays open until its cause ends (cleared_at), and is
-- read once the user acknowledges it.
CREATE TABLE alert_rules (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,      -- silence | verification | source | forward | probe
    endpoint_id  TEXT,               -- NULL: every endpoint
    event_type   TEXT,               -- silence only: NULL for any event type
    threshold    INTEGER,            -- silence: seconds (NULL: learned); verification, forward: failures in a row
    created_at   INTEGER NOT NULL    -- unix µs
) STRICT;

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    rule_id          INTEGER NOT NULL,   -- kept when the rule is deleted
    kind             TEXT NOT NULL,
    subject          TEXT NOT NULL,      -- what the episode is about, e.g. 'endpoint:ID type:SALE_NEW'
    endpoint_id      TEXT,
    event_type       TEXT,
    message          TEXT NOT NULL,
    advice           TEXT NOT NULL,
    raised_at        INTEGER NOT NULL,   -- unix µs
    cleared_at       INTEGER,            -- its cause ended
    acknowledged_at  INTEGER             -- the user read it
) STRICT;

CREATE INDEX alerts_open ON alerts (rule_id, subject) WHERE cleared_at IS NULL;
CREATE INDEX alerts_unread ON alerts (raised_at) WHERE acknowledged_at IS NULL;

-- What a new install watches without being asked: a secret that stopped matching, a
-- forward target that keeps failing, senders outside systeme.io, the public URL. Silence
-- is the user's to set (only they know which endpoint should be busy).
INSERT INTO alert_rules (kind, threshold, created_at) VALUES
    ('verification', 3, 0),
    ('forward', 3, 0),
    ('source', NULL, 0),
    ('probe', NULL, 0);
