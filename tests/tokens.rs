//! Named, scoped tokens (`--tokens FILE`) through the real binary: what each scope may read,
//! list, watch and write within its patterns; that providers outside them are not revealed; that
//! a revoked, rotated or expired token stops; that history names the token; that `/metrics`
//! parses as Prometheus exposition and names no provider; on every store and across replicas.

mod common;

use std::time::{Duration, Instant};

use bifrost_providers::domain::tokens::digest_hex;
use common::{Backend, TestServer, assert_error};
use serde_json::{Value, json};

const ADMIN: &str = "bfp_test-admin-0123456789abcdef";
const WRITER_A: &str = "bfp_test-writer-a-0123456789";
const READER_A: &str = "bfp_test-reader-a-0123456789";
const READER_ALL: &str = "bfp_test-reader-all-01234567";
const SCRAPER: &str = "bfp_test-scraper-0123456789ab";
const EXPIRED: &str = "bfp_test-expired-0123456789ab";

fn entry(name: &str, token: &str, rest: &str) -> String {
    format!(
        "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\n{rest}\n\n",
        digest_hex(token)
    )
}

fn tokens_file() -> String {
    [
        entry("root", ADMIN, "scopes = [\"admin\"]"),
        entry(
            "writer-a",
            WRITER_A,
            "scopes = [\"write\"]\nproviders = [\"team-a-*\"]",
        ),
        entry(
            "reader-a",
            READER_A,
            "scopes = [\"read\"]\nproviders = [\"team-a-*\"]",
        ),
        entry("reader-all", READER_ALL, "scopes = [\"read\"]"),
        entry("scraper", SCRAPER, "scopes = [\"metrics\"]"),
        entry(
            "old",
            EXPIRED,
            "scopes = [\"admin\"]\nexpires = \"2026-01-01T00:00:00Z\"",
        ),
    ]
    .concat()
}

/// A server on `backend` with [`tokens_file`] written in its folder.
/// The tokens file lives in a folder of its own, kept as long as the test holds it.
fn guarded(backend: &Backend) -> (TestServer, TokensFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, tokens_file()).unwrap();
    let server = TestServer::on_with(backend, &[], &["--tokens", path.to_str().unwrap()]);
    (server, TokensFile { path, _dir: dir })
}

