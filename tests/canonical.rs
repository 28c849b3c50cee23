//! Canonical responses, snapshotted in `snapshots/`: a created provider, a round trip, and one
//! error of each kind. A change to any of them shows in review as a snapshot diff.

mod common;

use common::{Backend, TestServer, raw};
use serde_json::{Value, json};

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"), prepend_module_to_snapshot => false}, {
            insta::assert_json_snapshot!($name, $value, {".keys[].id" => "[uuid]"});
        })
    };
}

async fn call(server: &TestServer, method: &str, path: &str, body: Option<&[u8]>) -> Value {
    let (status, content_type, body) = raw(
        method,
        &format!("{}{path}", server.url),
        body.map(<[u8]>::to_vec),
    )
    .await;
    json!({"status": status, "content_type": content_type, "body": body})
}

async fn created_provider_and_round_trip(backend: Backend) {
    let server = TestServer::on(&backend);
    let body = json!({
        "keys": [{"name": "primary", "value": {"value": "sk-proj-abcdefghijklmnopqrstuvwxyz"}, "models": ["gpt-4o"], "weight": 0.7},
                 {"name": "short", "value": {"value": "abc123"}, "enabled": false}],
        "network_config": {"base_url": "https://api.openai.com/v1", "extra_headers": {"OpenAI-Organization": "org-1"}},
        "proxy_config": {"type": "http", "url": "http://proxy.internal:3128", "username": "gw", "password": "p4ss"}
    });
    let created = call(
        &server,
        "PUT",
        "/api/providers/openai",
        Some(&serde_json::to_vec(&body).unwrap()),
    )
    .await;
    snapshot!("created_provider", &created["body"]);

    let fetched = call(&server, "GET", "/api/providers/openai", None).await["body"].clone();
    let mut edited = fetched.clone();
    edited["keys"][0]["weight"] = json!(0.3);
    let round_trip = call(
        &server,
        "PUT",
        "/api/providers/openai",
        Some(&serde_json::to_vec(&edited).unwrap()),
    )
    .await;
    snapshot!("round_trip", &round_trip["body"]);
}

async fn one_error_of_each_kind(backend: Backend) {
    let server = TestServer::on(&backend);
    call(
        &server,
        "PUT",
        "/api/providers/openai",
        Some(br#"{"keys":[{"id":"k1","value":{"value":"sk-abcdefghijklmnop"}}]}"#),
    )
    .await;
    let cases: [(&str, &str, &str, Option<&[u8]>); 16] = [
        (
            "error_invalid_json",
            "PUT",
            "/api/providers/openai",
            Some(b"{"),
        ),
        (
            "error_invalid_field",
            "PUT",
            "/api/providers/openai",
            Some(br#"{"keys":[{"weight":"heavy"}]}"#),
        ),
        (
            "error_unknown_field",
            "PUT",
            "/api/providers/openai",
            Some(br#"{"network_config":{"base_urll":""}}"#),
        ),
        (
            "error_invalid_concurrency",
            "PUT",
            "/api/providers/openai",
            Some(br#"{"concurrency_and_buffer_size":{"concurrency":0,"buffer_size":1}}"#),
        ),
        (
            "error_redacted_secret_mismatch",
            "PUT",
            "/api/providers/openai",
            Some(br#"{"keys":[{"id":"k1","value":{"value":"****"}}]}"#),
        ),
        (
            "error_invalid_secret_form",
            "PUT",
            "/api/providers/openai",
            Some(br#"{"keys":[{"value":12345678}]}"#),
        ),
        (
            "error_duplicate_key_id",
            "PUT",
            "/api/providers/openai",
            Some(br#"{"keys":[{"id":"a"},{"id":"a"}]}"#),
        ),
        (
            "error_custom_provider_config_required",
            "PUT",
            "/api/providers/my-llm",
            Some(b"{}"),
        ),
        (
            "error_invalid_provider_name",
            "GET",
            "/api/providers/bad%09name",
            None,
        ),
        (
            "error_provider_not_found",
            "GET",
            "/api/providers/anthropic",
            None,
        ),
        (
            "error_provider_already_exists",
            "POST",
            "/api/providers",
            Some(br#"{"provider":"openai"}"#),
        ),
        (
            "error_key_not_found",
            "GET",
            "/api/providers/openai/keys/no-such-key",
            None,
        ),
        (
            "error_key_already_exists",
            "POST",
            "/api/providers/openai/keys",
            Some(br#"{"id":"k1","value":"sk-another-0123456789"}"#),
        ),
        (
            "error_method_not_allowed",
            "PATCH",
            "/api/providers/openai",
            None,
        ),
        (
            "error_extra_header_injection",
            "PUT",
            "/api/providers/openai",
            Some(br#"{"network_config":{"extra_headers":{"X-A":"a\r\nX-B: b"}}}"#),
        ),
        (
            "error_provider_name_mismatch",
            "PUT",
            "/api/providers/openai",
            Some(br#"{"name":"anthropic"}"#),
        ),
    ];
    for (name, method, path, body) in cases {
        let response = call(&server, method, path, body).await;
        snapshot!(name, &response);
    }
    let too_large = call(
        &server,
        "PUT",
        "/api/providers/openai",
        Some(&vec![b' '; 5 << 20]),
    )
    .await;
    snapshot!("error_payload_too_large", &too_large);
}

on_every_store!(created_provider_and_round_trip, one_error_of_each_kind,);
