//! What both benchmarks share: the release server started as an operator runs it, one request
//! on a new connection, and latency percentiles.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The server under test: the release binary, logging as an operator would run it (JSON, info).
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// The release binary serving on a free loopback port with `args` after `serve`, logging
    /// JSON at `info` (or `BIFROST_BENCH_RUST_LOG`) to `log`, sealing secrets with `key` if given.
    pub fn launch(log: &Path, key: Option<&str>, args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bifrost-providers"));
        command.env_remove("BIFROST_ENCRYPTION_KEY");
        if let Some(key) = key {
            command.env("BIFROST_ENCRYPTION_KEY", key);
        }
        let child = command
            .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("BIFROST_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("the log file"))
            .spawn()
            .expect("start the server");
        // Owned at once, so that a failed start still kills it (in Drop).
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let listening = text.lines().find_map(|line| {
                let event: Value = serde_json::from_str(line).ok()?;
                (event["message"] == "listening" && event["target"] == "bifrost_providers")
                    .then(|| event["local_addr"].as_str()?.parse().ok())?
            });
            if let Some(addr) = listening {
                server.addr = addr;
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a new connection: status and body.
pub async fn call(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut sender = connect(addr).await;
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "bench")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("a request");
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("a body");
    (status, bytes.to_bytes().to_vec())
}

/// A new HTTP/1.1 connection to `addr`, its driver spawned.
pub async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// Latency percentiles of one measurement, and how long it took.
pub struct Stats {
    pub requests: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Stats {
    /// The percentiles of `latencies`, measured over `elapsed`.
    pub fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Stats {
            requests: latencies.len(),
            elapsed,
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}
