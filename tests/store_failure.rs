//! When the store fails: the contract's 500 with no internals, `/health` 503, nothing
//! half-written, the process stays up and recovers by itself. (A full SQLite disk is covered by
//! the store's unit tests; here the PostgreSQL database goes away under load and comes back.)

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The providers the writers write, one each.
const PROVIDERS: [&str; 4] = ["openai", "anthropic", "groq", "mistral"];

use common::{Backend, TestServer, assert_error, config, consistent_tag, get, put, raw};

async fn health(server: &TestServer) -> (u16, serde_json::Value) {
    let (status, _, body) = raw("GET", &format!("{}/health", server.url), None).await;
    (status, body)
}

#[tokio::test]
async fn a_database_outage_under_load_fails_cleanly_and_recovers() {
    let Some(backend) =
        Backend::postgres("a_database_outage_under_load_fails_cleanly_and_recovers")
    else {
        return;
    };
    let server = Arc::new(TestServer::on(&backend));
    let db = server.database().expect("a PostgreSQL database");
    for p in 0..4u64 {
        assert_eq!(
            put(&server, PROVIDERS[p as usize], &config(p * 1000))
                .await
                .0,
            200
        );
    }

    // Four writers, one provider each, writing increasing tags through the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|p| {
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            tokio::spawn(async move {
                let (mut acked, mut attempted, mut failures) = (p * 1000, Vec::new(), 0);
                for i in 1.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let tag = p * 1000 + i;
                    let (status, body) = put(&server, PROVIDERS[p as usize], &config(tag)).await;
                    match status {
                        200 => {
                            acked = tag;
                            attempted.clear();
                        }
                        500 | 503 => {
                            let code = if status == 500 {
                                "internal_error"
                            } else {
                                "store_unavailable"
                            };
                            assert_error(status, &body, status, code);
                            let text = body.to_string().to_lowercase();
                            assert!(
                                !text.contains("db error") && !text.contains("postgres"),
                                "internals in a response: {body}"
                            );
                            attempted.push(tag);
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => panic!("unexpected {other}: {body}"),
                    }
                }
                (acked, attempted, failures)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    db.cut_off();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = health(&server).await;
    assert_error(status, &body, 503, "store_unavailable");
    let (status, body) = get(&server, "openai").await;
    assert_error(status, &body, 500, "internal_error");
    let (status, _, body) = raw("GET", &format!("{}/api/providers", server.url), None).await;
    assert_error(status, &body, 500, "internal_error");

    db.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while health(&server).await.0 != 200 {
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);

    let mut outcomes = HashMap::new();
    for (p, writer) in writers.into_iter().enumerate() {
        outcomes.insert(p as u64, writer.await.unwrap());
    }
    assert!(
        outcomes.values().any(|(_, _, failures)| *failures > 0),
        "the outage failed no write: {outcomes:?}"
    );
    for (p, (acked, unconfirmed, _)) in outcomes {
        let (status, shown) = get(&server, PROVIDERS[p as usize]).await;
        assert_eq!(status, 200, "{shown}");
        let tag = consistent_tag(&shown).expect("nothing half-written");
        // The last acknowledged write, or one whose commit the outage left unconfirmed.
        assert!(
            tag == acked || unconfirmed.contains(&tag),
            "{}: acknowledged {acked}, unconfirmed {unconfirmed:?}, stored {tag}",
            PROVIDERS[p as usize]
        );
    }
    assert!(
        server.logs().contains("store failure"),
        "the cause is in the log"
    );
    // Writes go through again.
    assert_eq!(put(&server, "openai", &config(99)).await.0, 200);
}

/// A TCP relay in front of PostgreSQL that can freeze: bytes stop moving, nothing is closed (a
/// hung database host, a network partition).
struct FreezingRelay {
    port: u16,
    frozen: Arc<AtomicBool>,
}

impl FreezingRelay {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let held = Arc::clone(&frozen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (ur, uw) = upstream.into_split();
                tokio::spawn(pump(cr, uw, Arc::clone(&held)));
                tokio::spawn(pump(ur, cw, Arc::clone(&held)));
            }
        });
        FreezingRelay { port, frozen }
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

// Several threads: the relay's tasks must run while the harness blocks on the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_answers_503_within_the_store_timeout_and_recovers() {
    let Ok(admin) = std::env::var(common::POSTGRES_ENV) else {
        eprintln!(
            "SKIPPED a_frozen_database_answers_503_within_the_store_timeout_and_recovers on PostgreSQL"
        );
        return;
    };
    let mut url = url::Url::parse(&admin).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let relay = FreezingRelay::start(target.parse().unwrap()).await;
    url.set_port(Some(relay.port)).unwrap();
    let backend = Backend::Postgres(url.to_string());
    let server = TestServer::on_with(&backend, &[], &["--store-timeout", "2"]);
    assert_eq!(put(&server, "openai", &config(1)).await.0, 200);

    relay.frozen.store(true, Ordering::Relaxed);
    for (method, path, body) in [
        ("GET", "/api/providers/openai", None),
        (
            "PUT",
            "/api/providers/openai",
            Some(serde_json::to_vec(&config(2)).unwrap()),
        ),
        ("GET", "/api/providers", None),
        ("GET", "/health", None),
    ] {
        let started = Instant::now();
        let (status, _, body) = raw(method, &format!("{}{path}", server.url), body).await;
        let waited = started.elapsed();
        assert_error(status, &body, 503, "store_unavailable");
        assert!(
            waited < Duration::from_millis(3500),
            "{method} {path} waited {waited:?}"
        );
    }

    relay.frozen.store(false, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(15);
    while health(&server).await.0 != 200 {
        assert!(Instant::now() < deadline, "the server did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(put(&server, "openai", &config(3)).await.0, 200);
    let (_, shown) = get(&server, "openai").await;
    assert_eq!(consistent_tag(&shown), Some(3));
}

#[tokio::test]
async fn a_server_whose_database_is_unreachable_refuses_to_start_and_says_why() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(["serve", "--bind", "127.0.0.1:0", "--store"])
        .arg("postgres://nobody:hunter2-secret@127.0.0.1:1/none?connect_timeout=2")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot set up PostgreSQL store"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2-secret"),
        "the password leaked: {stderr}"
    );
}

