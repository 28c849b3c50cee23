//! Forms drawn from the spec: the console's create and edit forms are not written by hand but
//! walked out of `openapi.json`'s request schemas, so that a member the spec gains is a field
//! the console gains, and a secret the spec marks (`x-bifrost-secret`) is a password input.
//!
//! A form reads back into the JSON of a request body, and every part of it (a field, or a
//! whole block) the operator left as it was drawn is sent exactly as the state it was drawn
//! from holds it: a form posted back unchanged is the body a GET returned, which the API stores
//! as a no-op. A secret input is always drawn empty; left empty, it keeps the stored secret (its
//! redacted form is sent, which the API reads as "keep").

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::domain::error::Error;

/// The spec the server was built from.
static SPEC: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../../openapi.json")).expect("openapi.json is JSON")
});

/// How one field is drawn and read.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A string.
    Text,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// A whole number of milliseconds or a Go duration (`"1s"`).
    Duration,
    /// Yes, no, or not set.
    Flag,
    /// One of the spec's values.
    Choice(Vec<String>),
    /// A list of strings, one per line.
    Lines,
    /// A map of strings, one `name=value` per line.
    Pairs,
    /// Anything else, as JSON.
    Json,
    /// A secret: drawn empty, empty keeps it.
    Secret,
    /// A secret-capable field that is not secret (an API version): its value or reference.
    Reference,
}

/// One field of a form.
#[derive(Debug, Clone)]
pub struct Field {
    /// The JSON members from the body's top to this field.
    pub path: Vec<String>,
    pub kind: Kind,
    /// Whether the enclosing object requires it.
    pub required: bool,
    /// The spec's description, first sentence.
    pub help: String,
}

impl Field {
    /// The form control's name (and, prefixed, its id): the members joined by dots.
    pub fn name(&self) -> String {
        self.path.join(".")
    }

    /// The member's own name, as its label.
    pub fn label(&self) -> &str {
        self.path.last().map_or("", String::as_str)
    }
}

/// A block of fields (an object of the body), or a field.
#[derive(Debug, Clone)]
pub enum Item {
    Field(Field),
    Group {
        path: Vec<String>,
        help: String,
        items: Vec<Item>,
    },
}

/// The form of a schema of `components.schemas`, with the members `keep` keeps (by path).
pub fn form(schema: &str, keep: &dyn Fn(&[String]) -> bool) -> Vec<Item> {
    let schema = &SPEC["components"]["schemas"][schema];
    items(schema, &[], keep)
}

fn items(schema: &Value, path: &[String], keep: &dyn Fn(&[String]) -> bool) -> Vec<Item> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (member, declared) in properties {
        let flagged = |k: &str| declared[k].as_bool() == Some(true);
        if flagged("readOnly") || flagged("writeOnly") || flagged("deprecated") {
            continue;
        }
        let mut here = path.to_vec();
        here.push(member.clone());
        if !keep(&here) {
            continue;
        }
        let help = first_sentence(declared["description"].as_str().unwrap_or_default());
        let target = resolve(declared);
        let secret = declared["x-bifrost-secret"].as_str();
        let kind = match kind_of(target, secret) {
            Some(kind) => kind,
            None => {
                out.push(Item::Group {
                    items: items(target, &here, keep),
                    path: here,
                    help,
                });
                continue;
            }
        };
        out.push(Item::Field(Field {
            path: here,
            kind,
            required: required.contains(&member.as_str()),
            help,
        }));
    }
    out
}

/// A schema with its `$ref` (or `allOf: [$ref]`) followed.
fn resolve(schema: &Value) -> &Value {
    let reference = schema["$ref"]
        .as_str()
        .or_else(|| schema["allOf"][0]["$ref"].as_str());
    match reference.and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => resolve(&SPEC["components"]["schemas"][name]),
        None => schema,
    }
}

