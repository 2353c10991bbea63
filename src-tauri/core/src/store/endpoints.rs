//! Endpoints: named webhook URLs, each with its own secret token. The ingest listener
//! looks tokens up in an in-memory [`Directory`] so a delivery never waits on a query.

use std::collections::HashMap;
use std::sync::RwLock;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::capture::signature;
use crate::error::{Error, Result};
use crate::store::forwards;
use crate::timefmt::{format_micros, now_micros};
use crate::tokens;

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, ts_rs::TS)]
#[ts(rename = "StoredEndpoint")]
pub struct Endpoint {
    pub id: String,
    pub name: String,
    pub token: String,
    pub created_at: String,
    pub is_default: bool,
    /// Checks `X-Webhook-Signature`; kept on this machine, never serialised.
    #[serde(skip)]
    pub secret: Option<String>,
    pub has_secret: bool,
    /// Where every delivery is passed on to (the user's own handler), if anywhere.
    pub forward_to: Option<String>,
    /// How deliveries are answered; `None`: a fast 200.
    pub response: Option<CannedResponse>,
}

/// An answer an endpoint gives every delivery (after storing it), to rehearse how a
/// sender behaves when a handler fails or is slow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct CannedResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub delay_ms: u64,
}

/// Longest delay a canned response may ask for (systeme.io and proxies give up around 100 s).
pub const MAX_RESPONSE_DELAY_MS: u64 = 120_000;
const MAX_RESPONSE_BODY: usize = 64 * 1024;

impl CannedResponse {
    pub fn check(&self) -> Result<()> {
        if !(200..=599).contains(&self.status) {
            return Err(Error::Invalid(format!(
                "response.status: {} is not an HTTP status from 200 to 599",
                self.status
            )));
        }
        if self.delay_ms > MAX_RESPONSE_DELAY_MS {
            return Err(Error::Invalid(format!(
                "response.delay_ms: at most {MAX_RESPONSE_DELAY_MS}"
            )));
        }
        if self.body.len() > MAX_RESPONSE_BODY {
            return Err(Error::Invalid(format!(
                "response.body: at most {MAX_RESPONSE_BODY} bytes"
            )));
        }
        for (name, value) in &self.headers {
            if is_framing_header(name) {
                return Err(Error::Invalid(format!(
                    "response.headers: {name} is set by Hookscope itself"
                )));
            }
            if is_cookie_setter(name) {
                return Err(Error::Invalid(format!(
                    "response.headers: {name} is not allowed: a cookie set on this machine's address could replace the window's sign-in cookie"
                )));
            }
            let valid = axum::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && axum::http::HeaderValue::from_str(value).is_ok();
            if !valid {
                return Err(Error::Invalid(format!(
                    "response.headers: {name:?}: {value:?} is not a valid header"
                )));
            }
        }
        Ok(())
    }
}

/// Headers that frame the message: they belong to the server, not to a chosen answer.
pub fn is_framing_header(name: &str) -> bool {
    const FRAMING: [&str; 8] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "x-hookscope-event",
    ];
    FRAMING.contains(&name.to_ascii_lowercase().as_str())
}

/// Cookies ignore ports: one set by the webhook port lands on the UI port's host too.
pub fn is_cookie_setter(name: &str) -> bool {
    name.eq_ignore_ascii_case("set-cookie") || name.eq_ignore_ascii_case("set-cookie2")
}

const MAX_NAME_CHARS: usize = 100;

