-- Retention: deliveries older than this many days are pruned, with all that was derived
-- from them. NULL: the install's setting (`retention.days`), which is off by default.
ALTER TABLE endpoints ADD COLUMN retention_days INTEGER;

-- Erasure leaves no token of an erased delivery in the full-text indexes. They were
-- contentless_delete tables, where a deleted row leaves a tombstone and its tokens stay in
-- the index until its segments are merged (on a large store, a rewrite of the whole index).
-- Now they are plain contentless tables with secure-delete: a row is deleted by giving
-- its text again, and its tokens leave the index at once. events.search_hash says whether
-- the text made again is the text that was indexed.
DROP TABLE events_fts;
DROP TABLE contacts_search;

CREATE VIRTUAL TABLE contacts_search USING fts5 (
    text,
    content = '',
    tokenize = 'trigram remove_diacritics 1'
);
INSERT INTO contacts_search (contacts_search, rank) VALUES ('secure-delete', 1);

CREATE VIRTUAL TABLE events_fts USING fts5 (
    text,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO events_fts (events_fts, rank) VALUES ('secure-delete', 1);

ALTER TABLE events ADD COLUMN search_hash INTEGER;

-- Derived again by the indexer from the deliveries, with the new indexes.
DELETE FROM events;
DELETE FROM contacts;
DELETE FROM contact_cards;
DELETE FROM event_shapes;
DELETE FROM settings WHERE key = 'index.through';
