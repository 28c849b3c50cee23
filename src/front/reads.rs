//! The two hot reads, answered by the front from each provider's kept response bytes
//! ([`Presented`]): `GET /api/providers/{name}` and `GET /api/providers`.
//!
//! Only the plain, admitted case is answered here: a query string, a percent-encoded or otherwise
//! unusual name, a missing or wrong token, a provider the token may not read, the list for a
//! token that sees only some providers, a provider that does not exist: each goes to dropshot,
//! which answers it as it answers every other request. A store that fails is answered here with
//! the error dropshot would give (so a request waits on a failing store once, not twice). What is
//! answered here is what dropshot would send (same body bytes, same headers, a request id, the
//! same log line), which `tests/front.rs` compares.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Response, header};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::Instant;

use super::{Body, Front, forward::full};
use crate::domain::tokens::{Caller, Scope};
use crate::domain::validate;
use crate::http::error::ApiError;

/// A read the front answers itself.
pub enum Read<'a> {
    One(&'a str),
    List,
}

/// The read `request` asks for, when it is one the front may answer.
pub fn route<B>(request: &Request<B>) -> Option<Read<'_>> {
    if request.method() != Method::GET || request.uri().query().is_some() {
        return None;
    }
    let rest = request.uri().path().strip_prefix("/api/providers")?;
    if rest.is_empty() {
        return Some(Read::List);
    }
    let name = rest.strip_prefix('/')?;
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    (plain && name.bytes().any(|b| b != b'.') && validate::provider_name(name, "provider").is_ok())
        .then_some(Read::One(name))
}

/// The answer to `read`, or `None` for dropshot to answer.
pub async fn answer<B>(
    front: &Front,
    read: Read<'_>,
    caller: &Caller,
    request: &Request<B>,
    remote: SocketAddr,
) -> Option<Response<Body>> {
    let started = Instant::now();
    // Only what the caller sees whole: a provider it may read, the list when it reads them all.
    let admitted = match read {
        Read::One(name) => caller.allows(Scope::Read, name),
        Read::List => caller.has(Scope::Read) && caller.sees_all(),
    };
    if !admitted {
        return None;
    }
    let response = match read {
        Read::One(name) => match front.store.get(name).await {
            Err(e) => failed(e),
            Ok(None) => {
                front.presented.forget(name);
                return None;
            }
            Ok(Some(stored)) => {
                let shown = front.presented.shown(&stored);
                let mut response = Response::new(full(shown.body));
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, JSON.clone());
                headers.insert(header::ETAG, shown.etag);
                (response, None)
            }
        },
        Read::List => match front.store.list().await {
            Err(e) => failed(e),
            Ok((listed, revision)) => {
                let total = listed.len();
                let bodies = front.presented.bodies(&listed);
                drop(listed);
                let mut response = Response::new(ListBody::new(bodies, total).boxed());
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, JSON.clone());
                headers.insert("x-bifrost-revision", HeaderValue::from(revision));
                (response, None)
            }
        },
    };
    Some(finish(response, request, remote, caller.name(), started))
}

/// A failed read: the contract's error, and what the log says of it.
fn failed(error: crate::domain::error::Error) -> (Response<Body>, Option<String>) {
    let error = ApiError::from(error);
    let internal = error.internal().to_string();
    (super::error_response(error), Some(internal))
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");
static REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// Adds the request id dropshot adds, and logs the request as dropshot's are logged (a served
/// read at `debug`, a server error at `error` with what went wrong).
fn finish<B>(
    (mut response, error): (Response<Body>, Option<String>),
    request: &Request<B>,
    remote: SocketAddr,
    token: Option<&str>,
    started: Instant,
) -> Response<Body> {
    let mut buf = uuid::Uuid::encode_buffer();
    let id: &str = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    let (status, latency) = (response.status(), started.elapsed().as_micros());
    macro_rules! log {
        ($level:expr) => {
            tracing::event!(
                target: "dropshot",
                $level,
                req_id = id,
                method = "GET",
                uri = request.uri().path(),
                remote_addr = remote.to_string().as_str(),
                token,
                status = status.as_str(),
                latency_us = latency.to_string().as_str(),
                error = error.as_deref(),
                "request completed"
            )
        };
    }
    // As dropshot's lines are (`logging`): a served read at `debug`, a failure at `error`.
    if status.is_server_error() {
        log!(tracing::Level::ERROR);
    } else {
        log!(tracing::Level::DEBUG);
    }
    response
}

/// The list's body, `{"providers":[…],"total":N}`, written from the kept bytes of each provider
/// in frames of about [`FRAME`] bytes: no copy of the whole list is ever built.
struct ListBody {
    parts: VecDeque<Bytes>,
    tail: Option<Bytes>,
    remaining: u64,
    first: bool,
}

/// The size the list's frames are gathered to.
const FRAME: usize = 64 << 10;

impl ListBody {
    fn new(bodies: Vec<Bytes>, total: usize) -> Self {
        let tail = Bytes::from(format!("],\"total\":{total}}}"));
        let head = b"{\"providers\":[".len();
        let commas = bodies.len().saturating_sub(1);
        let size = head + commas + tail.len() + bodies.iter().map(Bytes::len).sum::<usize>();
        ListBody {
            parts: bodies.into(),
            tail: Some(tail),
            remaining: size as u64,
            first: true,
        }
    }
}

impl http_body::Body for ListBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if this.tail.is_none() {
            return Poll::Ready(None);
        }
        let mut frame = BytesMut::with_capacity(FRAME);
        if this.first {
            frame.extend_from_slice(b"{\"providers\":[");
        }
        while let Some(part) = this.parts.front() {
            if frame.len() + part.len() + 1 > FRAME && frame.len() > 16 {
                break;
            }
            if !this.first {
                frame.extend_from_slice(b",");
            }
            this.first = false;
            frame.extend_from_slice(part);
            this.parts.pop_front();
        }
        if this.parts.is_empty()
            && let Some(tail) = this.tail.take()
        {
            frame.extend_from_slice(&tail);
        }
        this.first = false;
        this.remaining = this.remaining.saturating_sub(frame.len() as u64);
        Poll::Ready(Some(Ok(Frame::data(frame.freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.tail.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
