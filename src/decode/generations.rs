//! Request JSON as every Bifrost generation writes it, brought to the one form the models decode.
//!
//! Bifrost's clients send the same field in several shapes: a secret as a bare string or as one
//! of three object forms, a retry backoff as milliseconds or as a Go duration string, a proxy URL
//! as a string or (v1.5+) as a secret object, and `null` for anything left unset. `openapi.json`
//! describes each of these shapes; its schemas marked `x-rust-type` are held by a narrower Rust
//! type. This pass walks a body beside its schema and rewrites each value into that type's form
//! before the typed decode, so the models stay simple and every generation is understood:
//!
//! - `null` for a declared field means the field is absent (every optional field);
//! - at a `Secret`, a bare string becomes `{"value": …}` (its references are read later, by
//!   [`crate::domain::secrets::kind`]); a number, boolean or array is a 400 naming the field;
//! - at a `StringSecret`, a secret object becomes the string it stands for (`env.NAME`, or the
//!   literal);
//! - at a `Backoff`, a Go duration string becomes milliseconds.
//!
//! Nothing here quotes a value from the body in an error: any string may be a secret.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::domain::error::Error;
use crate::types::EnvVar;

/// The component schemas of `openapi.json`.
fn schemas() -> &'static Map<String, Value> {
    static SCHEMAS: OnceLock<Map<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let spec: Value =
            serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json is JSON");
        spec["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    })
}

/// Rewrites `value`, a body of the component schema `schema`, into the form its model decodes.
pub fn normalize(value: &mut Value, schema: &str) -> Result<(), Error> {
    no_nul(value, &mut String::new())?;
    match schemas().get(schema) {
        Some(schema) => walk(value, schema, &mut String::new()),
        None => Ok(()),
    }
}

fn walk(value: &mut Value, schema: &Value, path: &mut String) -> Result<(), Error> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        match name {
            "Secret" => return secret(value, path),
            "StringSecret" => return string_secret(value, path),
            "Backoff" => return backoff(value, path),
            _ => {}
        }
        return match schemas().get(name) {
            Some(target) => walk(value, target, path),
            None => Ok(()),
        };
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        walk(value, part, path)?;
    }
    match value {
        Value::Object(fields) => {
            // `null` for a declared field is that field left out; in a map it stays a value (and
            // a wrong one).
            if let Some(declared) = schema.get("properties").and_then(Value::as_object) {
                fields.retain(|name, v| !(v.is_null() && declared.contains_key(name)));
            }
            if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                known_members(fields, schema, path)?;
            }
            for (name, field) in fields.iter_mut() {
                let field_schema = schema
                    .get("properties")
                    .and_then(|p| p.get(name))
                    .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()));
                if let Some(field_schema) = field_schema {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                    walk(field, field_schema, path)?;
                    path.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, item_schema, path)?;
                    path.truncate(len);
                }
            }
        }
        Value::String(text) => listed_value(text, schema, path)?,
        _ => {}
    }
    Ok(())
}

/// The models read any member (they read the answers of later Bifrost releases too); a request
/// may carry only the members the spec declares (`additionalProperties: false`): with full
/// replacement, a misspelt block would otherwise fall back to its defaults.
fn known_members(fields: &Map<String, Value>, schema: &Value, path: &str) -> Result<(), Error> {
    let declared = schema.get("properties").and_then(Value::as_object);
    match fields
        .keys()
        .find(|name| !declared.is_some_and(|d| d.contains_key(*name)))
    {
        Some(name) => {
            let name = &name[..name.char_indices().nth(64).map_or(name.len(), |(i, _)| i)];
            let param = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            Err(Error::invalid(
                "unknown_field",
                param.clone(),
                format!("Unknown field: {param}"),
            ))
        }
        None => Ok(()),
    }
}

/// The models keep an enum value they do not list (a later release's); a request may carry
/// only the listed ones. The message names the values, never the one sent.
fn listed_value(text: &str, schema: &Value, path: &str) -> Result<(), Error> {
    let Some(values) = schema.get("enum").and_then(Value::as_array) else {
        return Ok(());
    };
    if values.iter().any(|v| v.as_str() == Some(text)) {
        return Ok(());
    }
    let names: Vec<String> = values
        .iter()
        .filter_map(Value::as_str)
        .map(|v| format!("`{v}`"))
        .collect();
    let expected = match names.as_slice() {
        [one] => format!("expected {one}"),
        [a, b] => format!("expected {a} or {b}"),
        _ => format!("expected one of {}", names.join(", ")),
    };
    Err(invalid(path, &format!("unknown variant, {expected}")))
}