/// How a schema is drawn; `None` for an object drawn as a block of its own fields.
fn kind_of(schema: &Value, secret: Option<&str>) -> Option<Kind> {
    let is_secret_object = schema["oneOf"].as_array().is_some_and(|one| {
        one.iter()
            .any(|s| s["$ref"] == "#/components/schemas/EnvVar")
    });
    if is_secret_object {
        return Some(if secret == Some("value") {
            Kind::Secret
        } else {
            Kind::Reference
        });
    }
    if schema["oneOf"].is_array() {
        return Some(Kind::Duration);
    }
    if let Some(values) = schema["enum"].as_array() {
        let values = values.iter().filter_map(Value::as_str).map(String::from);
        return Some(Kind::Choice(values.collect()));
    }
    Some(match schema["type"].as_str() {
        Some("string") if secret == Some("value") => Kind::Secret,
        Some("string") => Kind::Text,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Flag,
        Some("array") if schema["items"]["type"] == "string" => Kind::Lines,
        Some("array") => Kind::Json,
        Some("object") if schema["additionalProperties"] == Value::Bool(true) => Kind::Json,
        Some("object") if schema["properties"].is_object() => return None,
        Some("object") if schema["additionalProperties"]["type"] == "string" => Kind::Pairs,
        _ => Kind::Json,
    })
}

fn first_sentence(text: &str) -> String {
    let text = text
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace('\n', " ");
    match text.find(". ") {
        Some(end) => text[..=end].to_string(),
        None => text,
    }
}

/// The member at `path` of a JSON value (`Null` when absent).
pub fn at<'a>(value: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(value, |v, member| &v[member.as_str()])
}

/// A field's value as its input shows it (a secret: nothing).
pub fn text(field: &Field, value: &Value) -> String {
    if value.is_null() {
        return String::new();
    }
    match &field.kind {
        Kind::Secret => String::new(),
        Kind::Flag => value.as_bool().map(|b| b.to_string()).unwrap_or_default(),
        Kind::Text | Kind::Choice(_) | Kind::Duration | Kind::Integer | Kind::Number => match value
        {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        Kind::Lines => value
            .as_array()
            .map(|items| {
                let lines: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), String::from))
                    .collect();
                lines.join("\n")
            })
            .unwrap_or_default(),
        Kind::Pairs => value
            .as_object()
            .map(|pairs| {
                let lines: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                lines.join("\n")
            })
            .unwrap_or_default(),
        Kind::Json => serde_json::to_string_pretty(value).unwrap_or_default(),
        Kind::Reference => reference_text(value),
    }
}

/// A secret-capable value as text: the reference it names, or its value.
fn reference_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(o) => ["ref", "env_var", "value"]
            .iter()
            .filter_map(|k| o.get(*k).and_then(Value::as_str))
            .find(|s| !s.is_empty())
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

/// What the operator posted: each control's value by name.
pub type Posted = BTreeMap<String, String>;

/// The body `items` read back from `posted`: each part left as it was drawn from `base` is
/// `base`'s own; a secret left empty is `current`'s (what is stored now, redacted). An input
/// that cannot be read is an error naming its field, as the API names one.
pub fn read(
    items: &[Item],
    posted: &Posted,
    base: &Value,
    current: &Value,
) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    for item in items {
        let (path, value) = match item {
            Item::Field(field) => (&field.path, read_field(field, posted, base, current)?),
            Item::Group { path, items, .. } => {
                let inner = read(items, posted, base, current)?;
                let unchanged = unchanged(items, posted, base);
                let value = if unchanged {
                    at(base, path).clone()
                } else if inner.is_empty() {
                    Value::Null
                } else {
                    Value::Object(inner)
                };
                (path, value)
            }
        };
        if !value.is_null()
            && let Some(member) = path.last()
        {
            out.insert(member.clone(), value);
        }
    }
    Ok(out)
}

/// Whether every field of `items` was posted as it was drawn from `base` (secrets left empty).
fn unchanged(items: &[Item], posted: &Posted, base: &Value) -> bool {
    items.iter().all(|item| match item {
        Item::Field(field) => {
            let sent = posted.get(&field.name()).map_or("", String::as_str);
            sent == text(field, at(base, &field.path))
        }
        Item::Group { items, .. } => unchanged(items, posted, base),
    })
}

