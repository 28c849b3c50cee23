//! Credentials outside the secret fields: extra headers that carry one (`Authorization`,
//! `x-api-key`, …) and the user-info of a URL (`https://user:password@host`).
//!
//! Bifrost keeps both as plain strings and shows them in clear; here they are secrets like any
//! other: a response shows them redacted, the store seals them, a client that sends back the
//! redacted form keeps the stored value, and a redacted form that is not the current one is
//! refused (it would otherwise be stored as the credential). Each is named by its path
//! (`network_config.extra_headers.NAME`, `network_config.base_url`, `proxy_config.url`).

use std::collections::BTreeMap;

use crate::domain::error::Error;
use crate::domain::secret_places::{self, Mark, Marked};
use crate::domain::secrets::{looks_redacted, redact};
use crate::types::UpdateProviderRequest;

/// Header names that carry a credential, lower-case.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
    "x-functions-key",
    "private-token",
    "x-amz-security-token",
];

/// Parts of a header name that say it carries a credential (`x-portkey-api-key`,
/// `x-auth-token`, `x-client-secret`, …).
const CREDENTIAL_WORDS: &[&str] = &[
    "auth",
    "token",
    "secret",
    "passw",
    "api-key",
    "api_key",
    "apikey",
    "credential",
    "cookie",
    "session",
    "signature",
];

/// Whether an extra header carries a credential, by its name (any case).
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_HEADERS.contains(&name.as_str()) || CREDENTIAL_WORDS.iter().any(|w| name.contains(w))
}

/// Whether a URL holds user-info (`user@` or `user:password@`).
pub fn has_user_info(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
}

/// A URL as a response shows it: its user name and password redacted, the rest as it is.
pub fn shown_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return text.to_string();
    };
    if url.username().is_empty() && url.password().is_none() {
        return text.to_string();
    }
    let user = redact(url.username());
    let password = url.password().map(redact);
    // Neither can fail on a URL that already has user-info (it has a host).
    let _ = url.set_username(&user);
    let _ = url.set_password(password.as_deref());
    url.to_string()
}

/// Whether a URL's user-info has the look of a redacted one.
fn user_info_looks_redacted(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| looks_redacted(u.username()) || u.password().is_some_and(looks_redacted))
}

/// A header value as a response shows it.
pub fn shown_header(name: &str, value: &str) -> String {
    if is_credential_header(name) {
        redact(value)
    } else {
        value.to_string()
    }
}

/// A URL sent in a request, given the stored one at the same place: its redacted form sent back
/// keeps the stored URL; another redacted user-info is refused.
pub fn merge_url(value: &mut String, stored: &str, param: &str) -> Result<(), Error> {
    if !stored.is_empty() && has_user_info(stored) && *value == shown_url(stored) {
        *value = stored.to_string();
        return Ok(());
    }
    if user_info_looks_redacted(value) {
        return Err(mismatch(param));
    }
    Ok(())
}

/// Extra headers sent in a request, given the stored ones: a credential header sent back in its
/// redacted form keeps the stored value; another redacted value in such a header is refused.
pub fn merge_headers(
    headers: &mut BTreeMap<String, String>,
    stored: Option<&BTreeMap<String, String>>,
    param: &str,
) -> Result<(), Error> {
    for (name, value) in headers.iter_mut() {
        if !is_credential_header(name) || !looks_redacted(value) {
            continue;
        }
        let kept = stored.and_then(|s| {
            s.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        });
        match kept {
            Some(kept) if redact(kept) == *value => *value = kept.clone(),
            _ => return Err(mismatch(&format!("{param}.{name}"))),
        }
    }
    Ok(())
}

fn mismatch(param: &str) -> Error {
    Error::invalid(
        "redacted_secret_mismatch",
        param,
        format!(
            "{param} holds a redacted credential that is not the current redacted form of the \
             stored one; send the credential itself, or its redacted form exactly as a GET shows it"
        ),
    )
}

/// Calls `visit` on every place of a configuration outside the secret fields that may hold a
/// credential (each header of a `credential-headers` place, each `user-info` URL: the places
/// `openapi.json` marks so), with its path and whether it holds one now.
pub fn for_each(
    config: &mut UpdateProviderRequest,
    mut visit: impl FnMut(&str, bool, &mut String) -> Result<(), String>,
) -> Result<(), String> {
    let mut failure = Ok(());
    let mut each = |field: &'static str, mark: Mark, marked: Marked<'_>| {
        if failure.is_err() {
            return;
        }
        failure = match (mark, marked) {
            (Mark::CredentialHeaders, Marked::Headers(headers)) => {
                headers.iter_mut().try_for_each(|(name, value)| {
                    let credential = is_credential_header(name) && !value.is_empty();
                    visit(&format!("{field}.{name}"), credential, value)
                })
            }
            (Mark::UserInfo, Marked::Text(url)) => {
                let credential = has_user_info(url);
                visit(field, credential, url)
            }
            _ => Ok(()),
        };
    };
    if let Some(network) = config.network_config.as_mut() {
        secret_places::for_each_network_config_mark(network, &mut each);
    }
    if let Some(proxy) = config.proxy_config.as_mut() {
        secret_places::for_each_proxy_config_mark(proxy, &mut each);
    }
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_known_by_name() {
        for name in [
            "Authorization",
            "x-api-key",
            "X-Goog-Api-Key",
            "x-portkey-api-key",
            "X-Auth-Token",
            "x-client-secret",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in [
            "x-request-source",
            "OpenAI-Organization",
            "anthropic-version",
        ] {
            assert!(!is_credential_header(name), "{name}");
        }
    }

    #[test]
    fn user_info_is_redacted_and_kept_on_a_round_trip() {
        let stored = "http://proxy-user:s3cret-proxy-password@proxy.local:3128";
        let shown = shown_url(stored);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("proxy-user"), "{shown}");
        assert!(shown.contains("@proxy.local:3128"), "{shown}");
        let mut back = shown.clone();
        merge_url(&mut back, stored, "proxy_config.url").unwrap();
        assert_eq!(back, stored);
        let mut foreign = format!("http://{}@proxy.local:3128", "*".repeat(8));
        assert!(merge_url(&mut foreign, stored, "proxy_config.url").is_err());
        let mut plain = "https://api.example.com/v1".to_string();
        merge_url(&mut plain, stored, "network_config.base_url").unwrap();
        assert_eq!(shown_url(&plain), plain);
    }

    #[test]
    fn a_redacted_header_keeps_the_stored_credential() {
        let stored = BTreeMap::from([(
            "Authorization".to_string(),
            "Bearer sk-header-0123456789".to_string(),
        )]);
        let mut sent = BTreeMap::from([(
            "authorization".to_string(),
            shown_header("Authorization", "Bearer sk-header-0123456789"),
        )]);
        merge_headers(&mut sent, Some(&stored), "network_config.extra_headers").unwrap();
        assert_eq!(sent["authorization"], "Bearer sk-header-0123456789");
        let mut foreign = BTreeMap::from([("x-api-key".to_string(), "********".to_string())]);
        let err = merge_headers(&mut foreign, Some(&stored), "network_config.extra_headers");
        assert!(err.is_err());
    }
}
