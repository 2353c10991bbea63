//! Alert rules (what the user asked to be told about) and the alerts they raised
//! (`alert_rules`, `alerts`). A rule raises one alert per episode of one subject; the
//! episode ends when its cause does (`clear`), and the alert is read once acknowledged.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::timefmt::{format_micros, now_micros};

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename = "AlertKind")]
pub enum AlertKind {
    /// An endpoint (or one event type on it) gets nothing for longer than a threshold.
    Silence,
    /// Deliveries fail signature verification, several in a row.
    Verification,
    /// A delivery came from outside systeme.io's addresses (where the sender is known).
    Source,
    /// A forward target keeps failing.
    Forward,
    /// The public URL stopped reaching this Hookscope.
    Probe,
}

impl AlertKind {
    pub const ALL: [AlertKind; 5] = [
        AlertKind::Silence,
        AlertKind::Verification,
        AlertKind::Source,
        AlertKind::Forward,
        AlertKind::Probe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Silence => "silence",
            AlertKind::Verification => "verification",
            AlertKind::Source => "source",
            AlertKind::Forward => "forward",
            AlertKind::Probe => "probe",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<AlertKind> {
        AlertKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text.trim())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "kind: {text:?} is not an alert kind: pick silence, verification, source, forward or probe"
                ))
            })
    }
}

/// The longest silence threshold a rule may set: a year. Anything longer is a typo.
pub const LONGEST_SILENCE_SECS: i64 = 366 * 24 * 3600;
/// The most failures in a row a rule may wait for.
pub const MOST_FAILURES: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct AlertRule {
    pub id: i64,
    pub kind: AlertKind,
    /// The endpoint watched; null: every endpoint.
    pub endpoint_id: Option<String>,
    /// Silence only: the event type watched; null: any.
    pub event_type: Option<String>,
    /// Silence: seconds (null: learned from the endpoint's history). Verification and
    /// forward: failures in a row. Null for the others.
    pub threshold: Option<i64>,
}

/// A rule as the user asks for it (`POST /api/alert-rules`).
#[derive(Debug, Clone, Deserialize, ts_rs::TS)]
pub struct NewAlertRule {
    pub kind: AlertKind,
    #[serde(default)]
    #[ts(optional)]
    pub endpoint_id: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub event_type: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub threshold: Option<i64>,
}

impl NewAlertRule {
    /// The rule as it will be stored, or what is wrong with it.
    pub fn checked(mut self) -> Result<NewAlertRule> {
        self.endpoint_id = self
            .endpoint_id
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty());
        self.event_type = self
            .event_type
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if self.event_type.as_ref().is_some_and(|t| t.len() > 200) {
            return Err(Error::Invalid("event_type: at most 200 characters".into()));
        }
        match self.kind {
            AlertKind::Silence => {
                if let Some(secs) = self.threshold
                    && !(1..=LONGEST_SILENCE_SECS).contains(&secs)
                {
                    return Err(Error::Invalid(format!(
                        "threshold: a silence is 1 to {LONGEST_SILENCE_SECS} seconds (a year); leave it out to learn it from the endpoint's history"
                    )));
                }
            }
            AlertKind::Verification | AlertKind::Forward => {
                let count = self.threshold.get_or_insert(3);
                if !(1..=MOST_FAILURES).contains(count) {
                    return Err(Error::Invalid(format!(
                        "threshold: failures in a row, 1 to {MOST_FAILURES}"
                    )));
                }
            }
            AlertKind::Source | AlertKind::Probe => {
                if self.threshold.is_some() {
                    return Err(Error::Invalid(format!(
                        "threshold: a {} rule takes none",
                        self.kind
                    )));
                }
            }
        }
        if self.event_type.is_some() && self.kind != AlertKind::Silence {
            return Err(Error::Invalid(
                "event_type: only a silence rule watches one event type".into(),
            ));
        }
        if self.endpoint_id.is_some() && self.kind == AlertKind::Probe {
            return Err(Error::Invalid(
                "endpoint_id: the probe checks the public URL, not one endpoint".into(),
            ));
        }
        if self.endpoint_id.is_some() && self.kind == AlertKind::Forward {
            return Err(Error::Invalid(
                "endpoint_id: a forward rule watches every forward target".into(),
            ));
        }
        Ok(self)
    }
}

/// A raised alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct Alert {
    pub id: i64,
    pub rule_id: i64,
    pub kind: AlertKind,
    pub endpoint_id: Option<String>,
    pub event_type: Option<String>,
    /// What happened, in a sentence.
    pub message: String,
    /// What to do about it.
    pub advice: String,
    pub raised_at: String,
    /// When its cause ended (deliveries came again, the target answered, …), or null.
    pub cleared_at: Option<String>,
    /// When the user read it, or null: unread.
    pub acknowledged_at: Option<String>,
}

