//! Errors of the core. Each says what happened and, where a user can act, what to do.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("database schema migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),

    #[error("database connection pool: {0}")]
    Pool(#[from] r2d2::Error),

    #[error(
        "cannot use data directory {path}: {source}. Pick another with --data-dir or HOOKSCOPE_DATA_DIR"
    )]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "cannot listen on {addr}: {source}. Is another Hookscope already running? Pick another port (port 0 picks a free one)"
    )]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },

    #[error(
        "the database {path} is damaged or is not a Hookscope database ({reason}). Move it aside (Hookscope leaves it untouched) and start again, or pick another data folder with HOOKSCOPE_DATA_DIR"
    )]
    NotADatabase { path: PathBuf, reason: String },

    #[error(
        "the database {path} was written by a newer Hookscope: run that version, or pick another data folder with HOOKSCOPE_DATA_DIR (this one leaves the file untouched)"
    )]
    NewerDatabase { path: PathBuf },

    #[error(
        "another Hookscope is already running on the data folder {path} (or a hookscope command is changing it, for a moment): use that one (its window, or the UI link it printed), stop it first, or give this one another folder with --data-dir"
    )]
    AlreadyRunning { path: PathBuf },

    #[error("{0}")]
    Invalid(String),

    #[error("not found: {0}")]
    NotFound(String),

    #[error("the store is shutting down")]
    ShuttingDown,

    /// A thread of the store panicked in this operation; it was started again.
    #[error(
        "Hookscope failed in this operation ({0}) and started its store again: try once more, and report it if it happens again (the log has the details)"
    )]
    Fault(String),

    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// A stable machine-readable code; the UI branches on it, never on the message.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid_request",
            Error::NotFound(_) => "not_found",
            Error::ShuttingDown => "shutting_down",
            Error::Fault(_) => "fault",
            Error::DataDir { .. } => "data_dir",
            Error::NotADatabase { .. } => "not_a_database",
            Error::NewerDatabase { .. } => "newer_database",
            Error::Bind { .. } => "bind",
            Error::AlreadyRunning { .. } => "already_running",
            Error::Sqlite(e) if is_disk_full(e) => "disk_full",
            Error::Sqlite(_) | Error::Migration(_) | Error::Pool(_) => "storage",
            Error::Io(_) => "io",
            Error::Json(_) => "invalid_json",
        }
    }
}

fn is_disk_full(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull)
    )
}
