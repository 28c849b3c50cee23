//! The server-wide budget of request body bytes held in memory (`--max-buffered-body-bytes`):
//! a body that finds it spent waits for room and, given none in time, hears 503 `server_busy`
//! with nothing stored; once the room is given back, the same request goes through.

mod common;

use std::time::Duration;

use common::{TestServer, assert_error, get, put};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_waits_for_room_in_the_budget_and_is_refused_when_none_comes() {
    let size = MIB.to_string();
    let server = TestServer::start_with(
        &[],
        &[
            "--max-body-bytes",
            &size,
            "--max-buffered-body-bytes",
            &size,
        ],
    );
    // A valid body of exactly 1 MiB (JSON allows the trailing spaces), announced in full and
    // sent slowly: it holds the whole budget while it arrives.
    let mut large = br#"{"network_config":{"max_retries":1}}"#.to_vec();
    large.resize(MIB, b' ');
    let mut slow = TcpStream::connect(server.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "PUT /api/providers/openai HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        large.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&large[..1000]).await.unwrap();
    let trickle = tokio::spawn(async move {
        // One byte every 2 s keeps the body alive (10 s between parts is its limit) for 14 s.
        for i in 0..7 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            slow.write_all(&large[1000 + i..1001 + i]).await.unwrap();
        }
        slow.write_all(&large[1007..]).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = slow.read(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..n]).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let small = serde_json::json!({"network_config": {"max_retries": 2}});
    let (status, body) = put(&server, "anthropic", &small).await;
    assert_error(status, &body, 503, "server_busy");
    assert_eq!(get(&server, "anthropic").await.0, 404, "nothing was stored");

    let answer = trickle.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (status, _) = put(&server, "anthropic", &small).await;
    assert_eq!(status, 200, "the room was given back");
}
