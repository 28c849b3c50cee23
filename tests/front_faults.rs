//! The public listener attacked from outside: framing errors, announced bodies over the limit,
//! request heads and handshakes that start and stall, headers that try to erase the client's
//! address, and a stop while requests are in progress. With the front, and without it
//! (`--max-connections 0`, dropshot listening itself) where both must give the same answer.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, certificates, get};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's `host:port`, as a raw socket reaches it.
fn addr(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_string()
}

/// Sends `request` on a new connection and reads until the server closes it or `wait` passes:
/// what was read, and when the connection closed (`None`: still open after `wait`).
async fn exchange(
    server: &TestServer,
    request: &[u8],
    wait: Duration,
) -> (String, Option<Duration>) {
    let mut socket = TcpStream::connect(addr(server)).await.unwrap();
    socket.write_all(request).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        let left = wait.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => break None,
        }
    };
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

/// The JSON body of the first answer in `answer`.
fn body_of(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |i| i + 1);
    serde_json::from_str(&body[start..end]).unwrap_or(Value::Null)
}

/// The servers the framing tests run on: behind the front, and without it.
fn both_fronts() -> [(&'static str, TestServer); 2] {
    [
        ("front", TestServer::start()),
        (
            "no front",
            TestServer::start_with(&[], &["--max-connections", "0"]),
        ),
    ]
}

/// The server's log lines at ERROR.
fn errors(server: &TestServer) -> Vec<String> {
    server
        .logs()
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .map(str::to_string)
        .collect()
}

/// A chunked body whose framing is broken (a chunk size that is not hex, one that overflows,
/// a chunk longer than it said) is the client's fault: a 400 `invalid_body` naming the reason,
/// no ERROR in the log, nothing stored; the same on both listeners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chunked_body_is_the_clients_400() {
    let head = "PUT /api/providers/openai HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let broken = [
        "zz\r\n{}\r\n0\r\n\r\n",
        "FFFFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n",
        "2\r\n{}}}}}\r\n0\r\n\r\n",
    ];
    let mut seen = Vec::new();
    for (listener, server) in both_fronts() {
        for body in broken {
            let request = format!("{head}{body}");
            let (answer, _) = exchange(&server, request.as_bytes(), Duration::from_secs(5)).await;
            assert!(
                answer.starts_with("HTTP/1.1 400"),
                "{listener}, {body:?}: {answer}"
            );
            let error = body_of(&answer);
            assert_eq!(
                error["error"]["code"], "invalid_body",
                "{listener}: {answer}"
            );
            let message = error["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with("Error reading the request body: "),
                "{listener}: {message}"
            );
            seen.push((
                body,
                error["error"]["code"].clone(),
                error["status_code"].clone(),
            ));
        }
        assert_eq!(
            get(&server, "openai").await.0,
            404,
            "{listener}: nothing stored"
        );
        // The refused request was logged, at most as a warning.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(errors(&server), Vec::<String>::new(), "{listener}");
    }
    let (front, plain) = seen.split_at(broken.len());
    assert_eq!(front, plain, "both listeners give the same answer");
}

/// A client that announces a body over the limit and waits for `100 Continue` hears 413 at
/// once and never `100 Continue`; the same on both listeners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_body_over_the_limit_is_413_before_it_is_sent() {
    for (listener, server) in both_fronts() {
        let request = format!(
            "PUT /api/providers/openai HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
             expect: 100-continue\r\ncontent-length: {}\r\n\r\n",
            64 << 20
        );
        let started = Instant::now();
        let (answer, _) = exchange(&server, request.as_bytes(), Duration::from_secs(3)).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{listener}: {answer:?} after {:?}",
            started.elapsed()
        );
        assert!(!answer.contains("100 Continue"), "{listener}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(2), "{listener}");
        assert_eq!(body_of(&answer)["error"]["code"], "payload_too_large");
        // Within the limit, the client is told to go on.
        let request = "PUT /api/providers/openai HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
             expect: 100-continue\r\ncontent-length: 2\r\n\r\n";
        let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(3), socket.read(&mut buf))
            .await
            .expect("100 Continue")
            .unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 100"),
            "{listener}: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

/// A request head that starts and stalls (headers trickled one line at a time), and an HTTP/2
/// preface sent in part, are closed `--head-timeout` after their first byte, well before the
/// idle timeout; a kept-alive connection that sends nothing between requests is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_head_is_closed_at_the_head_timeout() {
    let server = TestServer::start_with(&[], &["--head-timeout", "2", "--idle-timeout", "60"]);
    let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
    socket
        .write_all(b"GET /api/providers HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let closed = loop {
        tokio::select! {
            read = socket.read(&mut buf) => match read {
                Ok(0) | Err(_) => break started.elapsed(),
                Ok(_) => panic!("the trickled request was answered"),
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {
                if socket.write_all(b"X-Slow: a\r\n").await.is_err() {
                    break started.elapsed();
                }
            }
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never closed");
    };
    assert!(
        closed >= Duration::from_millis(1900) && closed < Duration::from_secs(5),
        "closed after {closed:?}"
    );

    let (_, closed) = exchange(&server, b"PRI * HTTP/2.0\r\n", Duration::from_secs(10)).await;
    let closed = closed.expect("the partial preface was closed");
    assert!(
        closed >= Duration::from_millis(1900) && closed < Duration::from_secs(5),
        "closed after {closed:?}"
    );

    let mut kept = TcpStream::connect(addr(&server)).await.unwrap();
    for _ in 0..2 {
        kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(3), kept.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// A TLS client connection to the server, shaken hands with and nothing sent.
async fn handshaken(server: &TestServer, ca: &str) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    bifrost_providers_client::connect::install_tls_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let socket = TcpStream::connect(addr(server)).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, socket).await.expect("a handshake")
}

/// Over TLS, the handshake is not an answer: connections that only shook hands are evicted at
/// the cap for a client that speaks; a handshake that starts and stalls is closed at the head
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_handshake_is_bounded_and_not_an_answer() {
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
            "--max-connections",
            "4",
            "--head-timeout",
            "2",
            "--idle-timeout",
            "60",
        ],
    );
    let mut quiet = Vec::new();
    for _ in 0..4 {
        quiet.push(handshaken(&server, &ca).await);
    }
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = server.url.replace("http://", "https://");
    for _ in 0..3 {
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            http.get(format!("{url}/health")).send(),
        )
        .await
        .expect("answered in time")
        .expect("a client that speaks is served at the cap");
        assert_eq!(response.status(), 200);
    }

    // The start of a ClientHello, then nothing.
    let (_, closed) = exchange(
        &server,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        Duration::from_secs(10),
    )
    .await;
    let closed = closed.expect("the stalled handshake was closed");
    assert!(closed < Duration::from_secs(5), "closed after {closed:?}");
    drop(quiet);
}