struct TokensFile {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Every provider as the admin token sees it, with its history: what a refused write must leave.
async fn everything(server: &TestServer) -> Vec<Value> {
    let (_, list) = call(server, Some(ADMIN), "GET", "/api/providers", None, &[]).await;
    let mut all = vec![list.clone()];
    for p in list["providers"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let path = format!("/api/providers/{name}/history");
        all.push(call(server, Some(ADMIN), "GET", &path, None, &[]).await.1);
    }
    all
}

/// A request with `token` (or none) and `headers`: status and body (JSON, or the text as a
/// string).
async fn call(
    server: &TestServer,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request =
        common::http().request(method.parse().unwrap(), format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn provider(tag: &str) -> Value {
    json!({
        "keys": [{"id": format!("k-{tag}"), "name": format!("k-{tag}"), "value": format!("sk-tokens-{tag}-0123456789"), "models": [], "weight": 1.0}],
        "network_config": {"base_url": format!("https://{tag}.example.com")},
        "custom_provider_config": {"base_provider_type": "openai"}
    })
}

/// Every name the list shows to `token`, and its `total`.
async fn listed(server: &TestServer, token: &str) -> (Vec<String>, i64) {
    let (status, body) = call(server, Some(token), "GET", "/api/providers", None, &[]).await;
    assert_eq!(status, 200, "{body}");
    let names = body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    (names, body["total"].as_i64().unwrap())
}

async fn each_scope_reaches_only_its_providers(backend: Backend) {
    let (server, _file) = guarded(&backend);
    for name in ["team-a-one", "team-b-one"] {
        let (status, body) = call(
            &server,
            Some(ADMIN),
            "PUT",
            &format!("/api/providers/{name}"),
            Some(&provider(name)),
            &[],
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    // 401 alike for no token, an unknown one and an expired one.
    for token in [None, Some("bfp_not-a-token-0123456789"), Some(EXPIRED)] {
        let (status, body) = call(&server, token, "GET", "/api/providers", None, &[]).await;
        assert_error(status, &body, 401, "unauthorized");
    }
    // Never from a query string.
    let (status, body) = call(
        &server,
        None,
        "GET",
        &format!("/api/providers?token={ADMIN}&access_token={ADMIN}"),
        None,
        &[],
    )
    .await;
    assert_error(status, &body, 401, "unauthorized");

    // The list, its total and the feed show only what the token matches.
    assert_eq!(
        listed(&server, READER_A).await,
        (vec!["team-a-one".to_string()], 1)
    );
    assert_eq!(listed(&server, READER_ALL).await.1, 2);
    assert_eq!(listed(&server, ADMIN).await.1, 2);
    let (status, feed) = call(
        &server,
        Some(READER_A),
        "GET",
        "/api/changes?since=0&timeout=0",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{feed}");
    let fed: Vec<&str> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(fed, ["team-a-one"]);

    // A provider outside the patterns reads exactly as one that does not exist.
    for (hidden, absent) in [
        ("/api/providers/team-b-one", "/api/providers/team-a-none"),
        (
            "/api/providers/team-b-one/keys",
            "/api/providers/team-a-none/keys",
        ),
        (
            "/api/providers/team-b-one/keys/k-team-b-one",
            "/api/providers/team-a-none/keys/k-team-b-one",
        ),
        (
            "/api/providers/team-b-one/history",
            "/api/providers/team-a-none/history",
        ),
        (
            "/api/providers/team-b-one/history/2",
            "/api/providers/team-a-none/history/2",
        ),
    ] {
        let (status, seen) = call(&server, Some(READER_A), "GET", hidden, None, &[]).await;
        let (absent_status, absent) = call(&server, Some(READER_A), "GET", absent, None, &[]).await;
        assert_eq!(status, 404, "{hidden}: {seen}");
        assert_eq!(absent_status, 404, "{absent}: {absent}");
        assert_eq!(seen["error"]["code"], absent["error"]["code"], "{hidden}");
        let shape = |v: &Value| {
            v["error"]["message"]
                .as_str()
                .unwrap()
                .replace("team-b-one", "N")
                .replace("team-a-none", "N")
        };
        assert_eq!(shape(&seen), shape(&absent), "{hidden}");
    }

    // A read token changes nothing; a write token nothing outside its patterns: 403, nothing
    // stored, whether or not the provider exists.
    let before = everything(&server).await;
    for (token, method, path, body) in [
        (
            READER_A,
            "PUT",
            "/api/providers/team-a-one",
            Some(provider("x")),
        ),
        (READER_A, "DELETE", "/api/providers/team-a-one", None),
        (
            READER_ALL,
            "POST",
            "/api/providers",
            Some(json!({"provider": "team-a-new", "keys": []})),
        ),
        (
            WRITER_A,
            "PUT",
            "/api/providers/team-b-one",
            Some(provider("x")),
        ),
        (
            WRITER_A,
            "PUT",
            "/api/providers/team-b-new",
            Some(provider("x")),
        ),
        (WRITER_A, "DELETE", "/api/providers/team-b-one", None),
        (
            WRITER_A,
            "POST",
            "/api/providers",
            Some(json!({"provider": "team-b-new", "keys": []})),
        ),
        (
            WRITER_A,
            "POST",
            "/api/providers/team-b-one/keys",
            Some(json!({"value": "sk-tokens-new-0123456789", "models": ["*"], "weight": 1.0})),
        ),
        (
            WRITER_A,
            "DELETE",
            "/api/providers/team-b-one/keys/k-team-b-one",
            None,
        ),
        (
            WRITER_A,
            "POST",
            "/api/providers/team-b-one/rollback",
            Some(json!({"revision": 2})),
        ),
        (SCRAPER, "GET", "/api/providers", None),
    ] {
        let (status, answer) = call(&server, Some(token), method, path, body.as_ref(), &[]).await;
        assert_error(status, &answer, 403, "forbidden");
    }
    assert_eq!(everything(&server).await, before, "nothing stored");

    // Within its patterns a write token writes; history names the token, and keeps what
    // X-Bifrost-Actor claimed apart, unverified.
    let (status, body) = call(
        &server,
        Some(WRITER_A),
        "PUT",
        "/api/providers/team-a-two",
        Some(&provider("team-a-two")),
        &[("x-bifrost-actor", "mallory")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &server,
        Some(WRITER_A),
        "DELETE",
        "/api/providers/team-a-one",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, history) = call(
        &server,
        Some(READER_A),
        "GET",
        "/api/providers/team-a-two/history",
        None,
        &[],
    )
    .await;
    let revision = &history["revisions"][0];
    assert_eq!(revision["actor"], "writer-a", "{history}");
    assert_eq!(revision["unverified_actor"], "mallory", "{history}");
    let (_, history) = call(
        &server,
        Some(ADMIN),
        "GET",
        "/api/providers/team-a-one/history",
        None,
        &[],
    )
    .await;
    assert_eq!(history["revisions"][0]["actor"], "writer-a");
    assert_eq!(history["revisions"][1]["actor"], "root");
    assert!(
        history["revisions"][0]
            .get("unverified_actor")
            .is_none_or(Value::is_null)
    );

    // /metrics: the metrics scope or admin; not a read token, not without one.
    for (token, want) in [
        (Some(SCRAPER), 200),
        (Some(ADMIN), 200),
        (Some(READER_ALL), 403),
        (None, 401),
    ] {
        let (status, body) = call(&server, token, "GET", "/metrics", None, &[]).await;
        assert_eq!(status, want, "{token:?}: {body}");
    }

    // The request log names the token; no line holds a token or its digest.
    let logs = server.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("\"token\":\"writer-a\"") && l.contains("request completed")),
        "no request line names the token"
    );
    for token in [ADMIN, WRITER_A, READER_A, READER_ALL, SCRAPER, EXPIRED] {
        assert!(!logs.contains(token), "a token in the log");
        assert!(
            !logs.contains(&digest_hex(token)),
            "a token's digest in the log"
        );
    }
}

async fn an_edited_file_takes_effect_without_a_restart(backend: Backend) {
    let (server, file) = guarded(&backend);
    let path = &file.path;
    let (status, _) = call(&server, Some(READER_A), "GET", "/api/providers", None, &[]).await;
    assert_eq!(status, 200);

    // A long poll of reader-a, waiting when its token is revoked.
    let watch = {
        let url = format!("{}/api/changes?since=0&timeout=20", server.url);
        tokio::spawn(async move {
            let response = common::http()
                .get(url)
                .bearer_auth(READER_A)
                .send()
                .await
                .unwrap();
            (Instant::now(), response.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Revoke reader-a, rotate reader-all to a new token, add a new one.
    let rotated = "bfp_test-reader-all-rotated-0123";
    let added = "bfp_test-added-0123456789abcdef";
    let edited = [
        entry("root", ADMIN, "scopes = [\"admin\"]"),
        entry("reader-all", rotated, "scopes = [\"read\"]"),
        entry("added", added, "scopes = [\"write\"]"),
    ]
    .concat();
    std::fs::write(path, edited).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let revoked = call(&server, Some(READER_A), "GET", "/api/providers", None, &[])
            .await
            .0;
        let old = call(
            &server,
            Some(READER_ALL),
            "GET",
            "/api/providers",
            None,
            &[],
        )
        .await
        .0;
        let new = call(&server, Some(rotated), "GET", "/api/providers", None, &[])
            .await
            .0;
        let more = call(
            &server,
            Some(added),
            "PUT",
            "/api/providers/added-one",
            Some(&provider("added")),
            &[],
        )
        .await
        .0;
        if (revoked, old, new, more) == (401, 401, 200, 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edit did not take effect: {revoked} {old} {new} {more}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let revoked_at = Instant::now();
    let (answered, status) = watch.await.unwrap();
    assert_eq!(status, 401, "the revoked token's long poll ends");
    assert!(
        answered.saturating_duration_since(revoked_at) < Duration::from_secs(2),
        "within about a second of the revocation"
    );

    // A file that no longer parses keeps the tokens in force (and the server says why).
    std::fs::write(path, "[[token]]\nname = \"broken\"\nsha256 = ").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = call(&server, Some(rotated), "GET", "/api/providers", None, &[]).await;
    assert_eq!(status, 200, "a broken file keeps the tokens in force");
    assert!(server.logs().contains("tokens file not taken"));
}

on_every_store!(
    each_scope_reaches_only_its_providers,
    an_edited_file_takes_effect_without_a_restart
);

/// Two replicas with the same tokens file: a write through one is seen through the other, a
/// restricted watcher on the other is woken by a change it may see and by no other.
#[tokio::test]
async fn replicas_hold_one_set_of_tokens_and_a_watcher_sees_only_its_providers() {
    let Some(backend) = Backend::postgres("replicas_hold_one_set_of_tokens") else {
        return;
    };
    let (first, _file) = guarded(&backend);
    let second = first.replica();
    let (status, _) = call(
        &first,
        Some(ADMIN),
        "PUT",
        "/api/providers/team-b-one",
        Some(&provider("b")),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let (_, listing) = call(&second, Some(READER_A), "GET", "/api/providers", None, &[]).await;
    assert_eq!(listing["total"], 0, "{listing}");
    let since = 1;

    // A watcher through the second replica; a hidden change through the first does not wake it.
    let watch = {
        let url = format!("{}/api/changes?since={since}&timeout=4", second.url);
        tokio::spawn(async move {
            let started = Instant::now();
            let response = common::http()
                .get(url)
                .bearer_auth(READER_A)
                .send()
                .await
                .unwrap();
            let body: Value = response.json().await.unwrap();
            (started.elapsed(), body)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = call(
        &first,
        Some(ADMIN),
        "PUT",
        "/api/providers/team-b-two",
        Some(&provider("b2")),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !watch.is_finished(),
        "a change it may not see woke the watcher"
    );
    let (status, _) = call(
        &first,
        Some(WRITER_A),
        "PUT",
        "/api/providers/team-a-one",
        Some(&provider("a")),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let (waited, body) = watch.await.unwrap();
    assert!(
        waited < Duration::from_secs(4),
        "woken by its change: {waited:?}"
    );
    let fed: Vec<&str> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(fed, ["team-a-one"], "{body}");
    let (_, history) = call(
        &second,
        Some(READER_A),
        "GET",
        "/api/providers/team-a-one/history",
        None,
        &[],
    )
    .await;
    assert_eq!(history["revisions"][0]["actor"], "writer-a");
}

/// `/metrics` read while requests run: valid Prometheus exposition with the documented
/// families, and never a provider's name.
#[tokio::test]
async fn metrics_parse_as_prometheus_while_load_runs_and_name_no_provider() {
    let (server, _file) = guarded(&Backend::Sqlite);
    let server = std::sync::Arc::new(server);
    let load = {
        let server = std::sync::Arc::clone(&server);
        tokio::spawn(async move {
            for i in 0..150 {
                let name = format!("team-a-secretname-{}", i % 5);
                call(
                    &server,
                    Some(WRITER_A),
                    "PUT",
                    &format!("/api/providers/{name}"),
                    Some(&provider(&format!("{name}-{i}"))),
                    &[],
                )
                .await;
                call(
                    &server,
                    Some(READER_A),
                    "GET",
                    &format!("/api/providers/{name}"),
                    None,
                    &[],
                )
                .await;
                call(
                    &server,
                    Some(READER_A),
                    "GET",
                    "/api/providers/team-a-missing",
                    None,
                    &[],
                )
                .await;
            }
        })
    };
    let mut scrapes = 0;
    while !load.is_finished() || scrapes < 3 {
        let (status, text) = call(&server, Some(SCRAPER), "GET", "/metrics", None, &[]).await;
        assert_eq!(status, 200);
        let text = text.as_str().unwrap().to_string();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
        assert!(
            !text.contains("secretname"),
            "a provider's name in /metrics"
        );
        assert!(!scrape.samples.is_empty());
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    load.await.unwrap();
    let (_, text) = call(&server, Some(SCRAPER), "GET", "/metrics", None, &[]).await;
    let text = text.as_str().unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert!(
        value(
            "bifrost_http_requests_total",
            &[("operation", "updateProvider"), ("status", "200")]
        ) >= 150.0
    );
    assert!(
        value(
            "bifrost_http_requests_total",
            &[("operation", "getProvider"), ("status", "404")]
        ) >= 150.0
    );
    assert!(
        value(
            "bifrost_store_operations_total",
            &[("operation", "modify"), ("outcome", "ok")]
        ) >= 150.0
    );
    assert!(value("bifrost_store_latest_revision", &[]) >= 150.0);
    assert!(value("bifrost_connections_open", &[]) >= 1.0);
    assert!(
        text.contains("bifrost_http_request_duration_seconds_bucket{operation=\"getProvider\""),
        "latency histograms"
    );
}

/// `token new` prints a new token once and the entry that grants it, and nothing that grants it
/// in the entry itself.
#[tokio::test]
async fn token_new_prints_a_token_and_the_entry_that_grants_it() {
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(["token", "new", "--name", "ci-reader", "--scope", "read"])
        .args([
            "--providers",
            "team-a-*",
            "--expires",
            "2999-01-01T00:00:00Z",
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let stdout = String::from_utf8(made.stdout).unwrap();
    let (token, granted) = stdout.split_once('\n').unwrap();
    assert!(token.starts_with("bfp_") && token.len() > 40, "{token}");
    assert!(
        !granted.contains(token) && granted.contains(&digest_hex(token)),
        "{granted}"
    );
    assert!(!String::from_utf8_lossy(&made.stderr).contains(token));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    std::fs::write(
        &path,
        format!("{}{granted}", entry("root", ADMIN, "scopes = [\"admin\"]")),
    )
    .unwrap();
    let server = TestServer::on_with(&Backend::Sqlite, &[], &["--tokens", path.to_str().unwrap()]);
    for name in ["team-a-x", "team-b-x"] {
        let path = format!("/api/providers/{name}");
        let (status, _) = call(
            &server,
            Some(ADMIN),
            "PUT",
            &path,
            Some(&provider(name)),
            &[],
        )
        .await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        listed(&server, token).await,
        (vec!["team-a-x".to_string()], 1)
    );
    let (status, body) = call(
        &server,
        Some(token),
        "PUT",
        "/api/providers/team-a-x",
        Some(&provider("y")),
        &[],
    )
    .await;
    assert_error(status, &body, 403, "forbidden");

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(["token", "new", "--name", "has space", "--scope", "read"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
}
