//! CONTRACT.md sections 1 to 6, against the real server through the generated client, and
//! through raw HTTP where the client cannot send the bad input.

mod common;

use bifrost_providers::types::{
    AddProviderRequest, ConcurrencyAndBufferSize, EnvVar, Key, ProviderStatus,
    UpdateProviderRequest,
};
use common::{Backend, TestServer, assert_error, get, put, raw};
use serde_json::{Value, json};

const SECRET: &str = "sk-test-1234567890abcdef";

fn key(name: &str, secret: &str) -> Key {
    Key {
        name: name.into(),
        value: Some(EnvVar {
            value: secret.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn put_creates_with_defaults_and_get_lists_sorted(backend: Backend) {
    let server = TestServer::on(&backend);
    let client = server.client();
    let body = UpdateProviderRequest {
        keys: Some(vec![key("primary", SECRET)]),
        ..Default::default()
    };
    let created = client
        .update_provider()
        .provider("openai")
        .body(body)
        .send()
        .await
        .unwrap()
        .into_inner();

    assert_eq!(created.name, "openai");
    assert_eq!(created.status, Some(ProviderStatus::Active));
    assert_eq!(
        created.concurrency_and_buffer_size,
        ConcurrencyAndBufferSize {
            concurrency: 1000,
            buffer_size: 5000
        }
    );
    let network = &created.network_config;
    assert_eq!(
        (
            network.default_request_timeout_in_seconds,
            network.max_retries,
            network.retry_backoff_initial,
            network.retry_backoff_max
        ),
        (30, 0, 500, 5000)
    );
    assert!(!created.send_back_raw_request && !created.send_back_raw_response);
    let k = &created.keys[0];
    assert!(
        uuid::Uuid::parse_str(k.id.as_deref().unwrap()).is_ok_and(|u| u.get_version_num() == 4)
    );
    assert_eq!(
        (
            k.weight,
            k.enabled,
            k.use_for_batch_api,
            k.models.is_empty()
        ),
        (1.0, true, false, true)
    );
    assert_eq!(
        k.value.as_ref().unwrap().value,
        format!("sk-t{}cdef", "*".repeat(24))
    );

    let fetched = client
        .get_provider()
        .provider("openai")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, created);

    for name in ["anthropic", "azure"] {
        client
            .update_provider()
            .provider(name)
            .body(UpdateProviderRequest::default())
            .send()
            .await
            .unwrap();
    }
    let list = client.list_providers().send().await.unwrap().into_inner();
    let names: Vec<_> = list.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["anthropic", "azure", "openai"]);
    assert_eq!(list.total, 3);

    let (status, content_type, raw_list) =
        raw("GET", &format!("{}/api/providers", server.url), None).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(
        raw_list["providers"][2]["keys"][0]["models"],
        json!([]),
        "defaults are shown, empty lists included"
    );
}

async fn post_creates_once_then_conflicts(backend: Backend) {
    let server = TestServer::on(&backend);
    let client = server.client();
    let add = AddProviderRequest::builder()
        .provider("groq")
        .keys(vec![key("a", SECRET)]);
    let add = AddProviderRequest::try_from(add).unwrap();
    let created = client
        .add_provider()
        .body(add.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.name, "groq");

    let err = client.add_provider().body(add).send().await.unwrap_err();
    let progenitor_client::Error::ErrorResponse(body) = err else {
        panic!("{err:?}")
    };
    assert_eq!(body.status().as_u16(), 409);
    assert_eq!(body.error.code.as_deref(), Some("provider_already_exists"));

    let (status, _, body) = raw(
        "POST",
        &format!("{}/api/providers", server.url),
        Some(br#"{"provider":"bad/name"}"#.to_vec()),
    )
    .await;
    assert_error(status, &body, 400, "invalid_provider_name");
    let (status, _, body) = raw(
        "POST",
        &format!("{}/api/providers", server.url),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_error(status, &body, 400, "missing_field");
    assert_eq!(body["error"]["param"], "provider");
}

async fn put_is_a_full_replacement(backend: Backend) {
    let server = TestServer::on(&backend);
    let full = json!({
        "keys": [{"name": "a", "value": {"value": SECRET}}],
        "network_config": {"base_url": "https://api.example.com/v1", "max_retries": 3, "extra_headers": {"X-Team": "ml"}},
        "concurrency_and_buffer_size": {"concurrency": 10, "buffer_size": 20},
        "proxy_config": {"type": "http", "url": "http://proxy.local:3128"},
        "send_back_raw_request": true
    });
    let (status, first) = put(&server, "mistral", &full).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["network_config"]["max_retries"], 3);

    // Without `keys` the keys stay (v1.5+ clients manage them through /keys); every other
    // block takes its default.
    let (status, second) = put(&server, "mistral", &json!({})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["keys"], first["keys"]);
    let (status, second) = put(&server, "mistral", &json!({"keys": null})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["keys"], first["keys"], "null means absent");
    let (status, second) = put(&server, "mistral", &json!({"keys": []})).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["keys"], json!([]));
    assert_eq!(
        second["network_config"],
        json!({
            "base_url": "", "extra_headers": {}, "default_request_timeout_in_seconds": 30,
            "max_retries": 0, "retry_backoff_initial": 500, "retry_backoff_max": 5000,
            "allow_private_network": false, "beta_header_overrides": {}, "ca_cert_pem": "",
            "enforce_http2": false, "insecure_skip_verify": false, "max_conns_per_host": 5000,
            "stream_idle_timeout_in_seconds": 60
        })
    );
    assert_eq!(
        second["concurrency_and_buffer_size"],
        json!({"concurrency": 1000, "buffer_size": 5000})
    );
    assert!(second.get("proxy_config").is_none(), "{second}");
    assert_eq!(second["send_back_raw_request"], false);
    assert_eq!(get(&server, "mistral").await.1, second);
}

async fn keys_are_matched_by_id(backend: Backend) {
    let server = TestServer::on(&backend);
    let (_, created) = put(
        &server,
        "openai",
        &json!({"keys": [
            {"name": "a", "value": {"value": "sk-aaaaaaaaaaaaaaaa1"}},
            {"name": "b", "value": {"value": "sk-bbbbbbbbbbbbbbbb2"}}
        ]}),
    )
    .await;
    let id_a = created["keys"][0]["id"].as_str().unwrap().to_string();
    let id_b = created["keys"][1]["id"].as_str().unwrap().to_string();
    assert_ne!(id_a, id_b);

    // b kept (by id, with its redacted secret), a dropped, a new key with a chosen id, one without.
    let (status, updated) = put(&server, "openai", &json!({"keys": [
        {"id": "chosen-id", "name": "c", "value": {"value": "sk-cccccccccccccccc3"}, "enabled": false, "weight": 0},
        {"id": id_b, "name": "b", "value": created["keys"][1]["value"].clone(), "weight": 2.5},
        {"name": "d", "value": {"value": "short"}}
    ]})).await;
    assert_eq!(status, 200, "{updated}");
    let keys = updated["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0]["id"], "chosen-id");
    assert_eq!(
        keys[0]["enabled"], false,
        "an explicit enabled:false is kept on a new key"
    );
    assert_eq!(keys[0]["weight"], 0.0);
    assert_eq!(keys[1]["id"], id_b.as_str());
    assert_eq!(
        keys[1]["value"]["value"],
        format!("sk-b{}bbb2", "*".repeat(24))
    );
    assert_eq!(keys[1]["weight"], 2.5);
    assert_eq!(keys[2]["value"]["value"], "*****");
    assert!(keys.iter().all(|k| k["id"] != id_a.as_str()));
}

async fn bad_keys_are_refused_and_change_nothing(backend: Backend) {
    let server = TestServer::on(&backend);
    let (_, before) = put(
        &server,
        "openai",
        &json!({"keys": [{"id": "k1", "name": "a", "value": {"value": SECRET}}]}),
    )
    .await;
    let cases = [
        (
            json!({"keys": [{"id": "x"}, {"id": "x"}]}),
            "duplicate_key_id",
            "keys[1].id",
        ),
        (
            json!({"keys": [{"name": "n"}, {"name": "n"}]}),
            "duplicate_key_name",
            "keys[1].name",
        ),
        (
            json!({"keys": [{"weight": -1}]}),
            "invalid_weight",
            "keys[0].weight",
        ),
        (
            json!({"keys": [{"id": "line\nbreak"}]}),
            "invalid_key_id",
            "keys[0].id",
        ),
        (
            json!({"keys": [{"azure_key_config": {}}]}),
            "key_config_mismatch",
            "keys[0].azure_key_config",
        ),
        (
            json!({"keys": [{"weight": "heavy"}]}),
            "invalid_field",
            "keys[0].weight",
        ),
        (
            json!({"keys": [{"enabled": "yes"}]}),
            "invalid_field",
            "keys[0].enabled",
        ),
        (
            json!({"keys": [{"valeu": {"value": "x"}}]}),
            "unknown_field",
            "keys[0].valeu",
        ),
    ];
    for (body, code, param) in cases {
        let (status, err) = put(&server, "openai", &body).await;
        assert_error(status, &err, 400, code);
        assert_eq!(err["error"]["param"], param, "{body}");
        assert_eq!(
            get(&server, "openai").await.1,
            before,
            "a refused {body} changed the store"
        );
    }
}

async fn secrets_survive_the_redacted_round_trip(backend: Backend) {
    let mut server = TestServer::on(&backend);
    let client = server.client();
    let body = json!({
        "keys": [{"id": "az", "name": "azure-main", "value": {"value": SECRET},
                  "azure_key_config": {"endpoint": {"value": "https://my.openai.azure.com"},
                                        "api_version": {"value": "2024-10-21"},
                                        "client_secret": {"value": "cs-0987654321zyxw"},
                                        "deployments": {"gpt-4o": "gpt4o-prod"}}}],
        "proxy_config": {"type": "http", "url": "http://proxy.local:3128", "username": "u",
                         "password": "hunter2-password", "ca_cert_pem": "-----BEGIN CERTIFICATE-----"}
    });
    let (status, created) = put(&server, "azure", &body).await;
    assert_eq!(status, 200, "{created}");
    let azure = &created["keys"][0]["azure_key_config"];
    assert_eq!(
        azure["api_version"]["value"], "2024-10-21",
        "api_version is not a secret"
    );
    assert_eq!(
        azure["endpoint"]["value"],
        format!("http{}.com", "*".repeat(24))
    );
    assert_eq!(created["proxy_config"]["password"], "<REDACTED>");
    assert_eq!(created["proxy_config"]["ca_cert_pem"], "<REDACTED>");

    // The typed client's round trip: GET, edit one field, PUT the whole thing back.
    let fetched = client
        .get_provider()
        .provider("azure")
        .send()
        .await
        .unwrap()
        .into_inner();
    let mut edit = UpdateProviderRequest::from(fetched);
    edit.keys_mut()[0].weight = 3.0;
    let after = client
        .update_provider()
        .provider("azure")
        .body(edit)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.keys[0].weight, 3.0);

    // The stored secrets are the originals, not their masks.
    assert!(server.stop(), "clean shutdown");
    let rows = server.stored_rows();
    let (_, stored, _) = rows.iter().find(|(name, ..)| name == "azure").unwrap();
    for secret in [
        SECRET,
        "cs-0987654321zyxw",
        "https://my.openai.azure.com",
        "hunter2-password",
        "-----BEGIN CERTIFICATE-----",
    ] {
        assert!(stored.contains(secret), "{secret} was lost: {stored}");
    }
    assert!(
        !stored.contains("****") && !stored.contains("<REDACTED>"),
        "a mask was stored: {stored}"
    );
}

async fn masks_that_do_not_match_are_refused(backend: Backend) {
    let server = TestServer::on(&backend);
    let (_, before) = put(
        &server,
        "openai",
        &json!({"keys": [{"id": "k1", "value": {"value": SECRET}}],
        "proxy_config": {"type": "http", "url": "http://p.local:1", "password": "pw-stored"}}),
    )
    .await;
    let proxy = before["proxy_config"].clone();
    let cases = [
        (
            json!({"keys": [{"id": "k1", "value": {"value": format!("sk-x{}cdef", "*".repeat(24))}}], "proxy_config": proxy}),
            "keys[0].value.value",
        ),
        (
            json!({"keys": [{"id": "k1", "value": {"value": "****"}}], "proxy_config": proxy}),
            "keys[0].value",
        ),
        (
            json!({"keys": [{"id": "k1", "value": {"value": "[REDACTED]"}}], "proxy_config": proxy}),
            "keys[0].value",
        ),
        (
            json!({"keys": [{"id": "new", "value": before["keys"][0]["value"].clone()}], "proxy_config": proxy}),
            "keys[0].value",
        ),
        (
            json!({"keys": [{"id": "k1", "value": before["keys"][0]["value"].clone()}],
                "proxy_config": {"type": "http", "url": "http://p.local:1", "password": "<REDACTED>", "ca_cert_pem": "<REDACTED>"}}),
            "proxy_config.ca_cert_pem",
        ),
    ];
    for (body, param) in cases {
        let (status, err) = put(&server, "openai", &body).await;
        assert_error(status, &err, 400, "redacted_secret_mismatch");
        assert!(
            err["error"]["param"]
                .as_str()
                .unwrap()
                .starts_with(param.trim_end_matches(".value")),
            "{err}"
        );
        assert_eq!(
            get(&server, "openai").await.1,
            before,
            "a refused mask changed the store"
        );
    }
    // A mask on a provider that does not exist yet.
    let (status, err) = put(
        &server,
        "anthropic",
        &json!({"keys": [{"value": {"value": "********"}}]}),
    )
    .await;
    assert_error(status, &err, 400, "redacted_secret_mismatch");
    assert_eq!(get(&server, "anthropic").await.0, 404);
}

async fn environment_references(backend: Backend) {
    let mut server = TestServer::on_with(
        &backend,
        &[("TEST_OPENAI_KEY", "sk-from-env-0123456789")],
        &[],
    );
    let reference = json!({"keys": [{"id": "e", "value": {"env_var": "env.TEST_OPENAI_KEY", "from_env": true}}]});
    let (status, created) = put(&server, "openai", &reference).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        created["keys"][0]["value"],
        json!({
            "value": format!("sk-f{}6789", "*".repeat(24)), "env_var": "env.TEST_OPENAI_KEY", "from_env": true,
            "type": "env", "ref": "env.TEST_OPENAI_KEY"
        })
    );
    // Every other form of the same reference: a bare string, v1.6's {ref, type}, an env_var
    // without its prefix.
    for form in [
        json!("env.TEST_OPENAI_KEY"),
        json!({"value": "", "ref": "env.TEST_OPENAI_KEY", "type": "env"}),
        json!({"ref": "env.TEST_OPENAI_KEY"}),
        json!({"env_var": "TEST_OPENAI_KEY", "from_env": true}),
    ] {
        let body = json!({"keys": [{"id": "e", "value": form}]});
        let (status, same) = put(&server, "openai", &body).await;
        assert_eq!(status, 200, "{same}");
        assert_eq!(
            same["keys"][0]["value"], created["keys"][0]["value"],
            "{form}"
        );
    }
    // The short form: a value of "env.NAME".
    let (status, short) = put(
        &server,
        "openai",
        &json!({"keys": [{"id": "e", "value": {"value": "env.TEST_OPENAI_KEY"}}]}),
    )
    .await;
    assert_eq!(status, 200, "{short}");
    assert_eq!(short, created);
    // The round trip keeps the reference.
    let (status, again) = put(&server, "openai", &created).await;
    assert_eq!((status, &again), (200, &created));

    // A variable this host lacks is stored as a reference (the gateway may have it); the
    // provider shows `error` until it resolves.
    let (status, unset) = put(
        &server,
        "groq",
        &json!({"keys": [{"value": {"env_var": "env.TEST_UNSET_VAR", "from_env": true}}]}),
    )
    .await;
    assert_eq!(status, 200, "{unset}");
    assert_eq!(
        (&unset["status"], &unset["provider_status"]),
        (&json!("error"), &json!("error"))
    );
    assert_eq!(unset["keys"][0]["value"]["env_var"], "env.TEST_UNSET_VAR");
    assert_eq!(unset["keys"][0]["value"]["value"], "");
    let (status, err) = put(
        &server,
        "openai",
        &json!({"keys": [{"value": {"env_var": "env.1BAD", "from_env": true}}]}),
    )
    .await;
    assert_error(status, &err, 400, "invalid_env_var");

    // After a restart without the variable, the provider shows status error.
    assert!(server.stop());
    server.restart_with_env(&[]);
    let (status, shown) = get(&server, "openai").await;
    assert_eq!(status, 200);
    assert_eq!(shown["status"], "error");
    assert_eq!(shown["keys"][0]["value"]["env_var"], "env.TEST_OPENAI_KEY");
    assert_eq!(shown["keys"][0]["value"]["value"], "");
}

async fn custom_providers(backend: Backend) {
    let server = TestServer::on(&backend);
    let custom = json!({"custom_provider_config": {"base_provider_type": "openai", "allowed_requests": {"chat_completion": true}},
                        "keys": [{"value": {"value": SECRET}}]});
    let (status, created) = put(&server, "my-gateway", &custom).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["name"], "my-gateway");
    assert_eq!(
        created["custom_provider_config"]["allowed_requests"]["chat_completion"],
        true
    );
    assert_eq!(
        created["custom_provider_config"]["allowed_requests"]["embedding"],
        false
    );

    let cases = [
        (
            "my-gateway",
            json!({}),
            "custom_provider_config_required",
            "custom_provider_config",
        ),
        (
            "my-gateway",
            json!({"custom_provider_config": {"base_provider_type": "anthropic"}}),
            "base_provider_type_immutable",
            "custom_provider_config.base_provider_type",
        ),
        (
            "my-gateway",
            json!({"custom_provider_config": {"base_provider_type": "nope"}}),
            "invalid_field",
            "custom_provider_config.base_provider_type",
        ),
        (
            "my-gateway",
            json!({"custom_provider_config": {}}),
            "missing_field",
            "custom_provider_config.base_provider_type",
        ),
        (
            "openai",
            json!({"custom_provider_config": {"base_provider_type": "openai"}}),
            "custom_provider_config_not_allowed",
            "custom_provider_config",
        ),
        (
            "new-bedrock",
            json!({"custom_provider_config": {"base_provider_type": "bedrock", "is_key_less": true}}),
            "invalid_custom_provider",
            "custom_provider_config.is_key_less",
        ),
        (
            "keyless",
            json!({"custom_provider_config": {"base_provider_type": "ollama", "is_key_less": true}, "keys": [{"name": "x"}]}),
            "keys_not_allowed",
            "keys",
        ),
        (
            "my-gateway",
            json!({"custom_provider_config": {"base_provider_type": "openai", "request_path_overrides": {"chat_completion": "no-slash"}}}),
            "invalid_request_path_override",
            "custom_provider_config.request_path_overrides.chat_completion",
        ),
    ];
    for (name, body, code, param) in cases {
        let (status, err) = put(&server, name, &body).await;
        assert_error(status, &err, 400, code);
        assert_eq!(err["error"]["param"], param, "{body}");
    }
    assert_eq!(
        get(&server, "my-gateway").await.1,
        created,
        "refused writes changed the store"
    );
    assert_eq!(get(&server, "new-bedrock").await.0, 404);
    let (status, keyless) = put(
        &server,
        "keyless",
        &json!({"custom_provider_config": {"base_provider_type": "ollama", "is_key_less": true}}),
    )
    .await;
    assert_eq!((status, keyless["keys"].clone()), (200, json!([])));
}

