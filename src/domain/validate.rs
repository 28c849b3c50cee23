//! The field rules of CONTRACT.md section 5 that need no stored state: names, limits, URLs,
//! headers, proxies. Each failure is a 400 naming the field; the caller stores nothing.

use crate::domain::error::Error;
use std::collections::BTreeMap;

use crate::types::{
    ConcurrencyAndBufferSize, Key, ModelProvider, NetworkConfig, ProviderRequestIdConfig,
    ProxyConfig, ProxyType,
};

/// The largest accepted `concurrency`.
pub const MAX_CONCURRENCY: i64 = 100_000;
/// The largest accepted `buffer_size`.
pub const MAX_BUFFER_SIZE: i64 = 1_000_000;
/// The largest accepted `default_request_timeout_in_seconds`: 48 hours, the most Bifrost's UI
/// offers.
pub const MAX_TIMEOUT_SECONDS: i64 = 172_800;
/// The accepted `stream_idle_timeout_in_seconds` (Bifrost's config schema).
pub const STREAM_IDLE_SECONDS: std::ops::RangeInclusive<i64> = 5..=3600;
/// The accepted `max_conns_per_host` (Bifrost's config schema).
pub const MAX_CONNS_PER_HOST: std::ops::RangeInclusive<i64> = 1..=10_000;
/// The most keys one provider holds.
pub const MAX_KEYS: usize = 1000;
/// The most names in one key's `models` or `blacklisted_models`.
pub const MAX_MODELS: usize = 10_000;
/// The most extra headers, aliases or deployments in one map.
pub const MAX_ENTRIES: usize = 1000;
/// The largest accepted `max_retries`.
pub const MAX_RETRIES: i64 = 100;
/// The accepted range of each retry backoff, in milliseconds.
pub const BACKOFF_MS: std::ops::RangeInclusive<i64> = 100..=1_000_000;
/// The longest key id and key name.
pub const MAX_KEY_ID: usize = 128;
pub const MAX_KEY_NAME: usize = 256;

/// Whether a name is a standard provider of some Bifrost release (the spec's `ModelProvider`).
pub fn is_standard(name: &str) -> bool {
    name.parse::<ModelProvider>().is_ok()
}

/// A provider name as Bifrost accepts it (custom names with spaces included): 1 to 64 bytes of
/// UTF-8 (the contract's bound, so that every store's name column holds it), none of them a
/// control character or `/`, not blank.
pub fn provider_name(name: &str, param: &str) -> Result<(), Error> {
    if name.trim().is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(Error::invalid(
            "invalid_provider_name",
            param,
            "Provider name must be 1 to 64 bytes without control characters or /",
        ));
    }
    Ok(())
}

/// A collection within its cap.
pub fn count(param: &str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::invalid(
            "too_many_items",
            param,
            format!("{param} holds {len} items; at most {max} are accepted"),
        ));
    }
    Ok(())
}

/// Which provider type each key block belongs to.
const KEY_BLOCKS: &[(&str, &[&str])] = &[
    ("azure_key_config", &["azure"]),
    ("vertex_key_config", &["vertex"]),
    ("bedrock_key_config", &["bedrock", "bedrock_mantle"]),
    ("huggingface_key_config", &["huggingface"]),
    ("replicate_key_config", &["replicate"]),
    ("vllm_key_config", &["vllm"]),
    ("ollama_key_config", &["ollama"]),
    ("sgl_key_config", &["sgl"]),
    ("databricks_key_config", &["databricks"]),
    ("github_copilot_key_config", &["github_copilot"]),
];

/// A key's provider-specific blocks belong to its provider's type.
pub fn key_configs(key: &Key, base: &str, param: &dyn Fn(&str) -> String) -> Result<(), Error> {
    let present = [
        key.azure_key_config.is_some(),
        key.vertex_key_config.is_some(),
        key.bedrock_key_config.is_some(),
        key.huggingface_key_config.is_some(),
        key.replicate_key_config.is_some(),
        key.vllm_key_config.is_some(),
        key.ollama_key_config.is_some(),
        key.sgl_key_config.is_some(),
        key.databricks_key_config.is_some(),
        key.github_copilot_key_config.is_some(),
    ];
    for ((block, owners), present) in KEY_BLOCKS.iter().zip(present) {
        if present && !owners.contains(&base) {
            return Err(Error::invalid(
                "key_config_mismatch",
                param(block),
                format!("{block} is only allowed on {}-based providers", owners[0]),
            ));
        }
    }
    Ok(())
}

