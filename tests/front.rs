//! The front answers the two hot reads itself (one provider, the list) from kept response bytes;
//! dropshot answers everything else. A read the front answers must be the one dropshot would
//! give: the same status, body bytes and headers, after every kind of write, over HTTP/1.1 and
//! HTTP/2, on every store. A query string (which the API ignores on these reads) sends the same
//! read to dropshot, so the two can be compared.

mod common;

use common::{Backend, TestServer, put};
use serde_json::{Value, json};

/// Status, the headers that are not per-response, and the body bytes.
async fn read(http: &reqwest::Client, url: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let response = http.get(url).send().await.expect("a response");
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-request-id" | "date"))
        .map(|(name, value)| {
            (
                name.to_string(),
                value.to_str().expect("a header").to_string(),
            )
        })
        .collect();
    headers.sort();
    let names: Vec<&str> = response
        .headers()
        .keys()
        .map(|n| n.as_str())
        .filter(|n| matches!(*n, "x-request-id" | "date"))
        .collect();
    assert_eq!(names.len(), 2, "{url}: a request id and a date");
    let body = response.bytes().await.expect("a body").to_vec();
    (status, headers, body)
}

/// Reads `path` from the front and (with a query string) from dropshot: they must agree.
async fn same_answer(http: &reqwest::Client, server: &TestServer, path: &str) -> Value {
    let front = read(http, &format!("{}{path}", server.url)).await;
    let dropshot = read(http, &format!("{}{path}?via=dropshot", server.url)).await;
    assert_eq!(front.0, dropshot.0, "{path}: status");
    assert_eq!(front.1, dropshot.1, "{path}: headers");
    assert_eq!(
        String::from_utf8_lossy(&front.2),
        String::from_utf8_lossy(&dropshot.2),
        "{path}: body"
    );
    serde_json::from_slice(&front.2).unwrap_or(Value::Null)
}

