//! Settings of the install (`settings`): its tokens and ids, the tunnel choice, keys a
//! user stored. Kept in the local database only.

use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;

/// The install's API token (the UI's and the API's).
pub const API_TOKEN: &str = "api_token";
/// A random id of this install (not a secret): marks its forwards and replays.
pub const INSTALL_ID_SETTING: &str = "install_id";

/// The token a relay's sync listener asks of its followers (not the API token).
pub const SYNC_TOKEN: &str = "sync_token";
/// The relay this install follows (`{"url", "token"}`), remembered across starts.
pub const FOLLOW_TARGET: &str = "follow_target";
/// How far this install has pulled from its relay (`{"relay", "seq"}`): written in the
/// transaction that stores what was pulled.
pub const FOLLOW_CURSOR: &str = "follow_cursor";

pub fn get_setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()?)
}

pub fn put_setting(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )?;
    Ok(())
}

pub fn delete_setting(conn: &Connection, key: &str) -> Result<()> {
    conn.execute("DELETE FROM settings WHERE key = ?1", [key])?;
    Ok(())
}

/// A setting of the install (API token, ...), created on first use.
pub fn setting_or_insert(
    conn: &Connection,
    key: &str,
    make: impl FnOnce() -> String,
) -> Result<String> {
    if let Some(value) = conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()?
    {
        return Ok(value);
    }
    let value = make();
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)",
        (key, &value),
    )?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::{Synchronous, database_path, open_writer};

    #[test]
    fn settings_are_replaced_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&database_path(dir.path()), Synchronous::Full).unwrap();
        assert_eq!(get_setting(&conn, "notify").unwrap(), None);
        put_setting(&conn, "notify", "on").unwrap();
        put_setting(&conn, "notify", "off").unwrap();
        assert_eq!(
            get_setting(&conn, "notify").unwrap().as_deref(),
            Some("off")
        );
    }
}
