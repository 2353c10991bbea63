//! Exports streamed as a download, a row at a time.

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::Error;
use crate::exchange::export::{self, Format};
use crate::http::state::AppState;

use crate::store::events::query::{self, EventFilter};

use super::answer::{ApiQuery, ApiResult};

#[derive(Deserialize)]
pub(super) struct FormatQuery {
    format: Option<String>,
}

pub(super) async fn export_events(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<EventFilter>,
    ApiQuery(format): ApiQuery<FormatQuery>,
) -> ApiResult<Response> {
    let format: Format = format.format.as_deref().unwrap_or("json").parse()?;
    // Refuse a bad filter with a 400 now, not halfway through a download.
    match filter.forget.clone() {
        Some(email) => {
            // What a forget would erase right now: indexed first, as its preview is.
            state.erasure.erasure_of(email).await?;
        }
        None => {
            let probe = EventFilter {
                limit: Some(1),
                before: None,
                ..filter.clone()
            };
            state
                .store
                .read(move |conn| query::list_events(conn, &probe))
                .await?;
        }
    }

    let (chunks, body) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let pool = state.store.reads.clone();
    let inflate_limit = state.store.max_body.bytes();
    tokio::task::spawn_blocking(move || {
        let result = pool.get().map_err(Error::from).and_then(|conn| {
            let mut out =
                std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(chunks.clone()));
            export::export(&conn, &filter, format, &mut out, inflate_limit)
        });
        if let Err(error) = result {
            tracing::warn!(%error, "export interrupted");
            let _ = chunks.blocking_send(Err(std::io::Error::other(error.to_string())));
        }
    });
    let filename = format!(
        "hookscope-export-{}.{}",
        crate::timefmt::format_micros(crate::timefmt::now_micros())
            .get(..19)
            .unwrap_or("now")
            .replace(':', ""),
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(ReceiverStream::new(body)),
    )
        .into_response())
}

/// Hands export bytes to the response body; a client that went away stops the export.
pub(super) struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(data)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "download cancelled")
            })?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
