//! A Bifrost `config.json` loaded at start: its `providers` section seeds and updates the store.
//!
//! Each provider entry is read as Bifrost writes it (secrets as plain strings, `"env.NAME"`
//! references included), checked with the same rules as the API, and given a `config_hash`: the
//! SHA-256 (hex) of the entry's canonical JSON (keys sorted, no whitespace), so reformatting the
//! file changes nothing but any edit to an entry does. Then, per provider:
//! - missing from the store: created from the file;
//! - stored with the same hash: kept as stored (edits made through the API win);
//! - stored with another hash, or none: replaced by the file's entry.
//!
//! Providers that are only in the store stay. The whole file is checked before anything is
//! written, so a bad file refuses to start and leaves the store as it was.

use std::path::Path;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::provider::{self, StoredProvider};
use crate::store::{Change, Store};
use crate::types::UpdateProviderRequest;

/// One provider entry of the file, checked and ready to store.
pub struct FileProvider {
    pub name: String,
    /// Its stored state, `config_hash` set to the entry's hash.
    state: StoredProvider,
}

/// What loading did to one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Kept,
    Replaced,
}

/// Reads and checks every provider of the file at `path`. An error names the file, and where it
/// concerns a provider, the provider and the field; it never quotes a value from the file.
pub fn read(path: &Path) -> Result<Vec<FileProvider>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {shown}: {e}"))?;
    let root: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "config file {shown} is not valid JSON: {}",
            crate::body::without_strings(&e.to_string())
        )
    })?;
    let Value::Object(mut root) = root else {
        return Err(format!(
            "config file {shown}: the top level must be an object"
        ));
    };
    let providers = match root.remove("providers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(providers)) => providers,
        Some(_) => {
            return Err(format!(
                "config file {shown}: \"providers\" must be an object of provider name to configuration"
            ));
        }
    };
    let spec = Spec::load();
    providers
        .into_iter()
        .map(|(name, entry)| {
            entry_state(&name, entry, &spec)
                .map_err(|e| format!("config file {shown}: provider {name:?}: {e}"))
        })
        .collect()
}

/// Applies the file's providers to the store, one atomic decision per provider, so that
/// replicas starting together agree. Returns each provider's outcome.
pub async fn apply(
    store: &dyn Store,
    providers: Vec<FileProvider>,
) -> Result<Vec<(String, Outcome)>, Error> {
    let mut outcomes = Vec::with_capacity(providers.len());
    for FileProvider { name, state } in providers {
        let hash = state.config_hash.clone();
        let written = store
            .modify(
                &name,
                Box::new(move |current| match current {
                    Some(c) if c.config_hash == hash => Ok(Change::Keep),
                    _ => Ok(Change::Put(Box::new(state))),
                }),
            )
            .await?;
        let outcome = match (&written.before, &written.after) {
            (None, _) => Outcome::Created,
            (Some(b), Some(a)) if b.etag == a.etag => Outcome::Kept,
            _ => Outcome::Replaced,
        };
        outcomes.push((name, outcome));
    }
    Ok(outcomes)
}

/// One entry as a stored state, with its hash.
fn entry_state(name: &str, mut entry: Value, spec: &Spec) -> Result<FileProvider, String> {
    crate::validate::provider_name(name, "providers").map_err(describe)?;
    let hash = hash(&entry);
    spec.secrets_as_objects(&mut entry, "UpdateProviderRequest");
    let request: UpdateProviderRequest = serde_path_to_error::deserialize(entry).map_err(|e| {
        let field = e.path().to_string();
        let message = crate::body::without_strings(&e.into_inner().to_string());
        format!("field {field}: {message}")
    })?;
    let mut state = provider::desired_state(name, request, None).map_err(describe)?;
    state.config_hash = Some(hash);
    Ok(FileProvider {
        name: name.to_string(),
        state,
    })
}

fn describe(error: Error) -> String {
    match error {
        Error::Invalid {
            message,
            param: Some(param),
            ..
        } => format!("field {param}: {message}"),
        other => other.to_string(),
    }
}

/// The SHA-256 (lowercase hex) of a JSON value's canonical form.
pub fn hash(value: &Value) -> String {
    let mut canonical = Vec::new();
    write_canonical(value, &mut canonical);
    format!("{:x}", Sha256::digest(&canonical))
}

/// Compact JSON with every object's keys sorted, whatever order the parser kept.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(key).expect("a string serializes"));
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).expect("a scalar serializes")),
    }
}

/// The component schemas of `openapi.json`, to find where the file may hold a secret as a
/// plain string.
struct Spec {
    schemas: Map<String, Value>,
}

/// The schema a secret field has in `openapi.json`.
const ENV_VAR_REF: &str = "#/components/schemas/EnvVar";

impl Spec {
    fn load() -> Self {
        let spec: Value =
            serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json is JSON");
        let schemas = spec["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        Spec { schemas }
    }

    /// Rewrites each plain string where the schema named `schema` has an `EnvVar` into the
    /// object form, `{"value": "..."}` (an `env.NAME` value stays a reference).
    fn secrets_as_objects(&self, value: &mut Value, schema: &str) {
        if let Some(schema) = self.schemas.get(schema) {
            self.walk(value, schema);
        }
    }

    fn walk(&self, value: &mut Value, schema: &Value) {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if reference == ENV_VAR_REF
                && let Value::String(s) = value
            {
                *value = serde_json::json!({ "value": std::mem::take(s) });
                return;
            }
            if let Some(target) = reference
                .strip_prefix("#/components/schemas/")
                .and_then(|n| self.schemas.get(n))
            {
                self.walk(value, target);
            }
            return;
        }
        for combinator in ["allOf", "oneOf", "anyOf"] {
            for part in schema
                .get(combinator)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.walk(value, part);
            }
        }
        match value {
            Value::Object(fields) => {
                for (name, field) in fields.iter_mut() {
                    let field_schema = schema
                        .get("properties")
                        .and_then(|p| p.get(name))
                        .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()));
                    if let Some(field_schema) = field_schema {
                        self.walk(field, field_schema);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for item in items {
                        self.walk(item, item_schema);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hash_ignores_key_order_and_whitespace_but_not_values() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[2,1]},"b":1}"#).unwrap();
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&c));
        assert_eq!(hash(&a).len(), 64);
        // The SHA-256 of the canonical text, as any tool would compute it.
        assert_eq!(
            hash(&json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn plain_string_secrets_become_objects_everywhere_the_spec_has_one() {
        let mut entry = json!({
            "keys": [{
                "value": "sk-plain",
                "azure_key_config": {"endpoint": "env.AZURE_ENDPOINT"},
                "models": ["gpt-4o"]
            }],
            "proxy_config": {"type": "http", "url": "http://proxy:3128"}
        });
        Spec::load().secrets_as_objects(&mut entry, "UpdateProviderRequest");
        assert_eq!(entry["keys"][0]["value"], json!({"value": "sk-plain"}));
        assert_eq!(
            entry["keys"][0]["azure_key_config"]["endpoint"],
            json!({"value": "env.AZURE_ENDPOINT"})
        );
        assert_eq!(entry["keys"][0]["models"], json!(["gpt-4o"]));
        assert_eq!(entry["proxy_config"]["url"], "http://proxy:3128");
    }
}
