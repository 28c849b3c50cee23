//! The typed client reading what real Bifrost answers, of every generation, over HTTP.
//!
//! Bifrost cannot run here, so a small replay server in this test stands in for it: it answers
//! each request with a body of the generation under test as `bifrost-lineage.md` documents it
//! (§1.2 provider responses, §1.7 keys, §2.1 secret shapes, §4.1 the keys sub-resource, §7 the
//! error body), written the way Go's `encoding/json` writes it (members in declaration order,
//! `<`, `>` and `&` escaped as `\u003c`, `\u003e`, `\u0026`, a trailing newline). Each test
//! asserts that the client decodes the answer, keeps the values a later release added to an
//! enum, and reads Bifrost's own error body as an error response.

use std::collections::BTreeMap;

use bifrost_providers_client::types::{ModelProvider, ProviderStatus, ProxyType, SecretType};
use bifrost_providers_client::{Client, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A body as Go's `encoding/json` writes it (`json.NewEncoder(w).Encode(v)`): HTML-sensitive
/// characters escaped, then a newline.
fn go(json: &str) -> String {
    let escaped = json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!("{escaped}\n")
}

/// Serves, for each `METHOD /path`, one canned answer (status, body), once per connection.
struct Replay {
    url: String,
}

impl Replay {
    async fn start(answers: &[(&str, u16, String)]) -> Replay {
        let answers: BTreeMap<String, (u16, String)> = answers
            .iter()
            .map(|(route, status, body)| (route.to_string(), (*status, body.clone())))
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let answers = answers.clone();
                tokio::spawn(async move {
                    let Some(route) = read_request(&mut socket).await else {
                        return;
                    };
                    let (status, body) = answers
                        .get(&route)
                        .cloned()
                        .unwrap_or_else(|| (599, format!("no answer for {route}")));
                    let head = format!(
                        "HTTP/1.1 {status} Replayed\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                });
            }
        });
        Replay { url }
    }

    fn client(&self) -> Client {
        Client::builder(&self.url).retries(0).build().unwrap()
    }
}

/// Reads one request whole; `METHOD /path` (no query).
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head) = request.parse(&bytes).ok()? {
            let length = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                .unwrap_or(0);
            let route = format!(
                "{} {}",
                request.method?,
                request.path?.split('?').next().unwrap_or_default()
            );
            while bytes.len() < head + length {
                let n = socket.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                bytes.extend_from_slice(&chunk[..n]);
            }
            return Some(route);
        }
    }
}

/// The status and Bifrost error body of a refused request.
fn refusal<T: std::fmt::Debug>(
    outcome: Result<T, Error<bifrost_providers_client::types::BifrostError>>,
) -> (u16, bifrost_providers_client::types::BifrostError) {
    match outcome {
        Err(Error::ErrorResponse(response)) => {
            let status = response.status().as_u16();
            (status, response.into_inner())
        }
        other => panic!("expected an error response, got {other:?}"),
    }
}

// v1.4.3 (G1a, the seed's release): keys inline, `status` as health, no `provider_status`,
// no `store_raw_request_response`, the proxy password as `********`.
const G1A_PROVIDER: &str = r#"{"name":"openai","keys":[{"id":"b7d1c0c2-5d5e-4c55-9d0e-2f7b1f0e9a11","name":"primary","value":{"value":"sk-p************************mnop","env_var":"","from_env":false},"models":[],"weight":1,"use_for_batch_api":false},{"id":"0f9e5c1a-1111-4c55-9d0e-2f7b1f0e9a12","name":"from-env","value":{"value":"sk-e************************abcd","env_var":"env.OPENAI_API_KEY","from_env":true},"models":["gpt-4o"],"weight":0.5,"enabled":false,"use_for_batch_api":true}],"network_config":{"base_url":"https://api.openai.com/v1","extra_headers":{"X-Team":"ml<&>ops"},"default_request_timeout_in_seconds":30,"max_retries":2,"retry_backoff_initial":500,"retry_backoff_max":5000},"concurrency_and_buffer_size":{"concurrency":1000,"buffer_size":5000},"proxy_config":{"type":"http","url":"http://proxy.internal:3128","username":"ops","password":"********","ca_cert_pem":""},"send_back_raw_request":false,"send_back_raw_response":false,"status":"active"}"#;