async fn field_validation(backend: Backend) {
    let server = TestServer::on(&backend);
    let (_, before) = put(&server, "cohere", &json!({})).await;
    let cases = [
        (
            json!({"concurrency_and_buffer_size": {"concurrency": 0, "buffer_size": 10}}),
            "invalid_concurrency",
            "concurrency_and_buffer_size.concurrency",
        ),
        (
            json!({"concurrency_and_buffer_size": {"concurrency": 10, "buffer_size": 0}}),
            "invalid_buffer_size",
            "concurrency_and_buffer_size.buffer_size",
        ),
        (
            json!({"concurrency_and_buffer_size": {"concurrency": 11, "buffer_size": 10}}),
            "concurrency_exceeds_buffer_size",
            "concurrency_and_buffer_size.concurrency",
        ),
        (
            json!({"concurrency_and_buffer_size": {"concurrency": 10, "buffer_size": 100000000}}),
            "invalid_buffer_size",
            "concurrency_and_buffer_size.buffer_size",
        ),
        (
            json!({"network_config": {"default_request_timeout_in_seconds": -1}}),
            "invalid_timeout",
            "network_config.default_request_timeout_in_seconds",
        ),
        (
            json!({"network_config": {"default_request_timeout_in_seconds": 172_801}}),
            "invalid_timeout",
            "network_config.default_request_timeout_in_seconds",
        ),
        (
            json!({"network_config": {"stream_idle_timeout_in_seconds": 4}}),
            "invalid_timeout",
            "network_config.stream_idle_timeout_in_seconds",
        ),
        (
            json!({"network_config": {"max_conns_per_host": 10_001}}),
            "invalid_max_conns_per_host",
            "network_config.max_conns_per_host",
        ),
        (
            json!({"network_config": {"retry_backoff_initial": "soon"}}),
            "invalid_field",
            "network_config.retry_backoff_initial",
        ),
        (
            json!({"network_config": {"extra_headers": {"X-A": "1", "x-a": "2"}}}),
            "invalid_extra_header",
            "network_config.extra_headers.x-a",
        ),
        (
            json!({"keys": [{"models": ["*", "gpt-4o"]}]}),
            "invalid_models",
            "keys[0].models",
        ),
        (
            json!({"keys": [{"blacklisted_models": ["a", "a"]}]}),
            "invalid_models",
            "keys[0].blacklisted_models[1]",
        ),
        (
            json!({"keys": [{"aliases": {"gpt-4o": ""}}]}),
            "invalid_aliases",
            "keys[0].aliases.gpt-4o",
        ),
        (
            json!({"keys": [{"value": true}]}),
            "invalid_field",
            "keys[0].value",
        ),
        (
            json!({"keys": [{"value": {"value": "x", "sauce": 1}}]}),
            "unknown_field",
            "keys[0].value.sauce",
        ),
        (
            json!({"network_config": {"max_retries": -1}}),
            "invalid_max_retries",
            "network_config.max_retries",
        ),
        (
            json!({"network_config": {"retry_backoff_initial": 99}}),
            "invalid_retry_backoff",
            "network_config.retry_backoff_initial",
        ),
        (
            json!({"network_config": {"retry_backoff_max": 1000001}}),
            "invalid_retry_backoff",
            "network_config.retry_backoff_max",
        ),
        (
            json!({"network_config": {"retry_backoff_initial": 6000, "retry_backoff_max": 5000}}),
            "invalid_retry_backoff",
            "network_config.retry_backoff_initial",
        ),
        (
            json!({"network_config": {"base_url": "ftp://x.example"}}),
            "invalid_base_url",
            "network_config.base_url",
        ),
        (
            json!({"network_config": {"base_url": "not a url"}}),
            "invalid_base_url",
            "network_config.base_url",
        ),
        (
            json!({"network_config": {"extra_headers": {"X-A": "v\r\nX-Injected: 1"}}}),
            "invalid_extra_header",
            "network_config.extra_headers.X-A",
        ),
        (
            json!({"network_config": {"extra_headers": {"X-A": "v\u{0}"}}}),
            "invalid_string",
            "network_config.extra_headers.X-A",
        ),
        (
            json!({"network_config": {"extra_headers": {"Bad Header": "v"}}}),
            "invalid_extra_header",
            "network_config.extra_headers.Bad Header",
        ),
        (
            json!({"proxy_config": {"type": "http", "url": "socks5://p:1"}}),
            "invalid_proxy_url",
            "proxy_config.url",
        ),
        (
            json!({"proxy_config": {"type": "socks5", "url": "http://p:1"}}),
            "invalid_proxy_url",
            "proxy_config.url",
        ),
        (
            json!({"proxy_config": {"type": "http"}}),
            "invalid_proxy_url",
            "proxy_config.url",
        ),
        (
            json!({"proxy_config": {"type": "ftp", "url": "ftp://p:1"}}),
            "invalid_field",
            "proxy_config.type",
        ),
        (
            json!({"concurrency_and_buffer_size": {"concurrency": 1.5}}),
            "invalid_field",
            "concurrency_and_buffer_size.concurrency",
        ),
        (
            json!({"network_config": {"max_retries": 1e30}}),
            "invalid_field",
            "network_config.max_retries",
        ),
        (
            json!({"netwrok_config": {}}),
            "unknown_field",
            "netwrok_config",
        ),
        (
            json!({"name": "someone-else"}),
            "provider_name_mismatch",
            "name",
        ),
        (json!({"keys": {}}), "invalid_field", "keys"),
    ];
    for (body, code, param) in cases {
        let (status, err) = put(&server, "cohere", &body).await;
        assert_error(status, &err, 400, code);
        assert_eq!(err["error"]["param"], param, "{body}");
        assert_eq!(
            get(&server, "cohere").await.1,
            before,
            "a refused {body} changed the store"
        );
    }
    let (status, ok) = put(&server, "cohere", &json!({"proxy_config": {"type": "socks5", "url": "socks5h://p.local:1080"},
        "network_config": {"base_url": "http://localhost:8000", "extra_headers": {"X-Tab": "a\tb"}}})).await;
    assert_eq!(status, 200, "{ok}");
}

