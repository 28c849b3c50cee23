//! Reading a real Bifrost config store (its own database, not its API), for `import-bifrost`.
//!
//! Bifrost v1.4.x and v1.5.x keep providers in `config_providers` and their keys in
//! `config_keys`, as the GORM models of `framework/configstore/tables/{provider,key}.go` define
//! them: the provider's blocks as JSON text (`network_config_json`, `proxy_config_json`, …), each
//! key's configs spread over columns (`azure_endpoint`, `bedrock_secret_key`, `vllm_url`, …),
//! secrets as the text `EnvVar.Value()` writes (`env.NAME` for a reference, else the literal),
//! and, when Bifrost runs with an encryption key, the secret columns of a row sealed
//! ([`cipher`]) and the row marked `encryption_status = 'encrypted'` (rows saved before the key
//! was set stay `plain_text` until Bifrost re-saves them, so both kinds are found in one store).
//!
//! The rows are read as they are ([`sqlite`], [`postgres`], nothing written), then mapped here
//! into the request JSON of this server's models and decoded through the same checks as the API:
//! what fails a check is skipped (a key alone where the failure is the key's), with the check's
//! message, which never quotes a value.

pub mod cipher;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::decode::{generations, json as typed};
use crate::domain::error::Error;
use crate::domain::provider::{self, StoredProvider};
use crate::types::UpdateProviderRequest;
use cipher::{Cipher, OpenError};

/// One column's value as the database holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// One row, by column name.
pub type Row = BTreeMap<String, Cell>;

/// A table's columns (as the store has them: a release adds some, a migration drops others) and
/// its rows, oldest first.
#[derive(Debug, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

/// What the store holds of providers.
#[derive(Debug, Default)]
pub struct Tables {
    pub providers: Table,
    pub keys: Table,
}

/// Which Bifrost generation wrote the store: it decides what a key's `models` means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Generation {
    /// v1.4.x: `models: []` means every model.
    #[serde(rename = "v1.4")]
    V14,
    /// v1.5.x: `[]` means no model and `["*"]` every model (its migration
    /// `drop_deployment_columns_and_add_aliases` adds `config_keys.aliases_json`, and the
    /// whitelist migration rewrote the stored `[]` into `["*"]`).
    #[serde(rename = "v1.5")]
    V15,
}

impl Generation {
    /// The generation whose schema the key table has.
    pub fn detect(tables: &Tables) -> Generation {
        if tables.keys.columns.iter().any(|c| c == "aliases_json") {
            Generation::V15
        } else {
            Generation::V14
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Generation::V14 => "v1.4",
            Generation::V15 => "v1.5",
        }
    }
}

/// Reads the store a URL names: `sqlite://PATH` (or a bare path) or `postgres://…`.
pub async fn read(url: &str) -> Result<Tables, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return postgres::read(url).await;
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() {
        return Err("the source URL names no file".into());
    }
    let path = std::path::PathBuf::from(path);
    tokio::task::spawn_blocking(move || sqlite::read(&path))
        .await
        .map_err(|e| format!("cannot read the SQLite store: {e}"))?
}

/// How many rows of the store are marked encrypted.
pub fn encrypted_rows(tables: &Tables) -> usize {
    tables
        .providers
        .rows
        .iter()
        .chain(&tables.keys.rows)
        .filter(|row| is_encrypted(row))
        .count()
}

/// One provider of the store, mapped.
#[derive(Debug)]
pub struct Imported {
    pub name: String,
    /// The state to store, or why the provider cannot be imported.
    pub state: Result<StoredProvider, String>,
    /// Each of its keys: its id, name, and why it was left out (`None`: imported).
    pub keys: Vec<KeyOutcome>,
    /// What the store holds for it that this server has no place for.
    pub notes: Vec<String>,
}

/// One key of a provider.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyOutcome {
    pub id: String,
    pub name: String,
    /// Why it was left out; `None` when imported.
    pub skipped: Option<String>,
}

