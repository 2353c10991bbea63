//! Stored contact cards (`contact_cards`): kept current as deliveries are stored, dropped
//! when an older event arrives, rebuilt from the events' facts when missing.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::capture::card::Card;
use crate::capture::facts::{Fact, parse_stored};
use crate::error::Result;

/// Which of a contact's events count for its card: first attempts that are not probable
/// repeats and did not fail verification, in the order they arrived.
const COUNTED_EVENTS: &str = "SELECT facts, received_at, seq, occurred_at FROM events
    WHERE contact_key = ?1 AND facts IS NOT NULL AND attempt = 1 AND repeat_of IS NULL
      AND signature <> 'invalid'
    ORDER BY received_at, seq";

/// When an event happened: the payload's own time where it has one, else its arrival.
pub fn happened(occurred_at: Option<&str>, received_at: i64) -> i64 {
    occurred_at
        .and_then(crate::timefmt::parse_rfc3339_micros)
        .unwrap_or(received_at)
}

/// Builds a contact's card from its stored events' facts.
pub fn rebuild(conn: &Connection, key: &str) -> Result<(Card, Option<(i64, i64)>)> {
    let mut card = Card::default();
    let mut through = None;
    let mut stmt = conn.prepare_cached(COUNTED_EVENTS)?;
    let mut rows = stmt.query([key])?;
    while let Some(row) = rows.next()? {
        let (facts, at, seq, occurred): (String, i64, i64, Option<String>) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        let when = happened(occurred.as_deref(), at);
        for fact in parse_stored(&facts) {
            card.apply(&fact, when);
        }
        through = Some((at, seq));
    }
    Ok((card, through))
}

/// How many of a contact's deliveries failed verification: shown, never counted.
pub fn not_counted(conn: &Connection, key: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM events WHERE contact_key = ?1 AND signature = 'invalid'",
        )?
        .query_row([key], |r| r.get(0))?)
}

/// The cards of the contacts one transaction derives events for. Each card is read and
/// parsed once, brought up to date in memory event by event, and written once by
/// [`HeldCards::write`] before the commit: a contact with a long history (a card of
/// hundreds of tags) costs one read and one write per transaction, not one per event.
#[derive(Default)]
pub struct HeldCards {
    held: HashMap<String, Held>,
}

enum Held {
    /// Up to date through the event (arrived at, seq); `changed` since it was read.
    Current {
        card: Box<Card>,
        through: (i64, i64),
        changed: bool,
    },
    /// No stored card, or one an older event made stale: deleted when written, rebuilt
    /// from the events when next needed.
    Missing,
}

impl HeldCards {
    /// Brings the card up to date after inserting an event (`seq`, arrived `at`, happened
    /// `when`) that counts for it. An event older than what the card has seen (an import)
    /// makes the card stale: it is dropped and rebuilt from the events when next needed.
    pub fn record(
        &mut self,
        tx: &Transaction,
        key: &str,
        facts: &[Fact],
        (at, when): (i64, i64),
        seq: i64,
    ) -> Result<()> {
        let held = match self.held.remove(key) {
            Some(held) => held,
            None => read_stored(tx, key)?,
        };
        let now = match held {
            Held::Current {
                mut card, through, ..
            } if (at, seq) > through => {
                for fact in facts {
                    card.apply(fact, when);
                }
                Held::Current {
                    card,
                    through: (at, seq),
                    changed: true,
                }
            }
            Held::Current { .. } => Held::Missing,
            Held::Missing => {
                // Rebuilt only for the contact's newest event; while older ones are being
                // imported the card stays missing and is rebuilt on read.
                let newer: Option<i64> = tx
                    .prepare_cached(
                        "SELECT 1 FROM events WHERE contact_key = ?1
                           AND (received_at > ?2 OR (received_at = ?2 AND seq > ?3)) LIMIT 1",
                    )?
                    .query_row((key, at, seq), |r| r.get(0))
                    .optional()?;
                match newer {
                    Some(_) => Held::Missing,
                    None => Held::Current {
                        card: Box::new(rebuild(tx, key)?.0),
                        through: (at, seq),
                        changed: true,
                    },
                }
            }
        };
        self.held.insert(key.to_string(), now);
        Ok(())
    }

    /// Drops a contact's card: an event arrived that changes what came before.
    pub fn drop_stale(&mut self, key: &str) {
        self.held.insert(key.to_string(), Held::Missing);
    }

    /// Stores every card changed in this transaction and deletes the stale ones.
    pub fn write(self, tx: &Transaction) -> Result<()> {
        for (key, held) in self.held {
            match held {
                Held::Current {
                    card,
                    through: (at, seq),
                    changed: true,
                } => store(tx, &key, &card, at, seq)?,
                Held::Current { .. } => {}
                Held::Missing => drop_stale(tx, &key)?,
            }
        }
        Ok(())
    }
}

/// The stored card as the transaction starts with it.
fn read_stored(tx: &Transaction, key: &str) -> Result<Held> {
    let stored: Option<(String, i64, i64)> = tx
        .prepare_cached(
            "SELECT card, through_at, through_seq FROM contact_cards WHERE contact_key = ?1",
        )?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(match stored {
        Some((card, through_at, through_seq)) => match serde_json::from_str::<Card>(&card) {
            Ok(card) => Held::Current {
                card: Box::new(card),
                through: (through_at, through_seq),
                changed: false,
            },
            // Unreadable (written by a later version?): the events have it all.
            Err(_) => Held::Missing,
        },
        None => Held::Missing,
    })
}

fn store(tx: &Transaction, key: &str, card: &Card, at: i64, seq: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO contact_cards (contact_key, card, through_at, through_seq)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (contact_key) DO UPDATE SET card = excluded.card,
            through_at = excluded.through_at, through_seq = excluded.through_seq",
    )?
    .execute((
        key,
        serde_json::to_string(card).expect("a card serialises"),
        at,
        seq,
    ))?;
    Ok(())
}

/// The card as stored, or rebuilt from the events when there is none (yet).
pub fn current(conn: &Connection, key: &str) -> Result<Card> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT card FROM contact_cards WHERE contact_key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    match stored.and_then(|card| serde_json::from_str(&card).ok()) {
        Some(card) => Ok(card),
        None => Ok(rebuild(conn, key)?.0),
    }
}

/// Drops a contact's stored card: an event arrived that changes what came before. It is
/// rebuilt from the events when next read.
pub fn drop_stale(tx: &Transaction, key: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM contact_cards WHERE contact_key = ?1")?
        .execute([key])?;
    Ok(())
}
