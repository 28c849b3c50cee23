//! A connection's socket, watched: when it last moved a byte, whether the client has sent any,
//! the moment the server first answers, and whether a request is in progress.
//!
//! The watchdog ([`Activity::expired`]) sleeps until the next deadline and re-reads these, so
//! a request costs a few atomic stores, not a timer of its own (hyper's per-request header timer
//! cost about 8 % of a read's throughput).

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
    /// Requests whose answer has not been sent in full yet.
    busy: AtomicU64,
    /// Nanoseconds from `opened` to when the last answer was sent in full (or to the open).
    settled: AtomicU64,
    /// Wakes the watchdog at the client's first byte, when its deadline changes rule.
    first_heard: tokio::sync::Notify,
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
            busy: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            first_heard: tokio::sync::Notify::new(),
            on_answer,
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// A request has arrived (its head is read); the guard it returns marks its answer sent.
    pub fn request(self: &Arc<Self>) -> Answering {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Answering(Arc::clone(self))
    }

    /// Resolves when the client has sent nothing for `first_byte` since the connection opened,
    /// nothing has moved either way for `idle`, or no new request has arrived (its headers
    /// read in full) within `idle` of the last answer.
    pub async fn expired(&self, first_byte: Duration, idle: Duration) {
        loop {
            let deadline = if self.heard.load(Ordering::Relaxed) {
                let moved = Duration::from_nanos(self.last.load(Ordering::Relaxed));
                let waiting = if self.busy.load(Ordering::Relaxed) == 0 {
                    Duration::from_nanos(self.settled.load(Ordering::Relaxed))
                } else {
                    moved
                };
                self.opened + moved.min(waiting) + idle
            } else {
                self.opened + first_byte
            };
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = self.first_heard.notified() => {}
            }
        }
    }
}

/// A request in progress; dropped when its answer has been sent in full (hyper drops the body
/// then), or the connection closes.
pub struct Answering(Arc<Activity>);

impl Drop for Answering {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.settled.store(activity.now(), Ordering::Relaxed);
        activity.busy.fetch_sub(1, Ordering::Relaxed);
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
            let activity = &self.activity;
            activity.touch();
            if !activity.heard.load(Ordering::Relaxed)
                && !activity.heard.swap(true, Ordering::Relaxed)
            {
                activity.first_heard.notify_one();
            }
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

/// A response body that marks its request answered once sent in full (when hyper drops it).
pub struct Tracked {
    pub body: super::Body,
    pub _answering: Answering,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
