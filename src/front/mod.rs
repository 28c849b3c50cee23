//! The front of the server: the public listener, its connection guard, the two hot reads, and a
//! pass-through to the dropshot server for everything else.
//!
//! dropshot owns its accept loop and reads a new connection's first bytes (to tell HTTP/1 from
//! HTTP/2) with no timeout, so a client that connects and sends nothing would hold a socket, and
//! with enough of them every descriptor, for ever; and its per-request work (a spawned task, a
//! request-scoped logger, routing) costs more than the reads it serves. So the public address is
//! served here, with hyper: a connection that sends nothing within [`Guard::first_byte`], or
//! moves no byte either way for [`Guard::idle`], is closed. At [`Guard::max_connections`], a new
//! connection takes the place of the oldest one that has not been answered yet (no byte from the
//! server: silent, or trickling its headers, or a long poll still waiting); when every open
//! connection has been, the new one is closed at once. So a flood of silent or slow connections
//! never locks out a client that speaks at once, and never holds more than the cap. A request
//! head (on HTTP/2, the preface and first request) must arrive in full within [`Guard::head`] of
//! its first byte, and a TLS handshake within the same; bodies that stop arriving mid-request
//! get the API's 408. A TLS handshake is not an answer: a connection that only shook hands can
//! still be evicted.
//!
//! At shutdown ([`Front::shutdown`]) the listener closes, idle connections close, requests in
//! progress finish and are answered (HTTP/1 then closes, HTTP/2 says GOAWAY), within a bound.
//!
//! Reads of one provider and of the list are answered here from kept response bytes
//! ([`reads`]); every other request, and every read that is not plain (query, odd name, no
//! token, not found, failing store), is passed to dropshot on loopback ([`forward`]), which
//! implements every operation. TLS, when configured, ends here.

mod forward;
mod operations;
mod reads;
mod response_cache;
mod watch;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};

use crate::domain::tokens::Caller;
use crate::front::response_cache::Presented;
use crate::http::error::ApiError;
use crate::http::token_file::TokenFile;
use crate::store::Store;
use crate::telemetry::metrics;
use forward::Upstream;
use watch::{Activity, Tracked, Watched};

/// The guard's limits.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    pub max_connections: usize,
    /// The most a new connection may wait before sending its first byte.
    pub first_byte: Duration,
    /// The most a connection may move no byte either way (above the longest long poll, 60 s).
    pub idle: Duration,
    /// The most a request head (an HTTP/2 preface and first request, a TLS handshake) may take
    /// from its first byte.
    pub head: Duration,
}

/// A response body: bytes in memory, the list, or dropshot's answer streamed through.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// What the front needs to serve.
pub struct Front {
    pub guard: Guard,
    /// The store the hot reads come from (the one dropshot's handlers use).
    pub store: Arc<dyn Store>,
    /// The same tokens dropshot checks; a read they do not admit is dropshot's to answer.
    pub tokens: TokenFile,
    /// HTTPS, ended here.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The API's body limit: a client that waits for `100 Continue` to send more hears 413.
    pub max_body_bytes: usize,
    presented: Presented,
    /// Tells every connection to finish what it is doing and close.
    stopping: Mutex<GracefulShutdown>,
    /// Tells the accept loop to stop.
    stop_accepting: tokio::sync::watch::Sender<bool>,
    upstream: Upstream,
    http: auto::Builder<TokioExecutor>,
}

impl Front {
    /// A front for the dropshot server listening on `upstream`.
    pub fn new(
        guard: Guard,
        store: Arc<dyn Store>,
        tokens: TokenFile,
        tls: Option<tokio_rustls::TlsAcceptor>,
        max_body_bytes: usize,
        upstream: SocketAddr,
    ) -> Self {
        let mut http = auto::Builder::new(TokioExecutor::new());
        // No HTTP/1 timer: hyper would arm one per request for its header timeout; the
        // watchdog bounds the wait for a request instead (`watch::Activity::expired`).
        http.http2().timer(TokioTimer::new());
        Front {
            guard,
            store,
            tokens,
            tls,
            max_body_bytes,
            presented: Presented::default(),
            stopping: Mutex::default(),
            stop_accepting: tokio::sync::watch::Sender::new(false),
            upstream: Upstream::new(upstream),
            http,
        }
    }

    /// Stops accepting, lets every connection finish the requests it has begun (each answered),
    /// and returns when all have closed or `grace` has passed; returns how many were still open.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.stop_accepting.send_replace(true);
        let stopping =
            std::mem::take(&mut *self.stopping.lock().unwrap_or_else(|e| e.into_inner()));
        let open = stopping.count();
        match tokio::time::timeout(grace, stopping.shutdown()).await {
            Ok(()) => 0,
            Err(_) => open,
        }
    }
}

/// The connections the server has not answered yet, oldest first, each with the way to close it.
type Unanswered = Arc<Mutex<VecDeque<(u64, oneshot::Sender<()>)>>>;