/// The request log's `remote_addr` of one client connection, for a forwarded request that
/// names the front's header in `Connection` (which removes the headers it names) and for a
/// read answered by the front: the same address, never one the client wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_survives_any_header() {
    let server = TestServer::start();
    let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
    let body = b"{\"keys\":[]}";
    let put = format!(
        "PUT /api/providers/openai HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nx-bifrost-remote-addr: 203.0.113.9:1\r\n\
         connection: keep-alive, x-bifrost-remote-addr\r\n\r\n",
        body.len()
    );
    socket.write_all(put.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    socket
        .write_all(b"GET /api/providers/openai HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let addrs = loop {
        let addrs: Vec<String> = server
            .logs()
            .lines()
            .filter(|l| l.contains("request completed"))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|e| e["remote_addr"].as_str().map(str::to_string))
            .collect();
        if addrs.len() >= 2 || Instant::now() > deadline {
            break addrs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(addrs.len(), 2, "{}", server.logs());
    assert!(
        !addrs.iter().any(|a| a.contains("203.0.113.9")),
        "{addrs:?}"
    );
    assert_eq!(addrs[0], addrs[1], "the forwarded PUT names the client");
}

/// Without the front, a client's own `x-bifrost-remote-addr` is not taken for its address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_front_the_client_cannot_name_its_address() {
    let server = TestServer::start_with(&[], &["--max-connections", "0"]);
    let (answer, _) = exchange(
        &server,
        b"GET /health HTTP/1.1\r\nHost: x\r\nx-bifrost-remote-addr: 203.0.113.9:1\r\nconnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let client = server.client();
    let listed = client.list_providers().send().await.expect("served");
    assert_eq!(listed.into_inner().total, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = server.logs();
    assert!(logs.contains("request completed"), "{logs}");
    assert!(!logs.contains("203.0.113.9"), "{logs}");
}

/// A stop (SIGTERM) while a write is arriving lets it finish and answer 200, and keeps it; new
/// connections are no longer served meanwhile; a long poll answers at once; the server exits
/// cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_requests_in_progress_finish() {
    for args in [&[][..], &["--max-connections", "0"][..]] {
        let mut server = TestServer::start_with(&[], args);
        let http = common::http();
        let poll = tokio::spawn(
            http.get(format!("{}/api/changes?since=0&timeout=60", server.url))
                .send(),
        );
        let body = br#"{"network_config":{"max_retries":3}}"#;
        let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
        let head = format!(
            "PUT /api/providers/openai HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&body[..10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stopped = Instant::now();
        server.terminate();
        let polled = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("the long poll answered at the stop")
            .unwrap()
            .expect("an answer");
        assert_eq!(polled.status(), 200, "{args:?}");
        assert!(stopped.elapsed() < Duration::from_secs(3), "{args:?}");
        // While the write is still arriving, a new connection is no longer served: the front
        // closes its listener (refused at once); dropshot stops accepting but keeps its socket
        // open until it exits (the connection waits in the backlog, unanswered).
        // A client of its own, so that the probe is a new connection and not the long poll's,
        // which may still be open for the moment between its answer and its close.
        let refused = tokio::time::timeout(
            Duration::from_secs(2),
            common::http().get(format!("{}/health", server.url)).send(),
        )
        .await;
        if args.is_empty() {
            assert!(
                matches!(refused, Ok(Err(_))),
                "refused at once after the stop: {refused:?}"
            );
        } else {
            assert!(
                !matches!(refused, Ok(Ok(_))),
                "served after the stop: {refused:?}"
            );
        }
        socket.write_all(&body[10..]).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer))
            .await
            .expect("answered and closed")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{args:?}: {answer}");
        assert!(server.wait(), "{args:?}: a clean exit");
        assert!(stopped.elapsed() < Duration::from_secs(5), "{args:?}");
        server.restart();
        let (status, stored) = get(&server, "openai").await;
        assert_eq!(status, 200, "{args:?}: the write was kept");
        assert_eq!(stored["network_config"]["max_retries"], 3);
    }
}

/// A stop waits for requests in progress no longer than `--shutdown-grace`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_waits_no_longer_than_its_grace() {
    let mut server = TestServer::start_with(&[], &["--shutdown-grace", "1"]);
    let mut socket = TcpStream::connect(addr(&server)).await.unwrap();
    socket
        .write_all(b"PUT /api/providers/openai HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = Instant::now();
    server.terminate();
    let deadline = Instant::now() + Duration::from_secs(8);
    while !server.exited() {
        assert!(Instant::now() < deadline, "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(3), "exited after {took:?}");
    assert!(
        server.logs().contains("shutdown grace over"),
        "{}",
        server.logs()
    );
}
