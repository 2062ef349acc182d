//! Handshake limits for listeners that are not served by [`crate::http_server`]
//! (board-service's gRPC port, through tonic): a connection must send its
//! first `needed` bytes (the HTTP/2 preface) within a deadline, and at most
//! `max_pending` connections may be that early, so silent or half-sent
//! connections cannot pile up.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};

/// The 24 bytes every HTTP/2 client sends first.
pub const HTTP2_PREFACE_LEN: usize = 24;

/// Hands out [`Guarded`] connections while fewer than `max_pending` are
/// still in their handshake.
#[derive(Clone)]
pub struct HandshakeLimit {
    pending: Arc<Semaphore>,
    deadline: Duration,
    needed: usize,
}

impl HandshakeLimit {
    pub fn new(deadline: Duration, max_pending: usize, needed: usize) -> Self {
        Self {
            pending: Arc::new(Semaphore::new(max_pending.max(1))),
            deadline,
            needed,
        }
    }

    /// `io` under the deadline; `None` (drop it) when too many are pending.
    pub fn guard<T>(&self, io: T) -> Option<Guarded<T>> {
        let permit = self.pending.clone().try_acquire_owned().ok()?;
        Some(Guarded {
            inner: io,
            deadline: Some(Box::pin(tokio::time::sleep(self.deadline))),
            needed: self.needed,
            _permit: Some(permit),
        })
    }
}

/// A connection that fails its reads with `TimedOut` if its first bytes do
/// not arrive in time.
pub struct Guarded<T> {
    inner: T,
    deadline: Option<Pin<Box<Sleep>>>,
    needed: usize,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<T> Guarded<T> {
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no handshake within the deadline",
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let read = buf.filled().len() - before;
            self.needed = self.needed.saturating_sub(read);
            if self.needed == 0 {
                self.deadline = None;
                self._permit = None;
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Guarded<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