fn read_field(
    field: &Field,
    posted: &Posted,
    base: &Value,
    current: &Value,
) -> Result<Value, Error> {
    let name = field.name();
    let sent = posted.get(&name).map_or("", String::as_str);
    let drawn = at(base, &field.path);
    if field.kind == Kind::Secret {
        return Ok(if sent.is_empty() {
            at(current, &field.path).clone()
        } else {
            Value::String(sent.to_string())
        });
    }
    if sent == text(field, drawn) {
        return Ok(drawn.clone());
    }
    if sent.trim().is_empty() {
        return Ok(Value::Null);
    }
    let wrong = |what: &str| Error::invalid("invalid_form", &name, format!("{name}: {what}"));
    Ok(match &field.kind {
        Kind::Text | Kind::Reference | Kind::Secret => Value::String(sent.to_string()),
        Kind::Choice(_) => Value::String(sent.to_string()),
        Kind::Integer => Value::from(
            sent.trim()
                .parse::<i64>()
                .map_err(|_| wrong("must be a whole number"))?,
        ),
        Kind::Number => Value::from(
            sent.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| wrong("must be a number"))?,
        ),
        Kind::Duration => match sent.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(sent.trim().to_string()),
        },
        Kind::Flag => match sent {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(wrong("must be yes, no or not set")),
        },
        Kind::Lines => Value::Array(
            sent.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_string()))
                .collect(),
        ),
        Kind::Pairs => {
            let mut pairs = Map::new();
            for line in sent.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| wrong("each line must be name=value"))?;
                pairs.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
            }
            Value::Object(pairs)
        }
        Kind::Json => serde_json::from_str(sent).map_err(|e| {
            wrong(&format!(
                "must be JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?,
    })
}

/// Every field of `items`, depth first.
pub fn fields(items: &[Item]) -> Vec<&Field> {
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Field(field) => out.push(field),
            Item::Group { items, .. } => out.extend(fields(items)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everything(_: &[String]) -> bool {
        true
    }

    #[test]
    fn the_provider_form_marks_every_secret_the_spec_marks() {
        let items = form("UpdateProviderRequest", &everything);
        let all = fields(&items);
        let kind = |name: &str| {
            all.iter()
                .find(|f| f.name() == name)
                .map(|f| f.kind.clone())
        };
        assert_eq!(kind("proxy_config.password"), Some(Kind::Secret));
        assert_eq!(kind("network_config.ca_cert_pem"), Some(Kind::Secret));
        assert_eq!(kind("network_config.extra_headers"), Some(Kind::Pairs));
        assert_eq!(
            kind("network_config.retry_backoff_initial"),
            Some(Kind::Duration)
        );
        assert_eq!(kind("send_back_raw_request"), Some(Kind::Flag));
        assert!(kind("network_config.retry_backoff_initial_ms").is_none());
        assert!(kind("name").is_none(), "read-only members are not fields");
    }

    #[test]
    fn a_form_posted_as_drawn_reads_back_as_the_state_it_was_drawn_from() {
        let items = form("Key", &everything);
        let base = serde_json::json!({
            "id": "k1", "name": "main", "weight": 1.0, "models": ["a", "b"],
            "value": {"value": "sk-****abcd", "env_var": "", "from_env": false},
            "aliases": {}, "enabled": true,
            "azure_key_config": {"endpoint": {"value": "https://x"}, "api_version": {"value": "2024"}}
        });
        let posted: Posted = fields(&items)
            .iter()
            .map(|f| (f.name(), text(f, at(&base, &f.path))))
            .collect();
        let read = read(&items, &posted, &base, &base).unwrap();
        assert_eq!(Value::Object(read), base);
    }

    #[test]
    fn a_changed_field_is_read_by_its_kind_and_a_bad_one_names_itself() {
        let items = form("Key", &everything);
        let base = serde_json::json!({"name": "main", "weight": 1.0});
        let mut posted: Posted = BTreeMap::new();
        posted.insert("name".into(), "main".into());
        posted.insert("weight".into(), "2.5".into());
        posted.insert("models".into(), "x\n\n y \n".into());
        let read = read(&items, &posted, &base, &base).unwrap();
        assert_eq!(read["weight"], 2.5);
        assert_eq!(read["models"], serde_json::json!(["x", "y"]));
        posted.insert("weight".into(), "heavy".into());
        let error = super::read(&items, &posted, &base, &base).unwrap_err();
        assert!(error.to_string().contains("weight"), "{error}");
    }
}
