//! `migrate` through the real binary: history made through a real server's API, the store moved
//! (SQLite to SQLite and, with PostgreSQL configured, SQLite to PostgreSQL and back) across key
//! changes (in clear → sealed, key A → key B, sealed → in clear), then a server started on each
//! target and compared with the source through the typed client: every provider with its
//! `ETag` and `config_hash`, every history, every revision's state, the change feed from 0; a
//! deleted provider undeleted; the secret literals carried; no secret in clear in a sealed
//! target; a re-run a no-op; a different target refused and left as it was; a wrong key refused
//! before anything is written.

mod common;

use std::num::NonZeroU64;
use std::process::Command;

use common::{Backend, TestServer, pg_admin, put, raw};
use serde_json::{Value, json};

const FIRST: &str = "sk-migrate-first-0000000001";
const SECOND: &str = "sk-migrate-second-000000002";
const GONE: &str = "sk-migrate-deleted-00000003";
const FROM_FILE: &str = "sk-migrate-config-file-0004";
const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
/// Every provider the history touches, the deleted one included.
const NAMES: &[&str] = &["openai", "anthropic", "groq"];
/// What no output may show.
const SECRETS: &[&str] = &[FIRST, SECOND, GONE, FROM_FILE, KEY_A, KEY_B];

/// One run of `migrate`: exit status, stdout, stderr. Keys go through the environment.
fn migrate(from: &str, to: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(["migrate", "--from", from, "--to", to])
        .args(args)
        .env_remove("BIFROST_MIGRATE_FROM")
        .env_remove("BIFROST_MIGRATE_TO")
        .env_remove("BIFROST_FROM_ENCRYPTION_KEY")
        .env_remove("BIFROST_TO_ENCRYPTION_KEY")
        .env_remove("BIFROST_MIGRATE_TIMEOUT")
        .envs(env.iter().copied())
        .output()
        .expect("run bifrost-providers migrate");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    for secret in SECRETS {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret in the output of migrate: {stdout} {stderr}"
        );
    }
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

async fn call(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    let (status, _, body) = raw(method, &format!("{}{path}", server.url), body).await;
    (status, body)
}