/// A reason the whole import stops before anything is written.
#[derive(Debug)]
pub enum Fatal {
    /// Rows are encrypted and no key was given.
    NeedsKey,
    /// The key given does not open the store's rows.
    WrongKey { provider: String, column: String },
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fatal::NeedsKey => write!(
                f,
                "the store has encrypted rows: pass Bifrost's encryption key (--encryption-key or \
                 BIFROST_SOURCE_ENCRYPTION_KEY)"
            ),
            Fatal::WrongKey { provider, column } => write!(
                f,
                "the encryption key does not open the store (provider {provider:?}, column \
                 {column}): it is not the key this Bifrost encrypted with"
            ),
        }
    }
}

/// The key columns that hold an `EnvVar` (a reference or a literal, sealed when the row is).
const KEY_SECRETS: &[&str] = &[
    "value",
    "azure_endpoint",
    "azure_api_version",
    "azure_client_id",
    "azure_client_secret",
    "azure_tenant_id",
    "vertex_project_id",
    "vertex_project_number",
    "vertex_region",
    "vertex_auth_credentials",
    "bedrock_access_key",
    "bedrock_secret_key",
    "bedrock_session_token",
    "bedrock_region",
    "bedrock_arn",
    "bedrock_role_arn",
    "bedrock_external_id",
    "bedrock_role_session_name",
    "vllm_url",
    "ollama_url",
    "sgl_url",
];

/// The key columns of JSON text that an encrypted row seals too (`encryptString`).
const KEY_SEALED_JSON: &[&str] = &[
    "bedrock_deployments_json",
    "bedrock_batch_s3_config_json",
    "aliases_json",
];

/// Columns read below, or kept by Bifrost for itself (ids, times, hashes, discovery status).
const KEY_KNOWN: &[&str] = &[
    "id",
    "name",
    "provider_id",
    "provider",
    "key_id",
    "models_json",
    "blacklisted_models_json",
    "weight",
    "enabled",
    "use_for_batch_api",
    "created_at",
    "updated_at",
    "config_hash",
    "status",
    "description",
    "encryption_status",
    "azure_scopes",
    "azure_deployments_json",
    "vertex_deployments_json",
    "replicate_deployments_json",
    "replicate_use_deployments_endpoint",
    "vllm_model_name",
];

const PROVIDER_KNOWN: &[&str] = &[
    "id",
    "name",
    "network_config_json",
    "concurrency_buffer_json",
    "proxy_config_json",
    "custom_provider_config_json",
    "open_ai_config_json",
    "pricing_overrides_json",
    "send_back_raw_request",
    "send_back_raw_response",
    "store_raw_request_response",
    "created_at",
    "updated_at",
    "config_hash",
    "status",
    "description",
    "encryption_status",
];

/// Maps every provider of the store, in the store's order. Stops at the first value the key
/// cannot open (or at an encrypted row without a key): nothing is then imported.
pub fn map(
    tables: &Tables,
    generation: Generation,
    cipher: Option<&Cipher>,
) -> Result<Vec<Imported>, Fatal> {
    let mut out = Vec::new();
    for row in &tables.providers.rows {
        let name = text(row, "name").unwrap_or_default();
        let id = row.get("id").cloned().unwrap_or(Cell::Null);
        let keys: Vec<&Row> = tables
            .keys
            .rows
            .iter()
            .filter(|k| k.get("provider_id") == Some(&id))
            .collect();
        out.push(provider(&name, row, &keys, generation, cipher)?);
    }
    Ok(out)
}

