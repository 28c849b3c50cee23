//! Property-based fuzzing of the path from raw request bytes to a stored provider: decoding,
//! validation and the secret merge, first in-process (many cases), then through the real server
//! on a real port (fewer). Bodies are valid ones with hostile edits from a list that knows the
//! schema's edges (wrong types, out-of-range numbers, masks, environment references, header
//! injection, unknown fields, duplicate ids), some then mangled at the byte level.
//!
//! Properties: nothing panics and nothing is a 5xx; every rejection is a 4xx with the contract's
//! body, naming no secret, and leaves the store as it was; every accepted body reads back as
//! what was stored, redacted (no secret in clear), and that redacted body sent back keeps the
//! stored state exactly.
//!
//! Bounded: `BIFROST_FUZZ_CASES` cases in-process (default 3000) and a tenth of that (at least
//! 100) over HTTP.

mod common;

use bifrost_providers::decode::decode;
use bifrost_providers::domain::error::Error;
use bifrost_providers::domain::provider::{StoredProvider, desired_state, present};
use bifrost_providers::domain::validate;
use bifrost_providers::http::error::ApiError;
use bifrost_providers::types::UpdateProviderRequest;
use std::sync::atomic::{AtomicUsize, Ordering};

use dropshot::HttpResponseError;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// Secrets the generator uses; none may ever show in clear in a response or error.
const SECRETS: [&str; 4] = [
    "sk-fuzz-secret-0000000001",
    "fuzz-azure-client-secret-02",
    "fuzz-bedrock-secret-key-003",
    "fuzz-proxy-password-00004",
];

fn cases() -> u32 {
    std::env::var("BIFROST_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn pick<T: Clone + std::fmt::Debug + 'static>(values: Vec<T>) -> BoxedStrategy<T> {
    prop::sample::select(values).boxed()
}

/// A JSON value of the wrong kind, for any field.
fn junk() -> BoxedStrategy<Value> {
    pick(vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(1.5e300),
        json!("x"),
        json!([]),
        json!({}),
        json!({"nested": [1, {"a": null}]}),
    ])
}

/// A valid key, number `i` of its provider.
fn key(i: usize) -> BoxedStrategy<Value> {
    (
        pick(vec![
            json!({"value": SECRETS[0]}),
            json!({"value": format!("{}-{i}", SECRETS[0])}),
            json!({"value": "short"}),
            json!({"value": ""}),
            json!({"env_var": "env.FUZZ_OPENAI_KEY", "from_env": true}),
            json!({"value": "env.FUZZ_OPENAI_KEY"}),
        ]),
        pick(vec![json!(1.0), json!(0.25), json!(0)]),
        pick(vec![json!([]), json!(["gpt-4o", "gpt-4o-mini"])]),
        any::<bool>(),
    )
        .prop_map(move |(value, weight, models, enabled)| {
            json!({"id": format!("k{i}"), "name": format!("key-{i}"), "value": value,
                   "weight": weight, "models": models, "enabled": enabled})
        })
        .boxed()
}

/// A valid body for provider `name`.
fn valid_body(name: &str) -> BoxedStrategy<Value> {
    let custom = !validate::is_standard(name);
    (
        (0usize..4).prop_flat_map(|n| (0..n).map(key).collect::<Vec<_>>()),
        proptest::option::of(pick(vec![
            json!({"base_url": "https://api.example.com/v1", "extra_headers": {"X-Team": "a"},
                   "max_retries": 3, "default_request_timeout_in_seconds": 60,
                   "retry_backoff_initial": 100, "retry_backoff_max": 1_000_000}),
            json!({"base_url": ""}),
        ])),
        proptest::option::of(pick(vec![
            json!({"concurrency": 1, "buffer_size": 1}),
            json!({"concurrency": 100_000, "buffer_size": 1_000_000}),
        ])),
        proptest::option::of(pick(vec![
            json!({"type": "http", "url": "http://proxy.local:3128", "username": "u",
                   "password": SECRETS[3]}),
            json!({"type": "socks5", "url": "socks5h://proxy.local:1080"}),
            json!({"type": "none"}),
        ])),
    )
        .prop_map(move |(keys, network, concurrency, proxy)| {
            let mut body = json!({ "keys": keys });
            for (field, v) in [
                ("network_config", network),
                ("concurrency_and_buffer_size", concurrency),
                ("proxy_config", proxy),
            ] {
                if let Some(v) = v {
                    body[field] = v;
                }
            }
            if custom {
                body["custom_provider_config"] = json!({"base_provider_type": "openai"});
            }
            body
        })
        .boxed()
}