/// A source server on a SQLite file, with a config.json provider (for a stored `config_hash`)
/// and a history: creates, updates, a key change, a delete and a rollback. Stopped.
async fn source() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    let config = json!({"providers": {"groq": {
        "keys": [{"name": "file-key", "value": FROM_FILE, "models": [], "weight": 1.0}]
    }}});
    std::fs::write(&file, serde_json::to_vec(&config).unwrap()).unwrap();
    let mut server = TestServer::start_with(&[], &["--config", file.to_str().unwrap()]);
    let key = |value: &str| json!({"keys": [{"id": "k1", "name": "main", "value": value}]});
    assert_eq!(put(&server, "openai", &key(FIRST)).await.0, 200);
    let mut updated = key(FIRST);
    updated["network_config"] = json!({"max_retries": 4});
    assert_eq!(put(&server, "openai", &updated).await.0, 200);
    let mut changed = key(SECOND);
    changed["network_config"] = json!({"max_retries": 4});
    assert_eq!(put(&server, "openai", &changed).await.0, 200);
    assert_eq!(put(&server, "anthropic", &key(GONE)).await.0, 200);
    let (status, _) = call(&server, "DELETE", "/api/providers/anthropic", None).await;
    assert_eq!(status, 200);
    let (status, history) = call(&server, "GET", "/api/providers/openai/history", None).await;
    assert_eq!(status, 200, "{history}");
    let first = history["revisions"].as_array().unwrap().last().unwrap()["revision"].clone();
    let (status, body) = call(
        &server,
        "POST",
        "/api/providers/openai/rollback",
        Some(json!({ "revision": first })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(server.stop());
    (server, dir)
}

/// Everything a client sees of the store, through the typed client: the list and its revision,
/// each provider with its `ETag`, each history, each revision's state, the change feed from 0.
/// Without `hashes`, the `config_hash` values are left out (they are keyed by the encryption
/// key when there is one).
async fn view(server: &TestServer, hashes: bool) -> Value {
    let client = server.client();
    let listed = client.list_providers().send().await.unwrap();
    let mut out = json!({
        "list_revision": listed.headers()["x-bifrost-revision"].to_str().unwrap(),
        "list": serde_json::to_value(listed.into_inner()).unwrap(),
    });
    for name in NAMES {
        let provider = match client.get_provider().provider(*name).send().await {
            Ok(r) => json!({
                "etag": r.headers()["etag"].to_str().unwrap(),
                "body": serde_json::to_value(r.into_inner()).unwrap(),
            }),
            Err(e) => json!({ "status": e.status().map(|s| s.as_u16()) }),
        };
        let history = client
            .get_provider_history()
            .provider(*name)
            .limit(NonZeroU64::new(100).unwrap())
            .send()
            .await
            .unwrap()
            .into_inner();
        let history = serde_json::to_value(history).unwrap();
        let mut states = Vec::new();
        for revision in history["revisions"].as_array().unwrap() {
            let number = NonZeroU64::new(revision["revision"].as_u64().unwrap()).unwrap();
            states.push(
                match client
                    .get_provider_revision()
                    .provider(*name)
                    .revision(number)
                    .send()
                    .await
                {
                    Ok(r) => serde_json::to_value(r.into_inner()).unwrap(),
                    Err(e) => json!({ "status": e.status().map(|s| s.as_u16()) }),
                },
            );
        }
        out[*name] = json!({"provider": provider, "history": history, "states": states});
    }
    let feed = client
        .watch_changes()
        .since(0)
        .timeout(0)
        .send()
        .await
        .unwrap()
        .into_inner();
    out["feed"] = serde_json::to_value(feed).unwrap();
    if !hashes {
        strip_hashes(&mut out);
    }
    out
}

fn strip_hashes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("config_hash");
            map.values_mut().for_each(strip_hashes);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_hashes),
        _ => {}
    }
}

/// A stopped server on a new, empty store of `backend`: a migration target.
fn empty_target(backend: &Backend) -> TestServer {
    let mut server = TestServer::on(backend);
    assert!(server.stop());
    server
}

/// What a stopped server's store holds, as bytes: the SQLite file and its logs, or every row of
/// every table on PostgreSQL.
fn bytes(server: &TestServer) -> Vec<u8> {
    match server.database() {
        None => server.raw_store(),
        Some(db) => pg_admin(
            &db.url,
            "SELECT string_agg(t, E'\\n') FROM (
                 SELECT p::text AS t FROM providers p UNION ALL
                 SELECT h::text FROM bifrost_history h UNION ALL
                 SELECT r::text FROM bifrost_revision r) rows",
        )
        .into_iter()
        .flatten()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes(),
    }
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A migration onto `target` that must succeed, then the same again, which must say that there
/// is nothing to do and leave the target as it was. Returns what the first run said on stderr.
fn migrate_twice(from: &TestServer, target: &TestServer, env: &[(&str, &str)]) -> String {
    let (code, stdout, first) = migrate(&from.store_url(), &target.store_url(), env, &[]);
    assert_eq!(code, 0, "{stdout} {first}");
    assert!(stdout.starts_with("migrated 2 providers, "), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout}");
    let before = bytes(target);
    let (code, stdout, stderr) = migrate(&from.store_url(), &target.store_url(), env, &[]);
    assert_eq!(code, 0, "{stdout} {stderr}");
    assert!(stdout.contains("already holds this migration"), "{stdout}");
    assert!(stdout.contains("nothing written"), "{stdout}");
    if target.database().is_some() {
        assert_eq!(bytes(target), before, "a no-op run changed the target");
    }
    first
}