/// A NUL character in any string (or member name) is a 400, whatever the store: PostgreSQL
/// cannot hold one, and no Bifrost setting needs one. One answer on every store.
fn no_nul(value: &Value, path: &mut String) -> Result<(), Error> {
    let refuse = |path: &str| {
        let param = if path.is_empty() { "body" } else { path };
        Err(Error::invalid(
            "invalid_string",
            param,
            format!("{param}: strings must not contain NUL characters (\\u0000)"),
        ))
    };
    match value {
        Value::String(s) if s.contains('\0') => refuse(path),
        Value::Object(fields) => {
            for (name, field) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name.replace('\0', ""));
                if name.contains('\0') {
                    return refuse(path);
                }
                no_nul(field, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                no_nul(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn invalid(path: &str, message: &str) -> Error {
    Error::invalid(
        "invalid_field",
        path,
        format!("Invalid value for {path}: {message}"),
    )
}

/// A secret in any accepted form, as an object the `EnvVar` model decodes.
fn secret(value: &mut Value, path: &str) -> Result<(), Error> {
    match value {
        Value::String(s) => {
            *value = serde_json::json!({ "value": std::mem::take(s) });
            Ok(())
        }
        Value::Object(_) => match schemas().get("EnvVar") {
            Some(schema) => walk(value, schema, &mut path.to_string()),
            None => Ok(()),
        },
        _ => Err(invalid(
            path,
            "a secret is a string or an object ({value, env_var, from_env} or {value, ref, type})",
        )),
    }
}

/// A string field that may come as a secret object: the string it stands for.
fn string_secret(value: &mut Value, path: &str) -> Result<(), Error> {
    if value.is_string() {
        return Ok(());
    }
    secret(value, path)?;
    let object = std::mem::take(value);
    let field: EnvVar = crate::decode::json::from_value(object, path)?;
    *value = Value::String(crate::domain::secrets::as_string(&field, path)?);
    Ok(())
}

/// A backoff as milliseconds: an integer as it is, a Go duration string converted.
fn backoff(value: &mut Value, path: &str) -> Result<(), Error> {
    let Value::String(text) = value else {
        return Ok(());
    };
    let nanos = go_duration_nanos(text).ok_or_else(|| {
        invalid(
            path,
            "use milliseconds or a Go duration string like \"500ms\", \"5s\", \"1m\"",
        )
    })?;
    *value = Value::from(nanos / 1_000_000);
    Ok(())
}

/// Nanoseconds in a Go duration string (`time.ParseDuration`): an optional sign, then one or
/// more decimal numbers each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`); `0` alone too.
pub fn go_duration_nanos(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    if !total.is_finite() || total > i64::MAX as f64 {
        return None;
    }
    let nanos = total as i64;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_nanos("500ms"), Some(500_000_000));
        assert_eq!(go_duration_nanos("5s"), Some(5_000_000_000));
        assert_eq!(go_duration_nanos("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration_nanos("1.5h"), Some(5_400_000_000_000));
        assert_eq!(go_duration_nanos("0"), Some(0));
        assert_eq!(go_duration_nanos("-2s"), Some(-2_000_000_000));
        for bad in ["", "5", "5x", "ms", "1..5s", "s5"] {
            assert_eq!(go_duration_nanos(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_generation_becomes_one_form() {
        let mut body = json!({
            "keys": [{"value": "env.OPENAI_API_KEY", "models": null,
                      "bedrock_key_config": {"access_key": "AKIA", "region": null}}],
            "network_config": {"retry_backoff_initial": "750ms", "retry_backoff_max": 9000},
            "proxy_config": {"type": "http", "url": {"value": "env.PROXY_URL", "env_var": "env.PROXY_URL", "from_env": true}},
            "openai_config": null
        });
        normalize(&mut body, "UpdateProviderRequest").unwrap();
        assert_eq!(
            body,
            json!({
                "keys": [{"value": {"value": "env.OPENAI_API_KEY"},
                          "bedrock_key_config": {"access_key": {"value": "AKIA"}}}],
                "network_config": {"retry_backoff_initial": 750, "retry_backoff_max": 9000},
                "proxy_config": {"type": "http", "url": "env.PROXY_URL"}
            })
        );
    }

    #[test]
    fn nul_is_refused_anywhere() {
        for body in [
            json!({"keys": [{"name": "a\u{0}b"}]}),
            json!({"network_config": {"extra_headers": {"X\u{0}": "v"}}}),
            json!({"custom_provider_config": {"base_provider_type": "openai", "request_path_overrides": {"chat_completion": "/a\u{0}"}}}),
        ] {
            let mut body = body;
            let err = normalize(&mut body, "UpdateProviderRequest").unwrap_err();
            assert!(format!("{err:?}").contains("invalid_string"), "{err:?}");
        }
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_named_and_not_echoed() {
        let mut body = json!({"keys": [{}, {"value": 12345678}]});
        let err = normalize(&mut body, "UpdateProviderRequest").unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains("keys[1].value"), "{text}");
        assert!(!text.contains("12345678"), "{text}");
    }
}
