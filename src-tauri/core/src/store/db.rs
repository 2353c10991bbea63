//! Opening the store: every connection goes through one init (WAL, busy timeout,
//! synchronous mode); the schema moves forward by the migrations in `migrations/`.
//!
//! A store is two files. `hookscope.db` holds the deliveries as received and the install's
//! own state (endpoints, settings, forwards, alerts); `hookscope-derived.db` holds what the
//! indexer derived from the deliveries (events, contacts, cards, shapes, full text). Every
//! connection has the second attached as `derived`, so a query names tables, not files.
//! Each file has its own log and write lock: the indexer commits derived state on a
//! connection of its own while the writer acknowledges deliveries, and neither waits for
//! the other. The derived file is never migrated: one of another schema, another store's or
//! one that missed an erasure is emptied and derived again ([`open_writer`]).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
pub use rusqlite::Connection;
use rusqlite::OpenFlags;
use rusqlite_migration::{M, Migrations};

use crate::error::{Error, Result};

pub const DATABASE_FILE: &str = "hookscope.db";
/// The name under which every connection sees the derived file.
pub const DERIVED: &str = "derived";
/// The derived file's schema (`migrations/derived.sql`) and its version, its
/// `user_version`: raised with every change of that file.
const DERIVED_SCHEMA: &str = include_str!("../../migrations/derived.sql");
const DERIVED_SCHEMA_VERSION: i64 = 3;

/// How hard SQLite works to make a commit survive power loss. `Full` is the default: a
/// delivery is acknowledged only once it is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    #[default]
    Full,
    Normal,
}

impl Synchronous {
    /// The value of SQLite's `synchronous` pragma.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
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
        M::up(include_str!("../../migrations/20261128_0001_capture.sql")),
        M::up(include_str!(
            "../../migrations/20261128_0002_facts_cards_shapes.sql"
        )),
        M::up(include_str!(
            "../../migrations/20261128_0003_forwarding.sql"
        )),
        M::up(include_str!(
            "../../migrations/20261201_0004_api_token_out_of_captures.sql"
        )),
        M::up(include_str!(
            "../../migrations/20261201_0005_deliveries_and_derived_state.sql"
        )),
        M::up(include_str!(
            "../../migrations/20261201_0006_retention_and_erasure.sql"
        )),
        M::up(include_str!("../../migrations/20261206_0007_alerts.sql")),
        M::up(include_str!(
            "../../migrations/20261207_0008_row_counts.sql"
        )),
        M::up(include_str!(
            "../../migrations/20261207_0009_derived_state_in_its_own_file.sql"
        )),
    ])
});

/// The database path inside a data directory.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DATABASE_FILE)
}

/// The derived file beside a store's database: `hookscope.db` → `hookscope-derived.db`.
pub fn derived_path(database: &Path) -> PathBuf {
    let stem = database
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "hookscope".into());
    let extension = database
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    database.with_file_name(format!("{stem}-derived{extension}"))
}

/// Creates the data directory readable by the user only (it holds personal data). A
/// folder that exists already is left as it is (it may be shared on purpose; Hookscope's
/// own files in it are private whatever its mode): returns what to tell the user when
/// others can look into it.
pub fn ensure_data_dir(data_dir: &Path) -> Result<Option<String>> {
    let io = |source| Error::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    if !data_dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(data_dir).map_err(io)?;
        return Ok(None);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data_dir)
            .map_err(io)?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Ok(Some(format!(
                "The data folder {} can be opened by other users (mode {mode:o}). Hookscope left it as it is; its own files in it are readable by you only. `chmod 700 {}` makes the folder private too.",
                data_dir.display(),
                data_dir.display()
            )));
        }
    }
    Ok(None)
}

