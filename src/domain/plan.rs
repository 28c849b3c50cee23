//! What making a server match a configuration file would do, provider by provider and field by
//! field: the plan `diff` prints and `apply` carries out (decK's and `terraform plan`'s idea).
//!
//! Both sides are compared as the API shows them (redacted, every default filled in), so a
//! secret is never compared, nor shown, by its value: a changed secret is a changed mask or
//! reference, reported as "secret changed".

use serde::Serialize;
use serde_json::Value;

use crate::domain::provider::{StoredProvider, present};
use crate::domain::secrets::looks_redacted;
use crate::types::UpdateProviderRequest;

/// Members a response carries that describe the provider rather than configure it: never part
/// of a plan.
const SHOWN_ONLY: &[&str] = &[
    "name",
    "status",
    "provider_status",
    "description",
    "config_hash",
];

/// The same for a key (whose `name` is configuration).
const KEY_SHOWN_ONLY: &[&str] = &["status", "description", "config_hash"];

/// What a plan shows as the id of a key the server will name when it is created.
pub const NEW_KEY_ID: &str = "(new)";

/// A provider as the plan compares it: as the API shows it (redacted, defaults filled in),
/// without the members only a response has, each secret as the one string a file would hold
/// (its reference, or its mask).
pub fn view(stored: &StoredProvider) -> Value {
    let mut shown = serde_json::to_value(present(stored)).unwrap_or_default();
    if let Value::Object(members) = &mut shown {
        for member in SHOWN_ONLY {
            members.remove(*member);
        }
        if let Some(Value::Array(keys)) = members.get_mut("keys") {
            for key in keys.iter_mut().filter_map(Value::as_object_mut) {
                for member in KEY_SHOWN_ONLY {
                    key.remove(*member);
                }
            }
        }
    }
    flatten_secrets(&mut shown);
    shown
}

/// A provider's state as a server shows it, read back from what it showed: its secrets are the
/// masks and references of the response, which is all a plan compares.
pub fn shown_state(name: &str, shown: UpdateProviderRequest) -> StoredProvider {
    StoredProvider {
        name: name.to_string(),
        config: shown,
        config_hash: None,
        etag: String::new(),
    }
}

/// The secrets a desired state holds in clear where the held state shows a mask: the API never
/// shows a stored secret, so one given in clear cannot be compared with it and is reported (and
/// sent) as changed. A mask sent back keeps the stored secret and is no change.
pub fn clear_secrets(held: Option<&StoredProvider>, after: &StoredProvider) -> Vec<FieldChange> {
    let raw = |config: &UpdateProviderRequest| {
        let mut value = serde_json::to_value(config).unwrap_or_default();
        flatten_secrets(&mut value);
        value
    };
    let before = held.map_or_else(|| Value::Object(Default::default()), |h| raw(&h.config));
    fields(&before, &raw(&after.config))
        .into_iter()
        .filter(|change| change.secret)
        .collect()
}

/// Gives each key of `request` that has no id the id of the key of `current` with the same
/// name (names are unique within a provider), so that a file written without ids updates its
/// keys in place rather than replacing them with new ones.
pub fn adopt_key_ids(request: &mut UpdateProviderRequest, current: &UpdateProviderRequest) {
    let given: std::collections::HashSet<String> = request
        .keys
        .iter()
        .flatten()
        .filter_map(|k| k.id.clone())
        .collect();
    for key in request.keys.iter_mut().flatten() {
        if key.id.as_deref().is_some_and(|id| !id.is_empty()) || key.name.is_empty() {
            continue;
        }
        key.id = current
            .keys
            .iter()
            .flatten()
            .find(|held| held.name == key.name)
            .and_then(|held| held.id.clone())
            .filter(|id| !given.contains(id));
    }
}

/// In a view, marks as [`NEW_KEY_ID`] the keys whose id the plan made up (the server will
/// choose its own): every id not among `known`.
pub fn mark_new_keys(view: &mut Value, known: &std::collections::HashSet<String>) {
    for key in view["keys"].as_array_mut().into_iter().flatten() {
        if key["id"].as_str().is_some_and(|id| !known.contains(id)) {
            key["id"] = Value::String(NEW_KEY_ID.into());
        }
    }
}