/// One hostile edit: a JSON pointer and what to put there.
fn edit() -> BoxedStrategy<(String, Value)> {
    let at = |pointer: &str, value: Value| (pointer.to_string(), value);
    let fixed = pick(vec![
        at("/keys/0/value", json!({"value": "********"})),
        at(
            "/keys/0/value",
            json!({"value": format!("sk-f{}0001", "*".repeat(24))}),
        ),
        at(
            "/keys/0/value",
            json!({"value": format!("sk-x{}0001", "*".repeat(24))}),
        ),
        at("/keys/0/value", json!({"value": "<REDACTED>"})),
        at("/keys/0/value", json!({"value": "env.FUZZ_UNSET_VARIABLE"})),
        at(
            "/keys/0/value",
            json!({"env_var": "not-a-reference", "from_env": true}),
        ),
        at("/keys/0/value", json!("a bare string secret")),
        at("/keys/0/value", json!({"value": SECRETS[0], "unknown": 1})),
        at("/keys/0/weight", json!(-0.5)),
        at("/keys/0/weight", json!(1e308)),
        at("/keys/0/id", json!("bad id with spaces")),
        at("/keys/0/id", json!("x".repeat(200))),
        at("/keys/0/id", json!("")),
        at("/keys/1/id", json!("k0")),
        at("/keys/1/name", json!("key-0")),
        at("/keys/0/name", json!("n".repeat(300))),
        at("/keys/0/enabled", json!("yes")),
        at(
            "/keys/0/azure_key_config",
            json!({"endpoint": {"value": "https://a.openai.azure.com"},
                                              "client_secret": {"value": SECRETS[1]}}),
        ),
        at(
            "/keys/0/bedrock_key_config",
            json!({"secret_key": {"value": SECRETS[2]}}),
        ),
        at("/keys/0/surprise", json!(true)),
        at("/network_config/base_url", json!("ftp://example.com")),
        at(
            "/network_config/base_url",
            json!("https://evil.example/\r\nX-Injected: 1"),
        ),
        at("/network_config/extra_headers", json!({"Bad Header": "a"})),
        at(
            "/network_config/extra_headers",
            json!({"X-Ok": "line\r\nX-Injected: 1"}),
        ),
        at("/network_config/extra_headers", json!({"X-Nul": "a\u{0}b"})),
        at("/network_config/max_retries", json!(-1)),
        at(
            "/network_config/default_request_timeout_in_seconds",
            json!(0),
        ),
        at("/network_config/retry_backoff_initial", json!(99)),
        at("/network_config/retry_backoff_max", json!(1_000_001)),
        at("/network_config/retry_backoff_initial", json!(2_000)),
        at("/network_config/retry_backoff_max", json!(1_000)),
        at(
            "/concurrency_and_buffer_size",
            json!({"concurrency": 0, "buffer_size": 10}),
        ),
        at(
            "/concurrency_and_buffer_size",
            json!({"concurrency": 10, "buffer_size": 5}),
        ),
        at(
            "/concurrency_and_buffer_size",
            json!({"concurrency": 100_001, "buffer_size": 2_000_000}),
        ),
        at(
            "/proxy_config",
            json!({"type": "http", "url": "http://p.local:1", "password": "<REDACTED>"}),
        ),
        at(
            "/proxy_config",
            json!({"type": "socks5", "url": "http://wrong-scheme"}),
        ),
        at("/proxy_config/type", json!("warp")),
        at(
            "/custom_provider_config",
            json!({"base_provider_type": "bedrock", "is_key_less": true}),
        ),
        at(
            "/custom_provider_config",
            json!({"base_provider_type": "not-a-provider"}),
        ),
        at(
            "/custom_provider_config/request_path_overrides",
            json!({"chat_completion": "/v1/chat"}),
        ),
        at(
            "/custom_provider_config/request_path_overrides",
            json!({"nope": "x y"}),
        ),
        at("/netwrok_config", json!({})),
        at("/name", json!("someone-else")),
        at("/status", json!("active")),
        at("/config_hash", Value::Null),
        at("/send_back_raw_request", json!("true")),
        at("/keys", json!({"not": "a list"})),
    ]);
    let anywhere = (
        pick(vec![
            "/keys/0/value/value",
            "/keys/0/models",
            "/network_config",
            "/network_config/extra_headers",
            "/proxy_config/url",
            "/concurrency_and_buffer_size/buffer_size",
            "/send_back_raw_response",
        ]),
        junk(),
    )
        .prop_map(|(pointer, value)| (pointer.to_string(), value));
    prop_oneof![4 => fixed, 1 => anywhere].boxed()
}