/// The writer's page cache, in KiB (a negative `cache_size`).
const WRITER_CACHE_KIB: i64 = -16 * 1024;

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
    // Looked at read-only first: a read-write connection would change a file that is not
    // ours (WAL mode rewrites the header) and, on closing, delete a journal beside it.
    if path.exists() {
        let probe =
            Connection::open_with_flags(path, read_flags()).map_err(|e| damaged(e.into()))?;
        if let Some(tables) = foreign_tables(&probe).map_err(|e| damaged(e.into()))? {
            return Err(Error::NotADatabase {
                path: path.to_path_buf(),
                reason: format!("it holds another program's tables: {tables}"),
            });
        }
        if matches!(
            MIGRATIONS.current_version(&probe),
            Ok(rusqlite_migration::SchemaVersion::Outside(_))
        ) {
            return Err(Error::NewerDatabase {
                path: path.to_path_buf(),
            });
        }
    }
    // Created readable by the user only before SQLite opens it: SQLite gives its journal
    // files the database file's mode, and they hold deliveries too.
    #[cfg(unix)]
    create_private(path)?;
    let mut conn = Connection::open(path).map_err(|e| damaged(e.into()))?;
    init_connection(&conn).map_err(|e| damaged(e.into()))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| damaged(e.into()))?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
    // The indexer's lookups and index inserts land on random pages of a few large indexes
    // (by contact, by body hash): SQLite's default 2 MB cache went to the system for most
    // of them. Pages are taken as they are used, so a small store stays small; 64 MB held
    // the pages of six near-limit bodies too and took a relay past its memory bound.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    MIGRATIONS.to_latest(&mut conn).map_err(|e| match e {
        rusqlite_migration::Error::MigrationDefinition(
            rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
        ) => Error::NewerDatabase {
            path: path.to_path_buf(),
        },
        e => damaged(e.into()),
    })?;
    let derived = derived_path(path);
    prepare_derived(&derived)?;
    attach_derived(&conn, &derived)?;
    conn.pragma_update(Some(DERIVED), "cache_size", WRITER_CACHE_KIB)?;
    if crate::store::indexer::ensure_derived_for_this_store(&mut conn)? {
        tracing::info!("the derived file was not this store's as it is now: indexing again");
    }
    if crate::store::indexer::ensure_current_derivation(&mut conn)? {
        tracing::info!("this store was indexed by an older Hookscope: indexing it again");
    }
    #[cfg(unix)]
    {
        restrict_to_user(path);
        restrict_to_user(&derived);
    }
    Ok(conn)
}

/// Makes the derived file ready to attach: created with its schema when missing; emptied
/// and made again when it is not one (damaged, another program's) or has another schema.
/// Nothing in it is lost for good: the indexer derives it all again.
fn prepare_derived(path: &Path) -> Result<()> {
    match open_derived(path) {
        Ok(()) => Ok(()),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "the derived file is made again");
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.as_os_str().to_owned();
                file.push(suffix);
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(Error::DataDir {
                            path: PathBuf::from(file),
                            source,
                        });
                    }
                }
            }
            open_derived(path)
        }
    }
}

/// Opens the derived file on its own and creates its schema if it has none; an error when
/// it holds anything else than this version's schema.
fn open_derived(path: &Path) -> Result<()> {
    #[cfg(unix)]
    create_private(path)?;
    let conn = Connection::open(path)?;
    init_connection(&conn)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
    match (version, tables) {
        (DERIVED_SCHEMA_VERSION, _) => Ok(()),
        (0, 0) => {
            conn.execute_batch(&format!(
                "BEGIN; {DERIVED_SCHEMA}; PRAGMA user_version = {DERIVED_SCHEMA_VERSION}; COMMIT;"
            ))?;
            Ok(())
        }
        (version, tables) => Err(Error::Invalid(format!(
            "not this version's derived file (schema {version}, {tables} objects)"
        ))),
    }
}

/// Attaches the derived file as [`DERIVED`], with what a writing connection needs for it:
/// its commits skip the fsync (what they hold can be derived again, and a crash takes the
/// position back with it), and freed pages are overwritten there too (erasure).
fn attach_derived(conn: &Connection, derived: &Path) -> Result<()> {
    let name = derived.to_str().ok_or_else(|| {
        Error::Invalid(format!(
            "the store's folder name is not UTF-8: {}",
            derived.display()
        ))
    })?;
    conn.execute(&format!("ATTACH DATABASE ?1 AS {DERIVED}"), [name])?;
    if !conn.is_readonly(rusqlite::MAIN_DB)? {
        conn.pragma_update(Some(DERIVED), "synchronous", Synchronous::Normal.pragma())?;
    }
    Ok(())
}

