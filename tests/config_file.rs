//! `--config`: a Bifrost config.json loaded at start, edited between restarts, on every store.

mod common;

use common::{Backend, TestServer, get, put};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const OPENAI_SECRET: &str = "sk-file-0123456789abcdef";

/// A Bifrost-style file: plain string secrets, an `env.` reference, fields Bifrost writes.
fn bifrost_file(openai_models: &[&str]) -> Value {
    json!({
        "client": {"drop_excess_requests": false},
        "providers": {
            "openai": {
                "keys": [{"name": "primary", "value": OPENAI_SECRET, "models": openai_models, "weight": 1.0}],
                "network_config": {"default_request_timeout_in_seconds": 60, "max_retries": 2},
                "concurrency_and_buffer_size": {"concurrency": 10, "buffer_size": 100}
            },
            "anthropic": {
                "keys": [{"value": "env.TEST_ANTHROPIC_KEY", "models": [], "weight": 1.0}]
            }
        }
    })
}

struct ConfigFile {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl ConfigFile {
    fn new(content: &Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = ConfigFile {
            path: dir.path().join("config.json"),
            _dir: dir,
        };
        file.write(content);
        file
    }

    fn write(&self, content: &Value) {
        std::fs::write(&self.path, serde_json::to_vec_pretty(content).unwrap()).unwrap();
    }

    fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

fn start(backend: &Backend, file: &ConfigFile) -> TestServer {
    TestServer::on_with(
        backend,
        &[("TEST_ANTHROPIC_KEY", "sk-ant-from-environment-1")],
        &["--config", file.arg()],
    )
}

/// SHA-256 of a JSON value written compactly with sorted keys (serde_json's `Value` sorts them):
/// what anyone could compute from a guess of an entry, so no response may show it.
fn sha256(value: &Value) -> String {
    format!("{:x}", Sha256::digest(serde_json::to_vec(value).unwrap()))
}

/// A provider's unkeyed hash: its entry without the keys, each of which has a hash of its own.
fn unkeyed_hash(entry: &Value) -> String {
    let mut settings = entry.clone();
    settings.as_object_mut().unwrap().remove("keys");
    sha256(&settings)
}

/// A shown `config_hash`: 64 hex digits, and not the unkeyed hash of what it stands for.
fn assert_keyed(shown: &Value, unkeyed: &str) -> String {
    let shown = shown
        .as_str()
        .unwrap_or_else(|| panic!("no config_hash: {shown}"));
    assert_eq!(shown.len(), 64, "{shown}");
    assert!(shown.chars().all(|c| c.is_ascii_hexdigit()), "{shown}");
    assert_ne!(
        shown, unkeyed,
        "config_hash is the bare SHA-256 of the entry, secrets included"
    );
    shown.to_string()
}

async fn the_file_seeds_the_store_with_hashes_and_secrets(backend: Backend) {
    let content = bifrost_file(&["gpt-4o"]);
    let file = ConfigFile::new(&content);
    let mut server = start(&backend, &file);

    let (status, openai) = get(&server, "openai").await;
    assert_eq!(status, 200, "{openai}");
    let openai_hash = assert_keyed(
        &openai["config_hash"],
        &unkeyed_hash(&content["providers"]["openai"]),
    );
    assert_eq!(openai["keys"][0]["name"], "primary");
    let key_hash = assert_keyed(
        &openai["keys"][0]["config_hash"],
        &sha256(&content["providers"]["openai"]["keys"][0]),
    );
    assert_ne!(
        key_hash, openai_hash,
        "each key has the hash of its own entry"
    );
    assert_eq!(openai["keys"][0]["models"], json!(["gpt-4o"]));
    assert_eq!(
        openai["keys"][0]["value"]["value"],
        format!("sk-f{}cdef", "*".repeat(24)),
        "a plain string secret is stored and shown redacted"
    );
    assert_eq!(openai["network_config"]["max_retries"], 2);
    assert_eq!(openai["concurrency_and_buffer_size"]["concurrency"], 10);

    let (_, anthropic) = get(&server, "anthropic").await;
    assert_eq!(
        anthropic["keys"][0]["value"]["env_var"],
        "env.TEST_ANTHROPIC_KEY"
    );
    assert_eq!(anthropic["keys"][0]["value"]["from_env"], true);
    let anthropic_hash = assert_keyed(
        &anthropic["config_hash"],
        &unkeyed_hash(&content["providers"]["anthropic"]),
    );
    assert_ne!(anthropic_hash, openai_hash);

    // The raw store holds the literal secret and the reference, not the variable's value.
    assert!(server.stop());
    let rows = server.stored_rows();
    let names: Vec<_> = rows.iter().map(|(n, ..)| n.as_str()).collect();
    assert_eq!(names, ["anthropic", "openai"]);
    assert!(rows[1].1.contains(OPENAI_SECRET));
    assert!(!rows[0].1.contains("sk-ant-from-environment-1"));
}

async fn api_edits_win_until_the_file_entry_changes(backend: Backend) {
    let file = ConfigFile::new(&bifrost_file(&["gpt-4o"]));
    let mut server = start(&backend, &file);
    let (_, seeded) = get(&server, "openai").await;
    let hash = seeded["config_hash"].clone();

    // An API edit keeps the hash; a provider added through the API is not in the file.
    let mut edited = seeded.clone();
    edited["keys"][0]["models"] = json!(["gpt-4o", "gpt-4.1"]);
    let (status, after_edit) = put(&server, "openai", &edited).await;
    assert_eq!(status, 200, "{after_edit}");
    assert_eq!(
        after_edit["config_hash"], hash,
        "API writes keep config_hash"
    );
    let (status, _) = put(&server, "groq", &json!({"keys": []})).await;
    assert_eq!(status, 200);
    let (_, anthropic_before) = get(&server, "anthropic").await;

    // Restart with the same file: the edit stays, and so does the API's provider.
    assert!(server.stop());
    server.restart();
    let (_, openai) = get(&server, "openai").await;
    assert_eq!(openai["keys"][0]["models"], json!(["gpt-4o", "gpt-4.1"]));
    assert_eq!(openai["keys"][0]["id"], seeded["keys"][0]["id"]);
    assert_eq!(get(&server, "groq").await.0, 200);

    // A key added through the API, beside the file's.
    let mut with_api_key = openai.clone();
    with_api_key["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "added-by-api", "value": "sk-api-0123456789abcdef"}));
    let (status, _) = put(&server, "openai", &with_api_key).await;
    assert_eq!(status, 200);

    // Edit the file's openai key: that key takes the file's version under its id; the key
    // added through the API and the provider's settings stay; other providers are untouched.
    assert!(server.stop());
    let changed = bifrost_file(&["o3"]);
    file.write(&changed);
    let (_, anthropic) = get_after_restart(&mut server, "anthropic").await;
    let (_, openai) = get(&server, "openai").await;
    assert_eq!(openai["keys"][0]["models"], json!(["o3"]));
    assert_eq!(openai["keys"][0]["id"], seeded["keys"][0]["id"]);
    assert_keyed(
        &openai["keys"][0]["config_hash"],
        &sha256(&changed["providers"]["openai"]["keys"][0]),
    );
    assert_ne!(
        openai["keys"][0]["config_hash"], seeded["keys"][0]["config_hash"],
        "a changed key entry has a new hash"
    );
    assert_eq!(openai["keys"][1]["name"], "added-by-api", "{openai}");
    assert_eq!(openai["config_hash"], hash, "the settings did not change");
    assert_eq!(
        get(&server, "groq").await.0,
        200,
        "store-only providers stay"
    );
    assert_eq!(
        anthropic["config_hash"], anthropic_before["config_hash"],
        "an unchanged entry keeps its hash, across restarts"
    );

    // Edit the provider's settings in the file: they replace the stored ones, and the key
    // added through the API still stays.
    assert!(server.stop());
    let mut settings = changed.clone();
    settings["providers"]["openai"]["network_config"]["max_retries"] = json!(4);
    file.write(&settings);
    let (_, openai) = get_after_restart(&mut server, "openai").await;
    assert_eq!(openai["network_config"]["max_retries"], 4);
    assert_keyed(
        &openai["config_hash"],
        &unkeyed_hash(&settings["providers"]["openai"]),
    );
    assert_ne!(openai["config_hash"], hash, "changed settings, a new hash");
    assert_eq!(openai["keys"].as_array().unwrap().len(), 2, "{openai}");

    // A provider deleted through the API is created again by the next start, as in Bifrost.
    let url = format!("{}/api/providers/anthropic", server.url);
    assert_eq!(common::raw("DELETE", &url, None).await.0, 200);
    assert!(server.stop());
    assert_eq!(get_after_restart(&mut server, "anthropic").await.0, 200);
}

async fn get_after_restart(server: &mut TestServer, provider: &str) -> (u16, Value) {
    server.restart();
    get(server, provider).await
}

async fn a_bad_file_refuses_to_start_and_touches_nothing(backend: Backend) {
    let good = bifrost_file(&["gpt-4o"]);
    let file = ConfigFile::new(&good);
    let mut server = start(&backend, &file);
    let (status, _) = put(&server, "groq", &json!({"keys": []})).await;
    assert_eq!(status, 200);
    assert!(server.stop());
    let before = server.stored_rows();

    let mut unknown_field = bifrost_file(&["gpt-4o"]);
    unknown_field["providers"]["anthropic"]["keys"][0]["wieght"] = json!(2);
    let mut bad_value = bifrost_file(&["gpt-4o"]);
    bad_value["providers"]["openai"]["network_config"]["max_retries"] = json!(-1);
    let mut bad_limit = bifrost_file(&["gpt-4o"]);
    bad_limit["providers"]["openai"]["concurrency_and_buffer_size"]["concurrency"] = json!(0);
    let mut leaky = bifrost_file(&["gpt-4o"]);
    leaky["providers"]["openai"]["keys"][0]["weight"] = json!("sk-secret-in-the-wrong-field");
    let cases: [(Value, &str, &str); 5] = [
        (unknown_field, "anthropic", "keys[0].wieght"),
        (bad_value, "openai", "network_config.max_retries"),
        (
            bad_limit,
            "openai",
            "concurrency_and_buffer_size.concurrency",
        ),
        (leaky, "openai", "keys[0].weight"),
        (
            json!({"providers": {"open/ai": {"keys": []}}}),
            "open/ai",
            "providers",
        ),
    ];
    for (content, provider, field) in cases {
        file.write(&content);
        let log = server
            .try_restart()
            .expect_err("a bad config file must refuse to start");
        assert!(log.contains(file.arg()), "names the file: {log}");
        assert!(
            log.contains(&format!("provider {provider:?}"))
                || log.contains(&format!("provider \\\"{provider}\\\"")),
            "names the provider {provider}: {log}"
        );
        assert!(log.contains(field), "names the field {field}: {log}");
        assert!(!log.contains("sk-secret-in-the-wrong-field"), "{log}");
        assert_eq!(server.stored_rows(), before, "the store was touched");
    }
    std::fs::write(&file.path, b"{\"providers\": {\"openai\": ").unwrap();
    let log = server.try_restart().expect_err("truncated JSON");
    assert!(log.contains("is not valid JSON"), "{log}");
    assert_eq!(server.stored_rows(), before);

    file.write(&good);
    server.restart();
    assert_eq!(get(&server, "groq").await.0, 200);
}

async fn replicas_starting_together_load_the_file_once(backend: Backend) {
    let file = ConfigFile::new(&bifrost_file(&["gpt-4o"]));
    let first = start(&backend, &file);
    let (_, seeded) = get(&first, "openai").await;
    let second = first.replica();
    let (_, seen) = get(&second, "openai").await;
    assert_eq!(
        seen["keys"][0]["id"], seeded["keys"][0]["id"],
        "an unchanged entry is not loaded again by another start"
    );
}

on_every_store!(
    the_file_seeds_the_store_with_hashes_and_secrets,
    api_edits_win_until_the_file_entry_changes,
    a_bad_file_refuses_to_start_and_touches_nothing,
);

#[tokio::test]
async fn a_second_replica_keeps_what_the_first_loaded() {
    if let Some(backend) = Backend::postgres("a_second_replica_keeps_what_the_first_loaded") {
        replicas_starting_together_load_the_file_once(backend).await
    }
}
