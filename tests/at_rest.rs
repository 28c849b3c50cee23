//! Secrets at rest, on every store: with an encryption key the raw store (the SQLite file and its
//! log, or every PostgreSQL row) holds no secret; a store written in clear is encrypted when a key
//! is first given; a wrong key, or none, refuses to start and changes nothing; keys rotate.

mod common;

use common::{Backend, TestServer, get, put};
use serde_json::{Value, json};

const KEY: &str = "q0aMNXkP2Jc4pX6m6yQeS5r1bT3d0cWwZ8vHn7LfKsA=";
const OTHER_KEY: &str = "Zm9yIHRlc3RzIG9ubHk6IGEgZGlmZmVyZW50IGtleSE=";

/// Every kind of secret the contract lists, each distinctive enough to find in raw bytes.
const SECRETS: [&str; 9] = [
    "sk-atrest-openai-0000000001",
    "sk-atrest-openai-0000000002",
    "https://atrest-endpoint.openai.azure.com",
    "atrest-client-secret-00003",
    "atrest-access-key-0000004",
    "atrest-secret-key-00000005",
    "atrest-vertex-credentials-06",
    "atrest-proxy-password-007",
    "-----BEGIN CERTIFICATE-----atrest-ca-0008",
];

/// Providers holding every secret of [`SECRETS`]: name and body.
fn providers() -> Vec<(&'static str, Value)> {
    vec![
        (
            "openai",
            json!({"keys": [{"id": "a", "value": {"value": SECRETS[0]}},
                             {"id": "b", "value": {"value": SECRETS[1]}}],
                   "proxy_config": {"type": "http", "url": "http://proxy.local:3128",
                                    "username": "u", "password": SECRETS[7], "ca_cert_pem": SECRETS[8]}}),
        ),
        (
            "azure",
            json!({"keys": [{"id": "z", "azure_key_config": {
                "endpoint": {"value": SECRETS[2]}, "client_secret": {"value": SECRETS[3]},
                "api_version": {"value": "2024-10-21"}}}]}),
        ),
        (
            "bedrock",
            json!({"keys": [{"id": "r", "bedrock_key_config": {
                "access_key": {"value": SECRETS[4]}, "secret_key": {"value": SECRETS[5]}}}]}),
        ),
        (
            "vertex",
            json!({"keys": [{"id": "v", "vertex_key_config": {
                "auth_credentials": {"value": SECRETS[6]}}}]}),
        ),
    ]
}

fn assert_holds_no_secret(raw: &[u8]) {
    assert!(!raw.is_empty(), "the store is empty");
    for secret in SECRETS {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is in the raw store"
        );
    }
}

fn contains(raw: &[u8], text: &str) -> bool {
    raw.windows(text.len()).any(|w| w == text.as_bytes())
}

/// Writes every provider; returns what each GET shows.
async fn fill(server: &TestServer) -> Vec<(&'static str, Value)> {
    let mut shown = Vec::new();
    for (name, body) in providers() {
        let (status, response) = put(server, name, &body).await;
        assert_eq!(status, 200, "{response}");
        shown.push((name, get(server, name).await.1));
    }
    shown
}

