//! The admin token: with one set, every `/api/*` request needs `Authorization: Bearer TOKEN`
//! (401 with the contract's body otherwise, before the request is otherwise looked at); `/health`
//! stays open; the typed client sends it; a server on a non-loopback address refuses to start
//! without one.

mod common;

use bifrost_providers::Client;
use common::{TestServer, assert_error};
use serde_json::json;

const TOKEN: &str = "test-admin-token-0123456789abcdef";

fn guarded() -> TestServer {
    TestServer::start_with(&[("BIFROST_ADMIN_TOKEN", TOKEN)], &[])
}

/// A request to `path` on `server` with the given `Authorization` header (or none): status and
/// body.
async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, serde_json::Value) {
    let url = format!("{}{path}", server.url);
    let mut request = common::http().request(method.parse().unwrap(), url);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn every_api_request_without_the_token_is_refused_before_it_is_read() {
    let server = guarded();
    let bearer = format!("Bearer {TOKEN}");
    let body =
        serde_json::to_vec(&json!({"keys": [{"value": {"value": "sk-auth-0123456789"}}]})).unwrap();
    let (status, _) = call(
        &server,
        "PUT",
        "/api/providers/openai",
        Some(&bearer),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200);
    let (_, before) = call(&server, "GET", "/api/providers", Some(&bearer), None).await;

    let wrong = [
        None,
        Some("Bearer wrong-token-0123456789abcdef".to_string()),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_string()),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Bearer {TOKEN}x")),
    ];
    let requests: Vec<(&str, &str, Option<&[u8]>)> = vec![
        ("GET", "/api/providers", None),
        ("POST", "/api/providers", Some(&body)),
        ("GET", "/api/providers/openai", None),
        ("PUT", "/api/providers/openai", Some(&body)),
        ("DELETE", "/api/providers/openai", None),
        // A bad body, a bad name, a wrong method: still 401, not 400/405.
        ("PUT", "/api/providers/openai", Some(b"{not json")),
        ("PUT", "/api/providers/bad%20name", Some(&body)),
        ("PATCH", "/api/providers/openai", Some(&body)),
        ("PATCH", "/api/providers", None),
    ];
    for authorization in &wrong {
        for (method, path, body) in &requests {
            let (status, err) = call(&server, method, path, authorization.as_deref(), *body).await;
            assert_error(status, &err, 401, "unauthorized");
            assert!(
                !err.to_string().contains(TOKEN),
                "the token in a response: {err}"
            );
        }
    }

    // A body announced as 10 MiB and never sent: the answer comes without it, and is 401.
    let head = unread_body_answer(&server.url).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    // Nothing changed; /health needs no token, and its wrong methods are 405, not 401.
    let (_, after) = call(&server, "GET", "/api/providers", Some(&bearer), None).await;
    assert_eq!(before, after);
    let (status, health) = call(&server, "GET", "/health", None, None).await;
    assert_eq!((status, &health["status"]), (200, &json!("ok")));
    let (status, err) = call(&server, "POST", "/health", None, None).await;
    assert_error(status, &err, 405, "method_not_allowed");
    assert!(!server.logs().contains(TOKEN), "the token in the log");
}

/// The status line of the answer to a PUT that announces a 10 MiB body and sends none of it.
async fn unread_body_answer(base: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /api/providers/openai HTTP/1.1\r\nHost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        10 << 20
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 512];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer without the body")
        .unwrap();
    String::from_utf8_lossy(&answer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_typed_client_sends_the_token() {
    let server = guarded();
    let client = Client::with_admin_token(&server.url, TOKEN).unwrap();
    let listed = client.list_providers().send().await.unwrap().into_inner();
    assert_eq!(listed.total, 0);

    let refused = Client::builder(&server.url)
        .build()
        .unwrap()
        .list_providers()
        .send()
        .await
        .unwrap_err();
    match refused {
        progenitor_client::Error::ErrorResponse(response) => {
            assert_eq!(response.status().as_u16(), 401);
            assert_eq!(response.error.code.as_deref(), Some("unauthorized"));
        }
        other => panic!("expected a 401 error response, got {other:?}"),
    }
    // The token does not show when the client is printed.
    assert!(!format!("{client:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_server_without_a_token_serves_requests_without_one() {
    let server = TestServer::start();
    let (status, listed) = call(&server, "GET", "/api/providers", None, None).await;
    assert_eq!((status, &listed["total"]), (200, &json!(0)));
}

/// Runs `serve` with these arguments and environment; it must refuse to start. Returns stderr.
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("p.db").display());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(["serve", "--store", &store])
        .args(args)
        .env_remove("BIFROST_ADMIN_TOKEN")
        .env_remove("BIFROST_TOKENS")
        .env_remove("BIFROST_ALLOW_UNAUTHENTICATED")
        .env_remove("BIFROST_BIND")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!output.status.success(), "it started: {args:?}");
    assert!(
        !dir.path().join("p.db").exists(),
        "a refused start left a store behind"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_non_loopback_address_without_a_token_is_refused() {
    for bind in ["0.0.0.0:0", "[::]:0"] {
        let stderr = refused_start(&["--bind", bind], &[]);
        assert!(stderr.contains("without tokens"), "{stderr}");
        assert!(stderr.contains("--allow-unauthenticated"), "{stderr}");
    }
}

#[test]
fn a_weak_token_is_refused_without_being_printed() {
    for token in ["short-token", "has spaces in the admin token"] {
        let stderr = refused_start(
            &["--bind", "127.0.0.1:0"],
            &[("BIFROST_ADMIN_TOKEN", token)],
        );
        assert!(stderr.contains("admin token"), "{stderr}");
        assert!(!stderr.contains(token), "the token was printed: {stderr}");
    }
}
