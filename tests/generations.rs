//! Clients of every Bifrost generation on one store: a v1.4 client (keys inside the provider
//! body), a v1.5+ client (keys under `/keys`, through the typed client and raw HTTP), v1.6's
//! secret objects, and config.json files as Bifrost's docs and Helm chart write them. Each
//! conflict of CONTRACT.md section 11 is shown meaning what each generation means.

mod common;

use bifrost_providers::types::{EnvVar, Key};
use common::{Backend, TestServer, assert_error, get, put, raw};
use serde_json::{Value, json};

const SECRET: &str = "sk-proj-generations-0123456789";
const OTHER: &str = "sk-proj-second-key-abcdefghij";

async fn call(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", server.url);
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    let (status, _, body) = raw(method, &url, body).await;
    (status, body)
}

/// C1, C2: a v1.5 client that saves provider settings (no `keys`) keeps every key; a v1.4 client
/// that sends `keys` replaces the set, and `[]` empties it.
async fn keys_left_out_stay_and_keys_sent_replace(backend: Backend) {
    let server = TestServer::on(&backend);
    let (status, _) = put(
        &server,
        "openai",
        &json!({"keys": [{"name": "a", "value": SECRET}, {"name": "b", "value": OTHER}]}),
    )
    .await;
    assert_eq!(status, 200);
    // What a v1.5 UI's network form sends: settings only, Go's nulls included.
    let (status, saved) = put(
        &server,
        "openai",
        &json!({"network_config": {"base_url": "https://gw.example/v1", "max_retries": 2,
                                   "retry_backoff_initial": "250ms", "retry_backoff_max": "10s"},
                "concurrency_and_buffer_size": {"concurrency": 5, "buffer_size": 50},
                "proxy_config": null, "custom_provider_config": null, "openai_config": {"disable_store": true},
                "store_raw_request_response": true}),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["keys"].as_array().unwrap().len(), 2, "{saved}");
    assert_eq!(saved["network_config"]["retry_backoff_initial"], 250);
    assert_eq!(saved["network_config"]["retry_backoff_max"], 10_000);
    assert_eq!(saved["openai_config"]["disable_store"], true);
    // A v1.4 client that does not know store_raw_request_response does not reset it.
    let mut v14 = saved.clone();
    v14.as_object_mut()
        .unwrap()
        .remove("store_raw_request_response");
    let (status, after) = put(&server, "openai", &v14).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["store_raw_request_response"], true);
    assert_eq!(after["keys"], saved["keys"]);
    // v1.4: the key set sent replaces the stored one.
    let mut one = after.clone();
    one["keys"].as_array_mut().unwrap().remove(0);
    let (_, after) = put(&server, "openai", &one).await;
    assert_eq!(after["keys"].as_array().unwrap().len(), 1);
    assert_eq!(after["keys"][0]["name"], "b");
    let (_, after) = put(&server, "openai", &json!({"keys": []})).await;
    assert_eq!(after["keys"], json!([]));
}

