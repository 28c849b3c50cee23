//! Generates the models and the client from `openapi.json`, the single source of truth.
//!
//! typify turns `components/schemas` into Rust types (deriving `JsonSchema` under the client
//! crate's `schemars` feature, so dropshot serves them as they are); progenitor turns the
//! operations into a typed client whose every schema is replaced by those same types, so server
//! and client share one definition. Both land in `OUT_DIR`; `client/generated/` holds the
//! checked-in copy that the client crate compiles (so that it packages on its own), and a test
//! keeps it equal to this output.
//!
//! The server's list of secret places is generated here too (`generated/secrets.rs`, the
//! server's own generated code), from the properties `openapi.json` marks `x-bifrost-secret`,
//! so that redaction, sealing and the leak check all follow the one mark.

use std::{env, fs, path::Path};

const SPEC: &str = "openapi.json";

fn main() {
    println!("cargo:rerun-if-changed={SPEC}");
    let text = fs::read_to_string(SPEC).expect("read openapi.json");
    let out = env::var("OUT_DIR").expect("OUT_DIR");

    let names = schema_names(&text);
    let mut replaced = replacements(&text);
    let open = open_enums(&text);
    replaced.extend(
        open.iter()
            .map(|e| (e.name.clone(), format!("crate::types::{}", e.name))),
    );
    fs::write(
        Path::new(&out).join("types.rs"),
        models(&text, &replaced, &open),
    )
    .expect("write types.rs");
    fs::write(
        Path::new(&out).join("client.rs"),
        client(&text, &names, &replaced),
    )
    .expect("write client.rs");
    fs::write(Path::new(&out).join("secrets.rs"), secrets(&text)).expect("write secrets.rs");
}

/// The schemas that say which Rust type holds them (`x-rust-type`): they describe more input
/// forms than that type (a secret as a bare string, a backoff as a duration string), which the
/// server reads into it before decoding (`src/wire.rs`).
fn replacements(text: &str) -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(text).expect("openapi.json is JSON");
    doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas")
        .iter()
        .filter_map(|(name, schema)| {
            let rust = schema.get("x-rust-type")?.as_str()?;
            // A model of the spec is named by its full path: typify's builders live in a module
            // of their own, where a bare name would mean the builder.
            let path = match rust.strip_prefix("Vec<").and_then(|r| r.strip_suffix('>')) {
                Some(item) => format!("::std::vec::Vec<crate::types::{item}>"),
                None if rust.starts_with(char::is_lowercase) || rust == "String" => {
                    rust.to_string()
                }
                None => format!("crate::types::{rust}"),
            };
            Some((name.clone(), path))
        })
        .collect()
}

/// The component names, in the order the spec lists them.
fn schema_names(text: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(text).expect("openapi.json is JSON");
    doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas")
        .keys()
        .cloned()
        .collect()
}

fn models(text: &str, replaced: &[(String, String)], open: &[OpenEnum]) -> String {
    let doc: serde_json::Value = serde_json::from_str(text).expect("openapi.json is JSON");
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    let defs = schemas.iter().map(|(name, schema)| {
        let schema: schemars::schema::Schema =
            serde_json::from_value(schema.clone()).unwrap_or_else(|e| panic!("schema {name}: {e}"));
        (name.clone(), schema)
    });
    let mut settings = typify::TypeSpaceSettings::default();
    settings
        .with_attr("#[cfg_attr(feature = \"schemars\", derive(schemars::JsonSchema))]".to_string())
        .with_derive("PartialEq".to_string())
        .with_struct_builder(true)
        .with_map_type("::std::collections::BTreeMap");
    for (name, rust) in replaced {
        settings.with_replacement(name, rust, std::iter::empty());
    }
    let mut space = typify::TypeSpace::new(&settings);
    space
        .add_ref_types(defs)
        .expect("typify accepts the schemas");
    let mut tokens = open_objects(&null_is_absent(&keep_empty_collections(
        &space.to_stream().to_string(),
    )));
    for e in open {
        tokens.push_str(&e.code());
    }
    pretty(tokens.parse().expect("tokens re-parse"))
}