async fn reads_match_dropshot_after_every_kind_of_write(backend: Backend) {
    let server = TestServer::on_with(
        &backend,
        &[("FRONT_TEST_KEY", "sk-from-env-0000000007")],
        &[],
    );
    let http = common::http();
    assert_eq!(
        same_answer(&http, &server, "/api/providers").await["total"],
        0
    );

    let full = json!({
        "keys": [
            {"id": "a", "name": "a", "value": "sk-literal-0000000000001", "models": ["gpt-4o"], "weight": 1.0},
            {"id": "b", "value": "env.FRONT_TEST_KEY", "models": [], "weight": 0.5},
            {"id": "c", "value": "env.FRONT_UNSET_VARIABLE", "weight": 1.0}
        ],
        "network_config": {"base_url": "https://example.com/v1", "extra_headers": {"x-a": "b"}},
        "proxy_config": {"type": "http", "url": "http://proxy:3128", "username": "u", "password": "p4ssw0rd-secret"},
        "concurrency_and_buffer_size": {"concurrency": 4, "buffer_size": 40}
    });
    for (name, body) in [
        ("openai", full.clone()),
        ("anthropic", json!({"keys": []})),
        (
            "my-custom.v2",
            json!({"custom_provider_config": {"base_provider_type": "openai"}}),
        ),
    ] {
        let (status, written) = put(&server, name, &body).await;
        assert_eq!(status, 200, "{written}");
        let shown = same_answer(&http, &server, &format!("/api/providers/{name}")).await;
        assert_eq!(shown, written, "a read shows what the write answered");
    }
    let listed = same_answer(&http, &server, "/api/providers").await;
    assert_eq!(listed["total"], 3);
    assert_eq!(listed["providers"][0]["name"], "anthropic");

    // A replacement, a key added through /keys, a delete: each read shows the new state.
    let (status, replaced) = put(
        &server,
        "openai",
        &json!({"keys": [{"id": "z", "value": "sk-z-00000000000000000001", "weight": 1.0}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        same_answer(&http, &server, "/api/providers/openai").await,
        replaced
    );
    let added = http
        .post(format!("{}/api/providers/anthropic/keys", server.url))
        .json(&json!({"id": "k2", "value": "sk-added-000000000000000002", "weight": 1.0}))
        .send()
        .await
        .expect("a response");
    assert_eq!(added.status(), 200);
    let shown = same_answer(&http, &server, "/api/providers/anthropic").await;
    assert_eq!(shown["keys"][0]["id"], "k2");
    let deleted = http
        .delete(format!("{}/api/providers/my-custom.v2", server.url))
        .send()
        .await
        .expect("a response");
    assert_eq!(deleted.status(), 200);
    let gone = same_answer(&http, &server, "/api/providers/my-custom.v2").await;
    assert_eq!(gone["error"]["code"], "provider_not_found", "{gone}");
    assert_eq!(
        same_answer(&http, &server, "/api/providers").await["total"],
        2
    );

    // Names the front leaves to dropshot, and HTTP/2 both ways.
    for path in [
        "/api/providers/open%61i",
        "/api/providers/",
        "/api/providers/OPENAI",
    ] {
        same_answer(&http, &server, path).await;
    }
    let (status, over_h2) = h2(&server, "GET", "/api/providers/openai", None).await;
    assert_eq!((status, over_h2), (200, replaced));
    let (status, _) = h2(
        &server,
        "PUT",
        "/api/providers/openai",
        Some(json!({"keys": []})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        same_answer(&http, &server, "/api/providers/openai").await["keys"],
        json!([])
    );
}

/// One request over HTTP/2 (prior knowledge, no TLS): status and JSON body.
async fn h2(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    use http_body_util::{BodyExt, Full};
    let authority = server.url.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("an HTTP/2 connection");
    tokio::spawn(connection);
    let body = body.map_or_else(Vec::new, |b| serde_json::to_vec(&b).unwrap());
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", server.url))
        .header("content-type", "application/json")
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .expect("an HTTP/2 response");
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Without the token, the front answers nothing: dropshot's 401, on the list and on one.
async fn reads_without_the_token_are_refused(backend: Backend) {
    let token = "front-test-token-0123456789";
    let server = TestServer::on_with(&backend, &[("BIFROST_ADMIN_TOKEN", token)], &[]);
    let http = common::http();
    let created = http
        .put(format!("{}/api/providers/openai", server.url))
        .bearer_auth(token)
        .json(&json!({"keys": []}))
        .send()
        .await
        .expect("a response");
    assert_eq!(created.status(), 200);
    for path in ["/api/providers", "/api/providers/openai"] {
        let url = format!("{}{path}", server.url);
        for request in [
            http.get(&url),
            http.get(&url).bearer_auth("front-test-token-012345678"),
            http.get(&url)
                .header("authorization", format!("Basic {token}")),
        ] {
            let response = request.send().await.expect("a response");
            assert_eq!(response.status(), 401, "{path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
        }
        let admitted = http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(admitted.status(), 200, "{path}");
    }
}

/// The log names each request's client, forwarded ones included, and a client cannot write
/// another address there.
async fn the_log_names_the_client_not_the_front(backend: Backend) {
    let server = TestServer::on(&backend);
    let http = common::http();
    let spoofed = http
        .put(format!("{}/api/providers/openai", server.url))
        .header("x-bifrost-remote-addr", "203.0.113.9:1")
        .json(&json!({"keys": []}))
        .send()
        .await
        .expect("a response");
    assert_eq!(spoofed.status(), 200);
    let read = http
        .get(format!("{}/api/providers/openai", server.url))
        .send()
        .await
        .expect("a response");
    assert_eq!(read.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let logs = loop {
        let logs = server.logs();
        let done = logs
            .lines()
            .filter(|l| l.contains("request completed"))
            .count()
            >= 2;
        if done || std::time::Instant::now() > deadline {
            break logs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(!logs.contains("203.0.113.9"), "{logs}");
    let completed: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("request completed"))
        .collect();
    assert_eq!(completed.len(), 2, "{logs}");
    // One client connection made both requests: the forwarded PUT and the GET answered by the
    // front name the same address (without the front's header, the PUT would name the port of
    // the front's own connection to dropshot).
    let addrs: Vec<String> = completed
        .iter()
        .map(|line| {
            let event: Value = serde_json::from_str(line).expect("a JSON log line");
            event["remote_addr"]
                .as_str()
                .expect("a remote_addr")
                .to_string()
        })
        .collect();
    assert_eq!(addrs[0], addrs[1], "{logs}");
}

on_every_store!(
    the_log_names_the_client_not_the_front,
    reads_match_dropshot_after_every_kind_of_write,
    reads_without_the_token_are_refused
);
