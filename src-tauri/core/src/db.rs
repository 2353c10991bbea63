//! Opening the store: every connection goes through one init (WAL, busy timeout,
//! synchronous mode); the schema moves forward by the migrations in `migrations/`.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
pub use rusqlite::Connection;
use rusqlite::OpenFlags;
use rusqlite_migration::{M, Migrations};

use crate::error::{Error, Result};

pub const DATABASE_FILE: &str = "hookscope.db";

/// How hard SQLite works to make a commit survive power loss. `Full` is the default: a
/// delivery is acknowledged only once it is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    #[default]
    Full,
    Normal,
}

impl std::str::FromStr for Synchronous {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            other => Err(format!(
                "unknown synchronous mode {other:?}: use full or normal"
            )),
        }
    }
}

/// One file per schema change, never edited once landed.
static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(include_str!("../migrations/20261128_0001_capture.sql")),
        M::up(include_str!(
            "../migrations/20261128_0002_facts_cards_shapes.sql"
        )),
        M::up(include_str!("../migrations/20261128_0003_forwarding.sql")),
    ])
});

/// The database path inside a data directory.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DATABASE_FILE)
}

/// Creates the data directory readable by the user only (it holds personal data).
pub fn ensure_data_dir(data_dir: &Path) -> Result<()> {
    let io = |source| Error::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

/// Opens the read-write connection and brings the schema up to date.
pub fn open_writer(path: &Path, synchronous: Synchronous) -> Result<Connection> {
    let damaged = |error: Error| match &error {
        Error::Sqlite(e)
        | Error::Migration(rusqlite_migration::Error::RusqliteError { err: e, .. })
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            ) =>
        {
            Error::NotADatabase {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
        _ => error,
    };
    let mut conn = Connection::open(path).map_err(|e| damaged(e.into()))?;
    init_connection(&conn).map_err(|e| damaged(e.into()))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| damaged(e.into()))?;
    conn.pragma_update(
        None,
        "synchronous",
        match synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        },
    )?;
    MIGRATIONS
        .to_latest(&mut conn)
        .map_err(|e| damaged(e.into()))?;
    #[cfg(unix)]
    restrict_to_user(path);
    Ok(conn)
}

/// Opens a read-only connection (export, CLI): it can never block or corrupt the writer.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, read_flags())?;
    init_connection(&conn)?;
    Ok(conn)
}

/// A pool of read-only connections; WAL lets them read while the writer commits.
pub type ReadPool = r2d2::Pool<SqliteConnectionManager>;

pub fn read_pool(path: &Path, size: u32) -> Result<ReadPool> {
    let manager = SqliteConnectionManager::file(path)
        .with_flags(read_flags())
        .with_init(|conn: &mut Connection| init_connection(conn));
    Ok(r2d2::Pool::builder().max_size(size).build(manager)?)
}

fn read_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI
}

fn init_connection(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[cfg(unix)]
fn restrict_to_user(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort: a file on a filesystem without modes still works.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

pub fn get_setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    use rusqlite::OptionalExtension;
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
    use rusqlite::OptionalExtension;
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

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS
            .validate()
            .expect("every migration applies to an empty database");
    }

    #[test]
    fn writer_uses_wal_and_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&database_path(dir.path()), Synchronous::Full).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "readers must not block the writer");
        assert_eq!(
            sync, 2,
            "FULL: an acknowledged delivery survives power loss"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = database_path(dir.path());
        let garbage = vec![0x42u8; 8192];
        std::fs::write(&path, &garbage).unwrap();
        let error = open_writer(&path, Synchronous::Full).unwrap_err();
        assert_eq!(error.code(), "not_a_database", "{error}");
        assert!(
            error.to_string().contains("Move it aside"),
            "says what to do: {error}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            garbage,
            "the file is left untouched"
        );
    }

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

    #[test]
    fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = database_path(dir.path());
        drop(open_writer(&path, Synchronous::Full).unwrap());
        let reader = open_reader(&path).unwrap();
        let attempt = reader.execute("INSERT INTO settings VALUES ('a', 'b')", []);
        assert!(attempt.is_err(), "a read connection refuses writes");
    }
}