/// One provider and its keys.
fn provider(
    name: &str,
    row: &Row,
    key_rows: &[&Row],
    generation: Generation,
    cipher: Option<&Cipher>,
) -> Result<Imported, Fatal> {
    let open = Opener {
        provider: name,
        encrypted: is_encrypted(row),
        cipher,
    };
    let mut notes = Vec::new();
    for column in ["budget_id", "rate_limit_id"] {
        if text(row, column).is_some() {
            notes.push(format!(
                "{column} not imported (governance budgets and rate limits are not provider configuration here)"
            ));
        }
    }
    notes.extend(unknown_columns(
        row,
        PROVIDER_KNOWN,
        &["budget_id", "rate_limit_id"],
    ));

    let mut body = Map::new();
    let mut problems = Vec::new();
    for (column, field) in [
        ("network_config_json", "network_config"),
        ("concurrency_buffer_json", "concurrency_and_buffer_size"),
        ("custom_provider_config_json", "custom_provider_config"),
        ("open_ai_config_json", "openai_config"),
        ("pricing_overrides_json", "pricing_overrides"),
    ] {
        match json_column(text(row, column), column) {
            Ok(Some(mut value)) => {
                if field == "network_config" {
                    references_kept(&mut value, &["ca_cert_pem"]);
                }
                body.insert(field.into(), value);
            }
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    let proxy = open.sealed_json(row, "proxy_config_json")?;
    match json_column(proxy, "proxy_config_json") {
        Ok(Some(mut value)) => {
            references_kept(&mut value, &["url", "username", "password", "ca_cert_pem"]);
            body.insert("proxy_config".into(), value);
        }
        Ok(None) => {}
        Err(e) => problems.push(e),
    }
    for column in [
        "send_back_raw_request",
        "send_back_raw_response",
        "store_raw_request_response",
    ] {
        if let Some(flag) = boolean(row, column) {
            body.insert(column.into(), Value::Bool(flag));
        }
    }

    let mut keys = Vec::new();
    let mut outcomes = Vec::new();
    // A key's `models` in the stored (v1.5) form, by its place in `keys`.
    let mut models = Vec::new();
    for key_row in key_rows {
        let id = text(key_row, "key_id").unwrap_or_default();
        let key_name = text(key_row, "name").unwrap_or_default();
        let open = Opener {
            encrypted: is_encrypted(key_row),
            ..open
        };
        notes.extend(
            unknown_columns(key_row, KEY_KNOWN, &[KEY_SECRETS, KEY_SEALED_JSON].concat())
                .into_iter()
                .map(|n| format!("key {id}: {n}")),
        );
        match key(key_row, generation, &open)? {
            Ok((value, stored_models)) => {
                keys.push(value);
                models.push(stored_models);
                outcomes.push(KeyOutcome {
                    id,
                    name: key_name,
                    skipped: None,
                });
            }
            Err(reason) => outcomes.push(KeyOutcome {
                id,
                name: key_name,
                skipped: Some(reason),
            }),
        }
    }
    if !problems.is_empty() {
        return Ok(Imported {
            name: name.to_string(),
            state: Err(problems.join("; ")),
            keys: outcomes,
            notes,
        });
    }
    let state = checked(name, body, keys, models, &mut outcomes);
    Ok(Imported {
        name: name.to_string(),
        state,
        keys: outcomes,
        notes,
    })
}

/// The provider through this server's checks; a key that fails its own check is left out (and
/// its outcome says why) and the rest tried again.
fn checked(
    name: &str,
    body: Map<String, Value>,
    mut keys: Vec<Value>,
    mut models: Vec<Vec<String>>,
    outcomes: &mut [KeyOutcome],
) -> Result<StoredProvider, String> {
    // Which outcome each remaining key is.
    let mut places: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.skipped.is_none())
        .map(|(i, _)| i)
        .collect();
    loop {
        let mut request = body.clone();
        request.insert("keys".into(), Value::Array(keys.clone()));
        match decoded(name, Value::Object(request)) {
            Ok(mut state) => {
                for (key, models) in state.config.keys.iter_mut().flatten().zip(&models) {
                    key.models = models.clone();
                }
                return Ok(state);
            }
            Err(error) => {
                let message = describe(&error);
                let at = param(&error).and_then(key_index);
                match at {
                    Some(i) if i < keys.len() => {
                        keys.remove(i);
                        models.remove(i);
                        outcomes[places.remove(i)].skipped = Some(message);
                    }
                    _ => return Err(message),
                }
            }
        }
    }
}

/// A request body decoded and checked as a PUT of a new provider would be.
fn decoded(name: &str, mut body: Value) -> Result<StoredProvider, Error> {
    generations::normalize(&mut body, "UpdateProviderRequest")?;
    let request: UpdateProviderRequest = typed::from_value(body, "")?;
    provider::desired_state(name, request, None)
}

fn param(error: &Error) -> Option<&str> {
    match error {
        Error::Invalid { param, .. } => param.as_deref(),
        _ => None,
    }
}

/// `keys[3].weight` → 3.
fn key_index(param: &str) -> Option<usize> {
    param.strip_prefix("keys[")?.split(']').next()?.parse().ok()
}

/// A check's failure as the report says it (never a value: the checks quote none).
fn describe(error: &Error) -> String {
    match error {
        Error::Invalid {
            message,
            param: Some(param),
            ..
        } => format!("field {param}: {message}"),
        other => other.to_string(),
    }
}

/// One key row as request JSON, with its `models` in the stored form; `Err` when the row itself
/// cannot be read (bad JSON in a column).
fn key(
    row: &Row,
    generation: Generation,
    open: &Opener<'_>,
) -> Result<Result<(Value, Vec<String>), String>, Fatal> {
    let secret = |column: &str| open.secret(row, column);
    let mut problems = Vec::new();
    let mut list = |column: &str| match json_column(text(row, column), column) {
        Ok(Some(Value::Array(items))) => items,
        Ok(Some(Value::Null) | None) => Vec::new(),
        Ok(Some(_)) => {
            problems.push(format!("column {column} is not a JSON list"));
            Vec::new()
        }
        Err(e) => {
            problems.push(e);
            Vec::new()
        }
    };
    let models: Vec<String> = list("models_json")
        .into_iter()
        .filter_map(|m| m.as_str().map(String::from))
        .collect();
    let blacklisted = list("blacklisted_models_json");
    let scopes = list("azure_scopes");
    let stored_models = match (generation, models.is_empty()) {
        (Generation::V14, true) => vec!["*".to_string()],
        _ => models,
    };
    if let Err(e) = crate::domain::key_models::check_list(&stored_models, "models", "models") {
        problems.push(describe(&e));
    }
    let mut key = Map::new();
    key.insert("id".into(), json!(text(row, "key_id").unwrap_or_default()));
    key.insert("name".into(), json!(text(row, "name").unwrap_or_default()));
    if let Some(value) = secret("value")? {
        key.insert("value".into(), json!(value));
    }
    // A list the view keeps as sent (an empty one would read as "every model").
    key.insert("models".into(), json!(["*"]));
    key.insert("blacklisted_models".into(), Value::Array(blacklisted));
    key.insert("weight".into(), json!(number(row, "weight").unwrap_or(1.0)));
    key.insert(
        "enabled".into(),
        json!(boolean(row, "enabled").unwrap_or(true)),
    );
    key.insert(
        "use_for_batch_api".into(),
        json!(boolean(row, "use_for_batch_api").unwrap_or(false)),
    );
    let mut map_column = |column: &str, sealed: bool| -> Result<Option<Value>, Fatal> {
        let raw = if sealed {
            open.sealed_json(row, column)?
        } else {
            text(row, column)
        };
        Ok(match json_column(raw, column) {
            Ok(Some(Value::Object(m))) if !m.is_empty() => Some(Value::Object(m)),
            Ok(_) => None,
            Err(e) => {
                problems.push(e);
                None
            }
        })
    };
    let aliases = map_column("aliases_json", true)?;
    let azure_deployments = map_column("azure_deployments_json", false)?;
    let vertex_deployments = map_column("vertex_deployments_json", false)?;
    let bedrock_deployments = map_column("bedrock_deployments_json", true)?;
    let replicate_deployments = map_column("replicate_deployments_json", false)?;
    let batch_s3 = map_column("bedrock_batch_s3_config_json", true)?;
    if let Some(aliases) = aliases {
        key.insert("aliases".into(), aliases);
    }

    let block = |fields: &[(&str, &str)]| -> Result<Map<String, Value>, Fatal> {
        let mut out = Map::new();
        for (column, field) in fields {
            if let Some(value) = secret(column)? {
                out.insert((*field).into(), json!(value));
            }
        }
        Ok(out)
    };
    let mut azure = block(&[
        ("azure_endpoint", "endpoint"),
        ("azure_api_version", "api_version"),
        ("azure_client_id", "client_id"),
        ("azure_client_secret", "client_secret"),
        ("azure_tenant_id", "tenant_id"),
    ])?;
    if !scopes.is_empty() {
        azure.insert("scopes".into(), Value::Array(scopes));
    }
    if let Some(d) = azure_deployments {
        azure.insert("deployments".into(), d);
    }
    let mut vertex = block(&[
        ("vertex_project_id", "project_id"),
        ("vertex_project_number", "project_number"),
        ("vertex_region", "region"),
        ("vertex_auth_credentials", "auth_credentials"),
    ])?;
    if let Some(d) = vertex_deployments {
        vertex.insert("deployments".into(), d);
    }
    let mut bedrock = block(&[
        ("bedrock_access_key", "access_key"),
        ("bedrock_secret_key", "secret_key"),
        ("bedrock_session_token", "session_token"),
        ("bedrock_region", "region"),
        ("bedrock_arn", "arn"),
        ("bedrock_role_arn", "role_arn"),
        ("bedrock_external_id", "external_id"),
        ("bedrock_role_session_name", "session_name"),
    ])?;
    if let Some(d) = bedrock_deployments {
        bedrock.insert("deployments".into(), d);
    }
    if let Some(b) = batch_s3 {
        bedrock.insert("batch_s3_config".into(), b);
    }
    let mut vllm = block(&[("vllm_url", "url")])?;
    if let Some(model) = text(row, "vllm_model_name") {
        vllm.insert("model_name".into(), json!(model));
    }
    let mut replicate = Map::new();
    if let Some(flag) = boolean(row, "replicate_use_deployments_endpoint") {
        replicate.insert("use_deployments_endpoint".into(), json!(flag));
    }
    if let Some(d) = replicate_deployments {
        replicate.insert("deployments".into(), d);
    }
    let ollama = block(&[("ollama_url", "url")])?;
    let sgl = block(&[("sgl_url", "url")])?;
    for (field, config) in [
        ("azure_key_config", azure),
        ("vertex_key_config", vertex),
        ("bedrock_key_config", bedrock),
        ("vllm_key_config", vllm),
        ("replicate_key_config", replicate),
        ("ollama_key_config", ollama),
        ("sgl_key_config", sgl),
    ] {
        if !config.is_empty() {
            key.insert(field.into(), Value::Object(config));
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems.join("; ")));
    }
    Ok(Ok((Value::Object(key), stored_models)))
}

