//! The path parameters' schemas in `openapi.json` say exactly what the server accepts: for each
//! name, the spec's constraints (as the generated client applies them: length in characters and
//! the pattern; and the bound in bytes the spec states as `x-bifrost-max-bytes`, which JSON
//! Schema cannot) and the server's own checks agree, so a schema-driven tester never sends a name
//! the spec allows and the server refuses, or the other way round.

use bifrost_providers::client::types::{GetProviderKeyKeyId, GetProviderProvider};
use bifrost_providers::domain::validate;

fn names() -> Vec<String> {
    let mut names: Vec<String> = [
        "openai",
        "my custom llm",
        " padded ",
        " ",
        "\u{3000}",
        "\u{a0}\u{2003}",
        "\u{a0}x",
        "tab\there",
        "del\u{7f}",
        "nel\u{85}",
        "c1\u{9f}",
        "nbsp\u{a0}ok",
        "a/b",
        "émoji 🚀",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("a".repeat(64));
    names.push("a".repeat(65));
    names.push("é".repeat(32));
    names.push("é".repeat(33));
    names.push("é".repeat(64));
    names.push("🚀".repeat(16));
    names.push("🚀".repeat(17));
    names.push("🚀".repeat(64));
    names.push("é".repeat(65));
    names
}

/// The bound in bytes of every `{provider}` path parameter of openapi.json (all the same).
fn provider_name_max_bytes() -> usize {
    let spec: serde_json::Value =
        serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json");
    let mut bounds = std::collections::BTreeSet::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["name"] == "provider" && parameter["in"] == "path" {
                    bounds.insert(parameter["schema"]["x-bifrost-max-bytes"].as_u64());
                }
            }
        }
    }
    assert_eq!(bounds.len(), 1, "one bound for every operation: {bounds:?}");
    let bound = bounds.into_iter().next().unwrap();
    usize::try_from(bound.expect("x-bifrost-max-bytes on every provider parameter")).unwrap()
}

#[test]
fn provider_names_the_spec_allows_are_the_ones_the_server_accepts() {
    let max_bytes = provider_name_max_bytes();
    for name in names() {
        let spec = GetProviderProvider::try_from(name.as_str()).is_ok() && name.len() <= max_bytes;
        let server = validate::provider_name(&name, "provider").is_ok() && !name.is_empty();
        assert_eq!(spec, server, "{name:?}: spec {spec}, server {server}");
    }
}

#[test]
fn key_ids_the_spec_allows_are_the_ones_the_server_accepts() {
    let mut ids = names();
    ids.push("k".repeat(128));
    ids.push("k".repeat(129));
    for id in ids {
        let spec = GetProviderKeyKeyId::try_from(id.as_str()).is_ok();
        let server = validate::key_id(&id, "key_id").is_ok() && !id.is_empty();
        assert_eq!(spec, server, "{id:?}: spec {spec}, server {server}");
    }
}