/// The models read the answers of every Bifrost generation, so a member a later release adds
/// is ignored when reading rather than refused. `additionalProperties: false` says what this
/// server accepts: the server's own walk of the spec enforces it on requests (`src/wire.rs`),
/// and the schema the server describes keeps it (`schemars(deny_unknown_fields)`), but serde
/// does not refuse such a member.
fn open_objects(tokens: &str) -> String {
    tokens.replace(
        "# [serde (deny_unknown_fields)]",
        "# [cfg_attr (feature = \"schemars\" , schemars (deny_unknown_fields))]",
    )
}

/// Go's `encoding/json` writes `null` for a nil slice, map or pointer (a v1.4 DELETE body's
/// `"keys": null`, a raw key's `"blacklisted_models": null`): a member that has a default reads
/// `null` as that default, as if it were absent.
fn null_is_absent(tokens: &str) -> String {
    const LENIENT: &str =
        "# [serde (default , deserialize_with = \"crate::lenient::null_as_default\")]";
    // `keep_empty_collections` leaves a space where it cut `skip_serializing_if`.
    tokens
        .replace("# [serde (default)]", LENIENT)
        .replace("# [serde (default )]", LENIENT)
}

/// A string enum marked `x-bifrost-open-enum`: one a later Bifrost release extends (a provider's
/// `status`, a secret's `type`, a proxy type, a base provider type). Its model keeps a value it
/// does not know as `Other(String)` instead of refusing the answer that carries it; the server
/// still accepts only the listed values in requests (its walk of the spec, `src/wire.rs`), and
/// the type's `JsonSchema` lists only them.
struct OpenEnum {
    name: String,
    description: String,
    values: Vec<String>,
}

fn open_enums(text: &str) -> Vec<OpenEnum> {
    let doc: serde_json::Value = serde_json::from_str(text).expect("openapi.json is JSON");
    doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas")
        .iter()
        .filter(|(_, s)| s["x-bifrost-open-enum"] == serde_json::Value::Bool(true))
        .map(|(name, s)| OpenEnum {
            name: name.clone(),
            description: s["description"].as_str().unwrap_or_default().to_string(),
            values: s["enum"]
                .as_array()
                .expect("an open enum lists its values")
                .iter()
                .map(|v| v.as_str().expect("string values").to_string())
                .collect(),
        })
        .collect()
}

impl OpenEnum {
    /// The variant typify would name for `value` (`opencode-go` is `OpencodeGo`).
    fn variant(value: &str) -> String {
        value
            .split(['-', '_'])
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or(String::new(), |first| {
                    first.to_uppercase().chain(chars).collect()
                })
            })
            .collect()
    }

    fn code(&self) -> String {
        let name = &self.name;
        let doc = format!("{:?}", self.description);
        let variants: String = self
            .values
            .iter()
            .map(|v| format!("#[doc = {:?}] {},", format!("`{v}`"), Self::variant(v)))
            .collect();
        let to_str: String = self
            .values
            .iter()
            .map(|v| format!("Self::{} => {v:?},", Self::variant(v)))
            .collect();
        let from_str: String = self
            .values
            .iter()
            .map(|v| format!("{v:?} => Some(Self::{}),", Self::variant(v)))
            .collect();
        let listed: String = self.values.iter().map(|v| format!("{v:?},")).collect();
        format!(
            r#"
#[doc = {doc}]
#[doc = ""]
#[doc = "Open: a value a later Bifrost release sends that this list does not name is kept as `Other`."]
#[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum {name} {{
    {variants}
    #[doc = "A value this version of the spec does not list, as it was sent."]
    Other(::std::string::String),
}}
impl {name} {{
    #[doc = "The values the spec lists (and this server accepts)."]
    pub const KNOWN: &'static [&'static str] = &[{listed}];
    #[doc = "The value as sent on the wire."]
    pub fn as_str(&self) -> &str {{
        match self {{
            {to_str}
            Self::Other(value) => value.as_str(),
        }}
    }}
    #[doc = "The listed value `value` names, if any."]
    pub fn known(value: &str) -> ::std::option::Option<Self> {{
        match value {{
            {from_str}
            _ => None,
        }}
    }}
}}
impl ::std::fmt::Display for {name} {{
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {{
        f.write_str(self.as_str())
    }}
}}
impl ::std::str::FromStr for {name} {{
    type Err = self::error::ConversionError;
    #[doc = "Only the listed values parse; decoding an answer keeps any other as `Other`."]
    fn from_str(value: &str) -> ::std::result::Result<Self, self::error::ConversionError> {{
        Self::known(value).ok_or_else(|| "invalid value".into())
    }}
}}
impl ::std::convert::From<&str> for {name} {{
    fn from(value: &str) -> Self {{
        Self::known(value).unwrap_or_else(|| Self::Other(value.to_string()))
    }}
}}
impl ::serde::Serialize for {name} {{
    fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {{
        serializer.serialize_str(self.as_str())
    }}
}}
impl<'de> ::serde::Deserialize<'de> for {name} {{
    fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {{
        let value = <::std::string::String as ::serde::Deserialize>::deserialize(deserializer)?;
        Ok(Self::known(&value).unwrap_or(Self::Other(value)))
    }}
}}
#[cfg(feature = "schemars")]
impl ::schemars::JsonSchema for {name} {{
    fn schema_name() -> ::std::string::String {{
        {name:?}.to_string()
    }}
    fn json_schema(_: &mut ::schemars::r#gen::SchemaGenerator) -> ::schemars::schema::Schema {{
        crate::lenient::string_enum({doc}, Self::KNOWN)
    }}
}}
"#
        )
    }
}

