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

/// A GET response as a PUT body: edit a field, send it back, and every secret is kept, and
/// every key (a response that shows none sends no `keys`, so the stored keys stay).
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
            // No keys shown is sent as no `keys` member, which leaves the stored keys as they are
            // (CONTRACT C1): a v1.5+ GET has no `keys` member at all, and sending its empty
            // list back would delete every key of the provider.
            keys: (!keys.is_empty()).then_some(keys),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn response(keys: serde_json::Value) -> ProviderResponse {
        let mut body = serde_json::json!({
            "name": "openai",
            "network_config": {},
            "concurrency_and_buffer_size": {"concurrency": 1000, "buffer_size": 5000},
            "send_back_raw_request": false,
            "send_back_raw_response": false,
        });
        if !keys.is_null() {
            body["keys"] = keys;
        }
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_response_without_keys_puts_back_without_keys() {
        // v1.5+ sends no `keys` member: sent back, the stored keys must stay.
        let update = UpdateProviderRequest::from(response(serde_json::Value::Null));
        assert_eq!(update.keys, None);
        let shown = response(
            serde_json::json!([{"id": "k1", "name": "a", "value": {"value": "sk-a"}, "models": [], "weight": 1.0}]),
        );
        let update = UpdateProviderRequest::from(shown);
        assert_eq!(update.keys.map(|k| k.len()), Some(1));
    }
}