/// What the server shows now of each provider shown before.
async fn shown_now(
    server: &TestServer,
    before: &[(&'static str, Value)],
) -> Vec<(&'static str, Value)> {
    let mut now = Vec::new();
    for (name, _) in before {
        now.push((*name, get(server, name).await.1));
    }
    now
}

async fn with_a_key_the_raw_store_holds_no_secret(backend: Backend) {
    let mut server = TestServer::on_with(&backend, &[("BIFROST_ENCRYPTION_KEY", KEY)], &[]);
    let shown = fill(&server).await;
    assert_eq!(
        shown[0].1["keys"][0]["value"]["value"],
        format!("sk-a{}0001", "*".repeat(24)),
        "redaction works on sealed secrets"
    );
    // A GET body sent back keeps the secrets (the round trip works through the seal).
    for (name, body) in &shown {
        let (status, again) = put(&server, name, body).await;
        assert_eq!(status, 200, "{again}");
    }
    assert!(server.stop());
    let raw = server.raw_store();
    assert_holds_no_secret(&raw);
    assert!(contains(&raw, "enc:v1:"), "sealed values are in the store");
    assert!(
        contains(&raw, "2024-10-21"),
        "what is not secret stays readable"
    );

    // The same key opens them again: the same redactions, from the real secrets.
    server.restart();
    assert_eq!(shown_now(&server, &shown).await, shown);
}

async fn a_store_written_in_clear_is_encrypted_when_a_key_is_first_given(backend: Backend) {
    let mut server = TestServer::on(&backend);
    let shown = fill(&server).await;
    assert!(server.stop());
    assert!(
        contains(&server.raw_store(), SECRETS[0]),
        "without a key, secrets are stored as they are"
    );

    server.restart_with_env(&[("BIFROST_ENCRYPTION_KEY", KEY)]);
    assert!(server.logs().contains("rewrote the stored secrets"));
    assert_eq!(
        shown_now(&server, &shown).await,
        shown,
        "nothing changed but the store's bytes (ETags included)"
    );
    assert!(server.stop());
    assert_holds_no_secret(&server.raw_store());

    server.restart();
    assert_eq!(shown_now(&server, &shown).await, shown);
}

async fn a_wrong_key_or_none_refuses_to_start_and_changes_nothing(backend: Backend) {
    let mut server = TestServer::on_with(&backend, &[("BIFROST_ENCRYPTION_KEY", KEY)], &[]);
    let shown = fill(&server).await;
    assert!(server.stop());
    let before = server.dump();

    for (env, expected) in [
        (
            vec![("BIFROST_ENCRYPTION_KEY", OTHER_KEY)],
            "not with the key given",
        ),
        (vec![], "no encryption key was given"),
        (vec![("BIFROST_ENCRYPTION_KEY", "not-a-key")], "not base64"),
    ] {
        server.set_env(&env);
        let log = server.try_restart().expect_err("it must refuse to start");
        assert!(log.contains(expected), "{log}");
        for key in [KEY, OTHER_KEY] {
            assert!(!log.contains(key), "a key was printed: {log}");
        }
        assert!(server.dump() == before, "a refused start changed the store");
    }

    server.restart_with_env(&[("BIFROST_ENCRYPTION_KEY", KEY)]);
    assert_eq!(shown_now(&server, &shown).await, shown);
}

async fn keys_rotate_and_a_store_can_be_decrypted(backend: Backend) {
    let mut server = TestServer::on_with(&backend, &[("BIFROST_ENCRYPTION_KEY", KEY)], &[]);
    let shown = fill(&server).await;
    assert!(server.stop());

    // Rotate: the new key, with the old one as the previous key.
    server.restart_with_env(&[
        ("BIFROST_ENCRYPTION_KEY", OTHER_KEY),
        ("BIFROST_PREVIOUS_ENCRYPTION_KEY", KEY),
    ]);
    assert_eq!(shown_now(&server, &shown).await, shown);
    assert!(server.stop());
    assert_holds_no_secret(&server.raw_store());

    // Now only the new key opens the store.
    server.set_env(&[("BIFROST_ENCRYPTION_KEY", KEY)]);
    let log = server
        .try_restart()
        .expect_err("the old key no longer opens it");
    assert!(log.contains("not with the key given"), "{log}");
    server.restart_with_env(&[("BIFROST_ENCRYPTION_KEY", OTHER_KEY)]);
    assert_eq!(shown_now(&server, &shown).await, shown);
    assert!(server.stop());

    // Decrypt: the key as the previous one, and no current key.
    server.restart_with_env(&[("BIFROST_PREVIOUS_ENCRYPTION_KEY", OTHER_KEY)]);
    assert_eq!(shown_now(&server, &shown).await, shown);
    assert!(server.stop());
    assert!(
        contains(&server.raw_store(), SECRETS[0]),
        "decrypted back to clear"
    );
    server.restart_with_env(&[]);
    assert_eq!(shown_now(&server, &shown).await, shown);
}

on_every_store!(
    with_a_key_the_raw_store_holds_no_secret,
    a_store_written_in_clear_is_encrypted_when_a_key_is_first_given,
    a_wrong_key_or_none_refuses_to_start_and_changes_nothing,
    keys_rotate_and_a_store_can_be_decrypted,
);
