-- Derived state moves to a file of its own beside this one (`hookscope-derived.db`,
-- store/db.rs `derived_path`; its schema is `derived.sql`). The indexer writes it on a
-- connection and a thread of its own, so acknowledging a delivery (a commit of this file)
-- never waits behind index work, nor index work behind a commit's fsync.
--
-- Every delivery stays here as received; what was derived from them is dropped and the
-- indexer derives it again into the new file at the next start.
DROP TRIGGER IF EXISTS contacts_counted_in;
DROP TRIGGER IF EXISTS contacts_counted_out;
DROP TABLE events;
DROP TABLE events_fts;
DROP TABLE contacts;
DROP TABLE contacts_search;
DROP TABLE contact_cards;
DROP TABLE event_shapes;
DROP TABLE row_counts;
DELETE FROM settings WHERE key IN ('index.through', 'index.derivation');