/// What a watcher found: an alert to raise unless its episode is already open.
#[derive(Debug, Clone)]
pub struct Raise {
    pub rule_id: i64,
    pub kind: AlertKind,
    pub subject: String,
    pub endpoint_id: Option<String>,
    pub event_type: Option<String>,
    pub message: String,
    pub advice: String,
}

pub fn list_rules(conn: &Connection) -> Result<Vec<AlertRule>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, endpoint_id, event_type, threshold FROM alert_rules ORDER BY id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        ))
    })?;
    let mut rules = Vec::new();
    for row in rows {
        let (id, kind, endpoint_id, event_type, threshold) = row?;
        // A kind this version does not know (written by a newer one) is skipped.
        if let Ok(kind) = kind.parse() {
            rules.push(AlertRule {
                id,
                kind,
                endpoint_id,
                event_type,
                threshold,
            });
        }
    }
    Ok(rules)
}

pub fn add_rule(conn: &Connection, rule: &NewAlertRule) -> Result<AlertRule> {
    if let Some(id) = &rule.endpoint_id {
        let known: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM endpoints WHERE id = ?1)",
            [id],
            |row| row.get(0),
        )?;
        if !known {
            return Err(Error::Invalid(format!(
                "endpoint_id: there is no endpoint {id:?}"
            )));
        }
    }
    conn.execute(
        "INSERT INTO alert_rules (kind, endpoint_id, event_type, threshold, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            rule.kind.as_str(),
            rule.endpoint_id,
            rule.event_type,
            rule.threshold,
            now_micros()
        ],
    )?;
    Ok(AlertRule {
        id: conn.last_insert_rowid(),
        kind: rule.kind,
        endpoint_id: rule.endpoint_id.clone(),
        event_type: rule.event_type.clone(),
        threshold: rule.threshold,
    })
}

/// Deletes a rule; its alerts stay listed, and open episodes end.
pub fn delete_rule(conn: &Connection, id: i64) -> Result<()> {
    if conn.execute("DELETE FROM alert_rules WHERE id = ?1", [id])? == 0 {
        return Err(Error::NotFound(format!("no alert rule {id}")));
    }
    conn.execute(
        "UPDATE alerts SET cleared_at = ?2 WHERE rule_id = ?1 AND cleared_at IS NULL",
        params![id, now_micros()],
    )?;
    Ok(())
}

/// Raises the alert unless the rule's episode for this subject is open: `None` then.
pub fn raise(conn: &Connection, raise: &Raise) -> Result<Option<Alert>> {
    let open: Option<i64> = conn
        .query_row(
            "SELECT id FROM alerts WHERE rule_id = ?1 AND subject = ?2 AND cleared_at IS NULL",
            params![raise.rule_id, raise.subject],
            |row| row.get(0),
        )
        .optional()?;
    if open.is_some() {
        return Ok(None);
    }
    let raised_at = now_micros();
    conn.execute(
        "INSERT INTO alerts (rule_id, kind, subject, endpoint_id, event_type, message, advice, raised_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            raise.rule_id,
            raise.kind.as_str(),
            raise.subject,
            raise.endpoint_id,
            raise.event_type,
            raise.message,
            raise.advice,
            raised_at
        ],
    )?;
    Ok(Some(Alert {
        id: conn.last_insert_rowid(),
        rule_id: raise.rule_id,
        kind: raise.kind,
        endpoint_id: raise.endpoint_id.clone(),
        event_type: raise.event_type.clone(),
        message: raise.message.clone(),
        advice: raise.advice.clone(),
        raised_at: format_micros(raised_at),
        cleared_at: None,
        acknowledged_at: None,
    }))
}

/// Ends the rule's open episode for this subject (its cause ended): true if one was open.
pub fn clear(conn: &Connection, rule_id: i64, subject: &str) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE alerts SET cleared_at = ?3 WHERE rule_id = ?1 AND subject = ?2 AND cleared_at IS NULL",
        params![rule_id, subject, now_micros()],
    )? > 0)
}

/// Marks alerts read. A source alert has no cause that ends by itself: reading it ends
/// its episode, so the next delivery from that sender is told again.
pub fn acknowledge(conn: &Connection, ids: &[i64]) -> Result<usize> {
    let now = now_micros();
    let mut read = 0;
    for id in ids {
        let changed = conn.execute(
            "UPDATE alerts SET acknowledged_at = COALESCE(acknowledged_at, ?2),
                 cleared_at = CASE WHEN kind = 'source' THEN COALESCE(cleared_at, ?2) ELSE cleared_at END
             WHERE id = ?1",
            params![id, now],
        )?;
        if changed == 0 {
            return Err(Error::NotFound(format!("no alert {id}")));
        }
        read += changed;
    }
    Ok(read)
}

