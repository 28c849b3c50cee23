//! The field rules of CONTRACT.md section 5 that need no stored state: names, limits, URLs,
//! headers, proxies. Each failure is a 400 naming the field; the caller stores nothing.

use crate::error::Error;
use crate::types::{ConcurrencyAndBufferSize, NetworkConfig, ProxyConfig, ProxyType};

/// The 19 standard provider names (the seed's `ModelProvider` enum).
pub const STANDARD_PROVIDERS: [&str; 19] = [
    "openai",
    "azure",
    "anthropic",
    "bedrock",
    "cohere",
    "vertex",
    "mistral",
    "ollama",
    "groq",
    "sgl",
    "parasail",
    "perplexity",
    "cerebras",
    "gemini",
    "openrouter",
    "elevenlabs",
    "huggingface",
    "nebius",
    "xai",
];

/// The largest accepted `concurrency`.
pub const MAX_CONCURRENCY: i64 = 100_000;
/// The largest accepted `buffer_size`.
pub const MAX_BUFFER_SIZE: i64 = 1_000_000;
/// The largest accepted `default_request_timeout_in_seconds` (a day).
pub const MAX_TIMEOUT_SECONDS: i64 = 86_400;
/// The largest accepted `max_retries`.
pub const MAX_RETRIES: i64 = 100;
/// The accepted range of each retry backoff, in milliseconds.
pub const BACKOFF_MS: std::ops::RangeInclusive<i64> = 100..=1_000_000;
/// The longest key id and key name.
pub const MAX_KEY_ID: usize = 128;
pub const MAX_KEY_NAME: usize = 256;

/// Whether a name is one of the standard providers.
pub fn is_standard(name: &str) -> bool {
    STANDARD_PROVIDERS.contains(&name)
}

/// `A-Z a-z 0-9 . _ -`, the characters of provider names.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A provider name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
pub fn provider_name(name: &str, param: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(is_name_char) {
        return Err(Error::invalid(
            "invalid_provider_name",
            param,
            "Provider name must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
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
    if !n.base_url.is_empty() {
        web_url(
            &n.base_url,
            &["http", "https"],
            "invalid_base_url",
            &format!("{P}.base_url"),
            "Base URL",
        )?;
    }
    for (name, value) in &n.extra_headers {
        let param = format!("{P}.extra_headers.{name}");
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
    let schemes: &[&str] = match p.type_ {
        ProxyType::Http => &["http", "https"],
        ProxyType::Socks5 => &["socks5", "socks5h"],
        ProxyType::None | ProxyType::Environment => return Ok(()),
    };
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
        for ok in ["openai", "my-provider_1.v2", &"a".repeat(64)] {
            assert!(provider_name(ok, "provider").is_ok(), "{ok}");
        }
        for bad in ["", "has space", "slash/", "ünï", &"a".repeat(65)] {
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