/// The `/keys` sub-resource and the inline keys are two views of one store; C4 (models) and
/// C10 (a new key's `enabled: false`) as each generation means them.
async fn the_keys_sub_resource_and_inline_keys_share_one_store(backend: Backend) {
    let server = TestServer::on(&backend);
    assert_eq!(
        call(&server, "GET", "/api/providers/openai/keys", None)
            .await
            .0,
        404
    );
    put(
        &server,
        "openai",
        &json!({"keys": [{"id": "inline", "value": SECRET, "models": []}]}),
    )
    .await;

    // A v1.5 client creates keys: `["*"]` is every model, `[]` none, and false stays false.
    let (status, all) = call(
        &server,
        "POST",
        "/api/providers/openai/keys",
        Some(json!({"name": "all", "value": {"value": OTHER, "ref": "", "type": "plain_text"}, "models": ["*"], "enabled": false,
                    "blacklisted_models": null, "aliases": {"gpt-4o": "gpt-4o-2024-08-06"}})),
    )
    .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["models"], json!(["*"]));
    assert_eq!(all["enabled"], false);
    assert_eq!(all["value"]["value"], format!("sk-p{}ghij", "*".repeat(24)));
    let (status, none) = call(
        &server,
        "POST",
        "/api/providers/openai/keys",
        Some(json!({"id": "none", "name": "none", "value": "sk-none-0123456789abc", "models": []})),
    )
    .await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["models"], json!([]));

    // The same store, as a v1.4 client sees it: "all" is `[]`, a list stays a list.
    let (_, provider) = get(&server, "openai").await;
    let ids: Vec<_> = provider["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].clone())
        .collect();
    assert_eq!(ids, [json!("inline"), all["id"].clone(), json!("none")]);
    assert_eq!(provider["keys"][0]["models"], json!([]));
    assert_eq!(provider["keys"][1]["models"], json!([]));
    // And through /keys: the v1.4 key's `[]` meant every model.
    let (status, listed) = call(&server, "GET", "/api/providers/openai/keys", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["total"], 3);
    assert_eq!(listed["keys"][0]["models"], json!(["*"]));
    assert_eq!(listed["keys"][2]["models"], json!([]));

    // A v1.4 client saving the provider as it was shown keeps the "none" key as none.
    let (status, _) = put(&server, "openai", &provider).await;
    assert_eq!(status, 200);
    let (_, none_again) = call(&server, "GET", "/api/providers/openai/keys/none", None).await;
    assert_eq!(none_again["models"], json!([]));
    assert_eq!(none_again["value"], none["value"]);

    // PUT-key: a full replacement of one key; the redacted secret keeps the stored one.
    let mut edit = none_again.clone();
    edit["weight"] = json!(0.25);
    edit["id"] = json!("ignored-body-id");
    let (status, edited) = call(
        &server,
        "PUT",
        "/api/providers/openai/keys/none",
        Some(edit),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["id"].clone(), edited["weight"].clone()),
        (json!("none"), json!(0.25))
    );
    assert_eq!(edited["value"], none["value"]);

    // Conflicts, unknown keys, masks that do not match: each refused, nothing changed.
    let (_, before) = get(&server, "openai").await;
    let (status, err) = call(
        &server,
        "POST",
        "/api/providers/openai/keys",
        Some(json!({"name": "all"})),
    )
    .await;
    assert_error(status, &err, 409, "key_already_exists");
    let (status, err) = call(
        &server,
        "PUT",
        "/api/providers/openai/keys/nope",
        Some(json!({})),
    )
    .await;
    assert_error(status, &err, 404, "key_not_found");
    let (status, err) = call(
        &server,
        "PUT",
        "/api/providers/openai/keys/none",
        Some(json!({"value": format!("sk-x{}zzzz", "*".repeat(24))})),
    )
    .await;
    assert_error(status, &err, 400, "redacted_secret_mismatch");
    let (status, err) = call(
        &server,
        "POST",
        "/api/providers/openai/keys",
        Some(json!({"value": OTHER, "models": ["*", "o3"]})),
    )
    .await;
    assert_error(status, &err, 400, "invalid_models");
    let (status, err) = call(
        &server,
        "POST",
        "/api/providers/openai/keys",
        Some(json!({"name": "empty"})),
    )
    .await;
    assert_error(status, &err, 400, "missing_key_value");
    assert_eq!(get(&server, "openai").await.1, before);

    // DELETE-key answers the deleted key; If-Match with a stale tag is a 412.
    let (status, err) = raw_with(
        &server,
        "DELETE",
        "/api/providers/openai/keys/none",
        &[("If-Match", "\"stale\"")],
    )
    .await;
    assert_error(status, &err, 412, "precondition_failed");
    let (status, deleted) = call(&server, "DELETE", "/api/providers/openai/keys/none", None).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["id"], "none");
    assert_eq!(
        call(&server, "GET", "/api/providers/openai/keys", None)
            .await
            .1["total"],
        2
    );
}

