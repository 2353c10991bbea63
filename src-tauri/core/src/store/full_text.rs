//! Full-text writes (`events_fts`, `contacts_search`) held until the end of a transaction.
//!
//! SQLite asks every virtual table written in a transaction to flush at each statement
//! savepoint, and an upsert opens one: an FTS5 insert made between the indexer's other
//! statements went to disk as a segment of its own, merged again and again (27% of a
//! catch-up's CPU, `make bench`). Held back and written together, a batch is one segment.

use std::borrow::Cow;

use rusqlite::Transaction;

use crate::error::Result;

/// Full-text rows to write, in the order they were asked for per table.
#[derive(Default)]
pub struct HeldText<'a> {
    events: Vec<(i64, Cow<'a, str>)>,
    contacts: Vec<ContactText>,
}

/// A contact's search row in or out, with the text it is (or was) indexed with.
enum ContactText {
    In(i64, String),
    Out(i64, String),
}

impl<'a> HeldText<'a> {
    /// The event `seq` is found by `text`.
    pub fn index_event(&mut self, seq: i64, text: impl Into<Cow<'a, str>>) {
        self.events.push((seq, text.into()));
    }

    /// The contact row `id` is found by `text`.
    pub fn index_contact(&mut self, id: i64, text: String) {
        self.contacts.push(ContactText::In(id, text));
    }

    /// The contact row `id`, indexed with `text` (the index keeps no copy to find its
    /// trigrams by), is no longer found by it.
    pub fn unindex_contact(&mut self, id: i64, text: String) {
        self.contacts.push(ContactText::Out(id, text));
    }

    /// Writes what was held, in `tx`: the last statements of the transaction that derived it.
    pub fn write(self, tx: &Transaction) -> Result<()> {
        if !self.events.is_empty() {
            let mut insert =
                tx.prepare_cached("INSERT INTO events_fts (rowid, text) VALUES (?1, ?2)")?;
            for (seq, text) in &self.events {
                insert.execute((seq, text.as_ref()))?;
            }
        }
        for change in &self.contacts {
            match change {
                ContactText::In(id, text) => tx
                    .prepare_cached("INSERT INTO contacts_search (rowid, text) VALUES (?1, ?2)")?
                    .execute((id, text))?,
                ContactText::Out(id, text) => tx
                    .prepare_cached(
                        "INSERT INTO contacts_search (contacts_search, rowid, text)
                         VALUES ('delete', ?1, ?2)",
                    )?
                    .execute((id, text))?,
            };
        }
        Ok(())
    }
}
