//! A provider's lifecycle: from a request body and what is stored to the new stored state, and
//! from the stored state to what a response shows.
//!
//! The PUT body is the whole desired state (full replacement). Nothing stored survives unless the
//! body says so, with one exception: a secret sent back in its current redacted form keeps the
//! stored secret. Blocks left out take their defaults, and the stored state holds those defaults,
//! so what is stored is always what responses show, secrets aside.

use std::collections::{BTreeMap, HashSet};

use crate::error::Error;
use crate::secrets::{self, PROXY_MASK};
use crate::types::{
    CustomProviderConfig, EnvVar, Key, ModelProvider, ProviderResponse, ProviderStatus,
    ProxyConfig, UpdateProviderRequest,
};
use crate::validate;

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
        custom_provider_config,
        name: _,
        status: _,
        config_hash: _,
    } = request;

    let custom = custom_provider(name, custom_provider_config, current)?;
    let base = match &custom {
        Some(custom) => custom.base_provider_type.to_string(),
        None => name.to_string(),
    };
    if custom.as_ref().is_some_and(|c| c.is_key_less) && !keys.is_empty() {
        return Err(Error::invalid(
            "keys_not_allowed",
            "keys",
            "A keyless custom provider takes no keys",
        ));
    }
    let stored_keys = current
        .map(|c| c.config.keys.as_slice())
        .unwrap_or_default();
    let keys = merge_keys(keys, stored_keys, &base)?;

    let network = network_config.unwrap_or_default();
    validate::network(&network)?;
    let concurrency = concurrency_and_buffer_size.unwrap_or_default();
    validate::concurrency(&concurrency)?;
    let stored_proxy = current.and_then(|c| c.config.proxy_config.as_ref());
    let proxy = proxy_config
        .map(|p| merge_proxy(p, stored_proxy))
        .transpose()?;

    Ok(StoredProvider {
        name: name.to_string(),
        config: UpdateProviderRequest {
            keys,
            network_config: Some(network),
            concurrency_and_buffer_size: Some(concurrency),
            proxy_config: proxy,
            send_back_raw_request,
            send_back_raw_response,
            custom_provider_config: custom,
            name: None,
            status: None,
            config_hash: None,
        },
        config_hash: current.and_then(|c| c.config_hash.clone()),
        etag: String::new(),
    })
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
        .map(|c| c.base_provider_type);
    if stored_base.is_some_and(|b| b != custom.base_provider_type) {
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

/// Keys matched by id against the stored ones, with new ids assigned, checks applied and
/// redacted secrets replaced by the stored ones they stand for.
fn merge_keys(keys: Vec<Key>, stored: &[Key], base: &str) -> Result<Vec<Key>, Error> {
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    keys.into_iter()
        .enumerate()
        .map(|(i, mut key)| {
            let at = |field: &str| format!("keys[{i}].{field}");
            let id = match key.id.take().filter(|id| !id.is_empty()) {
                Some(id) => {
                    validate::key_id(&id, &at("id"))?;
                    id
                }
                None => uuid::Uuid::new_v4().to_string(),
            };
            if !ids.insert(id.clone()) {
                return Err(Error::invalid(
                    "duplicate_key_id",
                    at("id"),
                    format!("Duplicate key id {id:?}"),
                ));
            }
            if key.name.chars().count() > validate::MAX_KEY_NAME {
                return Err(Error::invalid(
                    "invalid_key_name",
                    at("name"),
                    format!(
                        "Key name must be at most {} characters",
                        validate::MAX_KEY_NAME
                    ),
                ));
            }
            if !key.name.is_empty() && !names.insert(key.name.clone()) {
                return Err(Error::invalid(
                    "duplicate_key_name",
                    at("name"),
                    "Duplicate key name",
                ));
            }
            if !key.weight.is_finite() || key.weight < 0.0 {
                return Err(Error::invalid(
                    "invalid_weight",
                    at("weight"),
                    "Key weight must be a finite number >= 0",
                ));
            }
            for (block, present, owner) in [
                ("azure_key_config", key.azure_key_config.is_some(), "azure"),
                (
                    "vertex_key_config",
                    key.vertex_key_config.is_some(),
                    "vertex",
                ),
                (
                    "bedrock_key_config",
                    key.bedrock_key_config.is_some(),
                    "bedrock",
                ),
                (
                    "huggingface_key_config",
                    key.huggingface_key_config.is_some(),
                    "huggingface",
                ),
            ] {
                if present && base != owner {
                    return Err(Error::invalid(
                        "key_config_mismatch",
                        at(block),
                        format!("{block} is only allowed on {owner}-based providers"),
                    ));
                }
            }
            let stored_key = stored.iter().find(|k| k.id.as_deref() == Some(id.as_str()));
            merge_secrets(&mut key, stored_key, i)?;
            key.id = Some(id);
            Ok(key)
        })
        .collect()
}

/// Normalizes each environment field of a key: references become `{env_var, from_env: true}`
/// (the variable must be set), and a redacted secret becomes the stored secret it stands for.
fn merge_secrets(key: &mut Key, stored: Option<&Key>, index: usize) -> Result<(), Error> {
    let stored_fields: BTreeMap<&'static str, EnvVar> = stored
        .map(|k| {
            let mut k = k.clone();
            let mut fields = BTreeMap::new();
            secrets::for_each_field(&mut k, |path, _, field| {
                fields.insert(path, field.clone());
            });
            fields
        })
        .unwrap_or_default();
    let mut failure = None;
    secrets::for_each_field(key, |path, secret, field| {
        if failure.is_none() {
            let param = format!("keys[{index}].{path}");
            if let Err(e) = merge_field(field, secret, stored_fields.get(path), &param) {
                failure = Some(e);
            }
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
    if let Some(reference) = secrets::reference(field) {
        let Some(variable) = secrets::variable_name(reference) else {
            return Err(Error::invalid(
                "invalid_env_var",
                param,
                format!("{param}: an environment reference must have the form env.NAME"),
            ));
        };
        if std::env::var_os(variable).is_none() {
            return Err(Error::invalid(
                "env_var_not_set",
                param,
                format!("{param}: environment variable {variable} is not set"),
            ));
        }
        *field = EnvVar {
            value: String::new(),
            env_var: format!("env.{variable}"),
            from_env: true,
        };
        return Ok(());
    }
    if secret && secrets::looks_redacted(&field.value) {
        return match stored {
            Some(stored) if secrets::present(stored, true).value == field.value => {
                *field = stored.clone();
                Ok(())
            }
            _ => Err(mask_mismatch(param)),
        };
    }
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

/// Proxy secrets sent back as `<REDACTED>` keep the stored ones.
fn merge_proxy(mut proxy: ProxyConfig, stored: Option<&ProxyConfig>) -> Result<ProxyConfig, Error> {
    validate::proxy(&proxy)?;
    let stored_password = stored.map(|s| s.password.as_str()).unwrap_or_default();
    let stored_ca = stored.map(|s| s.ca_cert_pem.as_str()).unwrap_or_default();
    for (field, value, kept) in [
        ("password", &mut proxy.password, stored_password),
        ("ca_cert_pem", &mut proxy.ca_cert_pem, stored_ca),
    ] {
        if secrets::looks_redacted(value) {
            if value != PROXY_MASK || kept.is_empty() {
                return Err(mask_mismatch(&format!("proxy_config.{field}")));
            }
            *value = kept.to_string();
        }
    }
    Ok(proxy)
}

/// What a response shows of a stored provider: effective values, secrets redacted, and `error`
/// status when an environment reference cannot be resolved now.
pub fn present(stored: &StoredProvider) -> ProviderResponse {
    let config = &stored.config;
    let mut usable = true;
    let keys = config
        .keys
        .iter()
        .map(|key| {
            let mut key = key.clone();
            secrets::for_each_field(&mut key, |_, secret, field| {
                usable &= secrets::resolve(field).is_some();
                *field = secrets::present(field, secret);
            });
            key
        })
        .collect();
    let proxy_config = config.proxy_config.clone().map(|mut proxy| {
        for value in [&mut proxy.password, &mut proxy.ca_cert_pem] {
            if !value.is_empty() {
                *value = PROXY_MASK.to_string();
            }
        }
        proxy
    });
    ProviderResponse {
        name: stored.name.clone(),
        keys,
        network_config: config.network_config.clone().unwrap_or_default(),
        concurrency_and_buffer_size: config
            .concurrency_and_buffer_size
            .clone()
            .unwrap_or_default(),
        proxy_config,
        send_back_raw_request: config.send_back_raw_request,
        send_back_raw_response: config.send_back_raw_response,
        custom_provider_config: config.custom_provider_config.clone(),
        status: if usable {
            ProviderStatus::Active
        } else {
            ProviderStatus::Error
        },
        config_hash: stored.config_hash.clone(),
    }
}
