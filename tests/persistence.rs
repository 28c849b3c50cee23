//! CONTRACT.md section 7: durability across `kill -9`, serialised writes, whole reads, and one
//! server per SQLite file.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Backend, TestServer, config, consistent_tag, get, put};
use serde_json::json;

async fn acknowledged_writes_survive_kill_9(backend: Backend) {
    let mut server = TestServer::on(&backend);
    let mut acknowledged = Vec::new();
    for tag in 0..40u64 {
        let name = format!("custom-{}", tag % 10);
        let mut body = config(tag);
        body["custom_provider_config"] = json!({"base_provider_type": "openai"});
        let (status, shown) = put(&server, &name, &body).await;
        assert_eq!(status, 200, "{shown}");
        acknowledged.push((name, shown));
    }
    server.kill9();
    server.restart_with_env(&[]);
    for (name, shown) in acknowledged.iter().rev().take(10) {
        assert_eq!(&get(&server, name).await.1, shown, "{name} after kill -9");
    }
}

async fn kill_9_during_a_stream_of_writes_loses_no_acknowledged_write(backend: Backend) {
    let mut server = TestServer::on(&backend);
    let url = server.url.clone();
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let url = url.clone();
            tokio::spawn(async move {
                let http = common::http();
                let mut last_ok = None;
                for i in 0..1000u64 {
                    let tag = w * 10_000 + i;
                    let sent = http
                        .put(format!("{url}/api/providers/p{w}"))
                        .json(&{
                            let mut b = config(tag);
                            b["custom_provider_config"] = json!({"base_provider_type": "openai"});
                            b
                        })
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 200 => last_ok = Some(tag),
                        _ => break,
                    }
                }
                last_ok
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    server.kill9();
    let mut last = Vec::new();
    for writer in writers {
        last.push(writer.await.unwrap());
    }
    server.restart_with_env(&[]);
    for (w, last_ok) in last.into_iter().enumerate() {
        let (status, shown) = get(&server, &format!("p{w}")).await;
        let Some(last_ok) = last_ok else { continue };
        assert_eq!(status, 200);
        let tag = consistent_tag(&shown).expect("a whole write, not a torn one");
        // The last acknowledged write is there, or one sent after it that committed before the kill.
        assert!(
            tag >= last_ok,
            "writer {w}: acknowledged {last_ok}, found {tag}"
        );
    }
}

async fn concurrent_writers_to_one_provider_never_tear(backend: Backend) {
    let server = Arc::new(TestServer::on(&backend));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (server, done) = (Arc::clone(&server), Arc::clone(&done));
        tokio::spawn(async move {
            let mut seen = 0;
            while !done.load(Ordering::Relaxed) {
                let (status, shown) = get(&server, "openai").await;
                if status == 200 {
                    assert!(
                        consistent_tag(&shown).is_some(),
                        "a reader saw a torn provider: {shown}"
                    );
                    seen += 1;
                }
            }
            seen
        })
    };
    common::tagged_writers(std::slice::from_ref(&server), 16, 10).await;
    done.store(true, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0, "the reader saw the provider");
    let (_, last) = get(&server, "openai").await;
    let tag = consistent_tag(&last).expect("the final state is one whole write");
    assert!(tag % 100 == 9, "the last write of some writer wins: {tag}");
}

async fn concurrent_writers_to_many_providers_all_land(backend: Backend) {
    let server = Arc::new(TestServer::on(&backend));
    let writers: Vec<_> = (0..50u64)
        .map(|n| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let mut body = config(n);
                body["custom_provider_config"] = json!({"base_provider_type": "anthropic"});
                put(&server, &format!("provider-{n:02}"), &body).await
            })
        })
        .collect();
    for writer in writers {
        assert_eq!(writer.await.unwrap().0, 200);
    }
    let list = server
        .client()
        .list_providers()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.total, 50);
    for (n, provider) in list.providers.iter().enumerate() {
        assert_eq!(provider.name, format!("provider-{n:02}"));
        let shown = serde_json::to_value(provider).unwrap();
        assert_eq!(consistent_tag(&shown), Some(n as u64));
    }
}

async fn racing_posts_of_one_name_create_it_once(backend: Backend) {
    let server = Arc::new(TestServer::on(&backend));
    let racers: Vec<_> = (0..8u64)
        .map(|n| {
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let mut body = config(n);
                body["provider"] = json!("openai");
                let url = format!("{}/api/providers", server.url);
                let bytes = serde_json::to_vec(&body).unwrap();
                let (status, _, shown) = common::raw("POST", &url, Some(bytes)).await;
                (status, shown)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut winner = None;
    for racer in racers {
        let (status, shown) = racer.await.unwrap();
        if status == 200 {
            winner = consistent_tag(&shown);
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(consistent_tag(&get(&server, "openai").await.1), winner);
}

#[tokio::test]
async fn a_second_server_on_the_same_file_refuses_to_start() {
    let server = TestServer::start();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(["serve", "--bind", "127.0.0.1:0", "--store"])
        .arg(format!("sqlite://{}", server.db_path().display()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
    assert_eq!(
        server
            .client()
            .health()
            .send()
            .await
            .unwrap()
            .into_inner()
            .status,
        "ok"
    );
}

#[tokio::test]
async fn the_store_is_created_on_first_start_in_a_new_folder() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/folder/providers.db");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(["serve", "--bind", "127.0.0.1:0", "--store"])
        .arg(format!("sqlite://{}", db.display()))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !db.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(db.exists());
}

on_every_store!(
    acknowledged_writes_survive_kill_9,
    kill_9_during_a_stream_of_writes_loses_no_acknowledged_write,
    concurrent_writers_to_one_provider_never_tear,
    concurrent_writers_to_many_providers_all_land,
    racing_posts_of_one_name_create_it_once,
);