/// Opens the sealed columns of one row.
#[derive(Clone, Copy)]
struct Opener<'a> {
    provider: &'a str,
    encrypted: bool,
    cipher: Option<&'a Cipher>,
}

impl Opener<'_> {
    /// An `EnvVar` column as Bifrost reads it back (`EnvVar.Scan`, then `decryptEnvVar`): quotes
    /// trimmed, `env.NAME` a reference (never sealed), else the literal, opened when the row is
    /// encrypted. `None` for NULL or empty.
    fn secret(&self, row: &Row, column: &str) -> Result<Option<String>, Fatal> {
        let Some(raw) = text(row, column) else {
            return Ok(None);
        };
        let value = raw.trim_matches('"');
        if value.is_empty() {
            return Ok(None);
        }
        if value.starts_with("env.") || !self.encrypted {
            return Ok(Some(value.to_string()));
        }
        self.open(value, column).map(Some)
    }

    /// A JSON text column that an encrypted row seals (`encryptString`).
    fn sealed_json(&self, row: &Row, column: &str) -> Result<Option<String>, Fatal> {
        match text(row, column) {
            Some(raw) if self.encrypted => self.open(&raw, column).map(Some),
            other => Ok(other),
        }
    }

    fn open(&self, sealed: &str, column: &str) -> Result<String, Fatal> {
        let cipher = self.cipher.ok_or(Fatal::NeedsKey)?;
        cipher.open(sealed).map_err(|e| match e {
            OpenError::WrongKey | OpenError::NotSealed => Fatal::WrongKey {
                provider: self.provider.to_string(),
                column: column.to_string(),
            },
        })
    }
}