/// A body that stops arriving is dropped with a 408 (and the memory it held), and the server
/// keeps serving others meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_dropped_with_a_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start();
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"PUT /api/providers/openai HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n{\"keys\":")
        .await
        .unwrap();
    let started = Instant::now();
    // Others are served while it stalls.
    assert_eq!(put(&server, "groq", &serde_json::json!({})).await.0, 200);
    let mut answer = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(20), stalled.read_to_end(&mut answer)).await;
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "the stalled upload was held for {waited:?}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    assert_eq!(get(&server, "openai").await.0, 404, "nothing was stored");
}

/// Connections that send nothing, or trickle their headers, take no room from clients that
/// speak: past the cap, a new connection takes the place of the oldest one not answered yet;
/// silent ones are closed after 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_connections_cannot_lock_clients_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(&[], &["--max-connections", "16"]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let (mut silent, mut slow) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            silent.push(socket);
        } else {
            socket
                .write_all(b"GET /api/providers HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
            slow.push(socket);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        let started = Instant::now();
        let (status, _) = put(
            &server,
            "openai",
            &serde_json::json!({"network_config": {"max_retries": i}}),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // Every silent connection is closed by the server within its first-byte time.
    let started = Instant::now();
    for mut socket in silent {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(15), socket.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a silent connection stayed open"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
}

/// A connection that was answered and then trickles its next request's headers, a header line
/// every 300 ms, is closed once `--idle-timeout` has passed since the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_are_cut_off_at_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(&[], &["--idle-timeout", "2"]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let answered = Instant::now();
    socket
        .write_all(b"GET /api/providers HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let closed = loop {
        tokio::select! {
            read = socket.read(&mut buf) => match read {
                Ok(0) | Err(_) => break answered.elapsed(),
                Ok(_) => panic!("the trickled request was answered"),
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {
                if socket.write_all(b"X-Slow: a\r\n").await.is_err() {
                    break answered.elapsed();
                }
            }
        }
        assert!(answered.elapsed() < Duration::from_secs(10), "never closed");
    };
    assert!(
        closed >= Duration::from_millis(1900) && closed < Duration::from_secs(5),
        "closed after {closed:?}"
    );
}
