//! The HTTP server every Boardwire listener runs on: axum's router over
//! hyper, with the limits `axum::serve` lacks. A connection must finish its
//! first request's headers within `header_timeout`, and at most
//! `max_pending` connections may be waiting to do so, so half-sent requests
//! (slowloris) cannot pile up; with TLS ([`crate::tls`]) the handshake
//! counts against the same limits. WebSocket upgrades leave hyper's hands
//! once made, so graceful shutdown never waits on them.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{
        conn::auto,
        graceful::{GracefulShutdown, Watcher},
    },
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Limits on connections that have not yet sent a full request.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Time to send the headers of a request, the first one included.
    pub header_timeout: Duration,
    /// Connections at most that have not finished their first request's headers.
    pub max_pending: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_pending: 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish. Handlers see the peer as `ConnectInfo<SocketAddr>`.
/// With `tls`, every connection is TLS; an upgraded one reaches the handler
/// as `TokioIo<tokio_rustls::server::TlsStream<TcpStream>>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let pending = Arc::new(Semaphore::new(limits.max_pending.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many connections still sending headers; dropped");
            continue;
        };
        // Frames are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            watcher: graceful.watcher(),
            peer,
            permit,
            header_timeout: limits.header_timeout,
        };
        match &tls {
            None => {
                tokio::spawn(connection.serve(tcp));
            }
            Some(tls) => {
                let tls = tls.clone();
                tokio::spawn(async move {
                    // The handshake is part of the time to send headers.
                    let started = tokio::time::Instant::now();
                    let handshake =
                        tokio::time::timeout(connection.header_timeout, tls.accept(tcp));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let left = connection.header_timeout.saturating_sub(started.elapsed());
                            connection.with_header_timeout(left).serve(stream).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "no TLS handshake in time; closed"),
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("HTTP connections still open 10 s after shutdown");
        }
    }
    Ok(())
}

/// One accepted connection, before its first request.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    watcher: Watcher,
    peer: SocketAddr,
    /// Held until the first request's headers are in.
    permit: OwnedSemaphorePermit,
    header_timeout: Duration,
}

impl Connection {
    fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Serves HTTP on `io` (plain TCP, or TLS once shaken hands).
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            builder,
            router,
            watcher,
            peer,
            permit,
            header_timeout,
        } = self;
        let started = Arc::new(AtomicBool::new(false));
        let permit = Arc::new(std::sync::Mutex::new(Some(permit)));
        let service = {
            let started = started.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                started.store(true, Ordering::Relaxed);
                if let Ok(mut held) = permit.lock() {
                    held.take();
                }
                request.extensions_mut().insert(ConnectInfo(peer));
                let router = router.clone();
                async move {
                    Ok::<_, Infallible>(
                        router
                            .oneshot(request.map(axum::body::Body::new))
                            .await
                            .unwrap_or_else(|e| match e {}),
                    )
                }
            })
        };
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let conn = watcher.watch(conn);
        tokio::pin!(conn);
        let first = tokio::select! {
            result = conn.as_mut() => Some(result),
            () = tokio::time::sleep(header_timeout) => None,
        };
        let result = match first {
            Some(result) => result,
            // Dropping the connection closes it.
            None if !started.load(Ordering::Relaxed) => {
                tracing::debug!(%peer, "no request headers in time; closed");
                return;
            }
            None => conn.await,
        };
        if let Err(err) = result {
            tracing::trace!(%peer, %err, "connection ended with an error");
        }
    }
}

/// The peer address `serve` hands to handlers, for code outside axum extractors.
pub fn peer(request: &axum::extract::Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Whether a browser from `origin` may connect, given the `allowed` list
/// (`*` or an origin, a trailing `/` ignored; blank entries, as an empty
/// environment variable gives, are no entries; an empty list allows any).
/// Non-browser clients send no Origin: the token is their check.
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    let mut listed = allowed.iter().map(|o| o.trim()).filter(|o| !o.is_empty());
    match origin {
        None => true,
        Some(origin) => {
            let mut any_listed = false;
            let hit = listed.any(|o| {
                any_listed = true;
                o == "*" || o.trim_end_matches('/') == origin
            });
            hit || !any_listed
        }
    }
}

/// Whether `origin` is the origin of the request's own `host`: a page the
/// service served itself, which no Origin allowlist needs to name.
pub fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    match (origin.and_then(|o| o.split_once("://")), host) {
        (Some((_, authority)), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

#[cfg(test)]
mod origin_tests {
    use super::*;

    #[test]
    fn blank_entries_are_no_entries_and_listed_origins_pass() {
        let page = Some("http://127.0.0.1:4002");
        assert!(
            origin_allowed(&[String::new()], page),
            "WS_ALLOWED_ORIGINS=\"\" allows any"
        );
        assert!(origin_allowed(&[], page));
        let listed = ["https://app.example.com/".to_owned(), " ".to_owned()];
        assert!(origin_allowed(&listed, Some("https://app.example.com")));
        assert!(!origin_allowed(&listed, page));
        assert!(origin_allowed(&listed, None), "no Origin: not a browser");
    }

    #[test]
    fn same_origin_compares_the_authority_with_the_host() {
        assert!(same_origin(
            Some("http://localhost:4002"),
            Some("localhost:4002")
        ));
        assert!(!same_origin(
            Some("http://evil.example"),
            Some("localhost:4002")
        ));
        assert!(!same_origin(None, Some("localhost:4002")));
        assert!(!same_origin(Some("null"), Some("localhost:4002")));
    }
}