fn is_encrypted(row: &Row) -> bool {
    text(row, "encryption_status").as_deref() == Some("encrypted")
}

/// A text column's value; `None` for NULL or empty.
fn text(row: &Row, column: &str) -> Option<String> {
    match row.get(column)? {
        Cell::Text(t) if !t.is_empty() => Some(t.clone()),
        Cell::Int(n) => Some(n.to_string()),
        Cell::Real(x) => Some(x.to_string()),
        _ => None,
    }
}

/// A boolean column: an integer in SQLite, a boolean in PostgreSQL (read as 0/1).
fn boolean(row: &Row, column: &str) -> Option<bool> {
    match row.get(column)? {
        Cell::Int(n) => Some(*n != 0),
        Cell::Real(x) => Some(*x != 0.0),
        Cell::Text(t) => match t.as_str() {
            "1" | "t" | "true" | "TRUE" => Some(true),
            "0" | "f" | "false" | "FALSE" => Some(false),
            _ => None,
        },
        Cell::Null => None,
    }
}

fn number(row: &Row, column: &str) -> Option<f64> {
    match row.get(column)? {
        Cell::Int(n) => Some(*n as f64),
        Cell::Real(x) => Some(*x),
        Cell::Text(t) => t.parse().ok(),
        Cell::Null => None,
    }
}

