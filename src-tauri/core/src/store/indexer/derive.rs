//! What the indexer derives from one stored delivery, in its transaction: the event row,
//! its shape learned, its contact's card and totals, its full-text entry. And, for
//! deliveries that arrive out of order (imports), settling the events indexed after it.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::capture::Capture;
use crate::capture::signature::Verdict;
use crate::error::Result;
use crate::store::cards::{self, HeldCards};
use crate::store::contacts;
use crate::store::events::write::{self as events, Placement};
use crate::store::full_text::HeldText;
use crate::store::shapes::ShapeLearner;

/// What the store learned while inserting a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub message_id: Option<String>,
    /// 1 for the first delivery of a message (and for deliveries without a message id).
    pub attempt: i64,
    /// The first identical unsigned delivery shortly before, if any.
    pub repeat_of: Option<String>,
    /// How the payload differed from its type's shape (JSON list), if it did.
    pub drift: Option<String>,
    /// SHA-256 of an unsigned body, by which repeats are found.
    pub body_hash: Option<Vec<u8>>,
}

/// Runs `work` in one transaction, with the shapes it learned stored at its end; on
/// failure the learner forgets what it cached.
pub fn in_transaction(
    conn: &mut Connection,
    shapes: &mut ShapeLearner,
    work: impl FnOnce(&Transaction, &mut ShapeLearner) -> Result<()>,
) -> Result<()> {
    let done = (|| {
        // Deferred, and the derived file's write lock taken by the first statement: an
        // immediate transaction would take the deliveries' lock too, and hold every
        // acknowledgement up while this batch is derived. The deliveries are only read.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        lock_derived(&tx)?;
        work(&tx, shapes)?;
        shapes.flush(&tx)?;
        tx.commit()?;
        Ok(())
    })();
    if done.is_err() {
        shapes.forget();
    }
    done
}

/// Takes the derived file's write lock (waiting while another connection holds it) before
/// this transaction reads anything there: what it reads cannot change before it commits.
pub fn lock_derived(tx: &Transaction) -> Result<()> {
    tx.execute("UPDATE derived_settings SET value = value WHERE 0", [])?;
    Ok(())
}

/// Derives everything from the delivery stored as `seq` (decoded as `capture`); its
/// full-text rows are held in `text` and its contact's card in `cards`, to be written at
/// the end of the batch. Use
/// [`in_transaction`].
pub fn derive<'a>(
    tx: &Transaction,
    shapes: &mut ShapeLearner,
    seq: i64,
    capture: &'a Capture,
    text: &mut HeldText<'a>,
    cards: &mut HeldCards,
) -> Result<Stored> {
    let raw = &capture.raw;
    let decoded = &capture.decoded;
    let (message_id, attempt) = events::attempt_of(tx, capture)?;
    let (body_hash, repeat_of) = events::repeat_of(tx, capture)?;
    let facts = (!capture.facts.is_empty())
        .then(|| serde_json::to_string(&capture.facts).expect("facts serialise"));
    let placement = Placement {
        message_id: message_id.as_deref(),
        attempt,
        body_hash: body_hash.as_deref(),
        repeat_of: repeat_of.as_deref(),
        facts: facts.as_deref(),
        // Stored as the bits of a u64: SQLite integers are signed.
        variant: capture
            .variant
            .filter(|_| capture.decoded.event_type.is_some())
            .map(|variant| variant as i64),
    };
    events::insert(tx, seq, capture, &placement)?;
    let drift = learn_shape(tx, shapes, capture, seq)?;
    let contact_key = decoded.contact_key();
    // A delivery that failed verification is stored and shown, and counts for nothing:
    // anyone who learns the URL could send it.
    let trusted = capture.signature != Verdict::Invalid;
    // A retry or a probable repeat tells nothing new.
    let first = attempt == 1 && repeat_of.is_none();
    text.index_event(seq, capture.search_text.as_str());
    if let (Some(key), true) = (&contact_key, trusted) {
        if first && !capture.facts.is_empty() {
            let when = cards::happened(decoded.occurred_at.as_deref(), raw.received_at);
            cards.record(tx, key, &capture.facts, (raw.received_at, when), seq)?;
        }
        contacts::record_delivery(
            tx,
            key,
            &decoded.into(),
            raw.received_at,
            &raw.id,
            first,
            text,
        )?;
    }
    Ok(Stored {
        message_id,
        attempt,
        repeat_of,
        drift,
        body_hash,
    })
}

/// Compares the delivery with its type's shape and learns from it; the drift, if any, is
/// kept on the event.
fn learn_shape(
    tx: &Transaction,
    shapes: &mut ShapeLearner,
    capture: &Capture,
    seq: i64,
) -> Result<Option<String>> {
    let (Some(event_type), Some(paths), Some(variant)) =
        (&capture.decoded.event_type, &capture.paths, capture.variant)
    else {
        return Ok(None);
    };
    let changes = shapes.record(tx, event_type, paths, variant)?;
    if changes.is_empty() {
        return Ok(None);
    }
    let drift = serde_json::to_string(&changes).expect("changes serialise");
    events::set_drift(tx, seq, &drift)?;
    Ok(Some(drift))
}

/// Imports arrive in any order (exports joined together, another tool's list). An event
/// indexed before the earlier deliveries of its message, or before an earlier copy of its
/// body, was taken for the first. Once `stored` (the earlier one) is in, those later events
/// are renumbered as retries or marked as repeats; their contact counts the message once,
/// and its card is dropped, to be rebuilt from the events when next read.
pub fn settle_later_events(
    tx: &Transaction,
    capture: &Capture,
    stored: &Stored,
    text: &mut HeldText,
    cards: &mut HeldCards,
) -> Result<()> {
    let raw = &capture.raw;
    let mut stale_cards: Vec<String> = Vec::new();
    let mut recount: Vec<String> = Vec::new();
    if let Some(message_id) = &stored.message_id {
        let later =
            events::later_attempts(tx, &raw.endpoint_id, message_id, &raw.id, raw.received_at)?;
        for event in later {
            events::count_earlier_attempt(tx, event.seq)?;
            if let (1, Some(key)) = (event.attempt, event.contact_key) {
                // One more attempt, no longer an event of its own.
                recount.push(key.clone());
                if event.not_a_repeat {
                    stale_cards.push(key);
                }
            }
        }
    }
    if let Some(hash) = &stored.body_hash {
        let later = events::later_copies(tx, &raw.endpoint_id, hash, &raw.id, raw.received_at)?;
        for copy in later {
            let first =
                events::first_identical(tx, &raw.endpoint_id, hash, &copy.id, copy.received_at)?;
            if first == copy.repeat_of {
                continue;
            }
            events::set_repeat_of(tx, copy.seq, first.as_deref())?;
            if let Some(key) = copy.contact_key {
                // A repeat is no event of its own: the contact is counted again.
                recount.push(key.clone());
                stale_cards.push(key);
            }
        }
    }
    recount.sort_unstable();
    recount.dedup();
    for key in &recount {
        contacts::rebuild(tx, key, text)?;
    }
    stale_cards.sort_unstable();
    stale_cards.dedup();
    for key in stale_cards {
        cards.drop_stale(&key);
    }
    Ok(())
}