/// Serves every connection accepted on `listener`, within the guard's limits.
pub async fn run(listener: TcpListener, front: Arc<Front>) {
    let guard = front.guard;
    let slots = Arc::new(Semaphore::new(guard.max_connections));
    let unanswered: Unanswered = Arc::default();
    let mut refused: u64 = 0;
    let mut next_id: u64 = 0;
    let mut stop = front.stop_accepting.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let (client, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: wait for some to be freed.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                // Make room: close the oldest connection not answered yet.
                let evicted = unanswered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop_front();
                match evicted {
                    Some((_, close)) => {
                        metrics::at_cap("evicted");
                        let _ = close.send(());
                        tokio::time::timeout(
                            Duration::from_secs(1),
                            Arc::clone(&slots).acquire_owned(),
                        )
                        .await
                        .ok()
                        .and_then(Result::ok)
                    }
                    None => None,
                }
            }
        };
        let Some(slot) = slot else {
            metrics::at_cap("refused");
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    max_connections = guard.max_connections,
                    "connection cap reached: new connections are closed"
                );
            }
            drop(client);
            continue;
        };
        next_id += 1;
        let (id, (close, closed)) = (next_id, oneshot::channel());
        unanswered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back((id, close));
        let unanswered = Arc::clone(&unanswered);
        let front = Arc::clone(&front);
        let watcher = front
            .stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .watcher();
        tokio::spawn(async move {
            let forget = move || {
                unanswered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|(other, _)| *other != id);
            };
            let activity = Activity::new(Box::new(forget.clone()));
            metrics::connections(1.0);
            serve(&front, client, remote, closed, activity, watcher).await;
            metrics::connections(-1.0);
            forget();
            drop(slot);
        });
    }
}

/// One connection, until it closes, goes silent or idle too long, is evicted (`closed`), or
/// finishes its requests at shutdown (`watcher`).
async fn serve(
    front: &Arc<Front>,
    client: TcpStream,
    remote: SocketAddr,
    closed: oneshot::Receiver<()>,
    activity: Arc<Activity>,
    watcher: Watcher,
) {
    let _ = client.set_nodelay(true);
    let connection = async {
        let service = hyper::service::service_fn(|request| {
            let front = Arc::clone(front);
            let answering = activity.request();
            async move {
                let response = handle(&front, request, remote).await;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    body,
                    _answering: answering,
                }))
            }
        });
        match &front.tls {
            Some(tls) => {
                let handshake = tls.accept(Watched::transport(client, Arc::clone(&activity)));
                let mut stop = front.stop_accepting.subscribe();
                let tls = tokio::select! {
                    tls = tokio::time::timeout(front.guard.head, handshake) => tls,
                    _ = stop.wait_for(|stop| *stop) => return,
                };
                if let Ok(Ok(tls)) = tls {
                    let io = TokioIo::new(Watched::http(tls, Arc::clone(&activity)));
                    let connection = front.http.serve_connection(io, service).into_owned();
                    let _ = watcher.watch(connection).await;
                }
            }
            None => {
                let io = TokioIo::new(Watched::http(client, Arc::clone(&activity)));
                let connection = front.http.serve_connection(io, service).into_owned();
                let _ = watcher.watch(connection).await;
            }
        }
    };
    // Only a sent signal evicts: the sender is dropped, unsent, once the connection is answered.
    let evicted = async {
        if closed.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = connection => {}
        _ = evicted => {}
        _ = activity.expired(front.guard) => {}
    }
}

/// One request: a hot read answered here, anything else by dropshot; counted and timed by
/// operation and status.
async fn handle(
    front: &Front,
    request: http::Request<Incoming>,
    remote: SocketAddr,
) -> http::Response<Body> {
    let started = tokio::time::Instant::now();
    let operation = operations::of(request.method(), request.uri().path());
    let response = answer(front, request, remote).await;
    metrics::request(
        operation,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn answer(
    front: &Front,
    request: http::Request<Incoming>,
    remote: SocketAddr,
) -> http::Response<Body> {
    // A client waiting for `100 Continue` before sending more than the limit hears 413 before
    // it sends a byte of it (hyper says `100 Continue` only when the body is read).
    if let Some(refused) =
        crate::http::json_body::refused_unread(request.headers(), front.max_body_bytes)
    {
        return error_response(ApiError::from(refused));
    }
    // Who is calling, as dropshot will find too: a read this caller may make is answered here,
    // and dropshot's log line names the token of what it answers.
    let caller = crate::http::auth::caller(&front.tokens, request.headers()).ok();
    if let Some(caller) = &caller
        && let Some(read) = reads::route(&request)
        && let Some(response) = reads::answer(front, read, caller, &request, remote).await
    {
        return response;
    }
    let token = caller.as_ref().and_then(Caller::name);
    front.upstream.forward(request, remote, token).await
}

/// An error as the contract's body, for the rare answer the front gives itself.
fn error_response(error: ApiError) -> http::Response<Body> {
    let mut response = http::Response::new(forward::full(Bytes::from(
        serde_json::to_vec(error.body()).unwrap_or_default(),
    )));
    *response.status_mut() = http::StatusCode::from_u16(error.status().as_u16())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A TLS acceptor for a PEM certificate chain (leaf first) and its PEM private key.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the TLS certificate {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the TLS key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("cannot use the TLS certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