/// A JSON text column; `None` for NULL, empty or `null`. An error names the column only.
fn json_column(raw: Option<String>, column: &str) -> Result<Option<Value>, String> {
    let Some(raw) = raw else { return Ok(None) };
    match serde_json::from_str::<Value>(&raw) {
        Ok(Value::Null) => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(_) => Err(format!("column {column} is not valid JSON")),
    }
}

/// In a block Bifrost serialised with `EnvVar`s (`{value, env_var, from_env}`: v1.5's proxy
/// fields and CA certificate), a reference is kept as `env.NAME`, never as the value it had
/// resolved to when Bifrost saved it; a literal as its value.
fn references_kept(block: &mut Value, fields: &[&str]) {
    let Some(object) = block.as_object_mut() else {
        return;
    };
    for field in fields {
        let Some(Value::Object(secret)) = object.get(*field) else {
            continue;
        };
        let from_env = secret.get("from_env").and_then(Value::as_bool) == Some(true);
        let reference = secret
            .get("env_var")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .map(|r| {
                if r.starts_with("env.") {
                    r.to_string()
                } else {
                    format!("env.{r}")
                }
            });
        let value = match (from_env, reference) {
            (true, Some(reference)) => reference,
            _ => secret
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        };
        object.insert((*field).to_string(), Value::String(value));
    }
}

/// Columns this mapping does not know, with a value: named, so the report shows what stayed.
fn unknown_columns(row: &Row, known: &[&str], also: &[&str]) -> Vec<String> {
    row.iter()
        .filter(|(column, cell)| {
            !known.contains(&column.as_str())
                && !also.contains(&column.as_str())
                && !matches!(cell, Cell::Null)
                && !matches!(cell, Cell::Text(t) if t.is_empty() || t == "{}" || t == "[]")
        })
        .map(|(column, _)| format!("column {column} not imported"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_places_are_read_from_params() {
        assert_eq!(key_index("keys[3].weight"), Some(3));
        assert_eq!(key_index("keys[12]"), Some(12));
        assert_eq!(key_index("network_config.base_url"), None);
    }

    #[test]
    fn a_proxy_reference_is_kept_and_its_resolved_value_dropped() {
        let mut proxy = json!({
            "type": "http",
            "url": {"value": "http://proxy:3128", "env_var": "", "from_env": false},
            "password": {"value": "resolved-secret", "env_var": "env.PROXY_PASSWORD", "from_env": true},
            "username": null
        });
        references_kept(&mut proxy, &["url", "username", "password", "ca_cert_pem"]);
        assert_eq!(proxy["url"], "http://proxy:3128");
        assert_eq!(proxy["password"], "env.PROXY_PASSWORD");
        assert!(!proxy.to_string().contains("resolved-secret"));
    }
}
