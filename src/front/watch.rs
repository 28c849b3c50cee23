//! A connection's socket, watched: when it last moved a byte, whether the client has sent any,
//! and the moment the server first answers.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// What a connection has done, shared between its socket and its watchdog.
pub struct Activity {
    opened: Instant,
    /// Nanoseconds from `opened` to the last byte moved either way.
    last: AtomicU64,
    heard: AtomicBool,
    answered: AtomicBool,
    /// Runs once, at the server's first byte.
    on_answer: Box<dyn Fn() + Send + Sync>,
}

impl Activity {
    pub fn new(on_answer: Box<dyn Fn() + Send + Sync>) -> Arc<Self> {
        Arc::new(Activity {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            heard: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            on_answer,
        })
    }

    fn touch(&self) {
        let since = self.opened.elapsed().as_nanos();
        self.last
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Resolves when the client has sent nothing for `first_byte` since the connection opened,
    /// or nothing has moved either way for `idle`.
    pub async fn expired(&self, first_byte: Duration, idle: Duration) {
        loop {
            let deadline = if self.heard.load(Ordering::Relaxed) {
                self.opened + Duration::from_nanos(self.last.load(Ordering::Relaxed)) + idle
            } else {
                self.opened + first_byte
            };
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A socket whose reads and writes are recorded in an [`Activity`].
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
            self.activity.heard.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.answer();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.answer();
        }
        polled
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

impl<S> Watched<S> {
    fn answer(&self) {
        self.activity.touch();
        let answered = &self.activity.answered;
        if !answered.load(Ordering::Relaxed) && !answered.swap(true, Ordering::Relaxed) {
            (self.activity.on_answer)();
        }
    }
}
