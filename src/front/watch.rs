//! A connection's socket, watched: when it last moved a byte, whether the client has sent any,
//! when the request head now arriving began, the moment the server first answers, and whether a
//! request is in progress.
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

/// No request head is arriving.
const NO_HEAD: u64 = u64::MAX;

/// What a connection has done, shared between its socket and its watchdog.
pub struct Activity {
    opened: Instant,
    /// Nanoseconds from `opened` to the first byte of the request head now arriving: of each
    /// head on HTTP/1, of the preface and first request on HTTP/2 ([`NO_HEAD`] when none is).
    head: AtomicU64,
    /// Whether the connection speaks HTTP/2 (its first bytes were the preface).
    h2: AtomicBool,
    /// Whether the connection's HTTP bytes have been seen (`h2` is known).
    spoken: AtomicBool,
    /// Whether a request has arrived.
    requested: AtomicBool,
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
            head: AtomicU64::new(NO_HEAD),
            h2: AtomicBool::new(false),
            spoken: AtomicBool::new(false),
            requested: AtomicBool::new(false),
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
        self.head.store(NO_HEAD, Ordering::Relaxed);
        if !self.requested.load(Ordering::Relaxed) {
            self.requested.store(true, Ordering::Relaxed);
        }
        Answering(Arc::clone(self))
    }

    /// HTTP bytes `read` from the client (after TLS, when there is TLS): the first of a request
    /// head starts its clock. On HTTP/2 only the preface and first request are timed: later
    /// frames between requests (pings, window updates) are no head.
    fn heard_http(&self, read: &[u8]) {
        if !self.spoken.load(Ordering::Relaxed) {
            self.spoken.store(true, Ordering::Relaxed);
            self.h2.store(read.starts_with(b"PRI "), Ordering::Relaxed);
        }
        let timed = !(self.h2.load(Ordering::Relaxed) && self.requested.load(Ordering::Relaxed));
        if timed
            && self.busy.load(Ordering::Relaxed) == 0
            && self.head.load(Ordering::Relaxed) == NO_HEAD
        {
            self.head.store(self.now(), Ordering::Relaxed);
        }
    }

    /// Resolves when the client has sent nothing for `limits.first_byte` since the connection
    /// opened, nothing has moved either way for `limits.idle`, no new request has arrived (its
    /// headers read in full) within `limits.idle` of the last answer, or a request head (an
    /// HTTP/2 preface and first request) has not arrived in full within `limits.head` of its
    /// first byte.
    ///
    /// A head's start is not signalled: while none is arriving the watchdog looks again every
    /// `limits.head`, so a head that starts in between is caught exactly at its deadline.
    pub async fn expired(&self, limits: super::Guard) {
        loop {
            let now = Instant::now();
            let deadline = if self.heard.load(Ordering::Relaxed) {
                let moved = Duration::from_nanos(self.last.load(Ordering::Relaxed));
                let waiting = if self.busy.load(Ordering::Relaxed) == 0 {
                    Duration::from_nanos(self.settled.load(Ordering::Relaxed))
                } else {
                    moved
                };
                let idle = self.opened + moved.min(waiting) + limits.idle;
                let head = match self.head.load(Ordering::Relaxed) {
                    NO_HEAD => now + limits.head,
                    started => self.opened + Duration::from_nanos(started) + limits.head,
                };
                idle.min(head)
            } else {
                self.opened + limits.first_byte
            };
            if now >= deadline {
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
    /// Whether the bytes are HTTP (the socket itself without TLS, the TLS stream with it) or
    /// the transport under TLS, whose handshake bytes are neither a request head nor an answer.
    http: bool,
}

impl<S> Watched<S> {
    /// A socket carrying HTTP in clear.
    pub fn http(inner: S, activity: Arc<Activity>) -> Self {
        Watched {
            inner,
            activity,
            http: true,
        }
    }

    /// The TCP socket under TLS: its bytes keep the connection alive, and that is all.
    pub fn transport(inner: S, activity: Arc<Activity>) -> Self {
        Watched {
            inner,
            activity,
            http: false,
        }
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
            if self.http {
                activity.heard_http(&buf.filled()[before..]);
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
        if !self.http {
            return;
        }
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