// A G1 DELETE body: the name and zero values, `keys: null`, `status: ""`.
const G1A_DELETED: &str = r#"{"name":"openai","keys":null,"network_config":{"default_request_timeout_in_seconds":0,"max_retries":0,"retry_backoff_initial":0,"retry_backoff_max":0},"concurrency_and_buffer_size":{"concurrency":0,"buffer_size":0},"proxy_config":null,"send_back_raw_request":false,"send_back_raw_response":false,"status":""}"#;

const G1_NOT_FOUND: &str = r#"{"is_bifrost_error":false,"status_code":404,"error":{"message":"Provider not found: not found"},"extra_fields":{"provider":"","model_requested":"","request_type":""}}"#;

#[tokio::test]
async fn v1_4_0_to_v1_4_6_answers_decode() {
    let list = format!(r#"{{"providers":[{G1A_PROVIDER}],"total":1}}"#);
    let replay = Replay::start(&[
        ("GET /api/providers/openai", 200, go(G1A_PROVIDER)),
        ("GET /api/providers", 200, go(&list)),
        ("DELETE /api/providers/openai", 200, go(G1A_DELETED)),
        ("GET /api/providers/missing", 404, go(G1_NOT_FOUND)),
        ("DELETE /api/providers/missing", 404, go(G1_NOT_FOUND)),
    ])
    .await;
    let client = replay.client();

    let provider = client
        .get_provider()
        .provider("openai")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(provider.status, Some(ProviderStatus::Active));
    assert_eq!(provider.provider_status, None);
    assert_eq!(provider.store_raw_request_response, None);
    assert_eq!(provider.keys.len(), 2);
    assert!(provider.keys[0].models.is_empty());
    assert!(!provider.keys[1].enabled);
    assert_eq!(
        provider.keys[1].value.as_ref().unwrap().env_var,
        "env.OPENAI_API_KEY"
    );
    assert_eq!(
        provider.network_config.extra_headers["X-Team"], "ml<&>ops",
        "Go's escapes read back as the characters"
    );
    let proxy = provider.proxy_config.as_ref().unwrap();
    assert_eq!(proxy.type_, ProxyType::Http);
    assert_eq!(*proxy.password, "********");

    let listed = client.list_providers().send().await.unwrap().into_inner();
    assert_eq!(
        (listed.total, listed.providers[0].name.as_str()),
        (1, "openai")
    );

    let deleted = client
        .delete_provider()
        .provider("openai")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.keys.is_empty(), "`keys: null` reads as no keys");
    assert_eq!(deleted.status, Some(ProviderStatus::Other(String::new())));
    assert_eq!(deleted.concurrency_and_buffer_size.concurrency, 0);

    for outcome in [
        client.get_provider().provider("missing").send().await,
        client.delete_provider().provider("missing").send().await,
    ] {
        let (status, body) = refusal(outcome);
        assert_eq!(status, 404);
        assert_eq!(body.error.message, "Provider not found: not found");
        assert_eq!(body.error.code, None);
        assert_eq!(body.status_code, Some(404));
    }
}

// v1.4.19 (G1b): `provider_status` beside an operational `status`, key status and description,
// `blacklisted_models: null` on a raw key, richer network settings, a custom provider with
// request kinds this spec does not list, pricing overrides, `<REDACTED>` escaped by Go.
const G1B_PROVIDER: &str = r#"{"name":"my-llm","keys":[{"id":"k-1","name":"k-1","value":{"value":"sk-l************************wxyz","env_var":"","from_env":false},"models":[],"blacklisted_models":null,"weight":1,"use_for_batch_api":false,"status":"list_models_failed","description":"failed to list models: 401 <Unauthorized> & no retry"}],"network_config":{"base_url":"https://llm.internal/v1","default_request_timeout_in_seconds":60,"max_retries":1,"retry_backoff_initial":500,"retry_backoff_max":5000,"insecure_skip_verify":true,"ca_cert_pem":"<REDACTED>","stream_idle_timeout_in_seconds":60,"max_conns_per_host":5000,"beta_header_overrides":{"redact-thinking-":true}},"concurrency_and_buffer_size":{"concurrency":100,"buffer_size":1000},"proxy_config":{"type":"socks5","url":"socks5://proxy.internal:1080","username":"","password":"<REDACTED>","ca_cert_pem":""},"send_back_raw_request":false,"send_back_raw_response":true,"store_raw_request_response":true,"custom_provider_config":{"is_key_less":false,"base_provider_type":"openai","allowed_requests":{"list_models":true,"chat_completion":true,"chat_completion_stream":true,"websocket_responses":true,"a_request_kind_of_a_later_release":true},"request_path_overrides":{"chat_completion":"/v2/chat"}},"openai_config":{"disable_store":true},"pricing_overrides":[{"model_pattern":"gpt-*","match_type":"wildcard","pricing":{"input_cost_per_token":0.000001}}],"provider_status":"active","status":"list_models_failed","description":"failed to list models","config_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#;