async fn malformed_requests_get_the_error_body(backend: Backend) {
    let server = TestServer::on(&backend);
    let url = format!("{}/api/providers/openai", server.url);
    let bodies: [(&[u8], &str); 6] = [
        (b"{", "invalid_json"),
        (b"not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[]", "invalid_body"),
        (b"null", "invalid_body"),
        (b"{} trailing", "invalid_json"),
    ];
    for (body, code) in bodies {
        let (status, content_type, err) = raw("PUT", &url, Some(body.to_vec())).await;
        assert_error(status, &err, 400, code);
        assert_eq!(content_type, "application/json");
    }
    for (method, path, status, code) in [
        ("PATCH", "/api/providers/openai", 405, "method_not_allowed"),
        ("POST", "/api/providers/openai", 405, "method_not_allowed"),
        ("DELETE", "/api/providers", 405, "method_not_allowed"),
        ("PUT", "/health", 405, "method_not_allowed"),
        ("GET", "/api/providers/openai", 404, "provider_not_found"),
        ("DELETE", "/api/providers/openai", 404, "provider_not_found"),
        (
            "GET",
            "/api/providers/has%01control",
            400,
            "invalid_provider_name",
        ),
        (
            "GET",
            &format!("/api/providers/{}", "a".repeat(65)),
            400,
            "invalid_provider_name",
        ),
    ] {
        let (got, content_type, err) = raw(method, &format!("{}{path}", server.url), None).await;
        assert_error(got, &err, status, code);
        assert_eq!(content_type, "application/json", "{method} {path}");
    }
    // A 405 says what the path allows (RFC 9110).
    for (method, path, allow) in [
        ("PATCH", "/api/providers/openai", "GET, PUT, DELETE"),
        ("DELETE", "/api/providers", "GET, POST"),
        ("PUT", "/api/providers/openai/keys", "GET, POST"),
        ("POST", "/api/providers/openai/keys/k1", "GET, PUT, DELETE"),
        ("PUT", "/health", "GET"),
    ] {
        let response = common::http()
            .request(method.parse().unwrap(), format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
    }
    // Percent-decoding happens before the name is checked.
    let (status, _, body) = raw(
        "PUT",
        &format!("{}/api/providers/open%61i", server.url),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!((status, body["name"].as_str()), (200, Some("openai")));
}

async fn body_limit_is_a_413_and_a_megabyte_fits(backend: Backend) {
    let server = TestServer::on(&backend);
    let url = format!("{}/api/providers/openai", server.url);
    let models: Vec<String> = (0..8_000).map(|i| format!("model-{i:08}")).collect();
    let keys: Vec<Value> = (0..10)
        .map(|k| json!({"name": format!("k{k}"), "models": models}))
        .collect();
    let big = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
    assert!(big.len() > 1 << 20);
    let (status, _, body) = raw("PUT", &url, Some(big)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["keys"][9]["models"].as_array().unwrap().len(), 8_000);

    let (_, _, before) = raw("GET", &url, None).await;
    let huge = vec![b' '; 5 << 20];
    let (status, content_type, err) = raw("PUT", &url, Some(huge)).await;
    assert_error(status, &err, 413, "payload_too_large");
    assert_eq!(content_type, "application/json");
    assert_eq!(raw("GET", &url, None).await.2, before);

    let small = TestServer::on_with(&backend, &[], &["--max-body-bytes", "2048"]);
    let (status, _, err) = raw(
        "PUT",
        &format!("{}/api/providers/openai", small.url),
        Some(vec![b' '; 4096]),
    )
    .await;
    assert_error(status, &err, 413, "payload_too_large");
}

async fn delete_returns_the_redacted_provider(backend: Backend) {
    let server = TestServer::on(&backend);
    let client = server.client();
    client
        .update_provider()
        .provider("xai")
        .body(UpdateProviderRequest {
            keys: Some(vec![key("k", SECRET)]),
            ..Default::default()
        })
        .send()
        .await
        .unwrap();
    let deleted = client
        .delete_provider()
        .provider("xai")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.name, "xai");
    assert_eq!(
        deleted.keys[0].value.as_ref().unwrap().value,
        format!("sk-t{}cdef", "*".repeat(24))
    );
    let err = client
        .get_provider()
        .provider("xai")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    let health = client.health().send().await.unwrap().into_inner();
    assert_eq!(health.status, "ok");
}

async fn no_secret_in_any_response_or_log_line(backend: Backend) {
    let server = TestServer::on(&backend);
    let secrets = [
        "sk-leak-check-0001-abcdefgh",
        "bedrock-secret-key-zz9",
        "proxy-pw-leakcheck",
        "short7x",
    ];
    let body = json!({"keys": [
        {"id": "a", "value": {"value": secrets[0]}},
        {"id": "b", "value": {"value": secrets[3]}}
    ], "proxy_config": {"type": "http", "url": "http://p.local:1", "password": secrets[2]}});
    let mut responses: Vec<Value> = Vec::new();
    responses.push(put(&server, "openai", &body).await.1);
    responses.push(
        put(
            &server,
            "bedrock",
            &json!({"keys": [{"bedrock_key_config": {"secret_key": {"value": secrets[1]}}}]}),
        )
        .await
        .1,
    );
    // Secrets in places where they do not belong, in bad requests.
    responses.push(
        put(&server, "openai", &json!({"keys": [{"value": secrets[0]}]}))
            .await
            .1,
    );
    responses.push(
        put(
            &server,
            "openai",
            &json!({"keys": [{"enabled": secrets[1]}]}),
        )
        .await
        .1,
    );
    responses.push(
        put(
            &server,
            "openai",
            &json!({"proxy_config": {"type": secrets[2]}}),
        )
        .await
        .1,
    );
    responses.push(
        put(
            &server,
            "openai",
            &json!({"keys": [{"value": {"value": secrets[0], "from_env": "x"}}]}),
        )
        .await
        .1,
    );
    responses.push(get(&server, "openai").await.1);
    let query = format!("{}/api/providers/openai?api_key={}", server.url, secrets[0]);
    responses.push(raw("GET", &query, None).await.2);
    responses.push(
        raw("GET", &format!("{}/api/providers", server.url), None)
            .await
            .2,
    );
    responses.push(
        raw(
            "DELETE",
            &format!("{}/api/providers/bedrock", server.url),
            None,
        )
        .await
        .2,
    );
    let logs = server.logs();
    assert!(
        logs.contains("request completed"),
        "the server logged requests"
    );
    for secret in secrets {
        for response in &responses {
            assert!(
                !response.to_string().contains(secret),
                "{secret} in a response: {response}"
            );
        }
        assert!(!logs.contains(secret), "{secret} in the log");
    }
}

async fn response_only_fields_are_accepted_and_ignored(backend: Backend) {
    let server = TestServer::on(&backend);
    let body = json!({"name": "gemini", "status": "anything at all", "config_hash": "deadbeef",
                      "keys": [{"id": "key #1 for gemini", "value": {"value": SECRET}}]});
    let (status, shown) = put(&server, "gemini", &body).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["status"], "active");
    assert!(
        shown.get("config_hash").is_none(),
        "an API write sets no config_hash: {shown}"
    );
    assert_eq!(shown["keys"][0]["id"], "key #1 for gemini");
    // The GET body, as it is, is a valid PUT body.
    let (status, again) = put(&server, "gemini", &shown).await;
    assert_eq!((status, again), (200, shown));
}

on_every_store!(
    put_creates_with_defaults_and_get_lists_sorted,
    post_creates_once_then_conflicts,
    put_is_a_full_replacement,
    keys_are_matched_by_id,
    bad_keys_are_refused_and_change_nothing,
    secrets_survive_the_redacted_round_trip,
    masks_that_do_not_match_are_refused,
    environment_references,
    custom_providers,
    field_validation,
    malformed_requests_get_the_error_body,
    body_limit_is_a_413_and_a_megabyte_fits,
    delete_returns_the_redacted_provider,
    no_secret_in_any_response_or_log_line,
    response_only_fields_are_accepted_and_ignored,
);