async fn raw_with(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request =
        common::http().request(method.parse().unwrap(), format!("{}{path}", server.url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The typed client speaks `/keys` too, and builds a secret from a `&str` in one call.
async fn the_typed_client_manages_keys(backend: Backend) {
    let server = TestServer::on(&backend);
    let client = server.client();
    put(&server, "anthropic", &json!({})).await;
    let key = Key {
        name: "typed".into(),
        value: Some(EnvVar::from("sk-ant-typed-0123456789")),
        models: vec!["*".into()],
        ..Default::default()
    };
    let created = client
        .create_provider_key()
        .provider("anthropic")
        .body(key)
        .send()
        .await
        .unwrap()
        .into_inner();
    let id = created.id.clone().unwrap();
    let listed = client
        .list_provider_keys()
        .provider("anthropic")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total, 1);
    let mut edit = client
        .get_provider_key()
        .provider("anthropic")
        .key_id(id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    edit.weight = 3.0;
    let updated = client
        .update_provider_key()
        .provider("anthropic")
        .key_id(id.as_str())
        .body(edit)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.weight, 3.0);
    assert_eq!(
        updated.value, created.value,
        "the redacted secret kept the stored one"
    );
    let gone = client
        .delete_provider_key()
        .provider("anthropic")
        .key_id(id.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(gone.into_inner().id, Some(id));
}

/// C6, C7: every secret form; references are stored as references, unresolvable ones shown as
/// such; proxy fields as v1.5's objects.
async fn every_secret_form_and_proxy_objects(backend: Backend) {
    let mut server =
        TestServer::on_with(&backend, &[("GEN_PROXY_PASSWORD", "proxy-pass-0123")], &[]);
    let (status, shown) = put(
        &server,
        "bedrock",
        &json!({"keys": [{"id": "b", "value": "",
            "bedrock_key_config": {"access_key": "env.GEN_UNSET_ACCESS", "secret_key": {"value": "", "ref": "vault.aws/secret", "type": "vault"},
                                    "region": {"value": "us-east-1", "env_var": "", "from_env": false},
                                    "role_arn": "arn:aws:iam::123456789012:role/bifrost"}}],
            "proxy_config": {"type": "http", "url": {"value": "http://proxy.local:3128", "env_var": "", "from_env": false},
                             "password": {"value": "env.GEN_PROXY_PASSWORD", "env_var": "env.GEN_PROXY_PASSWORD", "from_env": true}}}),
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    let bedrock = &shown["keys"][0]["bedrock_key_config"];
    assert_eq!(bedrock["access_key"]["env_var"], "env.GEN_UNSET_ACCESS");
    assert_eq!(bedrock["access_key"]["value"], "");
    assert_eq!(
        bedrock["secret_key"],
        json!({"value": "", "env_var": "", "from_env": false, "type": "vault", "ref": "vault.aws/secret"})
    );
    assert_eq!(
        bedrock["region"]["value"],
        format!("us-e{}st-1", "*".repeat(24))
    );
    assert_eq!(shown["proxy_config"]["url"], "http://proxy.local:3128");
    assert_eq!(shown["proxy_config"]["password"], "env.GEN_PROXY_PASSWORD");
    assert_eq!(
        shown["status"], "error",
        "two references do not resolve here"
    );
    // The GET body PUTs back unchanged.
    let (status, again) = put(&server, "bedrock", &shown).await;
    assert_eq!((status, &again), (200, &shown));
    // The store holds references, never the variable's value.
    assert!(server.stop());
    let rows = server.stored_rows();
    assert!(rows[0].1.contains("GEN_UNSET_ACCESS"));
    assert!(!rows[0].1.contains("proxy-pass-0123"));
}

/// A config.json as Bifrost's Helm chart and docs render it: names in any case, nulls, the
/// `_ms` backoff names Bifrost ignores, duration strings, bare-string secrets and a variable
/// that is unset on this host.
async fn a_helm_rendered_config_json_starts(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let file = json!({
        "$schema": "https://www.getbifrost.ai/schema",
        "client": {"drop_excess_requests": false},
        "providers": {
            "OpenAI": {
                "keys": [{"name": "primary", "value": "env.HELM_OPENAI_KEY", "models": null, "weight": 1,
                          "blacklisted_models": null}],
                "network_config": {"retry_backoff_initial_ms": 100, "retry_backoff_max_ms": 1000,
                                   "retry_backoff_initial": "1s", "default_request_timeout_in_seconds": 120},
                "proxy_config": null
            },
            "replicate": {"keys": [{"value": "r8_helm_0123456789", "replicate_key_config": {"use_deployments_endpoint": true}}]},
            "vllm": {"keys": [{"value": "", "vllm_key_config": {"url": "env.HELM_VLLM_URL", "model_name": "llama"}}]}
        }
    });
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let server = TestServer::on_with(&backend, &[], &["--config", path.to_str().unwrap()]);
    let (status, openai) = get(&server, "openai").await;
    assert_eq!(status, 200, "{openai}");
    assert_eq!(openai["status"], "error", "HELM_OPENAI_KEY is unset here");
    assert_eq!(openai["keys"][0]["value"]["env_var"], "env.HELM_OPENAI_KEY");
    assert_eq!(
        openai["keys"][0]["models"],
        json!([]),
        "null models: every model"
    );
    assert_eq!(openai["network_config"]["retry_backoff_initial"], 1000);
    assert_eq!(
        openai["network_config"]["default_request_timeout_in_seconds"],
        120
    );
    assert!(
        openai["network_config"]
            .get("retry_backoff_initial_ms")
            .is_none()
    );
    let (_, replicate) = get(&server, "replicate").await;
    assert_eq!(replicate["status"], "active");
    assert_eq!(
        replicate["keys"][0]["replicate_key_config"]["use_deployments_endpoint"],
        true
    );
    let (_, vllm) = get(&server, "vllm").await;
    assert_eq!(vllm["keys"][0]["vllm_key_config"]["model_name"], "llama");
}

/// Providers named by later releases are standard; custom names may hold spaces.
async fn names_of_every_release(backend: Backend) {
    let server = TestServer::on(&backend);
    for name in [
        "replicate",
        "vllm",
        "runway",
        "fireworks",
        "deepseek",
        "opencode-zen",
        "databricks",
        "github_copilot",
    ] {
        let (status, body) = put(&server, name, &json!({})).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    let (status, body) = call(
        &server,
        "POST",
        "/api/providers",
        Some(json!({"provider": "Together AI", "custom_provider_config": {"base_provider_type": "openai"},
                    "keys": [{"value": SECRET}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&server, "GET", "/api/providers/Together%20AI/keys", None).await;
    assert_eq!((status, body["total"].clone()), (200, json!(1)));
    let (status, err) = put(
        &server,
        "vllm",
        &json!({"custom_provider_config": {"base_provider_type": "openai"}}),
    )
    .await;
    assert_error(status, &err, 400, "custom_provider_config_not_allowed");
}

/// C9: v1.4's `deployments` and v1.5's `aliases` are both kept; each view shows its own.
async fn deployments_and_aliases_are_both_kept(backend: Backend) {
    let server = TestServer::on(&backend);
    let (status, created) = put(
        &server,
        "azure",
        &json!({"keys": [{"id": "az", "value": SECRET,
            "azure_key_config": {"endpoint": "https://contoso.openai.azure.com", "deployments": {"gpt-4o": "gpt-4o-prod"}}}]}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let (_, key) = call(&server, "GET", "/api/providers/azure/keys/az", None).await;
    assert_eq!(key["aliases"], json!({"gpt-4o": "gpt-4o-prod"}));
    // A v1.5 client edits the aliases; a v1.4 client sees them as deployments.
    let mut edit = key.clone();
    edit["aliases"] = json!({"gpt-4o": "gpt-4o-blue"});
    edit["azure_key_config"]
        .as_object_mut()
        .unwrap()
        .remove("deployments");
    let (status, _) = call(&server, "PUT", "/api/providers/azure/keys/az", Some(edit)).await;
    assert_eq!(status, 200);
    let (_, provider) = get(&server, "azure").await;
    assert_eq!(
        provider["keys"][0]["azure_key_config"]["deployments"],
        json!({"gpt-4o": "gpt-4o-blue"})
    );
}

on_every_store!(
    keys_left_out_stay_and_keys_sent_replace,
    the_keys_sub_resource_and_inline_keys_share_one_store,
    the_typed_client_manages_keys,
    every_secret_form_and_proxy_objects,
    a_helm_rendered_config_json_starts,
    names_of_every_release,
    deployments_and_aliases_are_both_kept,
);

/// A store written before key `models` had three states reads its v1.4 `[]` as every model.
#[tokio::test]
async fn an_older_store_keeps_its_meaning() {
    let mut server = TestServer::start();
    assert!(server.stop());
    let path = server.db_path();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE providers (name TEXT PRIMARY KEY NOT NULL, config TEXT NOT NULL,
                 config_hash TEXT, etag TEXT NOT NULL) STRICT, WITHOUT ROWID;
             ALTER TABLE providers ADD COLUMN sealed_with TEXT;
             PRAGMA user_version = 2;",
        )
        .unwrap();
        let config = json!({"keys": [{"id": "all", "models": [], "value": {"value": SECRET, "env_var": "", "from_env": false}},
                                     {"id": "list", "models": ["gpt-4o"]}]});
        conn.execute(
            "INSERT INTO providers (name, config, etag) VALUES ('openai', ?1, 'e1')",
            [config.to_string()],
        )
        .unwrap();
    }
    server.restart();
    let (_, keys) = call(&server, "GET", "/api/providers/openai/keys", None).await;
    assert_eq!(keys["keys"][0]["models"], json!(["*"]));
    assert_eq!(keys["keys"][1]["models"], json!(["gpt-4o"]));
    assert_eq!(
        get(&server, "openai").await.1["keys"][0]["models"],
        json!([])
    );
}

/// The schema of the SQLite file at `path`, read past the server: its `user_version`, every
/// object SQLite keeps (type, name, SQL), and every provider row.
fn schema(path: &std::path::Path) -> (i64, Vec<String>, Vec<String>) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let version = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let all = |sql: &str| -> Vec<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let objects = all("SELECT json_array(type, name, sql) FROM sqlite_master ORDER BY type, name");
    let rows = all(
        "SELECT json_array(name, config, config_hash, etag, sealed_with) FROM providers \
         ORDER BY name",
    );
    (version, objects, rows)
}

/// A migration that fails midway leaves the file as it was, and the server refuses to start
/// saying why; once the cause is gone, the file migrates fully. The file is at version 2, with
/// a `store_meta` planted: the next three migrations would rewrite key `models`, add the health
/// probe's table, then the revisions' tables, whose third statement (`CREATE TABLE store_meta`)
/// fails. Without one transaction around them all, the first two and half the third would stay.
#[tokio::test]
async fn a_failed_migration_leaves_the_store_as_it_was() {
    let mut server = TestServer::start();
    assert!(server.stop());
    let path = server.db_path();
    let fresh = schema(&path);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE providers (name TEXT PRIMARY KEY NOT NULL, config TEXT NOT NULL,
                 config_hash TEXT, etag TEXT NOT NULL) STRICT, WITHOUT ROWID;
             ALTER TABLE providers ADD COLUMN sealed_with TEXT;
             CREATE TABLE store_meta (planted TEXT);
             PRAGMA user_version = 2;",
        )
        .unwrap();
        let config = json!({"keys": [{"id": "all", "models": [], "value": {"value": SECRET, "env_var": "", "from_env": false}}]});
        conn.execute(
            "INSERT INTO providers (name, config, etag) VALUES ('openai', ?1, 'e1')",
            [config.to_string()],
        )
        .unwrap();
    }
    let before = schema(&path);

    let log = server
        .try_restart()
        .expect_err("the server started on a store it could not migrate");
    assert!(
        log.contains("cannot set up SQLite store") && log.contains("store_meta already exists"),
        "the refusal says why: {log}"
    );
    assert!(!log.contains(SECRET), "{log}");
    assert_eq!(schema(&path), before, "nothing of the migrations stayed");

    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE store_meta;")
        .unwrap();
    server.restart();
    let (_, keys) = call(&server, "GET", "/api/providers/openai/keys", None).await;
    assert_eq!(keys["keys"][0]["models"], json!(["*"]));
    assert!(server.stop());
    // The same objects as a new store holds (the providers table's SQL text is this test's).
    let kinds = |objects: &[String]| -> Vec<Value> {
        objects
            .iter()
            .map(|o| {
                let o: Value = serde_json::from_str(o).unwrap();
                json!([o[0], o[1]])
            })
            .collect()
    };
    let (version, objects, _) = schema(&path);
    assert_eq!(
        (version, kinds(&objects)),
        (fresh.0, kinds(&fresh.1)),
        "migrated to what a new store is"
    );
}
