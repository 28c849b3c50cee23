//! The connection guard in front of the HTTP server: a cap on open connections, and a bound on
//! how long a connection may stay silent.
//!
//! dropshot owns its accept loop and reads a new connection's first bytes (to tell HTTP/1 from
//! HTTP/2) with no timeout, so a client that connects and sends nothing would hold a socket, and
//! with enough of them every descriptor, for ever. This guard listens on the public address
//! instead and relays each connection to the server on a loopback address: a connection that
//! sends nothing within [`Guard::first_byte`], or moves no byte either way for
//! [`Guard::idle`], is closed. At [`Guard::max_connections`], a new connection takes the place
//! of the oldest one that has not been answered yet (no byte from the server: silent, or
//! trickling its headers, or a long poll still waiting); when every open connection has been, the
//! new one is closed at once. So a flood of silent or slow connections never locks out a client
//! that speaks at once, and never holds more than the cap. Bodies that stop arriving mid-request
//! are the server's to drop (408), headers that trickle hyper's (30 s).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;

/// The guard's limits.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    pub max_connections: usize,
    /// The most a new connection may wait before sending its first byte.
    pub first_byte: Duration,
    /// The most a connection may move no byte either way (above the longest long poll, 60 s).
    pub idle: Duration,
}

/// The connections the server has not answered yet, oldest first, each with the way to close it.
type Unanswered = Arc<Mutex<VecDeque<(u64, oneshot::Sender<()>)>>>;

/// Relays every connection accepted on `listener` to `upstream`, within the guard's limits.
pub async fn run(listener: TcpListener, upstream: SocketAddr, guard: Guard) {
    let slots = Arc::new(Semaphore::new(guard.max_connections));
    let unanswered: Unanswered = Arc::default();
    let mut refused: u64 = 0;
    let mut next_id: u64 = 0;
    loop {
        let (client, _) = match listener.accept().await {
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
        tokio::spawn(async move {
            let forget = || {
                unanswered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|(other, _)| *other != id);
            };
            relay(client, upstream, guard, closed, &forget).await;
            forget();
            drop(slot);
        });
    }
}

/// One connection: its first bytes within `first_byte`, then both directions until either side
/// closes or nothing moves for `idle`.
/// `closed` fires when the connection is evicted before the server answered it; `answered` runs
/// at the server's first byte.
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    guard: Guard,
    mut closed: oneshot::Receiver<()>,
    answered: &(dyn Fn() + Sync),
) {
    let _ = client.set_nodelay(true);
    let mut first = vec![0u8; 16 << 10];
    let read = tokio::select! {
        read = tokio::time::timeout(guard.first_byte, client.read(&mut first)) => read,
        _ = &mut closed => return,
    };
    let n = match read {
        Ok(Ok(n)) if n > 0 => n,
        _ => return,
    };
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    if server.write_all(&first[..n]).await.is_err() {
        return;
    }
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut to_server = first;
    let mut to_client = vec![0u8; 64 << 10];
    let (mut client_open, mut server_open) = (true, true);
    let mut waiting = true;
    let mut deadline = Instant::now() + guard.idle;
    while client_open || server_open {
        tokio::select! {
            _ = &mut closed, if waiting => return,
            read = client_read.read(&mut to_server), if client_open => match read {
                Ok(0) | Err(_) => {
                    client_open = false;
                    let _ = server_write.shutdown().await;
                }
                Ok(n) => {
                    if server_write.write_all(&to_server[..n]).await.is_err() {
                        return;
                    }
                    deadline = Instant::now() + guard.idle;
                }
            },
            read = server_read.read(&mut to_client), if server_open => match read {
                Ok(0) | Err(_) => {
                    server_open = false;
                    let _ = client_write.shutdown().await;
                }
                Ok(n) => {
                    if waiting {
                        waiting = false;
                        answered();
                    }
                    if client_write.write_all(&to_client[..n]).await.is_err() {
                        return;
                    }
                    deadline = Instant::now() + guard.idle;
                }
            },
            _ = tokio::time::sleep_until(deadline) => return,
        }
    }
}
