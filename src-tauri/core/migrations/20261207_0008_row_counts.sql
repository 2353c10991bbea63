-- How many events and contacts there are, kept as rows come and go: the window's counters
-- and /api/status read one row instead of counting a table (O(n): 11–154 ms at page load
-- on 100k events). Events are counted by the indexer per batch and by erasure per row
-- (a trigger costs ~10 µs CPU per inserted row, a tenth of indexing one delivery);
-- contacts by triggers (a contact is inserted once, then updated).
CREATE TABLE row_counts (
    name  TEXT PRIMARY KEY,   -- 'events' | 'contacts'
    n     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO row_counts (name, n) VALUES
    ('events', (SELECT count(*) FROM events)),
    ('contacts', (SELECT count(*) FROM contacts));

CREATE TRIGGER contacts_counted_in AFTER INSERT ON contacts
BEGIN
    UPDATE row_counts SET n = n + 1 WHERE name = 'contacts';
END;
CREATE TRIGGER contacts_counted_out AFTER DELETE ON contacts
BEGIN
    UPDATE row_counts SET n = n - 1 WHERE name = 'contacts';
END;
