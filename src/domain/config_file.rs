//! A Bifrost `config.json` loaded at start: its `providers` section seeds and updates the store.
//!
//! Each provider entry is read as any Bifrost generation writes it (names in any case, secrets as
//! plain strings or objects, `env.NAME` references, backoffs as milliseconds or duration
//! strings, `null` for unset fields), checked with the same rules as the API, and hashed: the
//! provider's `config_hash` is the SHA-256 (hex) of the entry's canonical JSON without its keys
//! (keys sorted, no whitespace, so reformatting the file changes nothing), and each key's is the
//! hash of its own entry. Keys are read as v1.4 means them (`models: []` is every model), which is
//! what Bifrost v1.5 does with `"version": 1` and what the files of every generation's docs mean.
//!
//! Then, per provider, as Bifrost reconciles (key by key):
//! - missing from the store: created from the file;
//! - stored with the same provider hash: its settings stay as stored (edits made through the API
//!   win); otherwise the file's settings replace them;
//! - each file key is matched to a stored key by id, then name, then hash: a stored key whose
//!   hash is the file key's stays as stored (API edits win), a changed one takes the file's
//!   version under the stored id, an unmatched one is added;
//! - stored keys the file does not name stay (keys added through the API survive a restart; a
//!   deliberate deviation from Bifrost, which drops them when the provider's settings changed).
//!
//! Providers that are only in the store stay. The whole file is checked before anything is
//! written, so a bad file refuses to start and leaves the store as it was. A reference to a
//! variable that is unset here is stored as such and only marks its provider `error`.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::error::Error;
use crate::domain::provider::{self, StoredProvider};
use crate::store::{Change, Store};
use crate::types::{Key, UpdateProviderRequest};

/// One provider entry of the file, checked and ready to store.
pub struct FileProvider {
    pub name: String,
    /// Its stored state, `config_hash` set to the entry's provider hash and each key's to its
    /// own entry's hash.
    state: StoredProvider,
}

/// What loading did to one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Kept,
    Updated,
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
            crate::decode::json::without_strings(&e.to_string())
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
    let mut seen = std::collections::HashSet::new();
    providers
        .into_iter()
        .map(|(name, entry)| {
            let name = name.to_lowercase();
            if !seen.insert(name.clone()) {
                return Err(format!(
                    "config file {shown}: provider {name:?} is given twice (names are read in lower case)"
                ));
            }
            entry_state(&name, entry)
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
        let written = store
            .modify(
                &name,
                Box::new(move |current| {
                    let Some(current) = current else {
                        return Ok(Change::Put(Box::new(state)));
                    };
                    let next = reconcile(current, state);
                    if next.config == current.config && next.config_hash == current.config_hash {
                        Ok(Change::Keep)
                    } else {
                        Ok(Change::Put(Box::new(next)))
                    }
                }),
                crate::domain::history::WriteMeta::config_file(),
            )
            .await?;
        let outcome = match (&written.before, &written.after) {
            (None, _) => Outcome::Created,
            (Some(b), Some(a)) if b.etag == a.etag => Outcome::Kept,
            _ => Outcome::Updated,
        };
        outcomes.push((name, outcome));
    }
    Ok(outcomes)
}

/// The stored provider after the file's entry is applied to it (module docs).
fn reconcile(current: &StoredProvider, file: StoredProvider) -> StoredProvider {
    let mut next = if current.config_hash == file.config_hash {
        current.clone()
    } else {
        let mut next = file.clone();
        next.config.keys = current.config.keys.clone();
        next
    };
    let mut keys: Vec<Key> = current.keys().to_vec();
    for file_key in file.keys() {
        let matched = keys.iter().position(|k| k.id == file_key.id).or_else(|| {
            keys.iter().position(|k| {
                (!file_key.name.is_empty() && k.name == file_key.name)
                    || (k.config_hash.is_some() && k.config_hash == file_key.config_hash)
            })
        });
        match matched {
            Some(i) if keys[i].config_hash == file_key.config_hash => {}
            Some(i) => {
                let id = keys[i].id.clone();
                keys[i] = Key {
                    id,
                    ..file_key.clone()
                };
            }
            None => keys.push(file_key.clone()),
        }
    }
    next.config.keys = Some(keys);
    next
}

/// One entry as a stored state, with its hashes.
fn entry_state(name: &str, mut entry: Value) -> Result<FileProvider, String> {
    crate::domain::validate::provider_name(name, "providers").map_err(describe)?;
    let key_hashes: Vec<String> = match entry.get("keys") {
        Some(Value::Array(keys)) => keys.iter().map(hash).collect(),
        _ => Vec::new(),
    };
    let provider_hash = match &entry {
        Value::Object(fields) => {
            let mut settings = fields.clone();
            settings.remove("keys");
            hash(&Value::Object(settings))
        }
        other => hash(other),
    };
    crate::decode::generations::normalize(&mut entry, "UpdateProviderRequest").map_err(describe)?;
    let mut request: UpdateProviderRequest =
        crate::decode::json::from_value(entry, "").map_err(describe)?;
    request.keys.get_or_insert_with(Vec::new);
    let mut state = provider::desired_state(name, request, None).map_err(describe)?;
    state.config_hash = Some(provider_hash);
    for (key, hash) in state.config.keys.iter_mut().flatten().zip(key_hashes) {
        key.config_hash = Some(hash);
    }
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
}
