//! Retention: deliveries older than a number of days (the install's setting, or an
//! endpoint's own) are pruned with all that was derived from them, in small batches so
//! acknowledgements never wait behind a long transaction. Each batch is one transaction;
//! the shapes of the types it touched are learned again once the run is over (recorded as
//! pending, so a run cut short finishes at the next start), then the file is scrubbed.

use std::collections::BTreeSet;

use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::erasure::{self, Affected};
use crate::store::settings::{self, Setting};
use crate::timefmt::format_micros;

/// Deliveries pruned per transaction.
pub const BATCH: usize = 500;
const DAY_MICROS: i64 = 86_400 * 1_000_000;
/// The longest retention: a hundred years. Past it, "keep everything" is what is meant.
pub const MOST_DAYS: u32 = 36_500;

/// The days a setting holds, when it is a retention at all: a value stored outside
/// 1..=[`MOST_DAYS`] (by a Hookscope that did not check) keeps everything rather than
/// prune by a cutoff nobody chose.
fn valid_days(days: u32) -> Option<u32> {
    if (1..=MOST_DAYS).contains(&days) {
        Some(days)
    } else {
        tracing::warn!(
            days,
            "a stored retention outside 1..={MOST_DAYS} days is ignored: deliveries are kept"
        );
        None
    }
}

/// Deliveries received before this are past `days`. Checked: no retention moves the
/// cutoff after `now`, whatever the clock says.
pub fn cutoff(now: i64, days: u32) -> Result<i64> {
    i64::from(days)
        .checked_mul(DAY_MICROS)
        .and_then(|span| now.checked_sub(span))
        .filter(|cutoff| *cutoff <= now)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "retention: {days} days before {now} is out of range"
            ))
        })
}

/// Refuses a retention outside 1..=[`MOST_DAYS`] days.
pub fn check_days(days: Option<u32>) -> Result<()> {
    match days {
        Some(days) if !(1..=MOST_DAYS).contains(&days) => Err(Error::Invalid(format!(
            "retention: {days} days is out of range: keep deliveries 1 to {MOST_DAYS} days, or give none (off) to keep them until you delete them"
        ))),
        _ => Ok(()),
    }
}

/// What the window and `hookscope retention` show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct RetentionPolicy {
    /// Days deliveries are kept; null: kept until you delete them.
    pub days: Option<u32>,
    /// Endpoints that keep theirs for another number of days: `[id, days]`.
    pub endpoints: Vec<(String, u32)>,
    pub last_run: Option<LastRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct LastRun {
    /// When it ended (RFC 3339).
    pub at: String,
    pub pruned: u64,
}

pub fn policy(conn: &Connection) -> Result<RetentionPolicy> {
    let days = settings::get_setting(conn, Setting::RetentionDays)?
        .and_then(|d| d.parse().ok())
        .and_then(valid_days);
    let stored: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT id, retention_days FROM endpoints WHERE retention_days IS NOT NULL ORDER BY id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let endpoints = stored
        .into_iter()
        .filter_map(|(id, days)| Some((id, valid_days(u32::try_from(days).ok()?)?)))
        .collect();
    let last_run = settings::get_setting(conn, Setting::RetentionLastRun)?
        .and_then(|j| serde_json::from_str(&j).ok());
    Ok(RetentionPolicy {
        days,
        endpoints,
        last_run,
    })
}

/// Sets the install's retention (`None`: keep everything) or, with `endpoint`, that
/// endpoint's own (`None`: the install's).
pub fn set_days(conn: &Connection, endpoint: Option<&str>, days: Option<u32>) -> Result<()> {
    check_days(days)?;
    match endpoint {
        None => match days {
            Some(days) => settings::put_setting(conn, Setting::RetentionDays, &days.to_string()),
            None => settings::delete_setting(conn, Setting::RetentionDays),
        },
        Some(id) => {
            if conn.execute(
                "UPDATE endpoints SET retention_days = ?2 WHERE id = ?1",
                (id, days),
            )? == 0
            {
                return Err(Error::NotFound(format!("no endpoint {id}")));
            }
            Ok(())
        }
    }
}

/// The deliveries past their endpoint's retention at `now`, oldest first, at most `limit`.
fn expired(tx: &Transaction, now: i64, limit: usize) -> Result<Vec<i64>> {
    let policy = policy(tx)?;
    let mut seqs = Vec::new();
    // Endpoints with their own retention, by the (endpoint, time) index.
    for (endpoint, days) in &policy.endpoints {
        let cutoff = cutoff(now, *days)?;
        seqs.extend(
            tx.prepare_cached(
                "SELECT seq FROM events WHERE endpoint_id = ?1 AND received_at < ?2
                 ORDER BY received_at LIMIT ?3",
            )?
            .query_map(
                (endpoint, cutoff, (limit - seqs.len().min(limit)) as i64),
                |r| r.get::<_, i64>(0),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        );
    }
    if let Some(days) = policy.days
        && seqs.len() < limit
    {
        let cutoff = cutoff(now, days)?;
        let own: Vec<&str> = policy.endpoints.iter().map(|(id, _)| id.as_str()).collect();
        let mut stmt = tx.prepare_cached(
            "SELECT seq, endpoint_id FROM events WHERE received_at < ?1 ORDER BY received_at",
        )?;
        let mut rows = stmt.query([cutoff])?;
        while let Some(row) = rows.next()? {
            let endpoint: String = row.get(1)?;
            if !own.contains(&endpoint.as_str()) {
                seqs.push(row.get(0)?);
                if seqs.len() >= limit {
                    break;
                }
            }
        }
    }
    Ok(seqs)
}

/// A change to the policy, to see what it would prune before it applies.
#[derive(Debug, Clone, Default, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    /// Days to keep; null: keep everything (or, with `endpoint`, the install's).
    pub days: Option<u32>,
    /// An endpoint's own retention instead of the install's.
    #[serde(default)]
    #[ts(optional)]
    pub endpoint: Option<String>,
}

