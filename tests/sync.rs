//! `serve --sync-to`: a store keeps gateways in step. The targets are real servers that speak
//! Bifrost's API (this one, which serves both generations: one detected as G1, keys inside the
//! provider body, one configured as G2, keys through `/keys`), on real ports, stopped, restarted
//! empty and edited behind the store's back. Every secret reaches every target intact (read
//! from the target's own store file) and none shows in the store's log, status or metrics.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestServer};
use serde_json::{Value, json};

const LITERAL: &str = "sk-sync-literal-0123456789abcdefghijkl";
const SECOND: &str = "sk-sync-rotated-9876543210zyxwvutsrqpo";
const TARGET_TOKEN: &str = "target-admin-token-0123456789abcdef";

fn provider(secret: &str, retries: u64) -> Value {
    json!({
        "keys": [
            {"id": "k-literal", "name": "literal", "value": secret, "models": ["gpt-4o"], "weight": 1.0},
            {"id": "k-ref", "name": "reference", "value": "env.OPENAI_API_KEY", "models": [], "weight": 0.5, "enabled": false}
        ],
        "network_config": {"base_url": "https://api.openai.com", "max_retries": retries},
        "concurrency_and_buffer_size": {"concurrency": 10, "buffer_size": 100}
    })
}

async fn put(server: &TestServer, name: &str, body: &Value, token: Option<&str>) -> u16 {
    let mut request = common::http()
        .put(format!("{}/api/providers/{name}", server.url))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("PUT").status().as_u16()
}

