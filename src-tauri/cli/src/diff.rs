//! `hookscope diff`: two stored events compared, read straight from the data folder (also
//! while Hookscope runs): headers by name, the body by JSON path, by line or by hash.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;
use clap::Args;
use hookscope_core::capture::diff::{
    BodyChanges, BodyDiff, Change, HeadersDiff, JsonDiff, LineTag, TextDiff_,
};
use hookscope_core::store::db;
use hookscope_core::store::events::compare::{self, DiffSide, EventDiff, PreviousReason};

use crate::{DataDirArg, MaxBodyArg, existing_database, indexed_so_far};

#[derive(Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub data_dir: DataDirArg,
    /// The event compared from (its id, as the window and exports show it)
    #[arg(value_name = "ID")]
    pub a: String,
    /// The event compared to; left out: the one before A (its previous attempt, or the
    /// previous event of its type on its endpoint), compared to A
    #[arg(value_name = "ID")]
    pub b: Option<String>,
    /// Print the comparison as JSON (what `GET /api/diff` answers)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub max_body: MaxBodyArg,
}

pub fn run(args: DiffArgs) -> Result<()> {
    let data_dir = args.data_dir.resolve()?;
    let database = existing_database(&data_dir)?;
    let max_body = args.max_body.max_body;
    let (a, b, why) = match args.b {
        Some(b) => (args.a, b, None),
        None => {
            // Which event came before is the indexer's to know.
            indexed_so_far(&data_dir, max_body)?;
            let conn = db::open_reader(&database)?;
            let previous = compare::previous(&conn, &args.a)?;
            (previous.id, args.a, Some(previous.reason))
        }
    };
    let conn = db::open_reader(&database)?;
    let diff = compare::compare(&conn, &a, &b, max_body.bytes())?;
    let out = if args.json {
        let mut text = serde_json::to_string_pretty(&diff)?;
        text.push('\n');
        text
    } else {
        render(&diff, why)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Longest value printed on one line; longer ones end with `…`.
const SHOWN_VALUE: usize = 120;

fn shown(value: &serde_json::Value) -> String {
    cut(&value.to_string())
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(SHOWN_VALUE) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn marker(change: Change) -> char {
    match change {
        Change::Added => '+',
        Change::Removed => '-',
        Change::Changed => '~',
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The comparison as a person reads it in a terminal: `-` only in A, `+` only in B, `~`
/// changed (A → B); what did not change is counted, not printed.
pub fn render(diff: &EventDiff, why: Option<PreviousReason>) -> String {
    let mut out = String::new();
    side(&mut out, 'a', &diff.a);
    side(&mut out, 'b', &diff.b);
    if let Some(why) = why {
        let _ = writeln!(
            out,
            "  (a is {})",
            match why {
                PreviousReason::Attempt => "the attempt before b",
                PreviousReason::Repeat => "the delivery b repeats",
                PreviousReason::SameType => "the previous event of b's type",
            }
        );
    }
    out.push('\n');
    headers(&mut out, &diff.headers);
    out.push('\n');
    body(&mut out, &diff.body);
    out
}

fn side(out: &mut String, letter: char, side: &DiffSide) {
    let attempt = if side.attempt > 1 {
        format!(", attempt {}", side.attempt)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{letter}: {}  {}  {} ({}{attempt})",
        side.id, side.received_at, side.summary, side.endpoint_name
    );
}

fn headers(out: &mut String, headers: &HeadersDiff) {
    let _ = writeln!(
        out,
        "Headers: {}, {} unchanged",
        plural(headers.changes.len(), "difference", "differences"),
        headers.unchanged.len()
    );
    for change in &headers.changes {
        let value = match (&change.a, &change.b) {
            (Some(a), Some(b)) => format!("{} → {}", cut(a), cut(b)),
            (Some(one), None) | (None, Some(one)) => cut(one),
            (None, None) => String::new(),
        };
        let _ = writeln!(out, "  {} {}: {value}", marker(change.change), change.name);
    }
}

fn body(out: &mut String, body: &BodyDiff) {
    let sizes = if body.a_size == body.b_size {
        plural(body.a_size, "byte", "bytes")
    } else {
        format!("{} vs {} bytes", body.a_size, body.b_size)
    };
    let decoded = if body.decoded {
        ", compared decompressed"
    } else {
        ""
    };
    let same = if body.identical { ", identical" } else { "" };
    match &body.diff {
        BodyChanges::Json(json) => {
            let _ = writeln!(out, "Body (JSON, {sizes}{decoded}{same}):");
            json_body(out, json);
        }
        BodyChanges::Text(text) => {
            let _ = writeln!(out, "Body (text, {sizes}{decoded}{same}):");
            text_body(out, text);
        }
        BodyChanges::Binary(binary) => {
            let verdict = match binary.first_difference {
                None => "identical".to_string(),
                Some(at) => format!("different from byte {at}"),
            };
            let _ = writeln!(out, "Body (binary, {sizes}{decoded}): {verdict}");
            let _ = writeln!(out, "  a sha256 {}", binary.a_sha256);
            let _ = writeln!(out, "  b sha256 {}", binary.b_sha256);
        }
    }
}

fn json_body(out: &mut String, json: &JsonDiff) {
    let total = json.changes.len() + json.more;
    let _ = writeln!(
        out,
        "  {}, {} unchanged",
        plural(total, "path differs", "paths differ"),
        plural(json.unchanged, "value", "values")
    );
    for change in &json.changes {
        let path = if change.path.is_empty() {
            "(the whole body)"
        } else {
            &change.path
        };
        let value = match (&change.a, &change.b) {
            (Some(a), Some(b)) => format!("{} → {}", shown(a), shown(b)),
            (Some(one), None) | (None, Some(one)) => shown(one),
            (None, None) => String::new(),
        };
        let _ = writeln!(out, "  {} {path}: {value}", marker(change.change));
    }
    if json.more > 0 {
        let _ = writeln!(
            out,
            "  … and {} not listed",
            plural(json.more, "change", "changes")
        );
    }
    if json.partial {
        let _ = writeln!(
            out,
            "  (a body is too large to hold whole: only its first 20,000 values were compared)"
        );
    }
}

fn text_body(out: &mut String, text: &TextDiff_) {
    let changed: usize = text
        .hunks
        .iter()
        .flat_map(|h| &h.lines)
        .filter(|l| l.tag != LineTag::Same)
        .count()
        + text.more;
    let _ = writeln!(
        out,
        "  {} changed, {} unchanged",
        plural(changed, "line", "lines"),
        text.unchanged
    );
    for hunk in &text.hunks {
        if hunk.folded_before > 0 {
            let _ = writeln!(
                out,
                "  … {}",
                plural(hunk.folded_before, "unchanged line", "unchanged lines")
            );
        }
        let _ = writeln!(
            out,
            "  @@ a line {}, b line {} @@",
            hunk.a_line, hunk.b_line
        );
        for line in &hunk.lines {
            let mark = match line.tag {
                LineTag::Same => ' ',
                LineTag::Removed => '-',
                LineTag::Added => '+',
            };
            let _ = writeln!(out, "  {mark} {}", line.text);
        }
    }
    if text.more > 0 {
        let _ = writeln!(
            out,
            "  … and {} not listed",
            plural(text.more, "changed line", "changed lines")
        );
    }
}