fn valid_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::Invalid("an endpoint needs a name".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::Invalid(format!(
            "endpoint names are at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_string())
}

fn from_row(row: &rusqlite::Row) -> rusqlite::Result<Endpoint> {
    let secret: Option<String> = row.get("secret")?;
    Ok(Endpoint {
        id: row.get("id")?,
        name: row.get("name")?,
        token: row.get("token")?,
        created_at: format_micros(row.get("created_at")?),
        is_default: row.get("is_default")?,
        has_secret: secret.is_some(),
        secret,
        forward_to: row.get("forward_to")?,
        response: row
            .get::<_, Option<String>>("response")?
            .and_then(|r| serde_json::from_str(&r).ok()),
    })
}

pub fn list(conn: &Connection) -> Result<Vec<Endpoint>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, token, created_at, is_default, secret, forward_to, response FROM endpoints
         ORDER BY is_default DESC, created_at, id",
    )?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Endpoint> {
    conn.query_row(
        "SELECT id, name, token, created_at, is_default, secret, forward_to, response FROM endpoints WHERE id = ?1",
        [id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound(format!("no endpoint {id}")))
}

/// The endpoint whose URL `hookscope serve` prints; created on first run and kept.
pub fn ensure_default(conn: &Connection) -> Result<Endpoint> {
    let existing = conn
        .query_row(
            "SELECT id, name, token, created_at, is_default, secret, forward_to, response FROM endpoints
             ORDER BY is_default DESC, created_at LIMIT 1",
            [],
            from_row,
        )
        .optional()?;
    match existing {
        Some(endpoint) if endpoint.is_default => Ok(endpoint),
        Some(endpoint) => {
            conn.execute(
                "UPDATE endpoints SET is_default = 1 WHERE id = ?1",
                [&endpoint.id],
            )?;
            get(conn, &endpoint.id)
        }
        None => insert(conn, "Default", true),
    }
}

pub fn create(conn: &Connection, name: &str) -> Result<Endpoint> {
    insert(conn, &valid_name(name)?, false)
}

fn insert(conn: &Connection, name: &str, is_default: bool) -> Result<Endpoint> {
    let id = tokens::endpoint_id();
    conn.execute(
        "INSERT INTO endpoints (id, name, token, created_at, is_default)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (
            &id,
            name,
            tokens::endpoint_token(),
            now_micros(),
            is_default,
        ),
    )?;
    get(conn, &id)
}

pub fn rename(conn: &Connection, id: &str, name: &str) -> Result<Endpoint> {
    let name = valid_name(name)?;
    if conn.execute("UPDATE endpoints SET name = ?2 WHERE id = ?1", (id, &name))? == 0 {
        return Err(Error::NotFound(format!("no endpoint {id}")));
    }
    get(conn, id)
}

const MAX_SECRET_CHARS: usize = 500;

/// Sets (or with `None` clears) the endpoint's signing secret and re-checks the signature
/// of every delivery it holds, on the stored bytes.
pub fn set_secret(conn: &mut Connection, id: &str, secret: Option<&str>) -> Result<Endpoint> {
    let secret = match secret {
        None => None,
        Some(text) if text.trim().is_empty() => {
            return Err(Error::Invalid(
                "the secret is empty: paste the secret key from systeme.io, or send null to remove it".into(),
            ));
        }
        Some(text) if text.chars().count() > MAX_SECRET_CHARS => {
            return Err(Error::Invalid(format!(
                "secrets are at most {MAX_SECRET_CHARS} characters"
            )));
        }
        // systeme.io shows the key with no surrounding spaces; a pasted newline is not part of it.
        Some(text) => Some(text.trim().to_string()),
    };
    // Immediate: it changes derived rows too, which the indexer's connection writes.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if tx.execute(
        "UPDATE endpoints SET secret = ?2 WHERE id = ?1",
        (id, &secret),
    )? == 0
    {
        return Err(Error::NotFound(format!("no endpoint {id}")));
    }
    reverify(&tx, id, secret.as_deref())?;
    tx.commit()?;
    get(conn, id)
}

