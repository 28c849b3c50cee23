//! Secrets: how they are redacted, recognised when sent back, and read from the environment.
//!
//! A secret never leaves the server. Responses carry its redacted form; a client that sends that
//! form back (a GET, an edit, a PUT of the whole body) keeps the stored secret. Anything else that
//! looks redacted is refused: Bifrost would store the mask as the credential.

use crate::types::{EnvVar, Key};

/// How proxy secrets (`password`, `ca_cert_pem`) show in responses.
pub const PROXY_MASK: &str = "<REDACTED>";

/// The redacted form of a secret: empty stays empty, 8 characters or fewer become that many `*`,
/// longer ones the first 4 characters, 24 `*` and the last 4 (32 characters in all).
pub fn redact(secret: &str) -> String {
    let count = secret.chars().count();
    if count <= 8 {
        return "*".repeat(count);
    }
    let head: String = secret.chars().take(4).collect();
    let tail: String = secret.chars().skip(count - 4).collect();
    format!("{head}{}{tail}", "*".repeat(24))
}

/// Whether a value has the look of a redacted secret: all `*`, the 4 + 24 `*` + 4 pattern,
/// `<REDACTED>` or `[REDACTED]`.
pub fn looks_redacted(value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    if value == PROXY_MASK || value == "[REDACTED]" || value.chars().all(|c| c == '*') {
        return true;
    }
    let chars: Vec<char> = value.chars().collect();
    chars.len() == 32 && chars[4..28].iter().all(|&c| c == '*')
}

/// An environment reference, `env.NAME`.
const ENV_PREFIX: &str = "env.";

/// The variable an `EnvVar` refers to, if it is a reference: `env_var` is set, or `value` has
/// the `env.NAME` form.
pub fn reference(field: &EnvVar) -> Option<&str> {
    if !field.env_var.is_empty() {
        return Some(&field.env_var);
    }
    if field.from_env || field.value.starts_with(ENV_PREFIX) {
        return Some(&field.value);
    }
    None
}

/// The variable name in `env.NAME`, if the reference has that form and NAME is a valid name.
pub fn variable_name(reference: &str) -> Option<&str> {
    let name = reference.strip_prefix(ENV_PREFIX)?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// The value of a stored field: a literal as it is, a reference read from the environment now
/// (`None` when the variable is unset).
pub fn resolve(field: &EnvVar) -> Option<String> {
    if field.from_env {
        let name = variable_name(&field.env_var)?;
        std::env::var(name).ok()
    } else {
        Some(field.value.clone())
    }
}

/// A stored field as a response shows it: secrets redacted, references with their `env_var`.
pub fn present(field: &EnvVar, secret: bool) -> EnvVar {
    let value = resolve(field).unwrap_or_default();
    EnvVar {
        value: if secret { redact(&value) } else { value },
        env_var: field.env_var.clone(),
        from_env: field.from_env,
    }
}

/// Calls `visit` on every `EnvVar` of a key, with its path below the key and whether it is a
/// secret, in a fixed order.
pub fn for_each_field(key: &mut Key, mut visit: impl FnMut(&'static str, bool, &mut EnvVar)) {
    let mut at = |path, secret, field: &mut Option<EnvVar>| {
        if let Some(field) = field.as_mut() {
            visit(path, secret, field);
        }
    };
    at("value", true, &mut key.value);
    if let Some(azure) = key.azure_key_config.as_mut() {
        at("azure_key_config.endpoint", true, &mut azure.endpoint);
        at(
            "azure_key_config.api_version",
            false,
            &mut azure.api_version,
        );
        at("azure_key_config.client_id", true, &mut azure.client_id);
        at(
            "azure_key_config.client_secret",
            true,
            &mut azure.client_secret,
        );
        at("azure_key_config.tenant_id", true, &mut azure.tenant_id);
    }
    if let Some(vertex) = key.vertex_key_config.as_mut() {
        at("vertex_key_config.project_id", true, &mut vertex.project_id);
        at(
            "vertex_key_config.project_number",
            true,
            &mut vertex.project_number,
        );
        at("vertex_key_config.region", true, &mut vertex.region);
        at(
            "vertex_key_config.auth_credentials",
            true,
            &mut vertex.auth_credentials,
        );
    }
    if let Some(bedrock) = key.bedrock_key_config.as_mut() {
        at(
            "bedrock_key_config.access_key",
            true,
            &mut bedrock.access_key,
        );
        at(
            "bedrock_key_config.secret_key",
            true,
            &mut bedrock.secret_key,
        );
        at(
            "bedrock_key_config.session_token",
            true,
            &mut bedrock.session_token,
        );
        at("bedrock_key_config.region", true, &mut bedrock.region);
        at("bedrock_key_config.arn", true, &mut bedrock.arn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_follows_the_contract() {
        assert_eq!(redact(""), "");
        assert_eq!(redact("abc"), "***");
        assert_eq!(redact("12345678"), "********");
        let long = redact("sk-1234567890abcdef");
        assert_eq!(long, format!("sk-1{}cdef", "*".repeat(24)));
        assert_eq!(long.chars().count(), 32);
        assert_eq!(redact("ключ-секрет-длинный").chars().count(), 32);
    }

    #[test]
    fn masks_are_recognised() {
        for mask in [
            "***",
            "<REDACTED>",
            "[REDACTED]",
            &redact("sk-1234567890abcdef"),
        ] {
            assert!(looks_redacted(mask), "{mask}");
        }
        for plain in ["", "sk-123", "a*b", "sk-1234567890abcdef"] {
            assert!(!looks_redacted(plain), "{plain}");
        }
    }

    #[test]
    fn variable_names_are_checked() {
        assert_eq!(variable_name("env.OPENAI_KEY"), Some("OPENAI_KEY"));
        assert_eq!(variable_name("env._X1"), Some("_X1"));
        assert_eq!(variable_name("OPENAI_KEY"), None);
        assert_eq!(variable_name("env."), None);
        assert_eq!(variable_name("env.1X"), None);
        assert_eq!(variable_name("env.A-B"), None);
    }
}
