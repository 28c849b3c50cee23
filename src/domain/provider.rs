//! A provider's lifecycle: from a request body and what is stored to the new stored state, and
//! from the stored state to what a response shows.
//!
//! The PUT body is the whole desired state (full replacement). Nothing stored survives unless the
//! body says so, with three exceptions that keep every generation's clients from losing data: a
//! secret sent back in its current redacted form keeps the stored secret; `keys` left out leaves
//! the stored keys alone (v1.5+ clients manage keys through `/keys`); and
//! `store_raw_request_response` left out keeps its stored value (as every Bifrost does). Blocks
//! left out take their defaults, and the stored state holds those defaults, so what is stored is
//! always what responses show, secrets aside.

use std::collections::{BTreeMap, HashSet};

use crate::domain::credentials;
use crate::domain::error::Error;
use crate::domain::key_models::{self, View};
use crate::domain::secret_places::{self, Mark, Marked};
use crate::domain::secrets::{self, PROXY_MASK};
use crate::domain::validate;
use crate::types::{
    CustomProviderConfig, EnvVar, Key, ModelProvider, NetworkConfig, ProviderResponse,
    ProviderStatus, ProxyConfig, UpdateProviderRequest,
};

/// A provider as stored: the normalized whole state, literal secrets in clear, environment
/// references as references (resolved when read, so a variable that disappears shows).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredProvider {
    pub name: String,
    /// Every block present (defaults filled in), every key with its id, and no response-only
    /// field (`name`, `status`, `config_hash`).
    pub config: UpdateProviderRequest,
    /// SHA-256 of the provider's entry in a config.json, when it came from there.
    pub config_hash: Option<String>,
    /// The opaque entity tag of this state; the store assigns a new one at every write.
    pub etag: String,
}

/// The new stored state of provider `name` for a request body, given what is stored now.
pub fn desired_state(
    name: &str,
    request: UpdateProviderRequest,
    current: Option<&StoredProvider>,
) -> Result<StoredProvider, Error> {
    if let Some(given) = request.name.as_deref()
        && given != name
    {
        return Err(Error::invalid(
            "provider_name_mismatch",
            "name",
            format!("Body name {given:?} does not match the provider in the path"),
        ));
    }
    let UpdateProviderRequest {
        keys,
        network_config,
        concurrency_and_buffer_size,
        proxy_config,
        send_back_raw_request,
        send_back_raw_response,
        store_raw_request_response,
        custom_provider_config,
        openai_config,
        pricing_overrides,
        prompt_cache,
        provider_request_id,
        name: _,
        status: _,
        provider_status: _,
        description: _,
        config_hash: _,
    } = request;

    let custom = custom_provider(name, custom_provider_config, current)?;
    let base = base_of(name, custom.as_ref());
    let stored_keys = current.map(|c| c.keys()).unwrap_or_default();
    let keys = match keys {
        Some(keys) => {
            validate::count("keys", keys.len(), validate::MAX_KEYS)?;
            merge_keys(keys, stored_keys, &base)?
        }
        None => stored_keys.to_vec(),
    };
    if custom.as_ref().is_some_and(|c| c.is_key_less) && !keys.is_empty() {
        return Err(Error::invalid(
            "keys_not_allowed",
            "keys",
            "A keyless custom provider takes no keys",
        ));
    }

    let stored_network = current.and_then(|c| c.config.network_config.as_ref());
    let network = network(network_config.unwrap_or_default(), stored_network)?;
    let concurrency = concurrency_and_buffer_size.unwrap_or_default();
    validate::concurrency(&concurrency)?;
    let stored_proxy = current.and_then(|c| c.config.proxy_config.as_ref());
    let proxy = proxy_config
        .map(|p| merge_proxy(p, stored_proxy))
        .transpose()?;
    if let Some(request_id) = &provider_request_id {
        validate::provider_request_id(request_id)?;
    }
    let store_raw = store_raw_request_response
        .or_else(|| current.and_then(|c| c.config.store_raw_request_response))
        .unwrap_or(false);

    Ok(StoredProvider {
        name: name.to_string(),
        config: UpdateProviderRequest {
            keys: Some(keys),
            network_config: Some(network),
            concurrency_and_buffer_size: Some(concurrency),
            proxy_config: proxy,
            send_back_raw_request,
            send_back_raw_response,
            store_raw_request_response: Some(store_raw),
            custom_provider_config: custom,
            openai_config,
            pricing_overrides,
            prompt_cache,
            provider_request_id,
            ..Default::default()
        },
        config_hash: current.and_then(|c| c.config_hash.clone()),
        etag: String::new(),
    })
}

impl StoredProvider {
    /// The stored keys, in their order.
    pub fn keys(&self) -> &[Key] {
        self.config.keys.as_deref().unwrap_or_default()
    }