/// Model aliases as Bifrost v1.5 checks them.
pub fn aliases(aliases: &BTreeMap<String, String>, param: &str) -> Result<(), Error> {
    count(param, aliases.len(), MAX_ENTRIES)?;
    let mut seen = std::collections::HashSet::new();
    for (source, target) in aliases {
        let fail = |message: String| {
            Err(Error::invalid(
                "invalid_aliases",
                format!("{param}.{source}"),
                format!("Invalid aliases: {message}"),
            ))
        };
        if source.is_empty() {
            return fail("alias source cannot be empty".into());
        }
        if target.is_empty() {
            return fail(format!("alias target for {source:?} cannot be empty"));
        }
        if source.trim() != source || target.trim() != target {
            return fail(format!(
                "alias {source:?} has leading or trailing whitespace"
            ));
        }
        if !seen.insert(source.to_lowercase()) {
            return fail(format!(
                "duplicate alias source {source:?} (case-insensitive)"
            ));
        }
    }
    Ok(())
}

/// Headers whose values are credentials: never captured as a request id.
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
];

pub fn provider_request_id(config: &ProviderRequestIdConfig) -> Result<(), Error> {
    let Some(header) = &config.header_name else {
        return Ok(());
    };
    if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
        return Err(Error::invalid(
            "invalid_provider_request_id",
            "provider_request_id.header_name",
            "The provider request id header is not a valid HTTP header name",
        ));
    }
    if SENSITIVE_HEADERS.contains(&header.to_lowercase().as_str()) {
        return Err(Error::invalid(
            "invalid_provider_request_id",
            "provider_request_id.header_name",
            "A sensitive header cannot be captured as the provider request id",
        ));
    }
    Ok(())
}

/// A key id: 1 to 128 characters, none of them a control character.
pub fn key_id(id: &str, param: &str) -> Result<(), Error> {
    if id.chars().count() > MAX_KEY_ID || id.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_key_id",
            param,
            format!("Key id must be 1 to {MAX_KEY_ID} characters without control characters"),
        ));
    }
    Ok(())
}

pub fn concurrency(c: &ConcurrencyAndBufferSize) -> Result<(), Error> {
    const P: &str = "concurrency_and_buffer_size";
    if c.concurrency < 1 {
        return Err(Error::invalid(
            "invalid_concurrency",
            format!("{P}.concurrency"),
            "Concurrency must be greater than 0",
        ));
    }
    if c.concurrency > MAX_CONCURRENCY {
        return Err(Error::invalid(
            "invalid_concurrency",
            format!("{P}.concurrency"),
            format!("Concurrency must be at most {MAX_CONCURRENCY}"),
        ));
    }
    if c.buffer_size < 1 {
        return Err(Error::invalid(
            "invalid_buffer_size",
            format!("{P}.buffer_size"),
            "Buffer size must be greater than 0",
        ));
    }
    if c.buffer_size > MAX_BUFFER_SIZE {
        return Err(Error::invalid(
            "invalid_buffer_size",
            format!("{P}.buffer_size"),
            format!("Buffer size must be at most {MAX_BUFFER_SIZE}"),
        ));
    }
    if c.concurrency > c.buffer_size {
        return Err(Error::invalid(
            "concurrency_exceeds_buffer_size",
            format!("{P}.concurrency"),
            "Concurrency must be less than or equal to buffer size",
        ));
    }
    Ok(())
}