const G1B_DELETED: &str = r#"{"name":"my-llm","keys":null,"network_config":{"default_request_timeout_in_seconds":0,"max_retries":0,"retry_backoff_initial":0,"retry_backoff_max":0},"concurrency_and_buffer_size":{"concurrency":0,"buffer_size":0},"proxy_config":null,"send_back_raw_request":false,"send_back_raw_response":false,"store_raw_request_response":false,"provider_status":""}"#;

#[tokio::test]
async fn v1_4_7_to_v1_4_23_answers_decode() {
    assert!(go(G1B_PROVIDER).contains(r#""password":"\u003cREDACTED\u003e""#));
    let list = format!(r#"{{"providers":[{G1B_PROVIDER}],"total":1}}"#);
    let replay = Replay::start(&[
        ("GET /api/providers/my-llm", 200, go(G1B_PROVIDER)),
        ("PUT /api/providers/my-llm", 200, go(G1B_PROVIDER)),
        ("GET /api/providers", 200, go(&list)),
        ("DELETE /api/providers/my-llm", 200, go(G1B_DELETED)),
    ])
    .await;
    let client = replay.client();

    let provider = client
        .get_provider()
        .provider("my-llm")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        provider.status,
        Some(ProviderStatus::Other("list_models_failed".into()))
    );
    assert_eq!(provider.provider_status, Some(ProviderStatus::Active));
    assert_eq!(
        provider.description.as_deref(),
        Some("failed to list models")
    );
    assert_eq!(
        provider.keys[0].status.as_deref(),
        Some("list_models_failed")
    );
    assert_eq!(
        provider.keys[0].description.as_deref(),
        Some("failed to list models: 401 <Unauthorized> & no retry")
    );
    assert!(provider.keys[0].blacklisted_models.is_empty());
    assert_eq!(*provider.network_config.ca_cert_pem, "<REDACTED>");
    assert_eq!(
        *provider.proxy_config.as_ref().unwrap().password,
        "<REDACTED>"
    );
    let custom = provider.custom_provider_config.as_ref().unwrap();
    assert_eq!(custom.base_provider_type, ModelProvider::Openai);
    assert_eq!(provider.pricing_overrides.len(), 1);

    // The GET body goes back as a PUT body, keys and all (the v1.4 round trip).
    let edit = bifrost_providers_client::types::UpdateProviderRequest::from(provider.clone());
    assert_eq!(edit.keys.as_ref().map(Vec::len), Some(1));
    let written = client
        .update_provider()
        .provider("my-llm")
        .body(edit)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(written, provider);

    let listed = client.list_providers().send().await.unwrap().into_inner();
    assert_eq!(listed.providers[0], provider);

    let deleted = client
        .delete_provider()
        .provider("my-llm")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.keys.is_empty());
    assert_eq!(
        deleted.provider_status,
        Some(ProviderStatus::Other(String::new()))
    );
    assert_eq!(deleted.status, None);
}

// v1.5.1 (G2): no `keys` on a provider, keys under /keys with `["*"]` for all models, the
// proxy's fields as secret objects (and `null`), aliases, key configs.
const G2_PROVIDER: &str = r#"{"name":"openai","network_config":{"base_url":"https://api.openai.com/v1?a=1&b=2","default_request_timeout_in_seconds":30,"max_retries":0,"retry_backoff_initial":500,"retry_backoff_max":5000,"ca_cert_pem":"env.OPENAI_CA"},"concurrency_and_buffer_size":{"concurrency":1000,"buffer_size":5000},"proxy_config":{"type":"http","url":{"value":"http://proxy.internal:3128","env_var":"","from_env":false},"username":{"value":"ops*","env_var":"env.PROXY_USER","from_env":true},"password":{"value":"<REDACTED>","env_var":"","from_env":false},"ca_cert_pem":null},"send_back_raw_request":false,"send_back_raw_response":false,"store_raw_request_response":false,"provider_status":"error","status":"list_models_failed","description":"failed to list models: context deadline exceeded"}"#;

const G2_KEY: &str = r#"{"id":"6f1d0c9e-2a7b-4c1e-9d3f-0a1b2c3d4e5f","name":"primary","value":{"value":"sk-p************************mnop","env_var":"","from_env":false},"models":["*"],"blacklisted_models":[],"weight":1,"aliases":{"gpt-4o":"gpt-4o-2024-08-06"},"use_for_batch_api":false,"status":"success"}"#;

const G2_AZURE_KEY: &str = r#"{"id":"a2","name":"azure-east","value":{"value":"","env_var":"env.AZURE_KEY","from_env":true},"models":["gpt-4o"],"blacklisted_models":["gpt-3.5-turbo"],"weight":0.25,"azure_key_config":{"endpoint":{"value":"http************************.com","env_var":"","from_env":false},"api_version":{"value":"2024-10-21","env_var":"","from_env":false},"scopes":["https://cognitiveservices.azure.com/.default"]},"enabled":false,"use_for_batch_api":false}"#;

const G2_DELETED: &str = r#"{"name":"openai","network_config":{"default_request_timeout_in_seconds":0,"max_retries":0,"retry_backoff_initial":0,"retry_backoff_max":0},"concurrency_and_buffer_size":{"concurrency":0,"buffer_size":0},"proxy_config":null,"send_back_raw_request":false,"send_back_raw_response":false,"store_raw_request_response":false,"provider_status":""}"#;

const G2_KEY_NOT_FOUND: &str = r#"{"is_bifrost_error":false,"status_code":404,"error":{"message":"Provider key not found: not found"},"extra_fields":{}}"#;

const G2_DUPLICATE: &str = r#"{"is_bifrost_error":false,"status_code":500,"error":{"message":"Failed to create provider key: failed to create provider key in store: a record with this name already exists. Please use a different value"},"extra_fields":{}}"#;

#[tokio::test]
async fn v1_5_answers_decode() {
    let keys = format!(r#"{{"keys":[{G2_KEY},{G2_AZURE_KEY}],"total":2}}"#);
    let replay = Replay::start(&[
        ("GET /api/providers/openai", 200, go(G2_PROVIDER)),
        ("DELETE /api/providers/openai", 200, go(G2_DELETED)),
        ("GET /api/providers/openai/keys", 200, go(&keys)),
        ("GET /api/providers/openai/keys/a2", 200, go(G2_AZURE_KEY)),
        ("POST /api/providers/openai/keys", 500, go(G2_DUPLICATE)),
        (
            "DELETE /api/providers/openai/keys/6f1d0c9e-2a7b-4c1e-9d3f-0a1b2c3d4e5f",
            200,
            go(G2_KEY),
        ),
        (
            "GET /api/providers/openai/keys/gone",
            404,
            go(G2_KEY_NOT_FOUND),
        ),
    ])
    .await;
    let client = replay.client();

    let provider = client
        .get_provider()
        .provider("openai")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(provider.keys.is_empty(), "v1.5 sends no keys member");
    assert_eq!(provider.provider_status, Some(ProviderStatus::Error));
    assert_eq!(
        provider.status,
        Some(ProviderStatus::Other("list_models_failed".into()))
    );
    assert_eq!(
        provider.network_config.base_url,
        "https://api.openai.com/v1?a=1&b=2"
    );
    let proxy = provider.proxy_config.as_ref().unwrap();
    assert_eq!(*proxy.url, "http://proxy.internal:3128");
    assert_eq!(
        *proxy.username, "env.PROXY_USER",
        "a reference reads as itself"
    );
    assert_eq!(*proxy.password, "<REDACTED>");
    assert_eq!(*proxy.ca_cert_pem, "", "`null` reads as empty");

    let listed = client
        .list_provider_keys()
        .provider("openai")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total, 2);
    assert_eq!(listed.keys[0].models, ["*"]);
    assert_eq!(listed.keys[0].aliases["gpt-4o"], "gpt-4o-2024-08-06");
    assert_eq!(listed.keys[1].blacklisted_models, ["gpt-3.5-turbo"]);

    let azure = client
        .get_provider_key()
        .provider("openai")
        .key_id("a2")
        .send()
        .await
        .unwrap()
        .into_inner();
    let config = azure.azure_key_config.as_ref().unwrap();
    assert_eq!(config.scopes.len(), 1);
    assert!(!azure.enabled);
    assert_eq!(azure, listed.keys[1]);

    let deleted_key = client
        .delete_provider_key()
        .provider("openai")
        .key_id("6f1d0c9e-2a7b-4c1e-9d3f-0a1b2c3d4e5f")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted_key, listed.keys[0]);

    let deleted = client
        .delete_provider()
        .provider("openai")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.name, "openai");
    assert_eq!(
        deleted.provider_status,
        Some(ProviderStatus::Other(String::new()))
    );

    let (status, body) = refusal(
        client
            .get_provider_key()
            .provider("openai")
            .key_id("gone")
            .send()
            .await,
    );
    assert_eq!(
        (status, body.error.message.as_str()),
        (404, "Provider key not found: not found")
    );
    let (status, body) = refusal(
        client
            .create_provider_key()
            .provider("openai")
            .body(bifrost_providers_client::types::Key::default())
            .send()
            .await,
    );
    assert_eq!(status, 500);
    assert!(
        body.error
            .message
            .starts_with("Failed to create provider key")
    );
}

