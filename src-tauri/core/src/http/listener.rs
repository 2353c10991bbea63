//! The accept loop of Hookscope's HTTP ports. axum::serve sets no timeouts at all; this one
//! keeps a port serving everyone: a request head must arrive in time, a client that stops
//! reading its answers loses its connection, connections are capped below the process's
//! file descriptors (one too many gets a real 503), and a stop lets requests in flight
//! finish for a moment, then drops the rest.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What keeps a port that faces the internet serving everyone: nobody holds a connection,
/// a header or a body open for long, and no flood of connections exhausts the process.
#[derive(Debug, Clone)]
pub struct ListenerLimits {
    /// A request's head must arrive within this; it is also how long an idle keep-alive
    /// connection stays open (slowloris).
    pub header_read: Duration,
    /// The longest pause inside a body.
    pub body_idle: Duration,
    /// A whole body must have arrived within this (a body trickled a byte at a time).
    pub body_total: Duration,
    /// Connections open at once per listener; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Headers per request; more get 431. systeme.io sends about fifteen.
    pub max_headers: usize,
    /// How long an answer may wait for a client that does not read it.
    pub write_stall: Duration,
    /// Bytes that bodies over 64 KiB may hold at once, process-wide (see
    /// [`crate::http::memory_budget`]); past it a delivery gets 503 with Retry-After.
    pub body_budget: usize,
    /// Large or compressed bodies inflated and parsed at once.
    pub decodes_at_once: usize,
}

impl ListenerLimits {
    /// For the UI port: room for a few windows and tools.
    pub fn ui_default() -> Self {
        ListenerLimits {
            max_connections: 256,
            ..ListenerLimits::default()
        }
    }
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_read: Duration::from_secs(30),
            body_idle: Duration::from_secs(30),
            // 10 MiB at 100 KB/s.
            body_total: Duration::from_secs(120),
            max_connections: 1024,
            max_headers: 256,
            write_stall: Duration::from_secs(30),
            // Twelve 10 MiB bodies at once; a webhook is a few KiB.
            body_budget: 128 * 1024 * 1024,
            decodes_at_once: 2,
        }
    }
}

/// Connection slots for one or more listeners: the configured number, but never so many
/// that the process runs out of file descriptors before a 503 is sent. 256 descriptors are
/// left for the store and the tunnel, and `taken` for other pools.
pub fn connection_slots(limits: &ListenerLimits, taken: usize) -> Arc<tokio::sync::Semaphore> {
    let descriptors = raise_descriptor_limit();
    let reserve = 256 + taken as u64;
    let affordable = (descriptors.saturating_sub(reserve) as usize).max(16);
    let cap = limits.max_connections.min(affordable);
    Arc::new(tokio::sync::Semaphore::new(cap))
}

/// Raises the soft limit on open files to the hard one (commonly 1,024 of 524,288 on
/// Linux); returns the limit in force.
fn raise_descriptor_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write the struct we own.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return 1024;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        limit.rlim_cur
    }
    #[cfg(not(unix))]
    {
        8192
    }
}

/// How long requests in flight get to finish once the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `listener` until `shutdown`, then lets requests in flight finish for a moment and
/// drops the rest. `limits.header_read`, `max_headers` and `write_stall` apply here; the
/// body limits are the handlers' to apply. `on_accept` is asked once per connection, when
/// it is accepted; its answer goes with every request of that connection (an extension).
pub async fn serve<T: Clone + Send + Sync + 'static>(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    slots: Arc<tokio::sync::Semaphore>,
    shutdown: CancellationToken,
    on_accept: impl Fn() -> T,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_headers(limits.max_headers);
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(turn_away(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let accepted_with = on_accept();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut router = router.clone();
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request.extensions_mut().insert(accepted_with.clone());
                async move { tower_service::Service::call(&mut router, request).await }
            });
        let blocked_since = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let epoch = tokio::time::Instant::now();
        let io = hyper_util::rt::TokioIo::new(StallGuard {
            stream,
            blocked_since: blocked_since.clone(),
            epoch,
        });
        let connection = graceful.watch(http.serve_connection(io, service));
        let write_stall = limits.write_stall;
        connections.spawn(async move {
            tokio::select! {
                // Errors here are the peer's (reset, timeout, malformed head): nothing to report.
                _ = connection => {}
                // Dropping the connection closes it.
                _ = write_stalled(blocked_since, epoch, write_stall) => {
                    tracing::debug!(%peer, "closed a connection whose client stopped reading");
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after {SHUTDOWN_GRACE:?}; closing them"
        );
    }
    connections.shutdown().await;
}

/// Over the connection limit: a short 503 instead of a hang, so the sender retries later.
/// The request is read (briefly) after the answer so that closing does not reset it.
async fn turn_away(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let answer = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 5\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

/// A connection that notes since when its writes have been blocked. hyper has no write
/// timeout: a client that sends requests but never reads the answers would otherwise hold
/// its connection slot for ever. [`write_stalled`] watches the note.
struct StallGuard {
    stream: tokio::net::TcpStream,
    /// Microseconds since `epoch` at which writing got stuck; 0 while writes go through.
    blocked_since: Arc<std::sync::atomic::AtomicU64>,
    epoch: tokio::time::Instant,
}

impl StallGuard {
    fn note<T>(&self, result: std::task::Poll<T>) -> std::task::Poll<T> {
        use std::sync::atomic::Ordering;
        if result.is_pending() {
            let now = self.epoch.elapsed().as_micros() as u64 + 1;
            let _ =
                self.blocked_since
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        } else {
            self.blocked_since.store(0, Ordering::Relaxed);
        }
        result
    }
}

/// Returns once writes on the connection have been blocked for `limit`.
async fn write_stalled(
    blocked_since: Arc<std::sync::atomic::AtomicU64>,
    epoch: tokio::time::Instant,
    limit: Duration,
) {
    let check = (limit / 4).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(check).await;
        let since = blocked_since.load(std::sync::atomic::Ordering::Relaxed);
        if since != 0 && epoch.elapsed().as_micros() as u64 + 1 - since >= limit.as_micros() as u64
        {
            return;
        }
    }
}

impl tokio::io::AsyncRead for StallGuard {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for StallGuard {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let result = std::pin::Pin::new(&mut self.stream).poll_write(cx, buf);
        self.note(result)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let result = std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.note(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let result = std::pin::Pin::new(&mut self.stream).poll_shutdown(cx);
        self.note(result)
    }
}
