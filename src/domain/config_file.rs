//! What a Bifrost `config.json` loaded at start means: its `providers` section seeds and updates
//! the store. Reading the file is `decode::config_file`, writing its outcome `store::seed`; here
//! are the rules between them, as pure functions.
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

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::provider::StoredProvider;
use crate::types::Key;

/// One provider entry of the file, checked and ready to store.
pub struct FileProvider {
    pub name: String,
    /// Its stored state, `config_hash` set to the entry's provider hash and each key's to its
    /// own entry's hash.
    pub state: StoredProvider,
}

/// What loading did to one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Kept,
    Updated,
}

impl Outcome {
    /// As the log and the metrics say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Kept => "kept",
            Outcome::Updated => "updated",
        }
    }
}

/// What the file's entry does to the stored provider: `None` keeps it as it is.
pub fn applied(current: Option<&StoredProvider>, file: StoredProvider) -> Option<StoredProvider> {
    let Some(current) = current else {
        return Some(file);
    };
    let next = reconcile(current, file);
    (next.config != current.config || next.config_hash != current.config_hash).then_some(next)
}

/// The stored provider after the file's entry is applied to it (module docs).
pub fn reconcile(current: &StoredProvider, file: StoredProvider) -> StoredProvider {
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