/// Responses show effective values, defaults included, so an empty list or map is written out
/// (`"models": []`) rather than left out, as typify's `skip_serializing_if = "…::is_empty"` would.
fn keep_empty_collections(tokens: &str) -> String {
    const ATTR: &str = ", skip_serializing_if = \"";
    let mut out = String::with_capacity(tokens.len());
    let mut rest = tokens;
    while let Some(start) = rest.find(ATTR) {
        let literal = &rest[start + ATTR.len()..];
        let end = literal.find('"').expect("closed string literal");
        out.push_str(&rest[..start]);
        if !literal[..end].ends_with("::is_empty") {
            out.push_str(&rest[start..start + ATTR.len() + end + 1]);
        }
        rest = &literal[end + 1..];
    }
    out.push_str(rest);
    out
}

fn client(text: &str, names: &[String], replaced: &[(String, String)]) -> String {
    let spec: openapiv3::OpenAPI = serde_json::from_str(text).expect("openapi.json is OpenAPI 3.0");
    let mut settings = progenitor::GenerationSettings::default();
    // The client carries its options (admin token, retries) as progenitor's inner type, and the
    // client crate implements the hooks that apply them (`client/src/hooks.rs`).
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_map_type("::std::collections::BTreeMap")
        .with_inner_type("crate::Options".parse().expect("a type path"))
        .with_hooks(progenitor::HooksMode::Expected);
    for name in names {
        let rust = match replaced.iter().find(|(n, _)| n == name) {
            Some((_, rust)) => rust.clone(),
            None => format!("crate::types::{name}"),
        };
        settings.with_replacement(name, rust, std::iter::empty());
    }
    let tokens = progenitor::Generator::new(&settings)
        .generate_tokens(&spec)
        .expect("progenitor accepts the spec");
    pretty(tokens)
}

fn pretty(tokens: proc_macro2::TokenStream) -> String {
    let file = syn::parse2(tokens).expect("generated code parses");
    format!(
        "// Generated by build.rs from openapi.json. Do not edit.\n\n{}",
        prettyplease::unparse(&file)
    )
}

/// One schema's properties in the order the spec gives them (the secret visitors keep it).
#[derive(serde::Deserialize)]
struct Ordered {
    #[serde(default)]
    properties: Properties,
}