    /// The provider type its keys belong to: its own name, or a custom provider's base.
    pub fn base(&self) -> String {
        base_of(&self.name, self.config.custom_provider_config.as_ref())
    }

    /// Whether it is a keyless custom provider.
    pub fn is_key_less(&self) -> bool {
        self.config
            .custom_provider_config
            .as_ref()
            .is_some_and(|c| c.is_key_less)
    }
}

fn base_of(name: &str, custom: Option<&CustomProviderConfig>) -> String {
    match custom {
        Some(custom) => custom.base_provider_type.to_string(),
        None => name.to_string(),
    }
}

/// A network block with Bifrost's "0 means the default" applied, checked, its CA certificate
/// merged like a proxy secret, and the names Bifrost never read dropped.
fn network(mut n: NetworkConfig, stored: Option<&NetworkConfig>) -> Result<NetworkConfig, Error> {
    let defaults = NetworkConfig::default();
    if n.default_request_timeout_in_seconds == 0 {
        n.default_request_timeout_in_seconds = defaults.default_request_timeout_in_seconds;
    }
    if n.retry_backoff_initial <= 0 {
        n.retry_backoff_initial = defaults.retry_backoff_initial;
    }
    if n.retry_backoff_max <= 0 {
        n.retry_backoff_max = defaults.retry_backoff_max;
    }
    if n.stream_idle_timeout_in_seconds == 0 {
        n.stream_idle_timeout_in_seconds = defaults.stream_idle_timeout_in_seconds;
    }
    if n.max_conns_per_host == 0 {
        n.max_conns_per_host = defaults.max_conns_per_host;
    }
    n.retry_backoff_initial_ms = None;
    n.retry_backoff_max_ms = None;
    validate::network(&n)?;
    credentials::merge_url(
        &mut n.base_url,
        stored.map(|s| s.base_url.as_str()).unwrap_or_default(),
        "network_config.base_url",
    )?;
    credentials::merge_headers(
        &mut n.extra_headers,
        stored.map(|s| &s.extra_headers),
        "network_config.extra_headers",
    )?;
    let kept = stored.map(|s| s.ca_cert_pem.as_str()).unwrap_or_default();
    merge_string_secret(&mut n.ca_cert_pem, kept, "network_config.ca_cert_pem")?;
    Ok(n)
}

/// The rules of `custom_provider_config`: required for a custom name, forbidden for a standard
/// one, its base type fixed once the provider exists, and no keyless bedrock.
fn custom_provider(
    name: &str,
    custom: Option<CustomProviderConfig>,
    current: Option<&StoredProvider>,
) -> Result<Option<CustomProviderConfig>, Error> {
    const P: &str = "custom_provider_config";
    let Some(custom) = custom else {
        if validate::is_standard(name) {
            return Ok(None);
        }
        return Err(Error::invalid(
            "custom_provider_config_required",
            P,
            format!(
                "Provider {name:?} is not a standard provider and needs custom_provider_config"
            ),
        ));
    };
    if validate::is_standard(name) {
        return Err(Error::invalid(
            "custom_provider_config_not_allowed",
            P,
            format!("Standard provider {name:?} cannot have custom_provider_config"),
        ));
    }
    let stored_base = current
        .and_then(|c| c.config.custom_provider_config.as_ref())
        .map(|c| &c.base_provider_type);
    if stored_base.is_some_and(|b| *b != custom.base_provider_type) {
        return Err(Error::invalid(
            "base_provider_type_immutable",
            format!("{P}.base_provider_type"),
            "base_provider_type cannot be changed once the provider exists",
        ));
    }
    if custom.base_provider_type == ModelProvider::Bedrock && custom.is_key_less {
        return Err(Error::invalid(
            "invalid_custom_provider",
            format!("{P}.is_key_less"),
            "A bedrock-based custom provider cannot be keyless",
        ));
    }
    // The request types are the fields of `AllowedRequests`, as the spec lists them.
    let request_types =
        serde_json::to_value(crate::types::AllowedRequests::default()).unwrap_or_default();
    for (request_type, path) in &custom.request_path_overrides {
        let param = format!("{P}.request_path_overrides.{request_type}");
        if request_types.get(request_type).is_none() {
            return Err(Error::invalid(
                "invalid_request_path_override",
                param,
                "Unknown request type",
            ));
        }
        if !path.starts_with('/') || path.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::invalid(
                "invalid_request_path_override",
                param,
                "A request path override is a path starting with / without spaces or control characters",
            ));
        }
    }
    Ok(Some(custom))
}

