//! Exports: every matching event with its exact payload, as one JSON array or as NDJSON.
//! Written row by row, so a million events take the memory of one.

use std::io::{BufWriter, Write};
use std::path::Path;

use rusqlite::Connection;

use crate::capture::mentions::Address;
use crate::error::{Error, Result};
use crate::exchange::event_json::{Layout, write_event};
use crate::store::events::query::{EventFilter, check_filter, for_each_event};
use crate::store::events::{StoredEvent, get_event_by_seq};
use crate::store::{db, erasure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Ndjson,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(text: &str) -> Result<Format> {
        match text.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "ndjson" | "jsonl" => Ok(Format::Ndjson),
            other => Err(Error::Invalid(format!(
                "unknown export format {other:?}: use json or ndjson"
            ))),
        }
    }
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ndjson => "ndjson",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

/// Writes the export; returns how many events it holds. With `filter.forget`, the
/// deliveries forgetting that address would erase (other filters do not apply).
pub fn export(
    conn: &Connection,
    filter: &EventFilter,
    format: Format,
    out: &mut impl Write,
    inflate_limit: usize,
) -> Result<u64> {
    let layout = match format {
        Format::Json => Layout::Document,
        Format::Ndjson => Layout::Line,
    };
    let forgetting = match filter.forget.as_deref() {
        Some(email) => Some(Address::parse(email).map_err(Error::Invalid)?),
        None => {
            check_filter(filter)?;
            None
        }
    };
    if format == Format::Json {
        out.write_all(b"[")?;
    }
    let mut first = true;
    let mut write_one = |event: StoredEvent| -> Result<()> {
        if format == Format::Json {
            out.write_all(if first { b"\n" } else { b",\n" })?;
        }
        first = false;
        write_event(
            out,
            &event.meta,
            event.body_kind,
            &event.body,
            layout,
            inflate_limit,
        )?;
        if format == Format::Ndjson {
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    let count = match forgetting {
        // Exactly what forgetting them erases, about them and mentioning them, indexed
        // or not yet: what a right-of-access request hands over before the erasure.
        Some(address) => {
            let seqs = erasure::find(conn, &address, inflate_limit)?.seqs();
            for &seq in &seqs {
                write_one(get_event_by_seq(conn, seq)?)?;
            }
            seqs.len() as u64
        }
        None => for_each_event(conn, filter, write_one)?,
    };
    if format == Format::Json {
        out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
    }
    out.flush()?;
    Ok(count)
}

/// Exports from the database at `database` into a new file at `out` (CLI `-o`, the
/// desktop app's save dialog). Returns how many events it holds.
pub fn export_to_file(
    database: &Path,
    filter: &EventFilter,
    format: Format,
    out: &Path,
    inflate_limit: usize,
) -> Result<u64> {
    let conn = db::open_reader(database)?;
    let file = create_private(out)?;
    export(
        &conn,
        filter,
        format,
        &mut BufWriter::new(file),
        inflate_limit,
    )
}

/// A new (or emptied) file for an export, readable by the user only: it holds personal
/// data, like the store.
pub fn create_private(out: &Path) -> Result<std::fs::File> {
    let cannot = |e: std::io::Error| {
        Error::Invalid(format!("cannot write the export to {}: {e}", out.display()))
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(out).map_err(cannot)?;
    #[cfg(unix)]
    {
        // A file that was there already keeps its mode through open: set it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(cannot)?;
    }
    Ok(file)
}