/// A second read-write connection to a store that [`open_writer`] has already opened,
/// checked and migrated in this process (WAL checkpoints run on it): none of that again.
pub fn open_second_writer(path: &Path, synchronous: Synchronous) -> Result<Connection> {
    let conn = Connection::open(path)?;
    init_connection(&conn)?;
    conn.pragma_update(None, "synchronous", synchronous.pragma())?;
    attach_derived(&conn, &derived_path(path))?;
    Ok(conn)
}

/// The indexer's connection in a running server: it writes the derived file only (so it
/// never takes the deliveries' write lock) and reads the deliveries. Its own log
/// checkpoints run on it, on the indexer's thread.
pub fn open_indexer(path: &Path) -> Result<Connection> {
    let conn = open_second_writer(path, Synchronous::Normal)?;
    conn.pragma_update(Some(DERIVED), "cache_size", WRITER_CACHE_KIB)?;
    Ok(conn)
}

/// Tables in a database that is not Hookscope's (never migrated by it, or migrated with no
/// events table): another program's file. `None` for ours or an empty one.
fn foreign_tables(conn: &Connection) -> rusqlite::Result<Option<String>> {
    // Reads the whole schema, so a damaged one is found here, before anything writes.
    // Events moved to the derived file (migration 9); deliveries came in migration 5.
    let has_events: bool = conn.query_row(
        "SELECT count(*) FILTER (WHERE name IN ('events', 'deliveries') AND type = 'table') > 0 FROM sqlite_schema",
        [],
        |row| row.get(0),
    )?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version != 0 && has_events {
        return Ok(None);
    }
    let mut names = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 6",
    )?;
    let names = names
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((!names.is_empty()).then(|| names.join(", ")))
}

/// A database file that could not be used, moved out of the way with its journal files.
#[derive(Debug, Clone)]
pub struct SetAside {
    pub moved_to: PathBuf,
    pub reason: String,
}

impl SetAside {
    /// What the user is told, in the terminal and in the window.
    pub fn message(&self) -> String {
        format!(
            "The database could not be used ({}). It was moved to {} (nothing in it was changed) and Hookscope started a new, empty one.",
            self.reason,
            self.moved_to.display()
        )
    }
}

/// Opens the writer like [`open_writer`]; a damaged or foreign file is first moved aside
/// (renamed, never overwritten or deleted) so that Hookscope can start on a new store.
pub fn open_writer_setting_aside(
    path: &Path,
    synchronous: Synchronous,
) -> Result<(Connection, Option<SetAside>)> {
    match open_writer(path, synchronous) {
        Err(Error::NotADatabase { reason, .. }) => {
            let moved_to = set_aside(path)?;
            tracing::warn!(from = %path.display(), to = %moved_to.display(), %reason, "unusable database moved aside");
            let conn = open_writer(path, synchronous)?;
            Ok((conn, Some(SetAside { moved_to, reason })))
        }
        other => other.map(|conn| (conn, None)),
    }
}

/// Renames `hookscope.db` (and `-wal`, `-shm`) to `hookscope.db.unreadable-STAMP`, keeping
/// SQLite's naming so the moved file still opens with its journal.
fn set_aside(path: &Path) -> Result<PathBuf> {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(DATABASE_FILE);
    let with_suffix = |target: &Path, suffix: &str| {
        let mut text = target.as_os_str().to_owned();
        text.push(suffix);
        PathBuf::from(text)
    };
    // A move cut short by a crash left journals under a name without their file: finish it.
    let unfinished = std::fs::read_dir(path.parent().unwrap_or(Path::new(".")))
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|file| {
            let base = file
                .strip_suffix("-wal")
                .or_else(|| file.strip_suffix("-shm"))?;
            base.starts_with(&format!("{name}.unreadable-"))
                .then(|| path.with_file_name(base))
        })
        .find(|base| !base.exists());
    let fresh = (0..)
        .map(|n| {
            let extra = if n == 0 {
                String::new()
            } else {
                format!("-{n}")
            };
            path.with_file_name(format!("{name}.unreadable-{stamp}{extra}"))
        })
        .find(|candidate| {
            !candidate.exists()
                && !with_suffix(candidate, "-wal").exists()
                && !with_suffix(candidate, "-shm").exists()
        })
        .expect("a free name");
    // Never over a journal already there: only finish the move if nothing would be replaced.
    let collides = |target: &Path| {
        ["-wal", "-shm"].iter().any(|suffix| {
            with_suffix(path, suffix).exists() && with_suffix(target, suffix).exists()
        })
    };
    let target = unfinished.filter(|t| !collides(t)).unwrap_or(fresh);
    let io = |source| Error::DataDir {
        path: path.to_path_buf(),
        source,
    };
    // The journals first: a crash in between leaves the main file where it was and its
    // journals beside the new name (the next start finishes the move), never a journal
    // next to a new store.
    for suffix in ["-wal", "-shm"] {
        let journal = with_suffix(path, suffix);
        if journal.exists() {
            std::fs::rename(&journal, with_suffix(&target, suffix)).map_err(io)?;
        }
    }
    std::fs::rename(path, &target).map_err(io)?;
    Ok(target)
}