// v1.6+ and v2.x (G3/G4): secrets as `{value, ref, type}` (no `env_var`/`from_env`), a kind of
// secret, a proxy type and a base provider type this spec does not list, blocks of later
// releases (`prompt_cache`, `does_not_send_done_marker`, a key config), an error with `type`
// and `event_id`.
const G4_PROVIDER: &str = r#"{"name":"sap-llm","network_config":{"base_url":"https://sap.internal","default_request_timeout_in_seconds":30,"max_retries":0,"retry_backoff_initial":500,"retry_backoff_max":5000,"allow_private_network":true},"concurrency_and_buffer_size":{"concurrency":1000,"buffer_size":5000},"proxy_config":{"type":"socks4","url":{"value":"socks4://proxy:1080","type":"plain_text"},"username":{"value":"","ref":"env.PROXY_USER","type":"env"},"password":{"value":"<REDACTED>","type":"plain_text"},"ca_cert_pem":{"value":"","ref":"vault.proxy/ca","type":"vault"}},"send_back_raw_request":false,"send_back_raw_response":false,"store_raw_request_response":false,"custom_provider_config":{"is_key_less":false,"base_provider_type":"sapaicore","does_not_send_done_marker":true},"prompt_cache":{"auto_inject":true,"ttl":"5m"},"provider_status":"active"}"#;

