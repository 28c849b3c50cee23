//! What the generated models need to read the answers of every Bifrost generation, as Go's
//! `encoding/json` writes them: `null` where a nil slice, map or pointer was, and a string
//! setting that Bifrost v1.5+ sends as a secret object (`proxy_config.url` and its siblings).
//!
//! `openapi.json` decides where each applies (`build.rs` reads it); this module holds the
//! pieces the generated code calls.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Reads `null` as the member's default, as if the member were absent (`"keys": null` in a
/// v1.4 DELETE body is no keys).
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The `JsonSchema` of an open enum: the values the spec lists, which is what this server
/// accepts and sends.
#[cfg(feature = "schemars")]
pub fn string_enum(description: &str, values: &[&str]) -> schemars::schema::Schema {
    use schemars::schema::{InstanceType, Metadata, SchemaObject};
    SchemaObject {
        metadata: Some(Box::new(Metadata {
            description: Some(description.to_string()).filter(|d| !d.is_empty()),
            ..Default::default()
        })),
        instance_type: Some(InstanceType::String.into()),
        enum_values: Some(values.iter().map(|v| serde_json::json!(v)).collect()),
        ..Default::default()
    }
    .into()
}

/// A string setting that Bifrost v1.5+ (from v1.5.0-prerelease6) answers as a secret object
/// (`proxy_config.url`, `username`, `password`, `ca_cert_pem`): read from a string, from a secret
/// object (its reference, `env.NAME` or `vault.PATH`, when it is one, else its value) or from
/// `null` (empty); always written as the string, which every generation reads.
#[derive(Clone, Debug, Default, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct StringSecret(pub String);

impl std::ops::Deref for StringSecret {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl std::ops::DerefMut for StringSecret {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.0
    }
}

impl From<String> for StringSecret {
    fn from(value: String) -> Self {
        StringSecret(value)
    }
}

impl From<&str> for StringSecret {
    fn from(value: &str) -> Self {
        StringSecret(value.to_string())
    }
}

impl std::fmt::Display for StringSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for StringSecret {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for StringSecret {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for StringSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A secret object of any generation, as far as a string setting needs it.
#[derive(Deserialize)]
struct SecretObject {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    env_var: Option<String>,
    #[serde(default)]
    from_env: Option<bool>,
    #[serde(default, rename = "ref")]
    reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Form {
    Text(String),
    Object(SecretObject),
}

impl<'de> Deserialize<'de> for StringSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match Option::<Form>::deserialize(deserializer)? {
            None => String::new(),
            Some(Form::Text(text)) => text,
            Some(Form::Object(object)) => {
                let env = object.env_var.filter(|e| !e.is_empty());
                match (object.reference.filter(|r| !r.is_empty()), env) {
                    (Some(reference), _) => reference,
                    (None, Some(env)) if object.from_env == Some(true) => {
                        if env.starts_with("env.") {
                            env
                        } else {
                            format!("env.{env}")
                        }
                    }
                    _ => object.value.unwrap_or_default(),
                }
            }
        };
        Ok(StringSecret(text))
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for StringSecret {
    fn is_referenceable() -> bool {
        false
    }
    fn schema_name() -> String {
        "String".to_string()
    }
    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(generator)
    }
}

impl crate::types::ErrorField {
    /// `param` as text: the dotted path this server sends (`keys[2].weight`), or the JSON of
    /// whatever else a Bifrost sent there (its Go type is `interface{}`); `None` without one.
    pub fn param_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self.param.as_ref()? {
            serde_json::Value::Null => None,
            serde_json::Value::String(path) => Some(std::borrow::Cow::Borrowed(path)),
            other => Some(std::borrow::Cow::Owned(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_string_setting_reads() {
        let read = |json: &str| serde_json::from_str::<StringSecret>(json).unwrap().0;
        assert_eq!(read(r#""http://proxy:3128""#), "http://proxy:3128");
        assert_eq!(read("null"), "");
        assert_eq!(
            read(r#"{"value":"http://proxy:3128","env_var":"","from_env":false}"#),
            "http://proxy:3128"
        );
        assert_eq!(
            read(r#"{"value":"http*****","env_var":"env.PROXY_URL","from_env":true}"#),
            "env.PROXY_URL"
        );
        assert_eq!(
            read(r#"{"value":"","env_var":"PROXY_URL","from_env":true}"#),
            "env.PROXY_URL"
        );
        assert_eq!(
            read(r#"{"value":"","ref":"vault.proxy/url","type":"vault"}"#),
            "vault.proxy/url"
        );
        assert!(serde_json::from_str::<StringSecret>("12").is_err());
    }

    #[test]
    fn null_reads_as_the_default() {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "null_as_default")]
            keys: Vec<String>,
        }
        let body: Body = serde_json::from_str(r#"{"keys":null}"#).unwrap();
        assert!(body.keys.is_empty());
        let body: Body = serde_json::from_str(r#"{"keys":["a"]}"#).unwrap();
        assert_eq!(body.keys, ["a"]);
    }
}
