//! How often deliveries usually arrive, per endpoint and event type: what the health view
//! shows and what a silence rule without a threshold learns its threshold from.

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::error::Result;
use crate::timefmt::format_micros;

/// Arrivals a cadence is learned from (the newest).
pub const LEARN_FROM: usize = 50;
/// Fewer arrivals than this teach nothing: no learned threshold yet.
pub const LEAST_TO_LEARN: usize = 10;
/// A learned silence threshold is never shorter than this (a busy endpoint's quiet
/// minute is not news).
pub const SHORTEST_LEARNED_SECS: i64 = 15 * 60;

/// The usual gap between arrivals, in seconds: the median of the gaps, or `None` with
/// fewer than two arrivals. `arrivals` are unix µs, newest first.
pub fn usual_gap_secs(arrivals: &[i64]) -> Option<i64> {
    let mut gaps = gaps_secs(arrivals);
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    Some(gaps[gaps.len() / 2])
}

/// A silence threshold learned from the arrivals (newest first): three times the
/// longest gap but one (so one odd pause does not set it), at least
/// [`SHORTEST_LEARNED_SECS`]; `None` with fewer than [`LEAST_TO_LEARN`] arrivals.
pub fn learned_silence_secs(arrivals: &[i64]) -> Option<i64> {
    if arrivals.len() < LEAST_TO_LEARN {
        return None;
    }
    let mut gaps = gaps_secs(arrivals);
    gaps.sort_unstable();
    let long = gaps[gaps.len().saturating_sub(2)];
    Some(long.saturating_mul(3).max(SHORTEST_LEARNED_SECS))
}

fn gaps_secs(arrivals: &[i64]) -> Vec<i64> {
    arrivals
        .windows(2)
        .map(|pair| (pair[0] - pair[1]).max(0) / 1_000_000)
        .collect()
}

/// Which deliveries of an endpoint [`recent_arrivals`] looks at.
#[derive(Debug, Clone, Copy)]
pub enum Arrivals<'t> {
    Any,
    OfType(&'t str),
    /// Those no decoder gave a type.
    Untyped,
}

/// The newest arrivals (unix µs, newest first) on an endpoint.
pub fn recent_arrivals(
    conn: &Connection,
    endpoint_id: &str,
    which: Arrivals<'_>,
    limit: usize,
) -> Result<Vec<i64>> {
    let limit = limit as i64;
    let (sql, params): (&str, Vec<&dyn rusqlite::ToSql>) = match &which {
        Arrivals::Any => (
            "SELECT received_at FROM events WHERE endpoint_id = ?1
             ORDER BY received_at DESC LIMIT ?2",
            vec![&endpoint_id, &limit],
        ),
        Arrivals::OfType(event_type) => (
            "SELECT received_at FROM events WHERE event_type = ?3 AND endpoint_id = ?1
             ORDER BY received_at DESC LIMIT ?2",
            vec![&endpoint_id, &limit, event_type],
        ),
        Arrivals::Untyped => (
            "SELECT received_at FROM events WHERE endpoint_id = ?1 AND event_type IS NULL
             ORDER BY received_at DESC LIMIT ?2",
            vec![&endpoint_id, &limit],
        ),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params.as_slice(), |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One event type's cadence on an endpoint.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct TypeCadence {
    /// The event type, or null for deliveries no decoder named.
    pub event_type: Option<String>,
    pub last_at: String,
    /// Median seconds between arrivals (of the last 50), or null with fewer than two.
    pub usual_gap_secs: Option<i64>,
    /// How long a silence must last to be news, learned the same way a silence rule
    /// without a threshold learns it; null until 10 have arrived.
    pub learned_silence_secs: Option<i64>,
}

/// Per event type seen on the endpoint since `since` (unix µs): its last arrival and
/// usual cadence, the busiest types first (at most `most`). Bounded by `since`, so the
/// view costs what recent traffic is, not the whole store.
pub fn type_cadences(
    conn: &Connection,
    endpoint_id: &str,
    since: i64,
    most: usize,
) -> Result<Vec<TypeCadence>> {
    let mut stmt = conn.prepare_cached(
        "SELECT event_type, max(received_at) FROM events
         WHERE endpoint_id = ?1 AND received_at >= ?2
         GROUP BY event_type ORDER BY count(*) DESC LIMIT ?3",
    )?;
    let types: Vec<(Option<String>, i64)> = stmt
        .query_map(params![endpoint_id, since, most as i64], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut cadences = Vec::with_capacity(types.len());
    for (event_type, last) in types {
        let which = match &event_type {
            Some(t) => Arrivals::OfType(t),
            None => Arrivals::Untyped,
        };
        let arrivals = recent_arrivals(conn, endpoint_id, which, LEARN_FROM)?;
        cadences.push(TypeCadence {
            event_type,
            last_at: format_micros(last),
            usual_gap_secs: usual_gap_secs(&arrivals),
            learned_silence_secs: learned_silence_secs(&arrivals),
        });
    }
    Ok(cadences)
}

/// Signature verdicts of an endpoint's deliveries since `since` (unix µs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct VerdictCounts {
    pub valid: i64,
    pub invalid: i64,
    pub unsigned: i64,
    pub no_secret: i64,
}

pub fn verdicts_since(conn: &Connection, endpoint_id: &str, since: i64) -> Result<VerdictCounts> {
    let mut stmt = conn.prepare_cached(
        "SELECT signature, count(*) FROM events WHERE endpoint_id = ?1 AND received_at >= ?2
         GROUP BY signature",
    )?;
    let mut counts = VerdictCounts::default();
    let rows = stmt.query_map(params![endpoint_id, since], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (verdict, count) = row?;
        match verdict.as_str() {
            "valid" => counts.valid = count,
            "invalid" => counts.invalid = count,
            "unsigned" => counts.unsigned = count,
            "no_secret" => counts.no_secret = count,
            _ => {}
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60 * 1_000_000;

    #[test]
    fn the_usual_gap_is_the_median() {
        assert_eq!(usual_gap_secs(&[]), None);
        assert_eq!(usual_gap_secs(&[5 * MIN]), None);
        // Gaps of 1, 1, 10 minutes, newest first.
        assert_eq!(usual_gap_secs(&[12 * MIN, 2 * MIN, MIN, 0]), Some(60));
    }

    #[test]
    fn a_learned_threshold_ignores_one_odd_pause_and_has_a_floor() {
        let hourly: Vec<i64> = (0..20).rev().map(|h| h * 60 * MIN).collect();
        assert_eq!(learned_silence_secs(&hourly[..9]), None);
        assert_eq!(learned_silence_secs(&hourly), Some(3 * 3600));
        // One pause of a day among hourly arrivals does not make the threshold 3 days.
        let mut with_pause = hourly.clone();
        for at in with_pause.iter_mut().take(5) {
            *at += 24 * 60 * MIN;
        }
        assert_eq!(learned_silence_secs(&with_pause), Some(3 * 3600));
        let busy: Vec<i64> = (0..20).rev().map(|s| s * 1_000_000).collect();
        assert_eq!(learned_silence_secs(&busy), Some(SHORTEST_LEARNED_SECS));
    }
}