/// Opens a read-only connection (export, CLI): it can never block or corrupt the writer.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, read_flags())?;
    init_connection(&conn)?;
    attach_derived_to_reader(&conn, path)?;
    Ok(conn)
}

/// A read-only connection sees the derived file too, once a writer made it: a store no
/// Hookscope has opened since it was one file has its derived tables in it still.
fn attach_derived_to_reader(conn: &Connection, database: &Path) -> Result<()> {
    let derived = derived_path(database);
    if derived.exists() {
        attach_derived(conn, &derived)?;
    }
    Ok(())
}

/// A pool of read-only connections; WAL lets them read while the writer commits.
pub type ReadPool = r2d2::Pool<SqliteConnectionManager>;

/// Runs a read on a pooled read-only connection, off the async threads.
pub async fn read<T, F>(pool: &ReadPool, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || work(&*pool.get()?))
        .await
        .map_err(|_| Error::ShuttingDown)?
}

pub fn read_pool(path: &Path, size: u32) -> Result<ReadPool> {
    let database = path.to_path_buf();
    let manager = SqliteConnectionManager::file(path)
        .with_flags(read_flags())
        .with_init(move |conn: &mut Connection| {
            init_connection(conn)?;
            attach_derived_to_reader(conn, &database).map_err(|error| match error {
                Error::Sqlite(e) => e,
                other => rusqlite::Error::InvalidPath(PathBuf::from(other.to_string())),
            })
        });
    Ok(r2d2::Pool::builder().max_size(size).build(manager)?)
}

fn read_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI
}

fn init_connection(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten, not left readable in free pages (erasure).
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(())
}