async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = common::http().get(format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            (status, answer.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Waits up to 15 s for `done` to hold of what `path` answers on `server`.
async fn until(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(server, path, token).await;
        if done(status, &body) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The keys of a target's provider, by name: `enabled`, `models`, the secret's form.
fn keys(body: &Value) -> Vec<(String, bool, Value, Value)> {
    let mut out: Vec<_> = body["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            (
                k["name"].as_str().unwrap_or_default().to_string(),
                k["enabled"].as_bool().unwrap_or(true),
                k["models"].clone(),
                k["value"]["env_var"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn stored_text(server: &TestServer) -> String {
    String::from_utf8_lossy(&server.raw_store()).into_owned()
}

fn restart_empty(server: &mut TestServer) {
    server.kill9();
    let db = server.db_path();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    server.restart();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_reaches_every_target_and_drift_is_corrected() {
    let g1 = TestServer::start();
    let mut g2 = TestServer::start_with(&[("BIFROST_ADMIN_TOKEN", TARGET_TOKEN)], &[]);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("g2-token");
    std::fs::write(&token_file, format!("{TARGET_TOKEN}\n")).unwrap();
    let targets = dir.path().join("targets.toml");
    std::fs::write(
        &targets,
        format!(
            "[[target]]\nurl = {:?}\ngeneration = \"g2\"\nbearer_token_file = {:?}\n",
            g2.url,
            token_file.display().to_string()
        ),
    )
    .unwrap();
    // A Bifrost v1.5 gateway (no ETag, no keys in a provider GET, keys in a body ignored), whose
    // generation is detected from what it answers.
    let behind = TestServer::start();
    let v15 = format!(
        "http://{}",
        common::proxy::faulty_proxy(behind.url.clone(), &common::proxy::BIFROST_V15).await
    );
    let store = TestServer::start_with(
        &[],
        &[
            "--sync-to",
            &g1.url,
            "--sync-to",
            &v15,
            "--sync-targets",
            targets.to_str().unwrap(),
            "--sync-interval",
            "1",
        ],
    );
    let tok = Some(TARGET_TOKEN);

    // A provider written to the store reaches both targets, keys and all.
    assert_eq!(
        put(&store, "openai", &provider(LITERAL, 2), None).await,
        200
    );
    for (target, token) in [(&g1, None), (&g2, tok)] {
        until(
            target,
            "/api/providers/openai",
            token,
            "the provider on a target",
            |s, b| s == 200 && b["network_config"]["max_retries"] == 2,
        )
        .await;
    }
    until(
        &behind,
        "/api/providers/openai/keys",
        None,
        "the keys on the v1.5 gateway",
        |s, b| s == 200 && b["keys"].as_array().is_some_and(|k| k.len() == 2),
    )
    .await;
    let (_, on_v15) = get(&behind, "/api/providers/openai", None).await;
    let (_, on_g1) = get(&g1, "/api/providers/openai", None).await;
    let (_, on_store) = get(&store, "/api/providers/openai", None).await;
    assert_eq!(keys(&on_g1), keys(&on_store), "{on_g1}");
    assert_eq!(keys(&on_v15), keys(&on_store), "{on_v15}");
    until(
        &g2,
        "/api/providers/openai/keys",
        tok,
        "the keys through /keys",
        |s, b| s == 200 && b["keys"].as_array().is_some_and(|k| k.len() == 2),
    )
    .await;
    let (_, g2_keys) = get(&g2, "/api/providers/openai/keys", tok).await;
    let disabled = g2_keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "reference")
        .unwrap();
    assert_eq!(disabled["enabled"], false, "{g2_keys}");
    assert_eq!(
        disabled["value"]["env_var"], "env.OPENAI_API_KEY",
        "{g2_keys}"
    );
    // The literal reached the targets in full, the reference as a reference.
    for target in [&g1, &g2, &behind] {
        let stored = stored_text(target);
        assert!(stored.contains(LITERAL), "the literal is not on a target");
        assert!(stored.contains("env.OPENAI_API_KEY"));
    }

    // A rotated secret alone (same shape, same mask length) is carried too.
    assert_eq!(put(&store, "openai", &provider(SECOND, 2), None).await, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    while ![&g1, &g2, &behind]
        .iter()
        .all(|t| stored_text(t).contains(SECOND))
    {
        if Instant::now() > deadline {
            let (_, status) = get(&store, "/api/sync", None).await;
            let (_, g1_now) = get(&g1, "/api/providers/openai", None).await;
            panic!(
                "the rotated secret did not reach the targets: {status} {g1_now} {}",
                stored_text(&g1).contains(SECOND)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // An edit made on a gateway behind the store's back is undone by the next reconcile.
    let mut edited = provider("sk-edited-behind-the-back-000000000000", 7);
    edited["keys"][0]["id"] = json!("k-literal");
    assert_eq!(put(&g1, "openai", &edited, None).await, 200);
    assert_eq!(
        put(
            &g1,
            "groq",
            &provider("sk-stray-0000000000000000000000", 1),
            None
        )
        .await,
        200
    );
    until(
        &g1,
        "/api/providers/openai",
        None,
        "the drift corrected",
        |s, b| s == 200 && b["network_config"]["max_retries"] == 2,
    )
    .await;
    until(
        &g1,
        "/api/providers/groq",
        None,
        "the stray provider deleted",
        |s, _| s == 404,
    )
    .await;
    assert!(stored_text(&g1).contains(SECOND));

    // A target restarted empty is filled again.
    restart_empty(&mut g2);
    until(
        &g2,
        "/api/providers/openai/keys",
        tok,
        "the empty target filled",
        |s, b| s == 200 && b["keys"].as_array().is_some_and(|k| k.len() == 2),
    )
    .await;

    // A delete reaches them too.
    let deleted = common::http()
        .delete(format!("{}/api/providers/openai", store.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    for (target, token) in [(&g1, None), (&g2, tok)] {
        until(
            target,
            "/api/providers/openai",
            token,
            "the delete on a target",
            |s, _| s == 404,
        )
        .await;
    }

    // The status says where each stands; no secret in it, nor in the store's log or metrics.
    until(&store, "/api/sync", None, "every target in sync", |s, b| {
        s == 200
            && b["targets"].as_array().is_some_and(|t| {
                t.len() == 3
                    && t.iter()
                        .all(|t| t["state"] == "in_sync" && t["lag_revisions"] == 0)
            })
    })
    .await;
    let (_, status) = get(&store, "/api/sync", None).await;
    let targets = status["targets"].as_array().unwrap();
    assert_eq!(targets[0]["target"], g1.url.as_str());
    assert_eq!(targets[0]["generation"], "g1");
    assert_eq!(targets[1]["generation"], "g2", "detected: {status}");
    assert_eq!(targets[2]["generation"], "g2", "configured: {status}");
    // g1: the edit and the stray provider; g2: restarted empty.
    let drift = |i: usize| targets[i]["drift_corrected"].as_i64().unwrap();
    assert!(drift(0) >= 2 && drift(2) >= 1, "{status}");
    assert_eq!(targets[0]["applied_revision"], status["revision"]);
    let metrics = common::http()
        .get(format!("{}/metrics", store.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "bifrost_sync_lag_revisions{{target=\"{}\"}} 0",
            g1.url
        )),
        "{metrics}"
    );
    for secret in [LITERAL, SECOND, TARGET_TOKEN] {
        assert!(!status.to_string().contains(secret));
        assert!(!metrics.contains(secret));
        assert!(
            !store.logs().contains(secret),
            "a secret in the store's log"
        );
    }
}

/// How a target fails in [`an_outage_is_caught_up_and_holds_up_nothing`].
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// Killed (connections refused), then started again on its store.
    Down,
    /// Frozen with SIGSTOP (connections taken, nothing answered: every request times out),
    /// then let go on.
    Hung,
}

/// One target of two fails: the API and the other target are held up by nothing, the failure
/// is reported, and the target catches up once it answers again, every secret whole; with the
/// store on `backend`.
async fn an_outage_is_caught_up_and_holds_up_nothing(outage: Outage, backend: Backend) {
    let healthy = TestServer::start();
    let mut failing = TestServer::start();
    let store = TestServer::on_with(
        &backend,
        &[],
        &[
            "--sync-to",
            &failing.url,
            "--sync-to",
            &healthy.url,
            "--sync-timeout",
            "3",
            "--sync-interval",
            "30",
        ],
    );
    assert_eq!(
        put(&store, "mistral", &provider(LITERAL, 1), None).await,
        200
    );
    until(
        &failing,
        "/api/providers/mistral",
        None,
        "the first write",
        |s, _| s == 200,
    )
    .await;
    match outage {
        Outage::Down => failing.kill9(),
        Outage::Hung => failing.freeze(),
    }

    for retries in 2..5 {
        let started = Instant::now();
        assert_eq!(
            put(&store, "mistral", &provider(SECOND, retries), None).await,
            200
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{outage:?}: the API waited on a gateway (its requests time out after 3 s)"
        );
        until(
            &healthy,
            "/api/providers/mistral",
            None,
            "a change on the answering target",
            |s, b| s == 200 && b["network_config"]["max_retries"] == retries,
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{outage:?}: the answering target was held up"
        );
    }
    until(
        &store,
        "/api/sync",
        None,
        "the failing target reported",
        |_, b| {
            b["targets"][0]["state"] == "failing"
                && b["targets"][0]["last_error"]["message"].is_string()
                && b["targets"][0]["lag_revisions"]
                    .as_i64()
                    .is_some_and(|l| l >= 1)
                && b["targets"][1]["state"] == "in_sync"
        },
    )
    .await;

    match outage {
        Outage::Down => failing.restart(),
        Outage::Hung => failing.thaw(),
    }
    until(
        &failing,
        "/api/providers/mistral",
        None,
        "the target caught up",
        |s, b| s == 200 && b["network_config"]["max_retries"] == 4,
    )
    .await;
    until(&store, "/api/sync", None, "in sync again", |_, b| {
        b["targets"][0]["state"] == "in_sync" && b["targets"][0]["lag_revisions"] == 0
    })
    .await;
    assert!(
        stored_text(&failing).contains(SECOND),
        "{outage:?}: the rotated literal reached the target whole"
    );
    let (_, status) = get(&store, "/api/sync", None).await;
    assert!(
        !status.to_string().contains(SECOND),
        "a secret in the status: {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_is_down_is_caught_up_and_holds_up_nothing() {
    an_outage_is_caught_up_and_holds_up_nothing(Outage::Down, Backend::Sqlite).await;
}

/// With the store on PostgreSQL when the suite has it (on SQLite otherwise).
#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_never_answers_times_out_and_catches_up() {
    let backend = Backend::postgres("a_target_that_never_answers_times_out_and_catches_up")
        .unwrap_or(Backend::Sqlite);
    an_outage_is_caught_up_and_holds_up_nothing(Outage::Hung, backend).await;
}

#[test]
fn credentials_in_a_target_url_or_in_clear_off_loopback_stop_the_start() {
    for (url, said) in [
        ("http://admin:pw@127.0.0.1:9", "may not hold credentials"),
        ("http://192.0.2.1:8080", "plain HTTP off loopback"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--store",
                "memory://",
                "--sync-to",
                url,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}");
        assert!(stderr.contains(said), "{stderr}");
        assert!(!stderr.contains(":pw@"), "{stderr}");
    }
}