#[derive(Default)]
struct Properties(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Properties {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> serde::de::Visitor<'de> for InOrder {
            type Value = Properties;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of properties")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Properties, A::Error> {
                let mut all = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    all.push(entry);
                }
                Ok(Properties(all))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

#[derive(serde::Deserialize)]
struct Components {
    schemas: std::collections::BTreeMap<String, Ordered>,
}

#[derive(serde::Deserialize)]
struct OrderedSpec {
    components: Components,
}

/// The schema a property refers to (`$ref`, or the first of an `allOf`).
fn target(property: &serde_json::Value) -> Option<&str> {
    property
        .get("$ref")
        .or_else(|| property.pointer("/allOf/0/$ref"))
        .and_then(|r| r.as_str())
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

/// The Rust name typify gives a property (`type` is `type_`).
fn field(name: &str) -> String {
    match name {
        "type" => "type_".to_string(),
        other => other.to_string(),
    }
}

/// The secret places of the models: the list of every property marked `x-bifrost-secret`, a
/// visitor of every `Secret` field of a `Key` (marked or not: an unmarked one, such as an API
/// version, takes references but is shown as it is), and for each settings block of
/// `UpdateProviderRequest` that holds marked properties, a visitor of those.
fn secrets(text: &str) -> String {
    let spec: OrderedSpec = serde_json::from_str(text).expect("openapi.json is JSON");
    let schemas = &spec.components.schemas;
    let mark = |p: &serde_json::Value| {
        p.get("x-bifrost-secret")
            .and_then(|m| m.as_str())
            .map(str::to_string)
    };
    let mut listed = String::new();
    for (schema, ordered) in schemas {
        for (name, property) in &ordered.properties.0 {
            if let Some(mark) = mark(property) {
                listed.push_str(&format!(
                    "    ({schema:?}, {name:?}, Mark::{}),\n",
                    variant(&mark)
                ));
            }
        }
    }
    let mut key = String::new();
    for (name, property) in &schemas["Key"].properties.0 {
        match target(property) {
            Some("Secret") => key.push_str(&format!(
                "    if let Some(field) = key.{}.as_mut() {{\n        visit({name:?}, {}, field);\n    }}\n",
                field(name),
                mark(property).as_deref() == Some("value"),
            )),
            Some(block) if schemas.contains_key(block) => {
                for (inner, p) in &schemas[block].properties.0 {
                    if target(p) == Some("Secret") {
                        key.push_str(&format!(
                            "    if let Some(field) = key.{}.as_mut().and_then(|block| block.{}.as_mut()) {{\n        visit(\"{name}.{inner}\", {}, field);\n    }}\n",
                            field(name),
                            field(inner),
                            mark(p).as_deref() == Some("value"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    let mut blocks = String::new();
    for (name, property) in &schemas["UpdateProviderRequest"].properties.0 {
        let Some(block) = target(property).filter(|b| schemas.contains_key(*b)) else {
            continue;
        };
        let marked: Vec<_> = schemas[block]
            .properties
            .0
            .iter()
            .filter_map(|(inner, p)| mark(p).map(|m| (inner, m)))
            .collect();
        if marked.is_empty() {
            continue;
        }
        blocks.push_str(&format!(
            "\n/// Calls `visit` on every property of `{block}` that `openapi.json` marks \
             `x-bifrost-secret`,\n/// with its path in a provider (`{name}.…`) and its mark, in the spec's order.\n\
             pub fn for_each_{name}_mark(block: &mut crate::types::{block}, mut visit: impl FnMut(&'static str, Mark, Marked<'_>)) {{\n"
        ));
        for (inner, m) in marked {
            let holder = if m == "credential-headers" {
                "Headers"
            } else {
                "Text"
            };
            blocks.push_str(&format!(
                "    visit(\"{name}.{inner}\", Mark::{}, Marked::{holder}(&mut block.{}));\n",
                variant(&m),
                field(inner),
            ));
        }
        blocks.push_str("}\n");
    }
    let code = format!(
        "/// Every property `openapi.json` marks `x-bifrost-secret`: schema, property, mark.\n\
         pub const MARKED: &[(&str, &str, Mark)] = &[\n{listed}];\n\n\
         /// Calls `visit` on every `Secret` field of a key, with its path below the key and whether\n\
         /// the spec marks it a secret (`x-bifrost-secret: value`), in the spec's order.\n\
         pub fn for_each_key_field(key: &mut crate::types::Key, mut visit: impl FnMut(&'static str, bool, &mut crate::types::EnvVar)) {{\n{key}}}\n{blocks}"
    );
    pretty(code.parse().expect("the secret visitors parse"))
}

/// The `Mark` variant of an `x-bifrost-secret` value.
fn variant(mark: &str) -> &'static str {
    match mark {
        "value" => "Value",
        "credential-headers" => "CredentialHeaders",
        "user-info" => "UserInfo",
        other => panic!("unknown x-bifrost-secret mark {other:?}"),
    }
}