const G4_KEYS: &str = r#"{"keys":[{"id":"p1","name":"plain","value":{"value":"sk-a************************wxyz","type":"plain_text"},"models":["*"],"blacklisted_models":[],"weight":1,"use_for_batch_api":false},{"id":"e1","name":"env","value":{"value":"","ref":"env.ANTHROPIC_API_KEY","type":"env"},"models":["*"],"blacklisted_models":[],"weight":1,"use_for_batch_api":false},{"id":"v1","name":"vault","value":{"value":"","ref":"vault.secret/anthropic","type":"vault"},"models":["*"],"blacklisted_models":[],"weight":1,"use_for_batch_api":false},{"id":"m1","name":"managed","value":{"value":"","ref":"aws-sm://anthropic","type":"aws_secrets_manager"},"models":["*"],"blacklisted_models":[],"weight":1,"use_for_batch_api":false,"bedrock_mantle_key_config":{"use_anthropic_endpoints":true}}],"total":4}"#;

const G4_KEYS_REFUSED: &str = r#"{"is_bifrost_error":false,"status_code":400,"error":{"message":"keys are not accepted on this endpoint; use POST/PUT /api/providers/{provider}/keys[/{key_id}] to manage keys"},"extra_fields":{}}"#;

const G4_TYPED_ERROR: &str = r#"{"event_id":"evt-1","type":"invalid_request","is_bifrost_error":false,"status_code":404,"error":{"type":"not_found","message":"Provider not found: <sap-llm> & co","event_id":"evt-1"},"extra_fields":{}}"#;