/// The newest alerts first, at most `limit`; only the unread with `unread_only`.
pub fn list(conn: &Connection, unread_only: bool, limit: usize) -> Result<Vec<Alert>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, rule_id, kind, endpoint_id, event_type, message, advice, raised_at,
                cleared_at, acknowledged_at
         FROM alerts WHERE (?1 = 0 OR acknowledged_at IS NULL)
         ORDER BY raised_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![unread_only as i64, limit as i64], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get::<_, i64>(7)?,
            row.get::<_, Option<i64>>(8)?,
            row.get::<_, Option<i64>>(9)?,
        ))
    })?;
    let mut alerts = Vec::new();
    for row in rows {
        let (id, rule_id, kind, endpoint_id, event_type, message, advice, raised, cleared, read) =
            row?;
        let Ok(kind) = kind.parse() else { continue };
        alerts.push(Alert {
            id,
            rule_id,
            kind,
            endpoint_id,
            event_type,
            message,
            advice,
            raised_at: format_micros(raised),
            cleared_at: cleared.map(format_micros),
            acknowledged_at: read.map(format_micros),
        });
    }
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::store::db::database_path(dir.path());
        let conn =
            crate::store::db::open_writer(&path, crate::store::db::Synchronous::Full).unwrap();
        (dir, conn)
    }

    fn verification(rule_id: i64, subject: &str) -> Raise {
        Raise {
            rule_id,
            kind: AlertKind::Verification,
            subject: subject.into(),
            endpoint_id: None,
            event_type: None,
            message: "m".into(),
            advice: "a".into(),
        }
    }

    #[test]
    fn a_new_install_watches_all_but_silence() {
        let (_dir, conn) = store();
        let kinds: Vec<AlertKind> = list_rules(&conn).unwrap().iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                AlertKind::Verification,
                AlertKind::Forward,
                AlertKind::Source,
                AlertKind::Probe
            ]
        );
    }

    #[test]
    fn one_alert_per_episode_and_again_after_it_ends() {
        let (_dir, conn) = store();
        assert!(raise(&conn, &verification(1, "e1")).unwrap().is_some());
        assert!(raise(&conn, &verification(1, "e1")).unwrap().is_none());
        assert!(raise(&conn, &verification(1, "e2")).unwrap().is_some());
        assert!(clear(&conn, 1, "e1").unwrap());
        assert!(!clear(&conn, 1, "e1").unwrap());
        assert!(raise(&conn, &verification(1, "e1")).unwrap().is_some());
        assert_eq!(list(&conn, true, 10).unwrap().len(), 3);
    }

    #[test]
    fn reading_a_source_alert_ends_its_episode_reading_others_does_not() {
        let (_dir, conn) = store();
        let mut source = verification(3, "ip");
        source.kind = AlertKind::Source;
        let first = raise(&conn, &source).unwrap().unwrap();
        let other = raise(&conn, &verification(1, "e1")).unwrap().unwrap();
        acknowledge(&conn, &[first.id, other.id]).unwrap();
        assert!(list(&conn, true, 10).unwrap().is_empty());
        assert!(raise(&conn, &source).unwrap().is_some());
        assert!(raise(&conn, &verification(1, "e1")).unwrap().is_none());
        assert!(matches!(
            acknowledge(&conn, &[999]),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn rules_refuse_what_a_typo_makes() {
        let rule = |kind, threshold, event_type: Option<&str>| NewAlertRule {
            kind,
            endpoint_id: None,
            event_type: event_type.map(String::from),
            threshold,
        };
        for bad in [
            rule(AlertKind::Silence, Some(0), None),
            rule(AlertKind::Silence, Some(-5), None),
            rule(AlertKind::Silence, Some(i64::MAX), None),
            rule(AlertKind::Verification, Some(0), None),
            rule(AlertKind::Forward, Some(MOST_FAILURES + 1), None),
            rule(AlertKind::Probe, Some(3), None),
            rule(AlertKind::Verification, None, Some("SALE_NEW")),
        ] {
            assert!(bad.clone().checked().is_err(), "{bad:?} was accepted");
        }
        let filled = rule(AlertKind::Forward, None, None).checked().unwrap();
        assert_eq!(filled.threshold, Some(3));
        let blank = rule(AlertKind::Silence, None, Some("  "))
            .checked()
            .unwrap();
        assert_eq!(blank.event_type, None);
        let (_dir, conn) = store();
        let mut unknown = rule(AlertKind::Silence, Some(60), None);
        unknown.endpoint_id = Some("nope".into());
        assert!(matches!(add_rule(&conn, &unknown), Err(Error::Invalid(_))));
        assert!(matches!(delete_rule(&conn, 999), Err(Error::NotFound(_))));
    }
}