/// Sets what `pointer` names in `body`, making objects on the way; an index beyond an array's
/// end leaves the body as it is.
fn set(body: &mut Value, pointer: &str, value: Value) {
    let mut at = body;
    let mut parts = pointer.trim_start_matches('/').split('/').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        at = match at {
            Value::Array(items) => {
                match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => return,
                }
            }
            Value::Object(map) => {
                if last {
                    map.insert(part.to_string(), value);
                    return;
                }
                map.entry(part).or_insert_with(|| json!({}))
            }
            _ => return,
        };
        if last {
            *at = value;
            return;
        }
    }
}

/// A provider name for the path: mostly valid (standard or custom), sometimes not.
fn name() -> BoxedStrategy<String> {
    pick(vec![
        "openai".to_string(),
        "azure".to_string(),
        "bedrock".to_string(),
        "my-custom.v1".to_string(),
        "openai".to_string(),
        "my-custom.v1".to_string(),
        "a".repeat(65),
        "bad name".to_string(),
    ])
}

/// A name and a body for it, as bytes: a valid body with up to three hostile edits (none in
/// about a third of cases), and one in eight mangled after serializing (cut short, a byte
/// flipped, or bytes inserted).
fn request() -> BoxedStrategy<(String, Vec<u8>)> {
    name()
        .prop_flat_map(|name| {
            let body = valid_body(if validate::provider_name(&name, "p").is_ok() {
                &name
            } else {
                "openai"
            });
            (
                Just(name),
                body,
                proptest::collection::vec(edit(), 0..4),
                prop::bool::weighted(0.3),
                0u8..24,
                any::<usize>(),
                any::<u8>(),
            )
        })
        .prop_map(|(name, mut body, edits, clean, how, at, byte)| {
            if !clean {
                for (pointer, value) in edits {
                    set(&mut body, &pointer, value);
                }
            }
            let mut bytes = serde_json::to_vec(&body).unwrap();
            let at = at % (bytes.len() + 1);
            match how {
                0 => bytes.truncate(at),
                1 if at < bytes.len() => bytes[at] ^= byte | 1,
                2 => bytes.splice(at..at, [byte, b'"', b'\\']).for_each(drop),
                _ => {}
            }
            (name, bytes)
        })
        .boxed()
}

/// Checks that a rejection is a 4xx with the contract's body and no secret.
fn check_rejection(status: u16, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!((400..500).contains(&status), "status {status}: {body}");
    prop_assert_eq!(&body["is_bifrost_error"], &json!(false));
    prop_assert_eq!(&body["status_code"], &json!(status));
    let code = body["error"]["code"].as_str().unwrap_or_default();
    prop_assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "code {code:?}"
    );
    prop_assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    prop_assert!(body["extra_fields"].is_object());
    check_no_secret(body)
}