/// How many deliveries a policy prunes: now, and with the change applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct PrunePreview {
    /// Past the retention as it stands (the next run prunes them).
    pub due_now: u64,
    /// Past it once the change applies.
    pub after_change: u64,
}

/// What the policy, and the policy with `change`, would prune at `now`. Reads only.
pub fn preview(conn: &Connection, now: i64, change: &PolicyChange) -> Result<PrunePreview> {
    check_days(change.days)?;
    let current = policy(conn)?;
    let mut changed = current.clone();
    match &change.endpoint {
        None => changed.days = change.days,
        Some(id) => {
            crate::store::endpoints::get(conn, id)?;
            changed.endpoints.retain(|(own, _)| own != id);
            if let Some(days) = change.days {
                changed.endpoints.push((id.clone(), days));
            }
        }
    }
    Ok(PrunePreview {
        due_now: count_expired(conn, now, &current)?,
        after_change: count_expired(conn, now, &changed)?,
    })
}

/// How many deliveries `policy` holds past their retention at `now`.
fn count_expired(conn: &Connection, now: i64, policy: &RetentionPolicy) -> Result<u64> {
    let mut total: i64 = 0;
    for (endpoint, days) in &policy.endpoints {
        total += conn
            .prepare_cached(
                "SELECT count(*) FROM events WHERE endpoint_id = ?1 AND received_at < ?2",
            )?
            .query_row((endpoint, cutoff(now, *days)?), |r| r.get::<_, i64>(0))?;
    }
    if let Some(days) = policy.days {
        let cutoff = cutoff(now, days)?;
        let all: i64 = conn
            .prepare_cached("SELECT count(*) FROM events WHERE received_at < ?1")?
            .query_row([cutoff], |r| r.get(0))?;
        let mut own: i64 = 0;
        for (endpoint, _) in &policy.endpoints {
            own += conn
                .prepare_cached(
                    "SELECT count(*) FROM events WHERE endpoint_id = ?1 AND received_at < ?2",
                )?
                .query_row((endpoint, cutoff), |r| r.get::<_, i64>(0))?;
        }
        total += all - own;
    }
    Ok(total.max(0) as u64)
}

/// Prunes one batch of expired deliveries in one transaction; returns how many went. The
/// types they touched are added to those whose shapes wait to be learned again.
pub fn prune_batch(conn: &mut Connection, now: i64, inflate_limit: usize) -> Result<u64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let seqs = expired(&tx, now, BATCH)?;
    if seqs.is_empty() {
        return Ok(0);
    }
    let mut affected = Affected::default();
    erasure::remove(&tx, &seqs, &mut affected, inflate_limit)?;
    erasure::finish_erasure(&tx, &mut affected)?;
    let mut pending = pending_shapes(&tx)?;
    pending.extend(affected.event_types.iter().cloned());
    settings::put_setting(
        &tx,
        Setting::ErasureShapesPending,
        &serde_json::to_string(&pending).expect("names serialise"),
    )?;
    settings::put_setting(&tx, Setting::ErasureScrubPending, "1")?;
    erasure::count_erasure(&tx)?;
    tx.commit()?;
    Ok(seqs.len() as u64)
}

fn pending_shapes(conn: &Connection) -> Result<BTreeSet<String>> {
    Ok(settings::get_setting(conn, Setting::ErasureShapesPending)?
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default())
}

/// Ends a run: the touched types' shapes learned again, the run recorded, what waits for a
/// scrub scrubbed. Also what a start does after a run was cut
/// short.
pub fn finish(conn: &mut Connection, pruned: u64, now: i64, inflate_limit: usize) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let pending = pending_shapes(&tx)?;
    erasure::relearn(&tx, &pending, inflate_limit)?;
    settings::delete_setting(&tx, Setting::ErasureShapesPending)?;
    let run = LastRun {
        at: format_micros(now),
        pruned,
    };
    settings::put_setting(
        &tx,
        Setting::RetentionLastRun,
        &serde_json::to_string(&run).expect("serialises"),
    )?;
    // Counted as an erasure once more: windows reloaded after the batches, before shapes
    // were learned again and the run was recorded; they reload once it is all done.
    if pruned > 0 {
        erasure::count_erasure(&tx)?;
    }
    tx.commit()?;
    if erasure::scrub_pending(conn)? {
        erasure::scrub(conn)?;
    }
    Ok(())
}
