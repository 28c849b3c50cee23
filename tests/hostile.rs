//! One corpus of hostile JSON, sent to a SQLite server and a PostgreSQL server side by side: each
//! body gets the same answer (status, code and field) from both, and leaves both stores alike.

mod common;

use common::{Backend, TestServer, raw};
use serde_json::Value;

/// Bodies a fuzzer or an attacker sends: NULs, lone surrogates, escapes, nesting, huge numbers,
/// duplicate members, wrong types in odd places, strings at the limits.
fn corpus() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = [
        r#"{"keys":[{"name":"a\u0000b","value":"sk-0123456789"}]}"#,
        r#"{"keys":[{"name":"ok","value":"sk-nul\u0000inside"}]}"#,
        r#"{"network_config":{"extra_headers":{"X-A\u0000":"v"}}}"#,
        r#"{"keys":[{"name":"\ud800","value":"x"}]}"#,
        r#"{"keys":[{"name":"\udfff\ud800","value":"x"}]}"#,
        r#"{"keys":[{"name":"😀\u00e9\u4e2d","value":"sk-unicode-0123456789"}]}"#,
        r#"{"network_config":{"max_retries":1e400}}"#,
        r#"{"network_config":{"max_retries":-0}}"#,
        r#"{"network_config":{"max_retries":3,"max_retries":4}}"#,
        r#"{"concurrency_and_buffer_size":{"concurrency":9223372036854775807,"buffer_size":1}}"#,
        r#"{"keys":[{"weight":1e-400,"value":"sk-tiny-weight-000"}]}"#,
        r#"{"keys":[{"weight":"NaN"}]}"#,
        r#"{"keys":[{"value":{"value":"x","ref":"env.\u0000"}}]}"#,
        r#"{"keys":[{"value":"env.1bad"}]}"#,
        r#"{"keys":[{"value":"vault.a b"}]}"#,
        r#"{"custom_provider_config":{"base_provider_type":"openai"}}"#,
        "\u{feff}{}",
        "{\"keys\":[]}\u{0}",
        "",
        "[]",
        "{\"keys\":[{\"name\":\"\\\"quoted\\\"\",\"value\":\"sk-escapes-\\\\\\/\\b\\f\\n\\r\\t\"}]}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    bodies.push(format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes());
    bodies.push(format!("{{\"keys\":[{{\"name\":\"{}\"}}]}}", "n".repeat(300)).into_bytes());
    bodies.push(format!("{{\"keys\":[{{\"id\":\"{}\"}}]}}", "i".repeat(129)).into_bytes());
    bodies.push(vec![0xff, 0xfe, b'{', b'}']);
    bodies
}

/// What a store-independent client sees of an answer.
fn seen(status: u16, body: &Value) -> (u16, Value, Value) {
    (
        status,
        body["error"]["code"].clone(),
        body["error"]["param"].clone(),
    )
}

/// A provider as shown, without what differs by nature between two stores (its tag).
fn shown(body: Value) -> Value {
    let mut body = body;
    if let Some(keys) = body["keys"].as_array_mut() {
        for key in keys {
            key.as_object_mut().map(|k| k.remove("id"));
        }
    }
    body
}

#[tokio::test]
async fn every_store_gives_hostile_json_the_same_answer() {
    let Some(postgres) = Backend::postgres("every_store_gives_hostile_json_the_same_answer") else {
        return;
    };
    let servers = [TestServer::on(&Backend::Sqlite), TestServer::on(&postgres)];
    for (i, body) in corpus().into_iter().enumerate() {
        let name = if i == 15 { "my-custom" } else { "openai" };
        let mut answers = Vec::new();
        for server in &servers {
            let url = format!("{}/api/providers/{name}", server.url);
            let (status, _, answer) = raw("PUT", &url, Some(body.clone())).await;
            assert!(status < 500, "body {i}: {status} {answer}");
            let (_, _, stored) = raw("GET", &url, None).await;
            answers.push((seen(status, &answer), shown(stored)));
        }
        assert_eq!(
            answers[0],
            answers[1],
            "body {i} ({}): SQLite (left) and PostgreSQL (right) differ",
            String::from_utf8_lossy(&body)
        );
    }
}
