//! The client crate as a user meets it: over HTTPS to a server serving a certificate that a CA
//! made here signed (trusted through the builder, refused without it), retrying a read across a
//! server restart, and sending what is not safe to repeat once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bifrost_providers::Client;
use common::{TestServer, certificates};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reaches_the_server_over_tls() {
    let (ca, chain, key) = certificates();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, chain).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let server = TestServer::start_with(
        &[],
        &[
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    let url = server.url.replace("http://", "https://");

    let client = Client::builder(&url)
        .root_certificate_pem(ca.as_bytes())
        .retries(0)
        .build()
        .unwrap();
    let body: bifrost_providers::types::UpdateProviderRequest = serde_json::from_value(
        json!({"keys": [{"name": "tls", "value": {"value": "sk-over-tls-0123456789"}}]}),
    )
    .unwrap();
    let written = client
        .update_provider()
        .provider("openai")
        .body(body)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written.keys[0].name, "tls");
    let listed = client.list_providers().send().await.unwrap().into_inner();
    assert_eq!(listed.total, 1);

    // Without the CA the certificate is not trusted; plain HTTP gets no answer.
    let untrusted = Client::builder(&url).retries(0).build().unwrap();
    assert!(untrusted.list_providers().send().await.is_err());
    let plain = Client::builder(&server.url).retries(0).build().unwrap();
    assert!(plain.list_providers().send().await.is_err());
}

/// A loopback server that reads each request whole, counts it, and hangs up without answering:
/// to a client, a connection that broke before a response, the failure a retry is for. Whatever
/// it counts beyond one is a repeat the client sent.
struct HangUp {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl HangUp {
    async fn start() -> HangUp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    if let Some(line) = read_request(&mut socket).await {
                        log.lock().unwrap().push(line);
                    }
                    // Dropped unanswered: the connection closes before any response.
                });
            }
        });
        HangUp { url, seen }
    }

    /// The request lines received since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Reads one request (head, and a body of its `Content-Length`); returns its request line.
async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    head.lines().next().map(|l| {
        let mut parts = l.split(' ');
        format!(
            "{} {}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        )
    })
}

/// With retries on, each request that reached the server and got no answer: a read is sent
/// again (1 + retries times), a POST or a PUT without `If-Match` exactly once, a PUT with
/// `If-Match` again (a repeat of a write that landed would meet a changed ETag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_retried_and_posts_are_sent_once() {
    let server = HangUp::start().await;
    let client = Client::builder(&server.url)
        .retries(3)
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .build()
        .unwrap();
    let once = |line: &str| vec![line.to_string()];
    let times = |line: &str, n| vec![line.to_string(); n];

    assert!(
        client
            .get_provider()
            .provider("openai")
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        server.take(),
        times("GET /api/providers/openai", 4),
        "a read is retried"
    );

    let add: bifrost_providers::types::AddProviderRequest =
        serde_json::from_value(json!({"provider": "groq"})).unwrap();
    assert!(client.add_provider().body(add).send().await.is_err());
    assert_eq!(
        server.take(),
        once("POST /api/providers"),
        "a POST is sent once"
    );

    let key: bifrost_providers::types::Key =
        serde_json::from_value(json!({"name": "k", "value": {"value": "sk-once-0123456789"}}))
            .unwrap();
    let created = client
        .create_provider_key()
        .provider("openai")
        .body(key)
        .send()
        .await;
    assert!(created.is_err());
    assert_eq!(
        server.take(),
        once("POST /api/providers/openai/keys"),
        "a POST is sent once"
    );

    let update = || -> bifrost_providers::types::UpdateProviderRequest {
        serde_json::from_value(json!({})).unwrap()
    };
    let blind = client
        .update_provider()
        .provider("openai")
        .body(update())
        .send()
        .await;
    assert!(blind.is_err());
    assert_eq!(
        server.take(),
        once("PUT /api/providers/openai"),
        "a PUT without If-Match is sent once"
    );

    let guarded = client
        .update_provider()
        .provider("openai")
        .if_match("\"e1\"")
        .body(update())
        .send()
        .await;
    assert!(guarded.is_err());
    assert_eq!(
        server.take(),
        times("PUT /api/providers/openai", 4),
        "a PUT with If-Match is retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_is_retried_across_a_restart() {
    let mut server = TestServer::start();
    let patient = Client::builder(&server.url)
        .retries(8)
        .backoff(Duration::from_millis(200), Duration::from_millis(500))
        .build()
        .unwrap();
    common::put(&server, "openai", &json!({})).await;

    assert!(server.stop());
    let read = tokio::spawn(async move { patient.get_provider().provider("openai").send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart();

    let shown = read
        .await
        .unwrap()
        .expect("the read succeeded once the server was back");
    assert_eq!(shown.into_inner().name, "openai");
}

/// A quiet long poll of the change feed is an answer after its wait, not a timeout: the
/// attempt's timeout (here 1 s) gets the poll's wait (2 s) on top, and nothing is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_outlasts_the_request_timeout() {
    let server = TestServer::start();
    let watcher = Client::builder(&server.url)
        .timeout(Duration::from_secs(1))
        .retries(0)
        .build()
        .unwrap();
    let latest = watcher
        .watch_changes()
        .timeout(0)
        .send()
        .await
        .unwrap()
        .into_inner()
        .revision;

    let started = std::time::Instant::now();
    let quiet = watcher
        .watch_changes()
        .since(latest)
        .timeout(2)
        .send()
        .await
        .expect("a quiet watch answers after its wait");
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert!(quiet.into_inner().changes.is_empty());
}