pub fn network(n: &NetworkConfig) -> Result<(), Error> {
    const P: &str = "network_config";
    crate::domain::secrets::check_string(&n.ca_cert_pem, &format!("{P}.ca_cert_pem"))?;
    if !n.base_url.is_empty() {
        web_url(
            &n.base_url,
            &["http", "https"],
            "invalid_base_url",
            &format!("{P}.base_url"),
            "Base URL",
        )?;
    }
    count(
        &format!("{P}.extra_headers"),
        n.extra_headers.len(),
        MAX_ENTRIES,
    )?;
    let mut seen = std::collections::HashSet::new();
    for (name, value) in &n.extra_headers {
        let param = format!("{P}.extra_headers.{name}");
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(Error::invalid(
                "invalid_extra_header",
                param,
                "Extra header names must be unique, whatever their case",
            ));
        }
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(Error::invalid(
                "invalid_extra_header",
                param,
                "Extra header name is not a valid HTTP header name",
            ));
        }
        if http::HeaderValue::from_bytes(value.as_bytes()).is_err() {
            return Err(Error::invalid(
                "invalid_extra_header",
                param,
                "Extra header value must not contain CR, LF, NUL or other control characters",
            ));
        }
    }
    let timeout = n.default_request_timeout_in_seconds;
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&timeout) {
        return Err(Error::invalid(
            "invalid_timeout",
            format!("{P}.default_request_timeout_in_seconds"),
            format!("Default request timeout must be between 1 and {MAX_TIMEOUT_SECONDS} seconds"),
        ));
    }
    if !STREAM_IDLE_SECONDS.contains(&n.stream_idle_timeout_in_seconds) {
        return Err(Error::invalid(
            "invalid_timeout",
            format!("{P}.stream_idle_timeout_in_seconds"),
            format!(
                "Stream idle timeout must be between {} and {} seconds",
                STREAM_IDLE_SECONDS.start(),
                STREAM_IDLE_SECONDS.end()
            ),
        ));
    }
    if !MAX_CONNS_PER_HOST.contains(&n.max_conns_per_host) {
        return Err(Error::invalid(
            "invalid_max_conns_per_host",
            format!("{P}.max_conns_per_host"),
            format!(
                "Max connections per host must be between {} and {}",
                MAX_CONNS_PER_HOST.start(),
                MAX_CONNS_PER_HOST.end()
            ),
        ));
    }
    if !(0..=MAX_RETRIES).contains(&n.max_retries) {
        return Err(Error::invalid(
            "invalid_max_retries",
            format!("{P}.max_retries"),
            format!("Max retries must be between 0 and {MAX_RETRIES}"),
        ));
    }
    for (field, value) in [
        ("retry_backoff_initial", n.retry_backoff_initial),
        ("retry_backoff_max", n.retry_backoff_max),
    ] {
        if !BACKOFF_MS.contains(&value) {
            return Err(Error::invalid(
                "invalid_retry_backoff",
                format!("{P}.{field}"),
                format!(
                    "Retry backoff must be between {} and {} milliseconds",
                    BACKOFF_MS.start(),
                    BACKOFF_MS.end()
                ),
            ));
        }
    }
    if n.retry_backoff_initial > n.retry_backoff_max {
        return Err(Error::invalid(
            "invalid_retry_backoff",
            format!("{P}.retry_backoff_initial"),
            "Initial retry backoff must be less than or equal to the maximum retry backoff",
        ));
    }
    Ok(())
}

pub fn proxy(p: &ProxyConfig) -> Result<(), Error> {
    for (field, value) in [
        ("url", &p.url),
        ("username", &p.username),
        ("password", &p.password),
        ("ca_cert_pem", &p.ca_cert_pem),
    ] {
        crate::domain::secrets::check_string(value, &format!("proxy_config.{field}"))?;
    }
    let schemes: &[&str] = match p.type_ {
        ProxyType::Http => &["http", "https"],
        ProxyType::Socks5 => &["socks5", "socks5h"],
        // A type this spec does not list never reaches here from a request (`wire` refuses it).
        ProxyType::None | ProxyType::Environment | ProxyType::Other(_) => return Ok(()),
    };
    if p.url.starts_with("env.") || p.url.starts_with("vault.") {
        // A reference: its value is checked where the configuration is used.
        return Ok(());
    }
    if p.url.is_empty() {
        return Err(Error::invalid(
            "invalid_proxy_url",
            "proxy_config.url",
            format!("A {} proxy needs a url", p.type_),
        ));
    }
    web_url(
        &p.url,
        schemes,
        "invalid_proxy_url",
        "proxy_config.url",
        "Proxy URL",
    )
}

/// An absolute URL with a host and one of `schemes`.
fn web_url(
    text: &str,
    schemes: &[&str],
    code: &'static str,
    param: &str,
    what: &str,
) -> Result<(), Error> {
    let expected = schemes.join(" or ");
    match url::Url::parse(text) {
        Ok(url) if schemes.contains(&url.scheme()) && url.host().is_some() => Ok(()),
        Ok(_) => Err(Error::invalid(
            code,
            param,
            format!("{what} must be an absolute {expected} URL with a host"),
        )),
        Err(e) => Err(Error::invalid(
            code,
            param,
            format!("{what} is not a valid {expected} URL: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names() {
        for ok in [
            "openai",
            "my-provider_1.v2",
            "Together AI",
            "ünï",
            &"a".repeat(64),
        ] {
            assert!(provider_name(ok, "provider").is_ok(), "{ok}");
        }
        for bad in ["", " ", "slash/", "nul\u{0}", "tab\t", &"a".repeat(65)] {
            assert!(provider_name(bad, "provider").is_err(), "{bad}");
        }
    }

    #[test]
    fn header_injection_is_refused() {
        let mut n = NetworkConfig::default();
        n.extra_headers
            .insert("X-Ok".into(), "fine\r\nX-Evil: 1".into());
        assert!(network(&n).is_err());
        n.extra_headers.clear();
        n.extra_headers.insert("Bad Name".into(), "v".into());
        assert!(network(&n).is_err());
    }
}