/// Replaces every secret object (`{value, env_var, from_env, ref, type}`) by the one string a
/// file holds for it: the reference when it is one, else the (redacted) value.
pub fn flatten_secrets(value: &mut Value) {
    match value {
        Value::Object(members) => {
            let secret = members.contains_key("value")
                && (members.contains_key("env_var") || members.contains_key("type"));
            if secret {
                let text = |name: &str| {
                    members
                        .get(name)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                let reference = match members.get("type").and_then(Value::as_str) {
                    Some("env") | Some("vault") => text("ref").or_else(|| text("env_var")),
                    Some("plain_text") => None,
                    _ if members.get("from_env") == Some(&Value::Bool(true)) => text("env_var"),
                    _ => text("ref"),
                };
                *value = Value::String(reference.or_else(|| text("value")).unwrap_or_default());
                return;
            }
            members.values_mut().for_each(flatten_secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(flatten_secrets),
        _ => {}
    }
}

/// What happens to one provider.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Not on the server: created.
    Create { fields: Vec<FieldChange> },
    /// On the server and different: replaced.
    Update { fields: Vec<FieldChange> },
    /// On the server, not in the file, and pruning: deleted.
    Delete,
    /// On the server, not in the file, not pruning: left as it is.
    Keep,
    /// The same on both sides.
    Unchanged,
    /// The file's entry would be refused (the error the server would answer).
    Invalid {
        code: String,
        param: String,
        message: String,
    },
}

/// One provider's step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub provider: String,
    #[serde(flatten)]
    pub action: Action,
}

/// One changed field, by its dotted path (`keys[primary].weight`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub path: String,
    /// The value on the server; absent for a field the file adds, and for a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// The value the file gives; absent for a field the file removes, and for a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
    /// A secret (a mask or a reference on either side): shown as changed, never as a value.
    pub secret: bool,
}

/// The whole plan, in provider order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

/// How many providers each action touches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
    pub kept: usize,
    pub invalid: usize,
}

impl Plan {
    /// The counts of each action.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for step in &self.steps {
            match step.action {
                Action::Create { .. } => summary.create += 1,
                Action::Update { .. } => summary.update += 1,
                Action::Delete => summary.delete += 1,
                Action::Keep => summary.kept += 1,
                Action::Unchanged => summary.unchanged += 1,
                Action::Invalid { .. } => summary.invalid += 1,
            }
        }
        summary
    }

    /// Whether applying would change anything (or could not be done).
    pub fn differs(&self) -> bool {
        let s = self.summary();
        s.create + s.update + s.delete + s.invalid > 0
    }

    /// The plan as decK prints one: a line per provider that changes, its fields, a summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let name = &step.provider;
            let fields = match &step.action {
                Action::Create { fields } => {
                    out.push_str(&format!("creating provider {name}\n"));
                    fields
                }
                Action::Update { fields } => {
                    out.push_str(&format!("updating provider {name}\n"));
                    fields
                }
                Action::Delete => {
                    out.push_str(&format!("deleting provider {name}\n"));
                    continue;
                }
                Action::Keep => {
                    out.push_str(&format!(
                        "keeping provider {name} (not in the file; --prune deletes it)\n"
                    ));
                    continue;
                }
                Action::Invalid {
                    code,
                    param,
                    message,
                } => {
                    out.push_str(&format!(
                        "cannot apply provider {name}: {param}: {message} ({code})\n"
                    ));
                    continue;
                }
                Action::Unchanged => continue,
            };
            for field in fields {
                out.push_str(&format!("  {}\n", field.text()));
            }
        }
        let s = self.summary();
        out.push_str(&format!(
            "Summary: {} to create, {} to update, {} to delete, {} unchanged",
            s.create, s.update, s.delete, s.unchanged
        ));
        if s.kept > 0 {
            out.push_str(&format!(", {} kept (not in the file)", s.kept));
        }
        if s.invalid > 0 {
            out.push_str(&format!(", {} invalid", s.invalid));
        }
        out.push('\n');
        out
    }
}

impl FieldChange {
    /// `path: from -> to`, or `path: secret changed`.
    pub fn text(&self) -> String {
        let shown = |v: &Option<Value>| v.as_ref().map_or("(none)".to_string(), Value::to_string);
        if self.secret {
            return format!("{}: secret changed", self.path);
        }
        match (&self.from, &self.to) {
            (None, Some(to)) => format!("{}: + {to}", self.path),
            (Some(from), None) => format!("{}: - {from}", self.path),
            _ => format!(
                "{}: {} -> {}",
                self.path,
                shown(&self.from),
                shown(&self.to)
            ),
        }
    }
}

/// The fields in which `to` differs from `from` (two providers as the API shows them). Arrays
/// of objects with an `id` (keys) are matched by id and named by their `name`; other arrays are
/// compared whole.
pub fn fields(from: &Value, to: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk("", Some(from), Some(to), &mut out);
    out
}