/// A key set sent inside a provider body (v1.4): keys matched by id against the stored ones,
/// new ids assigned, checks applied, redacted secrets replaced by the stored ones they stand for.
fn merge_keys(keys: Vec<Key>, stored: &[Key], base: &str) -> Result<Vec<Key>, Error> {
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    keys.into_iter()
        .enumerate()
        .map(|(i, key)| {
            let at = format!("keys[{i}]");
            let id = key_id(key.id.as_deref(), &format!("{at}.id"))?;
            if !ids.insert(id.clone()) {
                return Err(Error::invalid(
                    "duplicate_key_id",
                    format!("{at}.id"),
                    format!("Duplicate key id {id:?}"),
                ));
            }
            if !key.name.is_empty() && !names.insert(key.name.clone()) {
                return Err(Error::invalid(
                    "duplicate_key_name",
                    format!("{at}.name"),
                    "Duplicate key name",
                ));
            }
            let stored_key = stored.iter().find(|k| k.id.as_deref() == Some(id.as_str()));
            merge_key(key, id, stored_key, base, &at, View::Inline)
        })
        .collect()
}

/// The id a key is stored under: the one given, or a new UUIDv4.
pub fn key_id(given: Option<&str>, param: &str) -> Result<String, Error> {
    match given.filter(|id| !id.is_empty()) {
        Some(id) => {
            validate::key_id(id, param)?;
            Ok(id.to_string())
        }
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

/// One key as it will be stored, from what a client sent (`at` is its place in the body, for
/// errors; `view` says which generation's reading of `models` applies) and the stored key with
/// the same id.
pub fn merge_key(
    mut key: Key,
    id: String,
    stored: Option<&Key>,
    base: &str,
    at: &str,
    view: View,
) -> Result<Key, Error> {
    let param = |field: &str| {
        if at.is_empty() {
            field.to_string()
        } else {
            format!("{at}.{field}")
        }
    };
    if key.name.chars().count() > validate::MAX_KEY_NAME {
        return Err(Error::invalid(
            "invalid_key_name",
            param("name"),
            format!(
                "Key name must be at most {} characters",
                validate::MAX_KEY_NAME
            ),
        ));
    }
    if !key.weight.is_finite() || key.weight < 0.0 {
        return Err(Error::invalid(
            "invalid_weight",
            param("weight"),
            "Key weight must be a finite number >= 0",
        ));
    }
    validate::key_configs(&key, base, &param)?;
    key.models = key_models::read(key.models, stored, view, &param("models"))?;
    key_models::check_list(
        &key.blacklisted_models,
        &param("blacklisted_models"),
        "blacklist",
    )?;
    validate::aliases(&key.aliases, &param("aliases"))?;
    merge_secrets(&mut key, stored, &param)?;
    key.id = Some(id);
    key.status = None;
    key.description = None;
    key.config_hash = stored.and_then(|k| k.config_hash.clone());
    Ok(key)
}

/// Normalizes each secret field of a key to its stored form: references as references, and a
/// redacted secret as the stored secret it stands for.
fn merge_secrets(
    key: &mut Key,
    stored: Option<&Key>,
    param: &dyn Fn(&str) -> String,
) -> Result<(), Error> {
    let stored_fields: BTreeMap<&'static str, EnvVar> = stored
        .map(|k| {
            let mut k = k.clone();
            let mut fields = BTreeMap::new();
            secret_places::for_each_key_field(&mut k, |path, _, field| {
                fields.insert(path, field.clone());
            });
            fields
        })
        .unwrap_or_default();
    let mut failure = None;
    secret_places::for_each_key_field(key, |path, secret, field| {
        if failure.is_none()
            && let Err(e) = merge_field(field, secret, stored_fields.get(path), &param(path))
        {
            failure = Some(e);
        }
    });
    failure.map_or(Ok(()), Err)
}

fn merge_field(
    field: &mut EnvVar,
    secret: bool,
    stored: Option<&EnvVar>,
    param: &str,
) -> Result<(), Error> {
    let kind = secrets::kind(field);
    secrets::check(&kind, param)?;
    if let secrets::Kind::Literal(value) = &kind
        && secret
        && secrets::looks_redacted(value)
    {
        return match stored {
            Some(stored) if secrets::present(stored, true).value == *value => {
                *field = secrets::stored(secrets::kind(stored));
                Ok(())
            }
            _ => Err(mask_mismatch(param)),
        };
    }
    *field = secrets::stored(kind);
    Ok(())
}

fn mask_mismatch(param: &str) -> Error {
    Error::invalid(
        "redacted_secret_mismatch",
        param,
        format!(
            "{param} looks like a redacted secret but is not the current redacted form of the stored \
             secret; send the secret itself, or its redacted form exactly as a GET shows it"
        ),
    )
}

/// A string secret (proxy `password`, a CA certificate): `<REDACTED>` sent back keeps the
/// stored value; a reference is kept as a reference.
fn merge_string_secret(value: &mut String, kept: &str, param: &str) -> Result<(), Error> {
    if secrets::looks_redacted(value) {
        if kept.is_empty() || (value != PROXY_MASK && *value != secrets::redact(kept)) {
            return Err(mask_mismatch(param));
        }
        *value = kept.to_string();
    }
    Ok(())
}

/// Proxy secrets sent back as `<REDACTED>` keep the stored ones.
fn merge_proxy(mut proxy: ProxyConfig, stored: Option<&ProxyConfig>) -> Result<ProxyConfig, Error> {
    validate::proxy(&proxy)?;
    credentials::merge_url(
        &mut proxy.url,
        stored.map(|s| s.url.as_str()).unwrap_or_default(),
        "proxy_config.url",
    )?;
    let stored_password = stored.map(|s| s.password.as_str()).unwrap_or_default();
    let stored_ca = stored.map(|s| s.ca_cert_pem.as_str()).unwrap_or_default();
    merge_string_secret(
        &mut proxy.password,
        stored_password,
        "proxy_config.password",
    )?;
    merge_string_secret(
        &mut proxy.ca_cert_pem,
        stored_ca,
        "proxy_config.ca_cert_pem",
    )?;
    Ok(proxy)
}

/// A string secret as a response shows it: a reference as itself, a value as `<REDACTED>`.
fn shown_string_secret(value: &str) -> String {
    if value.is_empty() || secrets::unresolved_string(value) || value.starts_with("env.") {
        value.to_string()
    } else {
        PROXY_MASK.to_string()
    }
}

/// One stored key as a response shows it, in the view of the generation that reads it.
pub fn present_key(key: &Key, view: View, usable: &mut bool) -> Key {
    let mut key = key.clone();
    secret_places::for_each_key_field(&mut key, |_, secret, field| {
        *usable &= secrets::resolve(field).is_some();
        *field = secrets::present(field, secret);
    });
    key.config_hash = key.config_hash.as_deref().map(secrets::shown_hash);
    key.models = key_models::render(&key.models, view);
    key_models::show_aliases(&mut key, view);
    key
}

/// What a response shows of a place the spec marks `x-bifrost-secret`, in place.
fn show(_: &'static str, mark: Mark, marked: Marked<'_>) {
    match (mark, marked) {
        (Mark::Value, Marked::Text(value)) => *value = shown_string_secret(value),
        (Mark::UserInfo, Marked::Text(url)) => *url = credentials::shown_url(url),
        (_, Marked::Headers(headers)) => {
            for (name, value) in headers.iter_mut() {
                *value = credentials::shown_header(name, value);
            }
        }
        (Mark::CredentialHeaders, Marked::Text(_)) => {}
    }
}

/// What a response shows of a stored provider: effective values, secrets redacted, and `error`
/// status when a reference cannot be resolved here.
pub fn present(stored: &StoredProvider) -> ProviderResponse {
    let config = &stored.config;
    let mut usable = true;
    let keys = stored
        .keys()
        .iter()
        .map(|key| present_key(key, View::Inline, &mut usable))
        .collect();
    let proxy_config = config.proxy_config.clone().map(|mut proxy| {
        usable &= ![
            &proxy.url,
            &proxy.username,
            &proxy.password,
            &proxy.ca_cert_pem,
        ]
        .into_iter()
        .any(|v| secrets::unresolved_string(v));
        secret_places::for_each_proxy_config_mark(&mut proxy, show);
        proxy
    });
    let mut network_config = config.network_config.clone().unwrap_or_default();
    usable &= !secrets::unresolved_string(&network_config.ca_cert_pem);
    secret_places::for_each_network_config_mark(&mut network_config, show);
    let status = if usable {
        ProviderStatus::Active
    } else {
        ProviderStatus::Error
    };
    ProviderResponse {
        name: stored.name.clone(),
        keys,
        network_config,
        concurrency_and_buffer_size: config
            .concurrency_and_buffer_size
            .clone()
            .unwrap_or_default(),
        proxy_config,
        send_back_raw_request: config.send_back_raw_request,
        send_back_raw_response: config.send_back_raw_response,
        store_raw_request_response: Some(config.store_raw_request_response.unwrap_or(false)),
        custom_provider_config: config.custom_provider_config.clone(),
        openai_config: config.openai_config.clone(),
        pricing_overrides: config.pricing_overrides.clone(),
        prompt_cache: config.prompt_cache.clone(),
        provider_request_id: config.provider_request_id.clone(),
        status: Some(status.clone()),
        provider_status: Some(status),
        description: None,
        config_hash: stored.config_hash.as_deref().map(secrets::shown_hash),
    }
}
