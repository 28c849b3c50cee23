//! Requests the front does not answer itself go to the dropshot server on loopback, over a pool
//! of keep-alive HTTP/1.1 connections, bodies streamed both ways.
//!
//! A request body the client frames wrongly (a bad chunk size, a connection closed mid-body)
//! ends the request to dropshot half-sent; the client hears what dropshot would have said of
//! such a body (400 `invalid_body`, with hyper's reason), not that the server failed.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, Version, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::Body;
use crate::domain::error::Error;
use crate::http::error::ApiError;
use crate::http::startup::{CLIENT_ADDR_HEADER, TOKEN_NAME_HEADER};

/// The dropshot server behind the front.
pub struct Upstream {
    client: Client<HttpConnector, ClientBody>,
    base: String,
}

impl Upstream {
    pub fn new(addr: SocketAddr) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build(connector);
        Upstream {
            client,
            base: format!("http://{addr}"),
        }
    }

    /// The dropshot server's answer to `request`.
    /// `token` is the name of the token the request carries, for dropshot's log line.
    pub async fn forward(
        &self,
        request: Request<Incoming>,
        remote: SocketAddr,
        token: Option<&str>,
    ) -> Response<Body> {
        let (mut parts, body) = request.into_parts();
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = match format!("{}{target}", self.base).parse() {
            Ok(uri) => uri,
            Err(_) => return unavailable(),
        };
        // HTTP/2 carries the host in the URI; HTTP/1.1 needs the header.
        if !parts.headers.contains_key(header::HOST)
            && let Some(authority) = parts.uri.authority()
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            parts.headers.insert(header::HOST, host);
        }
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::EXPECT);
        // After the hop-by-hop headers are gone: a client naming this one in `Connection`
        // cannot erase its address.
        if let Ok(client) = HeaderValue::from_str(&remote.to_string()) {
            parts.headers.insert(CLIENT_ADDR_HEADER, client);
        }
        match token.map(HeaderValue::from_str) {
            Some(Ok(name)) => {
                parts.headers.insert(TOKEN_NAME_HEADER, name);
            }
            _ => {
                parts.headers.remove(TOKEN_NAME_HEADER);
            }
        }
        let failed = Arc::new(OnceLock::new());
        let body = ClientBody {
            inner: body,
            failed: Arc::clone(&failed),
        };
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                parts.version = Version::HTTP_11;
                Response::from_parts(parts, body.boxed())
            }
            Err(_) if failed.get().is_some() => {
                let reason = failed.get().map_or("", String::as_str);
                super::error_response(ApiError::from(Error::invalid_request(
                    "invalid_body",
                    format!("Error reading the request body: {reason}"),
                )))
            }
            Err(e) => {
                tracing::error!(error = %e, "the API server behind the front did not answer");
                unavailable()
            }
        }
    }
}

/// The client's request body on its way to dropshot, remembering why it failed if it did.
pub struct ClientBody {
    inner: Incoming,
    failed: Arc<OnceLock<String>>,
}

impl http_body::Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(e))) = &polled {
            let _ = self.failed.set(reason(e));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// An error and its causes, as one line.
fn reason(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Headers that describe one hop, not the message: each side of the front sets its own.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::TRAILER,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// The contract's error body for a request the front could not pass on.
fn unavailable() -> Response<Body> {
    super::error_response(ApiError::from(Error::Store(
        "the API server behind the front did not answer".into(),
    )))
}

/// A body of bytes already in memory.
pub fn full(bytes: Bytes) -> Body {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed()
}