fn walk(path: &str, from: Option<&Value>, to: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (from, to) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                walk(&join(path, name), a.get(name), b.get(name), out);
            }
        }
        (None, Some(Value::Array(b))) if keyed(b) => {
            walk(path, Some(&Value::Array(Vec::new())), to, out);
        }
        (Some(Value::Array(a)), None) if keyed(a) => {
            walk(path, from, Some(&Value::Array(Vec::new())), out);
        }
        (Some(Value::Array(a)), Some(Value::Array(b)))
            if (keyed(a) || a.is_empty()) && (keyed(b) || b.is_empty()) && a != b =>
        {
            let id = |v: &Value| v["id"].as_str().map(str::to_string);
            for item in b {
                let matching = a.iter().find(|old| id(old) == id(item));
                walk(&element(path, item), matching, Some(item), out);
            }
            for item in a
                .iter()
                .filter(|old| !b.iter().any(|new| id(new) == id(old)))
            {
                walk(&element(path, item), Some(item), None, out);
            }
        }
        (Some(Value::Object(a)), None) => {
            for (name, value) in a {
                walk(&join(path, name), Some(value), None, out);
            }
        }
        (None, Some(Value::Object(b))) => {
            for (name, value) in b {
                walk(&join(path, name), None, Some(value), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => {
            let secret = [a, b]
                .iter()
                .any(|v| v.and_then(Value::as_str).is_some_and(is_secret_text));
            out.push(FieldChange {
                path: path.to_string(),
                from: a.filter(|_| !secret).cloned(),
                to: b.filter(|_| !secret).cloned(),
                secret,
            });
        }
    }
}

/// A mask (a literal secret as the API shows it) or a reference: never printed.
fn is_secret_text(text: &str) -> bool {
    looks_redacted(text) || text.contains("********")
}

fn keyed(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|v| v["id"].is_string())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn element(path: &str, item: &Value) -> String {
    let label = item["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .or_else(|| item["id"].as_str())
        .unwrap_or_default();
    format!("{path}[{label}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_name_what_changed_and_hide_secrets() {
        let from = json!({
            "network_config": {"base_url": "https://a", "max_retries": 1},
            "keys": [
                {"id": "k1", "name": "primary", "weight": 1.0, "value": "sk-p************************mnop"},
                {"id": "k2", "name": "old", "weight": 1.0, "value": "env.OLD"}
            ]
        });
        let to = json!({
            "network_config": {"base_url": "https://b", "max_retries": 1},
            "keys": [
                {"id": "k1", "name": "primary", "weight": 0.5, "value": "sk-q************************wxyz"},
                {"id": "k3", "name": "new", "weight": 1.0, "value": "env.NEW"}
            ]
        });
        let changes = fields(&from, &to);
        let lines: Vec<String> = changes.iter().map(FieldChange::text).collect();
        assert_eq!(
            lines,
            [
                r#"keys[primary].value: secret changed"#,
                r#"keys[primary].weight: 1.0 -> 0.5"#,
                r#"keys[new].id: + "k3""#,
                r#"keys[new].name: + "new""#,
                r#"keys[new].value: + "env.NEW""#,
                r#"keys[new].weight: + 1.0"#,
                r#"keys[old].id: - "k2""#,
                r#"keys[old].name: - "old""#,
                r#"keys[old].value: - "env.OLD""#,
                r#"keys[old].weight: - 1.0"#,
                r#"network_config.base_url: "https://a" -> "https://b""#,
            ]
        );
        assert!(!serde_json::to_string(&changes).unwrap().contains("sk-"));
    }

    #[test]
    fn the_same_provider_has_no_changes() {
        let provider = json!({"keys": [{"id": "k1", "name": "a"}], "send_back_raw_request": false});
        assert!(fields(&provider, &provider).is_empty());
    }

    #[test]
    fn a_plan_differs_only_when_something_would_be_written() {
        let mut plan = Plan {
            steps: vec![
                Step {
                    provider: "a".into(),
                    action: Action::Unchanged,
                },
                Step {
                    provider: "b".into(),
                    action: Action::Keep,
                },
            ],
        };
        assert!(!plan.differs());
        plan.steps.push(Step {
            provider: "c".into(),
            action: Action::Delete,
        });
        assert!(plan.differs());
        assert_eq!(
            plan.text(),
            "keeping provider b (not in the file; --prune deletes it)\ndeleting provider c\n\
             Summary: 0 to create, 0 to update, 1 to delete, 1 unchanged, 1 kept (not in the file)\n"
        );
    }
}
