//! Settings of the install (`settings`): its tokens and ids, the tunnel choice, keys a
//! user stored. Kept in the local database only.

use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;

/// Every key the install keeps in `settings`, in one place: a key is named once, and
/// what its value holds is said beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// The install's API token (the UI's and the API's).
    ApiToken,
    /// A random id of this install (not a secret): marks its forwards and replays.
    InstallId,
    /// The token a relay's sync listener asks of its followers (not the API token).
    SyncToken,
    /// The relay this install follows (`{"url", "token"}`), remembered across starts.
    FollowTarget,
    /// How far this install has pulled from its relay (`{"relay", "seq"}`): written in the
    /// transaction that stores what was pulled.
    FollowCursor,
    /// The tunnel chosen last (`TunnelChoice` as text), used when none is given.
    Tunnel,
    /// The public URL the tunnel had last, to tell when it changed.
    TunnelLastUrl,
    /// An ngrok authtoken saved from the window.
    NgrokToken,
    /// The systeme.io API key saved by the user.
    SystemeApiKey,
    /// A random id of this store, made when it is first opened: the derived file says
    /// whose derived state it holds ([`Setting::DerivedStore`]).
    StoreId,
    /// The last delivery whose derived state is stored (in the derived file).
    IndexThrough,
    /// Which derivation made the derived state: a store derived by an older one is
    /// derived again at open, so no answer depends on when a delivery was indexed (in the
    /// derived file).
    IndexDerivation,
    /// The [`Setting::StoreId`] of the store the derived file was derived from.
    DerivedStore,
    /// [`Setting::ErasureGeneration`] as the derived file last saw it, written by the
    /// erasure in both files: the two differ only when a crash cut an erasure's commit in
    /// two (each file's commit is atomic, the pair is not), and the derived file is then
    /// derived again.
    DerivedErasureGeneration,
    /// The install's retention in days (absent: deliveries are kept).
    RetentionDays,
    /// When the last retention run ended and how many deliveries it pruned (JSON).
    RetentionLastRun,
    /// Set while erased content may still sit in full-text segments or the log.
    ErasureScrubPending,
    /// Event types whose shapes wait to be learned again (a prune run cut short).
    ErasureShapesPending,
    /// Counts erasures (a forget, a prune batch), across restarts: the writer sees the
    /// number change, drops what it learned from erased deliveries and tells the windows.
    ErasureGeneration,
    /// The desktop app's notification switch (`on` / `off`).
    DesktopNotifications,
}

impl Setting {
    /// The key stored in the database. Never change one: stores written before keep it.
    pub const fn key(self) -> &'static str {
        match self {
            Setting::ApiToken => "api_token",
            Setting::InstallId => "install_id",
            Setting::SyncToken => "sync_token",
            Setting::FollowTarget => "follow_target",
            Setting::FollowCursor => "follow_cursor",
            Setting::Tunnel => "tunnel",
            Setting::TunnelLastUrl => "tunnel.last_url",
            Setting::NgrokToken => "ngrok.authtoken",
            Setting::SystemeApiKey => "systeme.api_key",
            Setting::StoreId => "store.id",
            Setting::IndexThrough => "index.through",
            Setting::IndexDerivation => "index.derivation",
            Setting::DerivedStore => "derived.store",
            Setting::DerivedErasureGeneration => "derived.erasure_generation",
            Setting::RetentionDays => "retention.days",
            Setting::RetentionLastRun => "retention.last_run",
            Setting::ErasureScrubPending => "erasure.scrub_pending",
            Setting::ErasureShapesPending => "erasure.shapes_pending",
            Setting::ErasureGeneration => "erasure.generation",
            Setting::DesktopNotifications => "desktop.notifications",
        }
    }
}

impl Setting {
    /// Where it is kept: the derived file's own keys go with the derived state, in the
    /// same transactions (a position is never ahead of what it says is derived).
    const fn in_derived_file(self) -> bool {
        matches!(
            self,
            Setting::IndexThrough
                | Setting::IndexDerivation
                | Setting::DerivedStore
                | Setting::DerivedErasureGeneration
        )
    }
}

pub fn get_setting(conn: &Connection, key: Setting) -> Result<Option<String>> {
    let sql = if key.in_derived_file() {
        "SELECT value FROM derived_settings WHERE key = ?1"
    } else {
        "SELECT value FROM settings WHERE key = ?1"
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row([key.key()], |row| row.get(0))
        .optional()?)
}

pub fn put_setting(conn: &Connection, key: Setting, value: &str) -> Result<()> {
    let sql = if key.in_derived_file() {
        "INSERT INTO derived_settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    } else {
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    };
    conn.prepare_cached(sql)?.execute((key.key(), value))?;
    Ok(())
}

pub fn delete_setting(conn: &Connection, key: Setting) -> Result<()> {
    let sql = if key.in_derived_file() {
        "DELETE FROM derived_settings WHERE key = ?1"
    } else {
        "DELETE FROM settings WHERE key = ?1"
    };
    conn.prepare_cached(sql)?.execute([key.key()])?;
    Ok(())
}

/// How many erasures the store has seen ([`Setting::ErasureGeneration`]; 0: none).
pub fn erasure_generation(conn: &Connection, key: Setting) -> Result<i64> {
    Ok(get_setting(conn, key)?
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// A setting of the install (API token, ...), created on first use.
pub fn setting_or_insert(
    conn: &Connection,
    key: Setting,
    make: impl FnOnce() -> String,
) -> Result<String> {
    if let Some(value) = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [key.key()],
            |row| row.get(0),
        )
        .optional()?
    {
        return Ok(value);
    }
    let value = make();
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)",
        (key.key(), &value),
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
        assert_eq!(
            get_setting(&conn, Setting::DesktopNotifications).unwrap(),
            None
        );
        put_setting(&conn, Setting::DesktopNotifications, "on").unwrap();
        put_setting(&conn, Setting::DesktopNotifications, "off").unwrap();
        assert_eq!(
            get_setting(&conn, Setting::DesktopNotifications)
                .unwrap()
                .as_deref(),
            Some("off")
        );
    }
}
