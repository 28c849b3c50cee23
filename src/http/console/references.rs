//! The references (`env.NAME`, `vault.PATH`) a provider holds, found in its redacted form, and
//! whether each resolves on this host: what the list and a provider's page show beside them.
//! A reference is shown as itself; what it resolves to is never shown, not even redacted.

use serde_json::Value;

use crate::domain::secrets::{self, Kind};
use crate::types::EnvVar;

/// One reference: where it is (dotted path), what it names, whether it resolves here.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub path: String,
    pub reference: String,
    pub resolves: bool,
}

/// Every reference in `value` (a provider or key as a response shows it), in document order.
pub fn all(value: &Value) -> Vec<Reference> {
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk(value: &Value, path: String, out: &mut Vec<Reference>) {
    let join = |member: &str| {
        if path.is_empty() {
            member.to_string()
        } else {
            format!("{path}.{member}")
        }
    };
    match value {
        Value::Object(members) => {
            if let Some(found) = secret_object(value) {
                if let Some((reference, resolves)) = found {
                    out.push(Reference {
                        path,
                        reference,
                        resolves,
                    });
                }
                return;
            }
            for (member, inner) in members {
                walk(inner, join(member), out);
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                walk(inner, format!("{path}[{i}]"), out);
            }
        }
        Value::String(text) if text.starts_with("env.") || text.starts_with("vault.") => {
            out.push(Reference {
                path,
                reference: text.clone(),
                resolves: !secrets::unresolved_string(text),
            })
        }
        _ => {}
    }
}

/// For a secret object (one with the members only a secret field has): its reference and
/// whether it resolves, or `None` for a literal. `None` for any other object.
fn secret_object(value: &Value) -> Option<Option<(String, bool)>> {
    let members = value.as_object()?;
    let is_secret = members.contains_key("from_env") || members.contains_key("env_var");
    if !is_secret || members.values().any(|v| v.is_object() || v.is_array()) {
        return None;
    }
    let field: EnvVar = serde_json::from_value(value.clone()).ok()?;
    Some(match secrets::kind(&field) {
        Kind::Literal(_) => None,
        Kind::Env(name) => Some((format!("env.{name}"), secrets::resolve(&field).is_some())),
        Kind::Vault(path) => Some((format!("vault.{path}"), false)),
    })
}

/// How a secret field is described beside its (empty) input.
pub fn describe(value: &Value) -> String {
    if let Some(found) = secret_object(value) {
        return match found {
            Some((reference, true)) => format!("{reference} (resolves on this host)"),
            Some((reference, false)) => format!("{reference} (does not resolve on this host)"),
            None => match value["value"].as_str().unwrap_or_default() {
                "" => "not set".to_string(),
                shown => format!("set: {shown}"),
            },
        };
    }
    match value.as_str() {
        None | Some("") => "not set".to_string(),
        Some(text) if text.starts_with("env.") || text.starts_with("vault.") => {
            let resolves = !secrets::unresolved_string(text);
            format!(
                "{text} ({} on this host)",
                if resolves {
                    "resolves"
                } else {
                    "does not resolve"
                }
            )
        }
        Some(shown) => format!("set: {shown}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_with_whether_they_resolve() {
        let value = serde_json::json!({
            "keys": [{"value": {"value": "", "env_var": "env.BIFROST_CONSOLE_UNSET_VAR", "from_env": true, "type": "env", "ref": "env.BIFROST_CONSOLE_UNSET_VAR"}}],
            "proxy_config": {"type": "http", "password": "vault.kv/proxy"},
            "network_config": {"base_url": "https://api.example.com"}
        });
        let found = all(&value);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].path, "keys[0].value");
        assert!(!found[0].resolves);
        assert_eq!(found[1].reference, "vault.kv/proxy");
        assert!(describe(&value["keys"][0]["value"]).contains("does not resolve"));
        assert_eq!(
            describe(
                &serde_json::json!({"value": "sk-****abcd", "env_var": "", "from_env": false})
            ),
            "set: sk-****abcd"
        );
    }
}