#[cfg(unix)]
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::DataDir {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The store and its journals, readable by the user only (also those an earlier version
/// created with the default mode).
#[cfg(unix)]
fn restrict_to_user(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        // Best effort: a file on a filesystem without modes still works.
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
    }
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

    /// Every file in `dir` with its bytes.
    fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                (name, std::fs::read(&p).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_damaged_file_is_moved_aside_with_its_journal_and_a_new_store_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = database_path(dir.path());
        let garbage = vec![0x42u8; 8192];
        std::fs::write(&path, &garbage).unwrap();
        std::fs::write(dir.path().join("hookscope.db-wal"), b"old journal").unwrap();
        let (conn, set_aside) = open_writer_setting_aside(&path, Synchronous::Full).unwrap();
        let set_aside = set_aside.expect("the file was set aside");
        assert_eq!(
            std::fs::read(&set_aside.moved_to).unwrap(),
            garbage,
            "kept as it was"
        );
        let mut journal = set_aside.moved_to.clone().into_os_string();
        journal.push("-wal");
        assert_eq!(
            std::fs::read(journal).unwrap(),
            b"old journal",
            "its journal follows it"
        );
        assert!(
            set_aside
                .message()
                .contains(&set_aside.moved_to.display().to_string())
        );
        let tables: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM main.sqlite_schema WHERE name = 'deliveries')
                      + (SELECT count(*) FROM derived.sqlite_schema WHERE name = 'events')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 2, "a new store is in place, both files");
        drop(conn);

        // A second damaged file the same second gets a name of its own.
        std::fs::write(
            &path,
            b"again not a database, long enough to be read as a header....",
        )
        .unwrap();
        std::fs::remove_file(dir.path().join("hookscope.db-wal")).ok();
        std::fs::remove_file(dir.path().join("hookscope.db-shm")).ok();
        let (_, second) = open_writer_setting_aside(&path, Synchronous::Full).unwrap();
        let second = second.unwrap();
        assert_ne!(second.moved_to, set_aside.moved_to, "never overwritten");
        assert_eq!(std::fs::read(&set_aside.moved_to).unwrap(), garbage);
    }

    #[test]
    fn a_move_cut_short_is_finished_under_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = database_path(dir.path());
        std::fs::write(&path, vec![0x42u8; 4096]).unwrap();
        // As a crash between renaming the journal and the file leaves them.
        let earlier = dir.path().join("hookscope.db.unreadable-20261101T000000Z");
        std::fs::write(
            dir.path()
                .join("hookscope.db.unreadable-20261101T000000Z-wal"),
            b"wal",
        )
        .unwrap();
        let (_, set_aside) = open_writer_setting_aside(&path, Synchronous::Full).unwrap();
        assert_eq!(
            set_aside.unwrap().moved_to,
            earlier,
            "the file joins its journal"
        );
        assert_eq!(std::fs::read(&earlier).unwrap(), vec![0x42u8; 4096]);
    }

    #[test]
    fn a_file_with_a_version_but_no_events_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = database_path(dir.path());
        {
            let other = Connection::open(&path).unwrap();
            other
                .execute_batch("CREATE TABLE notes (t TEXT); PRAGMA user_version = 2;")
                .unwrap();
        }
        let original = std::fs::read(&path).unwrap();
        let error = open_writer(&path, Synchronous::Full).unwrap_err();
        assert_eq!(error.code(), "not_a_database", "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), original, "not migrated");
    }

    #[test]
    fn another_programs_database_is_moved_aside_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = database_path(dir.path());
        {
            let other = Connection::open(&path).unwrap();
            other
                .execute_batch("CREATE TABLE invoices (id INTEGER, total REAL); INSERT INTO invoices VALUES (1, 9.5);")
                .unwrap();
        }
        let original = std::fs::read(&path).unwrap();
        let error = open_writer(&path, Synchronous::Full).unwrap_err();
        assert_eq!(error.code(), "not_a_database");
        assert!(error.to_string().contains("invoices"), "{error}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "refused without a change"
        );

        let (_, set_aside) = open_writer_setting_aside(&path, Synchronous::Full).unwrap();
        let set_aside = set_aside.unwrap();
        assert!(
            set_aside
                .reason
                .contains("another program's tables: invoices")
        );
        assert_eq!(
            std::fs::read(&set_aside.moved_to).unwrap(),
            original,
            "byte for byte"
        );
    }

    #[test]
    fn a_store_from_a_newer_hookscope_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = database_path(dir.path());
        drop(open_writer(&path, Synchronous::Full).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 999)
            .unwrap();
        let before = files(dir.path());
        let error = open_writer_setting_aside(&path, Synchronous::Full).unwrap_err();
        assert_eq!(error.code(), "newer_database", "{error}");
        assert!(error.to_string().contains("newer Hookscope"));
        let after = files(dir.path());
        assert!(
            !after.keys().any(|name| name.contains("unreadable")),
            "nothing moved aside: {:?}",
            after.keys()
        );
        assert_eq!(
            before["hookscope.db"], after["hookscope.db"],
            "nothing changed"
        );
    }

    /// The derived file is the one a damaged derived file's removal deletes: whatever the
    /// database is called, it is a file of its own beside it, never the database itself.
    #[test]
    fn the_derived_file_is_never_the_database() {
        let dir = Path::new("/data/hookscope");
        for name in [
            "hookscope.db",
            "store",
            ".db",
            "a.b.db",
            "hookscope-derived.db",
            "x.",
        ] {
            let database = dir.join(name);
            let derived = derived_path(&database);
            assert_ne!(derived, database, "{name}");
            assert_eq!(derived.parent(), Some(dir), "{name}: beside it");
            for suffix in ["-wal", "-shm"] {
                let mut journal = derived.as_os_str().to_owned();
                journal.push(suffix);
                assert_ne!(PathBuf::from(journal), database, "{name}");
            }
        }
        assert_eq!(
            derived_path(&dir.join("hookscope.db")),
            dir.join("hookscope-derived.db")
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