fn check_no_secret(shown: &Value) -> Result<(), TestCaseError> {
    let text = shown.to_string();
    for secret in SECRETS {
        prop_assert!(!text.contains(secret), "{secret} shown: {text}");
    }
    Ok(())
}

/// What the server does with a PUT of `bytes` to `name` over `current`, in-process.
fn put(
    name: &str,
    bytes: &[u8],
    current: Option<&StoredProvider>,
) -> Result<StoredProvider, Error> {
    validate::provider_name(name, "provider")?;
    let request: UpdateProviderRequest = decode(bytes)?;
    desired_state(name, request, current)
}

#[test]
fn decoding_validation_and_the_secret_merge_hold_their_contract() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (request(), request());
    let (accepted, rejected) = (AtomicUsize::new(0), AtomicUsize::new(0));
    runner
        .run(&strategy, |((name, first), (_, second))| {
            // A first write, then a second over it (the merge needs a stored state).
            let mut current: Option<StoredProvider> = None;
            for bytes in [first, second] {
                match put(&name, &bytes, current.as_ref()) {
                    Err(error) => {
                        let error = ApiError::from(error);
                        rejected.fetch_add(1, Ordering::Relaxed);
                        let body = serde_json::to_value(error.body()).unwrap();
                        check_rejection(error.status_code().as_u16(), &body)?;
                    }
                    Ok(state) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        let shown = present(&state);
                        let shown_json = serde_json::to_value(&shown).unwrap();
                        check_no_secret(&shown_json)?;
                        // The redacted body, sent back, keeps the stored state exactly.
                        let again = put(&name, &serde_json::to_vec(&shown).unwrap(), Some(&state))
                            .map_err(|e| TestCaseError::fail(format!("GET body refused: {e:?}")))?;
                        prop_assert_eq!(&again.config, &state.config);
                        prop_assert_eq!(present(&again), shown);
                        current = Some(state);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    report(&accepted, &rejected);
}

/// Says how the cases split, and fails if the generator never reached one side.
fn report(accepted: &AtomicUsize, rejected: &AtomicUsize) {
    let (accepted, rejected) = (
        accepted.load(Ordering::Relaxed),
        rejected.load(Ordering::Relaxed),
    );
    eprintln!("fuzz: {accepted} bodies accepted, {rejected} rejected");
    let total = accepted + rejected;
    assert!(
        accepted * 20 >= total,
        "too few accepted bodies: {accepted} of {total}"
    );
    assert!(
        rejected * 20 >= total,
        "too few rejected bodies: {rejected} of {total}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_server_holds_the_same_contract() {
    let server = common::TestServer::start();
    let http = common::http();
    let url = |name: &str| format!("{}/api/providers/{name}", server.url);
    let get = |name: String| {
        let request = http.get(url(&name));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let mut runner = TestRunner::new(Config {
        cases: (cases() / 10).max(100),
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let strategy = request();
    let (accepted, rejected) = (AtomicUsize::new(0), AtomicUsize::new(0));
    tokio::task::block_in_place(|| {
        runner
            .run(&strategy, |(name, bytes)| {
                handle.block_on(async {
                    let before = get(name.clone()).await;
                    let response = http
                        .put(url(&name))
                        .header("content-type", "application/json")
                        .body(bytes)
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    let content_type = response.headers()["content-type"].clone();
                    let body: Value = response.json().await.unwrap();
                    prop_assert_eq!(content_type, "application/json");
                    let after = get(name.clone()).await;
                    if status == 200 {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        check_no_secret(&body)?;
                        prop_assert_eq!(&after, &(200, body));
                    } else {
                        rejected.fetch_add(1, Ordering::Relaxed);
                        check_rejection(status, &body)?;
                        prop_assert_eq!(&after, &before, "a rejected write changed the store");
                    }
                    Ok(())
                })
            })
            .unwrap();
    });
    report(&accepted, &rejected);
    assert!(
        !server.logs().contains("\"level\":\"ERROR\""),
        "the server logged an error"
    );
}