/// Sets (or with `None` stops) forwarding of the endpoint's deliveries to `target`, an
/// `http://` or `https://` URL.
pub fn set_forward_to(conn: &Connection, id: &str, target: Option<&str>) -> Result<Endpoint> {
    let target = match target.map(str::trim) {
        None => None,
        Some(text) => {
            let url = url::Url::parse(text).map_err(|e| {
                Error::Invalid(format!(
                    "forward_to: {text:?} is not a URL ({e}); e.g. http://localhost:3000/webhooks/systeme"
                ))
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(Error::Invalid(format!(
                    "forward_to: {text:?} is not an http:// or https:// URL"
                )));
            }
            Some(text.trim_end_matches('/').to_string())
        }
    };
    if conn.execute(
        "UPDATE endpoints SET forward_to = ?2 WHERE id = ?1",
        (id, &target),
    )? == 0
    {
        return Err(Error::NotFound(format!("no endpoint {id}")));
    }
    let endpoint = get(conn, id)?;
    // Forwards still waiting follow the change: to the new handler, or not at all.
    match &target {
        None => forwards::stop_pending(conn, id, "forwarding was turned off")?,
        Some(base) => forwards::retarget_pending(conn, id, &endpoint.token, base)?,
    }
    Ok(endpoint)
}

/// Sets (or with `None` resets to a fast 200) how the endpoint answers deliveries.
pub fn set_response(
    conn: &Connection,
    id: &str,
    response: Option<&CannedResponse>,
) -> Result<Endpoint> {
    if let Some(response) = response {
        response.check()?;
    }
    let text = response.map(|r| serde_json::to_string(r).expect("a response serialises"));
    if conn.execute(
        "UPDATE endpoints SET response = ?2 WHERE id = ?1",
        (id, &text),
    )? == 0
    {
        return Err(Error::NotFound(format!("no endpoint {id}")));
    }
    get(conn, id)
}

/// New verdicts for the endpoint's signed deliveries under `secret`. A delivery that
/// fails verification counts for nothing, so the contacts whose deliveries changed sides
/// are counted again and their cards made again.
fn reverify(tx: &rusqlite::Transaction, endpoint_id: &str, secret: Option<&str>) -> Result<()> {
    let mut select = tx.prepare(
        "SELECT e.seq, d.headers, d.body, e.signature, e.contact_key
         FROM events e JOIN deliveries d ON d.seq = e.seq
         WHERE e.endpoint_id = ?1 AND e.signature <> 'unsigned'",
    )?;
    let mut update = tx.prepare("UPDATE events SET signature = ?2 WHERE seq = ?1")?;
    let mut rows = select.query([endpoint_id])?;
    let mut touched = std::collections::BTreeSet::new();
    while let Some(row) = rows.next()? {
        let headers: Vec<(String, String)> =
            serde_json::from_str(&row.get::<_, String>(1)?).unwrap_or_default();
        let body: Vec<u8> = row.get(2)?;
        let verdict = signature::verify(&headers, &body, secret).as_str();
        let was: String = row.get(3)?;
        if was != verdict {
            update.execute((row.get::<_, i64>(0)?, verdict))?;
            if (was == "invalid") != (verdict == "invalid")
                && let Some(key) = row.get::<_, Option<String>>(4)?
            {
                touched.insert(key);
            }
        }
    }
    let mut text = crate::store::full_text::HeldText::default();
    for key in &touched {
        crate::store::contacts::rebuild(tx, key, &mut text)?;
        crate::store::cards::drop_stale(tx, key)?;
    }
    text.write(tx)
}

/// Deletes an endpoint: its URL stops answering; its events stay searchable. The last
/// endpoint cannot go (the listener would have nothing to receive on); deleting the
/// default makes the oldest remaining one the default.
pub fn delete(conn: &mut Connection, id: &str) -> Result<()> {
    // Immediate: it changes derived rows too, which the indexer's connection writes.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let was_default: bool = tx
        .query_row(
            "SELECT is_default FROM endpoints WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no endpoint {id}")))?;
    let count: i64 = tx.query_row("SELECT count(*) FROM endpoints", [], |r| r.get(0))?;
    if count <= 1 {
        return Err(Error::Invalid(
            "this is the only endpoint: create another before deleting it".into(),
        ));
    }
    tx.execute("DELETE FROM endpoints WHERE id = ?1", [id])?;
    forwards::stop_pending(&tx, id, "the endpoint was deleted")?;
    if was_default {
        tx.execute(
            "UPDATE endpoints SET is_default = 1
             WHERE id = (SELECT id FROM endpoints ORDER BY created_at LIMIT 1)",
            [],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Token → endpoint, for the ingest hot path. Replaced by the writer after every endpoint
/// change (the only writer: a `hookscope` command changes endpoints through it).
#[derive(Default)]
pub struct Directory {
    by_token: RwLock<HashMap<String, Endpoint>>,
}

impl Directory {
    pub fn replace(&self, endpoints: Vec<Endpoint>) {
        *self.by_token.write().expect("endpoint directory lock") = Self::map(endpoints);
    }

    fn map(endpoints: Vec<Endpoint>) -> HashMap<String, Endpoint> {
        endpoints
            .into_iter()
            .map(|e| (e.token.clone(), e))
            .collect()
    }

    /// The endpoint a delivery pulled from a relay goes through here, for its forward:
    /// the one with the relay endpoint's id when there is one (an imported setup), else
    /// this install's default.
    pub fn for_followed(&self, endpoint_id: &str) -> Option<Endpoint> {
        let current = self.by_token.read().expect("endpoint directory lock");
        current
            .values()
            .find(|endpoint| endpoint.id == endpoint_id)
            .or_else(|| Self::default_of(&current))
            .cloned()
    }

    /// The default endpoint, as [`list`] orders them (the one marked default, else the
    /// oldest): for the status and the public URL, without a read of the store.
    pub fn default_endpoint(&self) -> Option<Endpoint> {
        Self::default_of(&self.by_token.read().expect("endpoint directory lock")).cloned()
    }

    fn default_of(endpoints: &HashMap<String, Endpoint>) -> Option<&Endpoint> {
        endpoints
            .values()
            .min_by_key(|e| (!e.is_default, &e.created_at, &e.id))
    }

    /// The endpoint a token belongs to. Tokens are 128-bit random: a hash lookup cannot
    /// be timed into revealing one.
    pub fn lookup(&self, token: &str) -> Option<Endpoint> {
        self.by_token
            .read()
            .expect("endpoint directory lock")
            .get(token)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db;

    fn store() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open_writer(&db::database_path(dir.path()), db::Synchronous::Full).unwrap();
        (dir, conn)
    }

    #[test]
    fn default_endpoint_is_created_once_and_kept() {
        let (_dir, conn) = store();
        let first = ensure_default(&conn).unwrap();
        let again = ensure_default(&conn).unwrap();
        assert_eq!(
            first, again,
            "the printed webhook URL stays the same across starts"
        );
        assert!(first.is_default);
    }

    #[test]
    fn the_directory_names_the_default_the_store_lists_first() {
        let (_dir, mut conn) = store();
        let directory = Directory::default();
        assert_eq!(directory.default_endpoint(), None, "nothing loaded yet");
        let first = ensure_default(&conn).unwrap();
        for name in ["Funnel B", "Funnel C", "Funnel D"] {
            create(&conn, name).unwrap();
        }
        let check = |conn: &Connection, directory: &Directory| {
            let listed = list(conn).unwrap();
            directory.replace(listed.clone());
            assert_eq!(directory.default_endpoint().as_ref(), listed.first());
            // A followed delivery goes through its own endpoint, else through that one.
            assert_eq!(
                directory.for_followed("ep_from_the_relay").as_ref(),
                listed.first()
            );
            let last = listed.last().unwrap();
            assert_eq!(directory.for_followed(&last.id).as_ref(), Some(last));
            listed[0].clone()
        };
        assert_eq!(check(&conn, &directory).id, first.id);
        // The default deleted: the store marks the oldest left, and the directory agrees.
        delete(&mut conn, &first.id).unwrap();
        let next = check(&conn, &directory);
        assert_eq!(next.name, "Funnel B");
        // A younger one marked default: it, not the oldest.
        conn.execute("UPDATE endpoints SET is_default = (name = 'Funnel D')", [])
            .unwrap();
        assert_eq!(check(&conn, &directory).name, "Funnel D");
        // None marked (a store edited by hand): the oldest, as the list orders them.
        conn.execute("UPDATE endpoints SET is_default = 0", [])
            .unwrap();
        assert_eq!(check(&conn, &directory).id, next.id);
    }

    #[test]
    fn the_last_endpoint_cannot_be_deleted_and_default_moves_on() {
        let (_dir, mut conn) = store();
        let default = ensure_default(&conn).unwrap();
        assert!(matches!(
            delete(&mut conn, &default.id),
            Err(Error::Invalid(_))
        ));
        let other = create(&conn, "Funnel B").unwrap();
        delete(&mut conn, &default.id).unwrap();
        assert_eq!(
            ensure_default(&conn).unwrap().id,
            other.id,
            "the remaining one is default"
        );
    }

    #[test]
    fn names_are_validated() {
        let (_dir, conn) = store();
        assert!(matches!(create(&conn, "   "), Err(Error::Invalid(_))));
        assert!(matches!(
            create(&conn, &"x".repeat(101)),
            Err(Error::Invalid(_))
        ));
        assert_eq!(create(&conn, "  Sales  ").unwrap().name, "Sales");
    }
}
