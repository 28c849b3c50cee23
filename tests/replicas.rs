//! Two server processes on one PostgreSQL database, as behind a load balancer: no stale reads,
//! no torn or lost updates, `If-Match` holding across replicas.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Backend, TestServer, config, consistent_tag, get, put, raw};
use serde_json::{Value, json};

/// Two replicas on a new database, or `None` (the test says it skipped) without PostgreSQL.
fn replicas(test: &str) -> Option<[Arc<TestServer>; 2]> {
    let backend = Backend::postgres(test)?;
    let first = TestServer::on(&backend);
    let second = first.replica();
    Some([Arc::new(first), Arc::new(second)])
}

#[tokio::test]
async fn a_write_through_one_replica_is_read_through_the_other() {
    let Some([a, b]) = replicas("a_write_through_one_replica_is_read_through_the_other") else {
        return;
    };
    for round in 0..20u64 {
        let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (status, written) = put(writer, "openai", &config(round)).await;
        assert_eq!(status, 200, "{written}");
        let (status, read) = get(reader, "openai").await;
        assert_eq!(status, 200);
        assert_eq!(
            read, written,
            "round {round}: the other replica read a stale state"
        );
    }
    let url = format!("{}/api/providers/openai", b.url);
    assert_eq!(raw("DELETE", &url, None).await.0, 200);
    assert_eq!(get(&a, "openai").await.0, 404);
    let (_, _, list) = raw("GET", &format!("{}/api/providers", a.url), None).await;
    assert_eq!(list["total"], 0);
}

/// Each writer adds its own model to one key by read-modify-write with `If-Match`, through
/// alternating replicas, retrying on 412. Every model must be there at the end.
#[tokio::test]
async fn conditional_writers_through_both_replicas_lose_no_update() {
    let Some(servers) = replicas("conditional_writers_through_both_replicas_lose_no_update") else {
        return;
    };
    let (status, _) = put(
        &servers[0],
        "openai",
        &json!({"keys": [{"id": "k", "value": {"value": "sk-shared-0000000001"}, "models": []}]}),
    )
    .await;
    assert_eq!(status, 200);
    let http = common::http();
    let writers: Vec<_> = (0..12usize)
        .map(|w| {
            let (servers, http) = (servers.clone(), http.clone());
            tokio::spawn(async move {
                let mut refused = 0;
                for attempt in 0.. {
                    assert!(attempt < 500, "writer {w} never got through");
                    let url = format!("{}/api/providers/openai", servers[(w + attempt) % 2].url);
                    let read = http.get(&url).send().await.unwrap();
                    let tag = read.headers()["etag"].to_str().unwrap().to_string();
                    let mut body: Value = read.json().await.unwrap();
                    body["keys"][0]["models"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!(format!("model-{w}")));
                    let written = http
                        .put(&url)
                        .header("if-match", &tag)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    match written.status().as_u16() {
                        200 => return refused,
                        412 => refused += 1,
                        other => panic!("writer {w}: {other} {}", written.text().await.unwrap()),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    let mut refused = 0;
    for writer in writers {
        refused += writer.await.unwrap();
    }
    let (_, last) = get(&servers[1], "openai").await;
    let mut models: Vec<String> = last["keys"][0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    models.sort();
    let mut expected: Vec<String> = (0..12).map(|w| format!("model-{w}")).collect();
    expected.sort();
    assert_eq!(
        models, expected,
        "an update was lost ({refused} writes got 412)"
    );
    assert_eq!(
        last["keys"][0]["value"]["value"],
        format!("sk-s{}0001", "*".repeat(24))
    );
}

/// Unconditional writers through both replicas and readers on both: every read is one whole
/// write, and the final state is one writer's last write.
#[tokio::test]
async fn writers_through_both_replicas_never_tear() {
    let Some(servers) = replicas("writers_through_both_replicas_never_tear") else {
        return;
    };
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = servers
        .iter()
        .map(|server| {
            let (server, done) = (Arc::clone(server), Arc::clone(&done));
            tokio::spawn(async move {
                let mut seen = 0;
                while !done.load(Ordering::Relaxed) {
                    let (status, shown) = get(&server, "openai").await;
                    if status == 200 {
                        assert!(consistent_tag(&shown).is_some(), "torn read: {shown}");
                        seen += 1;
                    }
                }
                seen
            })
        })
        .collect();
    common::tagged_writers(&servers, 16, 10).await;
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
    let (_, from_a) = get(&servers[0], "openai").await;
    let (_, from_b) = get(&servers[1], "openai").await;
    assert_eq!(from_a, from_b);
    let tag = consistent_tag(&from_a).expect("one whole write");
    assert_eq!(tag % 100, 9, "some writer's last write wins: {tag}");
}
