//! The live stream (SSE): stored deliveries, tunnel changes, forward results, the relay
//! followed, store trouble, indexing progress, erasures, alerts, probes of the public URL. What it says is one type,
//! [`StreamEvent`].

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt, stream};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};

use crate::http::state::AppState;

use super::tunnel::tunnel_view;
use super::views::StreamEvent;
use crate::store::indexer::IndexProgress;

/// An event as SSE. The one fallback: an event that cannot be encoded becomes `resync`,
/// so the window reloads what it would have told.
fn sse(event: StreamEvent) -> Result<SseEvent, Infallible> {
    let encoded = match event.data() {
        Ok(data) => SseEvent::default().event(event.kind()).data(data),
        Err(error) => {
            tracing::warn!(%error, kind = event.kind(), "a stream event could not be encoded");
            let resync = StreamEvent::Resync { missed: None };
            SseEvent::default().event(resync.kind()).data("{}")
        }
    };
    Ok(encoded)
}

/// How long the window waits between two `indexing` events while the indexer is behind.
const INDEXING_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// `indexing` events (`{through, behind}`) while deliveries wait to be indexed, a few a
/// second, and one when none wait any more (then it stays quiet: each live delivery is
/// indexed in a moment and shows as `captured`).
fn indexing_events(
    progress: tokio::sync::watch::Receiver<IndexProgress>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold((progress, 0i64), |(mut progress, told)| async move {
        loop {
            let now = *progress.borrow_and_update();
            if now.behind != told && (now.behind > 0 || told > 0) {
                if now.behind > 0 {
                    tokio::time::sleep(INDEXING_EVERY).await;
                }
                return Some((sse(StreamEvent::Indexing(now)), (progress, now.behind)));
            }
            progress.changed().await.ok()?;
        }
    })
}

/// One `captured` event per indexed delivery (its summary, no body). A client too slow
/// to keep up is never waited for: it gets `resync` and should reload its lists.
pub(super) async fn live_stream(
    State(state): State<Arc<AppState>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let updates = BroadcastStream::new(state.store.published.subscribe()).map(|item| {
        sse(match item {
            Ok(meta) => StreamEvent::Captured(meta),
            Err(BroadcastStreamRecvError::Lagged(missed)) => StreamEvent::Resync {
                missed: Some(missed),
            },
        })
    });
    // Each change of the tunnel (state, URL) as a `tunnel` event with the full view.
    let tunnel_state = state.clone();
    let tunnel = WatchStream::from_changes(state.public.tunnels.subscribe()).then(move |_| {
        let state = tunnel_state.clone();
        async move {
            sse(match state.store.default_endpoint() {
                Ok(default) => StreamEvent::Tunnel(tunnel_view(&state, &default)),
                Err(_) => StreamEvent::Resync { missed: None },
            })
        }
    });
    let forwarded =
        BroadcastStream::new(state.forwarding.results.subscribe()).filter_map(|item| async move {
            // A missed forward result shows at the next reload; nothing to resync for.
            Some(sse(StreamEvent::Forwarded(item.ok()?)))
        });
    // The store's trouble (deliveries refused: a full disk) as `store` events: the current
    // state first, then each change, so a window that connects during trouble is told.
    let store = WatchStream::new(state.store.writer.watch_trouble())
        .map(|trouble| sse(StreamEvent::Store(trouble)));
    let indexing = indexing_events(state.store.writer.watch_indexed());
    // Deliveries were forgotten or pruned (here or by `hookscope forget`): what the window
    // shows may hold some, so it reloads.
    let erased = WatchStream::from_changes(state.store.writer.watch_erasures())
        .map(|generation| sse(StreamEvent::Erased { generation }));
    // Following a relay: each change of where it stands, as a `follow` event.
    let follow = WatchStream::from_changes(state.follow.watch_view())
        .map(|view| sse(StreamEvent::Follow(view)));
    let alerts =
        BroadcastStream::new(state.alerts.raised.subscribe()).filter_map(|item| async move {
            // A missed alert shows in the health view's list; nothing to resync for.
            Some(sse(StreamEvent::Alert(item.ok()?)))
        });
    let probe = WatchStream::new(state.probe.watch()).map(|view| sse(StreamEvent::Probe(view)));
    let ready = stream::once(async { sse(StreamEvent::Ready) });
    let stream = ready
        .chain(stream::select(
            stream::select(
                stream::select(updates, tunnel),
                stream::select(alerts, probe),
            ),
            stream::select(
                stream::select(forwarded, store),
                stream::select(stream::select(indexing, erased), follow),
            ),
        ))
        .take_until(state.shutdown.clone().cancelled_owned());
    // While this stream is open the indexer derives eagerly: someone watches.
    let watching = state.store.writer.crowd().watching();
    let stream = stream.inspect(move |_| {
        let _watching = &watching;
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
