//! Revisions on every store: history (who, when, what, which fields, from where), the provider as
//! it was, rollback with its secrets (a deleted provider included), the change feed after a list
//! with no gap, its long poll, compaction (410), and a write on one replica waking a watcher on
//! another.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestServer, assert_error, get, put, raw};
use serde_json::{Value, json};

const FIRST: &str = "sk-original-secret-0000000001";
const SECOND: &str = "sk-replaced-secret-0000000002";

async fn call(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    let (status, _, body) = raw(method, &format!("{}{path}", server.url), body).await;
    (status, body)
}

/// A call with a JSON body and one extra header.
async fn with_header(
    server: &TestServer,
    method: &str,
    path: &str,
    body: &Value,
    header: (&str, &str),
) -> (u16, Value) {
    let response = common::http()
        .request(method.parse().unwrap(), format!("{}{path}", server.url))
        .header(header.0, header.1)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The list's revision header.
async fn listed_revision(server: &TestServer) -> i64 {
    let response = common::http()
        .get(format!("{}/api/providers", server.url))
        .send()
        .await
        .unwrap();
    response.headers()["x-bifrost-revision"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn history_records_every_write_and_rollback_restores_secrets(backend: Backend) {
    let mut server = TestServer::on(&backend);
    assert_eq!(
        call(&server, "GET", "/api/providers/openai/history", None)
            .await
            .0,
        404
    );
    let start = listed_revision(&server).await;

    let (status, created) = with_header(
        &server,
        "PUT",
        "/api/providers/openai",
        &json!({"keys": [{"id": "k1", "name": "a", "value": FIRST}]}),
        ("X-Bifrost-Actor", "alice@example.com"),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let (_, updated) = put(
        &server,
        "openai",
        &json!({"keys": [{"id": "k1", "name": "a", "value": SECOND}], "network_config": {"max_retries": 3}}),
    )
    .await;
    assert_eq!(
        call(&server, "DELETE", "/api/providers/openai", None)
            .await
            .0,
        200
    );

    let (status, history) = call(&server, "GET", "/api/providers/openai/history", None).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["total"], 3);
    let revisions = history["revisions"].as_array().unwrap();
    let actions: Vec<_> = revisions.iter().map(|r| r["action"].clone()).collect();
    assert_eq!(actions, [json!("delete"), json!("update"), json!("create")]);
    let numbers: Vec<i64> = revisions
        .iter()
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        [start + 3, start + 2, start + 1],
        "one store-wide number per write"
    );
    assert_eq!(revisions[2]["actor"], "alice@example.com");
    assert_eq!(revisions[1]["actor"], "anonymous");
    assert_eq!(revisions[1]["source"], "api");
    assert_eq!(
        revisions[1]["changed"],
        json!(["keys.k1.value", "network_config.max_retries"]),
        "changed fields, a secret by its path only"
    );
    assert!(revisions[1]["etag"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(updated["network_config"]["max_retries"], 3);
    assert!(revisions[0]["etag"].is_null());
    assert!(!history.to_string().contains("sk-"), "{history}");

    // The provider as it was: redacted as any response.
    let first = start + 1;
    let (status, was) = call(
        &server,
        "GET",
        &format!("/api/providers/openai/history/{first}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{was}");
    assert_eq!(was["keys"][0]["value"], created["keys"][0]["value"]);
    assert_eq!(
        call(
            &server,
            "GET",
            &format!("/api/providers/openai/history/{}", start + 3),
            None
        )
        .await
        .0,
        404,
        "a delete left no provider to show"
    );
    assert_eq!(
        call(&server, "GET", "/api/providers/anthropic/history/1", None)
            .await
            .0,
        404
    );

    // Rollback of a deleted provider to its first revision: restored, secrets included.
    let (status, restored) = call(
        &server,
        "POST",
        "/api/providers/openai/rollback",
        Some(json!({"revision": first})),
    )
    .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["keys"][0]["value"], created["keys"][0]["value"]);
    assert_eq!(get(&server, "openai").await.0, 200);
    let (_, history) = call(
        &server,
        "GET",
        "/api/providers/openai/history?limit=1",
        None,
    )
    .await;
    assert_eq!(history["revisions"][0]["source"], "rollback");
    assert_eq!(history["revisions"][0]["action"], "create");
    // The round trip of the restored body keeps the restored secret.
    let (status, again) = put(&server, "openai", &restored).await;
    assert_eq!(status, 200);
    assert_eq!(again["keys"][0]["value"], created["keys"][0]["value"]);
    // A stale If-Match and an unknown revision are refused, and change nothing.
    let (status, err) = with_header(
        &server,
        "POST",
        "/api/providers/openai/rollback",
        &json!({ "revision": first }),
        ("If-Match", "\"stale\""),
    )
    .await;
    assert_error(status, &err, 412, "precondition_failed");
    let (status, err) = call(
        &server,
        "POST",
        "/api/providers/openai/rollback",
        Some(json!({"revision": 999_999})),
    )
    .await;
    assert_error(status, &err, 404, "revision_not_found");

    // On SQLite the raw store holds the original secret again (the rollback restored it).
    if server.database().is_none() {
        assert!(server.stop());
        let rows = server.stored_rows();
        assert!(rows[0].1.contains(FIRST), "{}", rows[0].1);
    }
}

async fn the_feed_follows_a_list_without_gaps_and_compacts(backend: Backend) {
    let server = TestServer::on_with(&backend, &[], &["--history-feed", "8"]);
    put(&server, "openai", &json!({})).await;
    let listed = listed_revision(&server).await;
    // Nothing after the list yet: a zero timeout answers at once, empty.
    let (status, feed) = call(
        &server,
        "GET",
        &format!("/api/changes?since={listed}&timeout=0"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{feed}");
    assert_eq!(
        (feed["changes"].clone(), feed["revision"].clone()),
        (json!([]), json!(listed))
    );

    // A revision the store never made: 410, list again.
    let (status, err) = call(
        &server,
        "GET",
        &format!("/api/changes?since={}&timeout=0", listed + 1000),
        None,
    )
    .await;
    assert_error(status, &err, 410, "revision_unknown");
    let (status, err) = call(&server, "GET", "/api/changes?timeout=61", None).await;
    assert_error(status, &err, 400, "invalid_query");

    // A long poll answers when a write lands.
    let url = format!("{}/api/changes?since={listed}&timeout=20", server.url);
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let body: Value = common::http()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (body, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    put(&server, "groq", &json!({})).await;
    let (body, waited) = waiter.await.unwrap();
    assert!(
        waited < Duration::from_secs(5),
        "the write did not wake the watcher: {waited:?}"
    );
    assert_eq!(body["changes"][0]["provider"], "groq");
    assert_eq!(body["changes"][0]["revision"], listed + 1);

    // Every revision in order, none twice, across many writes.
    for i in 0..6 {
        put(
            &server,
            "openai",
            &json!({"network_config": {"max_retries": i}}),
        )
        .await;
    }
    let (_, feed) = call(
        &server,
        "GET",
        &format!("/api/changes?since={}&timeout=0", listed + 1),
        None,
    )
    .await;
    let seen: Vec<i64> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, ((listed + 2)..=(listed + 7)).collect::<Vec<_>>());

    // Beyond the feed's reach: 410, then list and watch again.
    for i in 0..12 {
        put(
            &server,
            "openai",
            &json!({"network_config": {"max_retries": i + 10}}),
        )
        .await;
    }
    let (status, err) = call(&server, "GET", "/api/changes?since=0&timeout=0", None).await;
    assert_error(status, &err, 410, "revision_compacted");
    let fresh = listed_revision(&server).await;
    assert_eq!(
        call(
            &server,
            "GET",
            &format!("/api/changes?since={fresh}&timeout=0"),
            None
        )
        .await
        .0,
        200
    );
}

on_every_store!(
    history_records_every_write_and_rollback_restores_secrets,
    the_feed_follows_a_list_without_gaps_and_compacts,
);

/// A write through one replica wakes a watcher on the other, with every revision once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_replica_wakes_a_watcher_on_another() {
    let Some(backend) = Backend::postgres("a_write_on_one_replica_wakes_a_watcher_on_another")
    else {
        return;
    };
    let first = TestServer::on(&backend);
    let second = first.replica();
    let since = listed_revision(&second).await;
    let url = format!("{}/api/changes?since={since}&timeout=20", second.url);
    let mut latencies = Vec::new();
    let mut expected = since;
    for i in 0..5 {
        let url = url.replace(&format!("since={since}"), &format!("since={expected}"));
        let waiter = tokio::spawn(async move {
            let body: Value = common::http()
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let written = Instant::now();
        let (status, _) = put(
            &first,
            "openai",
            &json!({"network_config": {"max_retries": i}}),
        )
        .await;
        assert_eq!(status, 200);
        let (body, seen) = waiter.await.unwrap();
        expected += 1;
        assert_eq!(body["changes"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(body["changes"][0]["revision"], expected);
        latencies.push(seen.duration_since(written));
    }
    assert!(
        // Watchers also re-read every second; well under that means the notification woke it.
        latencies.iter().all(|l| *l < Duration::from_millis(400)),
        "a watcher on the other replica waited {latencies:?} (the notification did not wake it)"
    );
}