/// Undeletes `anthropic` on a running server: its last kept state comes back, with its key.
async fn undelete(server: &TestServer) {
    let client = server.client();
    let history = client
        .get_provider_history()
        .provider("anthropic")
        .send()
        .await
        .unwrap()
        .into_inner();
    let history = serde_json::to_value(history).unwrap();
    let created = history["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "create")
        .expect("the deleted provider's history is carried")["revision"]
        .as_i64()
        .unwrap();
    let (status, body) = call(
        server,
        "POST",
        "/api/providers/anthropic/rollback",
        Some(json!({ "revision": created })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["keys"][0]["name"], "main", "{body}");
}

#[tokio::test]
async fn sqlite_to_sqlite_across_key_changes() {
    let (source, _config) = source().await;
    let mut source = source;
    source.restart();
    let original = view(&source, true).await;
    let plain_view = view(&source, false).await;
    assert!(source.stop());
    assert_eq!(original["anthropic"]["provider"]["status"], 404);
    assert_eq!(original["anthropic"]["history"]["total"], 2, "{original}");
    assert!(
        original["groq"]["provider"]["body"]["config_hash"].is_string(),
        "{original}"
    );

    // In clear → in clear: everything equal, config_hash included (the store's key is carried).
    let mut clear = empty_target(&Backend::Sqlite);
    let said = migrate_twice(&source, &clear, &[]);
    assert!(
        said.is_empty(),
        "no progress bar off a terminal, no note: {said}"
    );
    assert!(holds(&clear.raw_store(), FIRST), "the literal is carried");
    // The same content, but asked sealed: refused (exit 1), the target left in clear.
    let (code, _, stderr) = migrate(
        &source.store_url(),
        &clear.store_url(),
        &[("BIFROST_TO_ENCRYPTION_KEY", KEY_A)],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("holds this migration"), "{stderr}");
    assert!(
        holds(&clear.raw_store(), FIRST),
        "a refused run re-sealed the target"
    );
    clear.restart();
    assert_eq!(view(&clear, true).await, original);

    // In clear → sealed with A: nothing in clear in the file; all equal but the keyed hashes.
    let mut sealed_a = empty_target(&Backend::Sqlite);
    let said = migrate_twice(&source, &sealed_a, &[("BIFROST_TO_ENCRYPTION_KEY", KEY_A)]);
    assert!(
        said.contains("config_hash values responses show change"),
        "{said}"
    );
    let stored = sealed_a.raw_store();
    for secret in [FIRST, SECOND, GONE, FROM_FILE] {
        assert!(
            !holds(&stored, secret),
            "{secret} in clear in a sealed store"
        );
    }
    sealed_a.restart_with_env(&[("BIFROST_ENCRYPTION_KEY", KEY_A)]);
    let shown_a = view(&sealed_a, true).await;
    assert_eq!(view(&sealed_a, false).await, plain_view);
    assert_ne!(
        shown_a["groq"]["provider"]["body"]["config_hash"],
        original["groq"]["provider"]["body"]["config_hash"],
        "the shown config_hash is keyed by the encryption key"
    );
    assert!(sealed_a.stop());

    // Sealed with A, read with a wrong key or none: exit 2, the target untouched.
    let mut sealed_b = empty_target(&Backend::Sqlite);
    let untouched = sealed_b.raw_store();
    for env in [
        vec![("BIFROST_FROM_ENCRYPTION_KEY", KEY_B)],
        vec![("BIFROST_TO_ENCRYPTION_KEY", KEY_B)],
    ] {
        let (code, stdout, stderr) =
            migrate(&sealed_a.store_url(), &sealed_b.store_url(), &env, &[]);
        assert_eq!(code, 2, "{stdout} {stderr}");
        assert!(stderr.contains("encrypt"), "{stderr}");
        assert_eq!(sealed_b.raw_store(), untouched, "a refused run wrote");
    }
    let (code, _, stderr) = migrate(
        &sealed_a.store_url(),
        &sealed_b.store_url(),
        &[],
        &["--from-encryption-key", "not a key"],
    );
    assert_eq!(code, 2, "{stderr}");

    // Sealed with A → sealed with B.
    migrate_twice(
        &sealed_a,
        &sealed_b,
        &[
            ("BIFROST_FROM_ENCRYPTION_KEY", KEY_A),
            ("BIFROST_TO_ENCRYPTION_KEY", KEY_B),
        ],
    );
    let stored = sealed_b.raw_store();
    for secret in [FIRST, SECOND, GONE, FROM_FILE] {
        assert!(
            !holds(&stored, secret),
            "{secret} in clear in a sealed store"
        );
    }
    sealed_b.restart_with_env(&[("BIFROST_ENCRYPTION_KEY", KEY_B)]);
    assert_eq!(view(&sealed_b, false).await, plain_view);
    assert!(sealed_b.stop());

    // Sealed with B → in clear: every literal back, and the views equal with their hashes.
    let mut back = empty_target(&Backend::Sqlite);
    migrate_twice(&sealed_b, &back, &[("BIFROST_FROM_ENCRYPTION_KEY", KEY_B)]);
    let stored = back.raw_store();
    for secret in [FIRST, SECOND, GONE, FROM_FILE] {
        assert!(holds(&stored, secret), "{secret} lost on the way");
    }
    back.restart();
    assert_eq!(view(&back, true).await, original);
    undelete(&back).await;
    assert_eq!(common::get(&back, "anthropic").await.0, 200);
    assert!(back.stop());
    assert!(
        back.stored_rows()
            .iter()
            .any(|(name, config, _)| name == "anthropic" && config.contains(GONE)),
        "the undeleted provider has its secret"
    );
}

#[tokio::test]
async fn a_different_target_is_refused_unless_replaced() {
    let (source, _config) = source().await;
    let mut source = source;
    let mut other = TestServer::start();
    assert_eq!(put(&other, "mistral", &json!({})).await.0, 200);
    assert!(other.stop());
    let before = other.stored_rows();
    let bytes_before = other.raw_store();
    let (code, stdout, stderr) = migrate(&source.store_url(), &other.store_url(), &[], &[]);
    assert_eq!(code, 1, "{stdout} {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("--replace-target"), "{stderr}");
    assert_eq!(other.stored_rows(), before);
    assert_eq!(other.raw_store(), bytes_before, "a refused run wrote");

    // Usage errors: a memory store, the same store twice, a source that does not exist.
    for (from, to) in [
        (source.store_url(), "memory://".to_string()),
        (source.store_url(), source.store_url()),
        ("sqlite:///nonexistent/x.db".to_string(), other.store_url()),
    ] {
        let (code, _, stderr) = migrate(&from, &to, &[], &[]);
        assert_eq!(code, 2, "{stderr}");
    }
    assert!(!std::path::Path::new("/nonexistent/x.db").exists());

    let (code, stdout, stderr) = migrate(
        &source.store_url(),
        &other.store_url(),
        &[],
        &["--replace-target"],
    );
    assert_eq!(code, 0, "{stdout} {stderr}");
    let replaced = other.raw_store();
    assert!(
        !holds(&replaced, "mistral"),
        "the replaced provider is gone"
    );
    source.restart();
    let original = view(&source, true).await;
    other.restart();
    assert_eq!(view(&other, true).await, original);
}

#[tokio::test]
async fn sqlite_to_postgres_and_back() {
    let Some(postgres) = Backend::postgres("sqlite_to_postgres_and_back") else {
        return;
    };
    let (source, _config) = source().await;
    let mut source = source;
    source.restart();
    let original = view(&source, true).await;
    let plain_view = view(&source, false).await;
    assert!(source.stop());

    // In clear → PostgreSQL, in clear: all equal, config_hash included.
    let mut clear = empty_target(&postgres);
    migrate_twice(&source, &clear, &[]);
    clear.restart();
    assert_eq!(view(&clear, true).await, original);
    // A write there continues the same revision numbering.
    assert_eq!(put(&clear, "openai", &json!({})).await.0, 200);
    let (_, feed) = call(&clear, "GET", "/api/changes?since=0&timeout=0", None).await;
    assert_eq!(
        feed["revision"].as_i64().unwrap(),
        original["feed"]["revision"].as_i64().unwrap() + 1
    );
    assert!(clear.stop());
    // Now it holds something else: refused, left as it was.
    let held = bytes(&clear);
    let (code, _, stderr) = migrate(&source.store_url(), &clear.store_url(), &[], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(bytes(&clear), held);

    // In clear → PostgreSQL sealed with A.
    let mut sealed = empty_target(&postgres);
    migrate_twice(&source, &sealed, &[("BIFROST_TO_ENCRYPTION_KEY", KEY_A)]);
    let stored = bytes(&sealed);
    for secret in [FIRST, SECOND, GONE, FROM_FILE] {
        assert!(
            !holds(&stored, secret),
            "{secret} in clear in a sealed store"
        );
    }
    sealed.restart_with_env(&[("BIFROST_ENCRYPTION_KEY", KEY_A)]);
    assert_eq!(view(&sealed, false).await, plain_view);
    assert!(sealed.stop());

    // A wrong key: exit 2, nothing written.
    let back = empty_target(&Backend::Sqlite);
    let untouched = back.raw_store();
    let (code, _, stderr) = migrate(
        &sealed.store_url(),
        &back.store_url(),
        &[("BIFROST_FROM_ENCRYPTION_KEY", KEY_B)],
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(back.raw_store(), untouched);

    // PostgreSQL sealed with A → SQLite sealed with B → SQLite in clear: the literals back.
    let mut sealed_b = back;
    migrate_twice(
        &sealed,
        &sealed_b,
        &[
            ("BIFROST_FROM_ENCRYPTION_KEY", KEY_A),
            ("BIFROST_TO_ENCRYPTION_KEY", KEY_B),
        ],
    );
    let stored = sealed_b.raw_store();
    for secret in [FIRST, SECOND, GONE, FROM_FILE] {
        assert!(
            !holds(&stored, secret),
            "{secret} in clear in a sealed store"
        );
    }
    sealed_b.restart_with_env(&[("BIFROST_ENCRYPTION_KEY", KEY_B)]);
    assert_eq!(view(&sealed_b, false).await, plain_view);
    assert!(sealed_b.stop());
    let mut plain = empty_target(&postgres);
    migrate_twice(&sealed_b, &plain, &[("BIFROST_FROM_ENCRYPTION_KEY", KEY_B)]);
    let stored = bytes(&plain);
    for secret in [FIRST, SECOND, GONE, FROM_FILE] {
        assert!(holds(&stored, secret), "{secret} lost on the way");
    }
    plain.restart();
    assert_eq!(view(&plain, true).await, original);
    undelete(&plain).await;
    assert_eq!(common::get(&plain, "anthropic").await.0, 200);
}

/// Interrupted inside the target's transaction (held up by another session's lock on the key
/// row, after every provider and revision is inserted): exit 130, and the target holds nothing.
#[tokio::test]
async fn an_interrupted_migration_writes_nothing() {
    let Some(postgres) = Backend::postgres("an_interrupted_migration_writes_nothing") else {
        return;
    };
    let (source, _config) = source().await;
    let target = empty_target(&postgres);
    let url = target.database().unwrap().url.clone();
    let (holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    holder
        .batch_execute("BEGIN; SELECT * FROM bifrost_keys FOR UPDATE")
        .await
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bifrost-providers"))
        .args(["migrate", "--from", &source.store_url(), "--to", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the migration waits on the lock, inside its transaction.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting = pg_admin(
            &url,
            "SELECT count(*) FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE bifrost_keys%'",
        );
        if waiting[0][0].as_deref() == Some("1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the migration never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    holder.batch_execute("ROLLBACK").await.unwrap();
    let held = pg_admin(
        &url,
        "SELECT (SELECT count(*) FROM providers) + (SELECT count(*) FROM bifrost_history)
             + (SELECT head FROM bifrost_revision)",
    );
    assert_eq!(held[0][0].as_deref(), Some("0"), "an interrupted run wrote");
}
