//! Conversions between the request and response models, for the server and for clients.
//!
//! The body of POST is the body of PUT plus the provider's name; a GET response, sent back as a
//! PUT body, must lose nothing (its redacted secrets stand for the stored ones).

use crate::types::{AddProviderRequest, ProviderResponse, UpdateProviderRequest};

/// A POST body as the provider's name and the PUT body it amounts to.
pub fn split_add(add: AddProviderRequest) -> (String, UpdateProviderRequest) {
    let AddProviderRequest {
        provider,
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
        name,
        status,
        provider_status,
        description,
        config_hash,
    } = add;
    let update = UpdateProviderRequest {
        keys: Some(keys.unwrap_or_default()),
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
        name,
        status,
        provider_status,
        description,
        config_hash,
    };
    (provider, update)
}

/// A GET response as a PUT body: edit a field, send it back, and every secret is kept.
impl From<ProviderResponse> for UpdateProviderRequest {
    fn from(response: ProviderResponse) -> Self {
        let ProviderResponse {
            name,
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
            status,
            provider_status,
            description,
            config_hash,
        } = response;
        UpdateProviderRequest {
            keys: Some(keys),
            network_config: Some(network_config),
            concurrency_and_buffer_size: Some(concurrency_and_buffer_size),
            proxy_config,
            send_back_raw_request,
            send_back_raw_response,
            store_raw_request_response,
            custom_provider_config,
            openai_config,
            pricing_overrides,
            prompt_cache,
            provider_request_id,
            name: Some(name),
            status: status.map(|s| s.to_string()),
            provider_status: provider_status.map(|s| s.to_string()),
            description,
            config_hash,
        }
    }
}

impl UpdateProviderRequest {
    /// The key set to send, created empty when the body has none: a body with `keys` replaces
    /// the stored key set, one without leaves it alone.
    pub fn keys_mut(&mut self) -> &mut Vec<crate::types::Key> {
        self.keys.get_or_insert_with(Vec::new)
    }
}

/// A secret from a string, as Bifrost reads a bare string: `env.NAME` and `vault.PATH` are
/// references, anything else a literal. `EnvVar::from("sk-…")`.
impl From<&str> for crate::types::EnvVar {
    fn from(text: &str) -> Self {
        crate::types::EnvVar {
            value: text.to_string(),
            ..Default::default()
        }
    }
}

impl From<String> for crate::types::EnvVar {
    fn from(text: String) -> Self {
        crate::types::EnvVar {
            value: text,
            ..Default::default()
        }
    }
}