// Bifrost's `ErrorField.Param` is `interface{}`: a handler may put any value there.
const G4_PARAM_NOT_A_STRING: &str = r#"{"is_bifrost_error":false,"status_code":400,"error":{"message":"invalid key at index 2","param":{"field":"keys","index":2}},"extra_fields":{}}"#;

#[tokio::test]
async fn v1_6_and_v2_answers_decode() {
    let replay = Replay::start(&[
        ("GET /api/providers/sap-llm", 200, go(G4_PROVIDER)),
        ("GET /api/providers/sap-llm/keys", 200, go(G4_KEYS)),
        ("PUT /api/providers/sap-llm", 400, go(G4_KEYS_REFUSED)),
        ("GET /api/providers/gone", 404, go(G4_TYPED_ERROR)),
        (
            "DELETE /api/providers/sap-llm",
            400,
            go(G4_PARAM_NOT_A_STRING),
        ),
    ])
    .await;
    let client = replay.client();

    let provider = client
        .get_provider()
        .provider("sap-llm")
        .send()
        .await
        .unwrap()
        .into_inner();
    let custom = provider.custom_provider_config.as_ref().unwrap();
    assert_eq!(
        custom.base_provider_type,
        ModelProvider::Other("sapaicore".into())
    );
    assert_eq!(custom.base_provider_type.to_string(), "sapaicore");
    let proxy = provider.proxy_config.as_ref().unwrap();
    assert_eq!(proxy.type_, ProxyType::Other("socks4".into()));
    assert_eq!(*proxy.url, "socks4://proxy:1080");
    assert_eq!(*proxy.username, "env.PROXY_USER");
    assert_eq!(*proxy.ca_cert_pem, "vault.proxy/ca");
    assert!(provider.network_config.allow_private_network);
    assert_eq!(
        provider.prompt_cache.as_ref().unwrap().ttl.as_deref(),
        Some("5m")
    );

    let keys = client
        .list_provider_keys()
        .provider("sap-llm")
        .send()
        .await
        .unwrap()
        .into_inner();
    let secret = |i: usize| keys.keys[i].value.clone().unwrap();
    assert_eq!(secret(0).type_, Some(SecretType::PlainText));
    assert_eq!(secret(0).value, "sk-a************************wxyz");
    assert_eq!(
        (secret(1).type_, secret(1).ref_.as_deref()),
        (Some(SecretType::Env), Some("env.ANTHROPIC_API_KEY"))
    );
    assert_eq!(secret(2).type_, Some(SecretType::Vault));
    assert_eq!(
        secret(3).type_,
        Some(SecretType::Other("aws_secrets_manager".into())),
        "a kind of secret a later release adds is kept"
    );

    let (status, body) = refusal(
        client
            .update_provider()
            .provider("sap-llm")
            .body(bifrost_providers_client::types::UpdateProviderRequest::default())
            .send()
            .await,
    );
    assert_eq!(status, 400);
    assert!(body.error.message.starts_with("keys are not accepted"));
    let (status, body) = refusal(client.get_provider().provider("gone").send().await);
    assert_eq!(status, 404);
    assert_eq!(body.error.message, "Provider not found: <sap-llm> & co");
    assert_eq!(body.error.param_text(), None);
    let (status, body) = refusal(client.delete_provider().provider("sap-llm").send().await);
    assert_eq!(status, 400);
    assert_eq!(
        body.error.param,
        Some(serde_json::json!({"field": "keys", "index": 2})),
        "a param that is not a string is read as it was sent"
    );
    assert_eq!(
        body.error.param_text().as_deref(),
        Some(r#"{"field":"keys","index":2}"#)
    );
}

/// What the models keep they also write back: an open value is sent as it was read.
#[test]
fn open_values_are_written_as_read() {
    let provider: bifrost_providers_client::types::ProviderResponse =
        serde_json::from_str(G4_PROVIDER).unwrap();
    let written = serde_json::to_value(&provider).unwrap();
    assert_eq!(written["proxy_config"]["type"], "socks4");
    assert_eq!(
        written["custom_provider_config"]["base_provider_type"],
        "sapaicore"
    );
    assert_eq!(written["provider_status"], "active");
}
