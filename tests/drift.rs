//! Drift checks: `openapi.json` (the source of truth) and the OpenAPI document the server
//! describes must agree on every operation (path, method, operation id, parameters, request and
//! response types) and on every schema those reach, field by field.
//!
//! The two documents are not text-equal: dropshot writes `4XX`/`5XX` error ranges, wraps optional
//! references in `allOf` + `nullable`, and keeps prose elsewhere. Both are brought to one
//! normal form that keeps what a client depends on and drops the rest.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

fn spec() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The schema name a `$ref` points at.
fn ref_name(reference: &str) -> String {
    reference.rsplit('/').next().unwrap().to_string()
}

/// The schema of the Rust type that holds a component marked `x-rust-type` in `openapi.json`.
/// Such a component describes more input forms than its type (a secret as a bare string, a
/// backoff as a duration string), which the server reads into the type before decoding; the
/// server's own document describes the type.
fn rust_type_schema(rust: &str) -> Value {
    match rust {
        "String" | "StringSecret" => json!({"type": "string"}),
        "i64" => json!({"type": "integer", "format": "int64"}),
        other => match other.strip_prefix("Vec<").and_then(|r| r.strip_suffix('>')) {
            Some(item) => {
                json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}})
            }
            None => json!({"$ref": format!("#/components/schemas/{other}")}),
        },
    }
}

/// A schema in normal form: types, formats, enums, properties, required fields, items, maps,
/// constraints and references; no prose, defaults, titles or `nullable` wrappers.
fn normal(schema: &Value, reached: &mut BTreeSet<String>) -> Value {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = ref_name(reference);
        if let Some(rust) = spec()["components"]["schemas"][&name]["x-rust-type"].as_str() {
            reached.insert(name);
            return normal(&rust_type_schema(rust), reached);
        }
        reached.insert(name.clone());
        return json!({ "ref": name });
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array)
        && all.len() == 1
    {
        return normal(&all[0], reached);
    }
    let mut out = serde_json::Map::new();
    for key in [
        "type",
        "format",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
    ] {
        if let Some(value) = schema.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let props: BTreeMap<_, _> = props
            .iter()
            .map(|(k, v)| (k.clone(), normal(v, reached)))
            .collect();
        out.insert("properties".into(), json!(props));
    }
    let required: BTreeSet<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !required.is_empty() {
        out.insert("required".into(), json!(required));
    }
    if let Some(items) = schema.get("items") {
        out.insert("items".into(), normal(items, reached));
    }
    match schema.get("additionalProperties") {
        Some(Value::Bool(false)) => {
            out.insert("additionalProperties".into(), json!(false));
        }
        Some(extra @ Value::Object(_)) => {
            out.insert("additionalProperties".into(), normal(extra, reached));
        }
        _ => {}
    }
    Value::Object(out)
}

/// Every operation and every schema it reaches, in normal form.
fn summary(doc: &Value) -> Value {
    let mut reached = BTreeSet::new();
    let mut operations = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let parameters: Vec<Value> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| json!({"name": p["name"], "in": p["in"], "required": p["required"].as_bool().unwrap_or(false), "schema": normal(&p["schema"], &mut reached)}))
                        .collect()
                })
                .unwrap_or_default();
            let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
            let body = (!body.is_null()).then(|| normal(&body, &mut reached));
            let mut success = BTreeMap::new();
            let mut errors = BTreeSet::new();
            for (code, response) in op["responses"].as_object().unwrap() {
                // dropshot names its error responses in `components/responses`.
                let response = match response.get("$ref").and_then(Value::as_str) {
                    Some(r) => &doc["components"]["responses"][ref_name(r)],
                    None => response,
                };
                let schema = normal(
                    &response["content"]["application/json"]["schema"],
                    &mut reached,
                );
                if code.starts_with('2') {
                    let headers: BTreeMap<String, Value> = response["headers"]
                        .as_object()
                        .map(|hs| {
                            hs.iter()
                                .map(|(name, h)| {
                                    let schema = normal(&h["schema"], &mut reached);
                                    (
                                        name.to_lowercase(),
                                        json!({"required": h["required"].as_bool().unwrap_or(false), "schema": schema}),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    success.insert(code.clone(), json!({"body": schema, "headers": headers}));
                } else {
                    errors.insert(schema.to_string());
                }
            }
            operations.insert(
                format!("{} {path}", method.to_uppercase()),
                json!({"operationId": op["operationId"], "tags": op["tags"], "parameters": parameters,
                       "requestBody": body, "success": success, "errorBodies": errors}),
            );
        }
    }
    let schemas = &doc["components"]["schemas"];
    let mut components = BTreeMap::new();
    while let Some(name) = reached
        .iter()
        .find(|n| !components.contains_key(*n))
        .cloned()
    {
        let schema = schemas
            .get(&name)
            .unwrap_or_else(|| panic!("schema {name} is referenced but missing"));
        components.insert(name, normal(schema, &mut reached));
    }
    json!({"operations": operations, "schemas": components})
}

#[test]
fn openapi_json_and_the_server_agree() {
    let hand = summary(&spec());
    let served = summary(&bifrost_providers::http::api::openapi());
    for section in ["operations", "schemas"] {
        let (h, s) = (
            hand[section].as_object().unwrap(),
            served[section].as_object().unwrap(),
        );
        // A component held by another Rust type (`x-rust-type`) is compared through that type.
        let names: BTreeSet<_> = h
            .keys()
            .chain(s.keys())
            .filter(|n| spec()["components"]["schemas"][n.as_str()]["x-rust-type"].is_null())
            .collect();
        for name in names {
            assert_eq!(
                h.get(name),
                s.get(name),
                "{section} {name}: openapi.json (left) and the server (right) disagree"
            );
        }
    }
}

#[test]
fn every_schema_of_openapi_json_is_used() {
    let doc = spec();
    let used: BTreeSet<String> = summary(&doc)["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let declared: BTreeSet<String> = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        used, declared,
        "schemas declared but reached by no operation"
    );
}

#[test]
fn server_openapi_document_snapshot() {
    insta::with_settings!({snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"), prepend_module_to_snapshot => false}, {
        insta::assert_json_snapshot!("server_openapi", bifrost_providers::http::api::openapi());
        insta::assert_json_snapshot!("openapi_summary", summary(&spec()));
    });
}
