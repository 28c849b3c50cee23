//! Secrets: how they are redacted, recognised when sent back, and read from the environment.
//!
//! A secret never leaves the server. Responses carry its redacted form; a client that sends that
//! form back (a GET, an edit, a PUT of the whole body) keeps the stored secret. Anything else that
//! looks redacted is refused: Bifrost would store the mask as the credential.
//!
//! A secret is a literal or a reference (`env.NAME`, `vault.PATH`); [`kind`] reads every form
//! Bifrost's generations write, and [`stored`] writes the one form the store keeps and responses
//! show. References are kept as references: the gateway that uses a configuration may have
//! variables that this server's host lacks, so an unresolvable one is stored and shown as such.

use crate::error::Error;
use crate::types::{EnvVar, Key, SecretType};

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

/// The prefix of an environment reference, `env.NAME`.
const ENV_PREFIX: &str = "env.";
/// The prefix of a vault reference, `vault.PATH`.
const VAULT_PREFIX: &str = "vault.";

/// What a secret field holds, however a generation wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A value in clear.
    Literal(String),
    /// `env.NAME`: the environment variable NAME where the configuration is used.
    Env(String),
    /// `vault.PATH`: a secret in a vault (Bifrost Enterprise).
    Vault(String),
}

/// Reads a secret field in any of the forms Bifrost's generations write, by their precedence:
/// `type` (v1.6+), then `ref`, then `from_env` with `env_var` (v1.4+), then the intermediate
/// v1.5 forms, then a `value` that is itself a reference. A reference's name is not checked
/// here ([`check`] does).
pub fn kind(field: &EnvVar) -> Kind {
    let given = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let reference = given(&field.ref_);
    let env_var = Some(field.env_var.clone()).filter(|s| !s.is_empty());
    let value = Some(field.value.clone()).filter(|s| !s.is_empty());
    match field.type_ {
        Some(SecretType::Env) => {
            let r = reference.or(env_var).or(value).unwrap_or_default();
            return Kind::Env(r.strip_prefix(ENV_PREFIX).unwrap_or(&r).to_string());
        }
        Some(SecretType::Vault) => {
            let r = reference
                .or(given(&field.vault_var))
                .or(value)
                .unwrap_or_default();
            return Kind::Vault(r.strip_prefix(VAULT_PREFIX).unwrap_or(&r).to_string());
        }
        Some(SecretType::PlainText) => return Kind::Literal(field.value.clone()),
        None => {}
    }
    if let Some(r) = reference {
        return by_prefix(&r).unwrap_or_else(|| Kind::Literal(field.value.clone()));
    }
    if field.from_env
        && let Some(r) = env_var
    {
        return Kind::Env(r.strip_prefix(ENV_PREFIX).unwrap_or(&r).to_string());
    }
    if field.from_vault == Some(true)
        && let Some(r) = given(&field.vault_var)
    {
        return Kind::Vault(r.strip_prefix(VAULT_PREFIX).unwrap_or(&r).to_string());
    }
    if field.from_secret == Some(true)
        && let Some(r) = given(&field.secret_ref)
        && let Some(kind) = by_prefix(&r)
    {
        return kind;
    }
    by_prefix(&field.value).unwrap_or_else(|| Kind::Literal(field.value.clone()))
}

/// `env.NAME` or `vault.PATH` as a reference.
fn by_prefix(text: &str) -> Option<Kind> {
    if let Some(name) = text.strip_prefix(ENV_PREFIX) {
        return Some(Kind::Env(name.to_string()));
    }
    text.strip_prefix(VAULT_PREFIX)
        .map(|path| Kind::Vault(path.to_string()))
}

/// Whether a reference is well formed: an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`),
/// or a vault path without control characters or spaces.
pub fn check(kind: &Kind, param: &str) -> Result<(), Error> {
    let valid = match kind {
        Kind::Literal(_) => true,
        Kind::Env(name) => variable_name(&format!("{ENV_PREFIX}{name}")).is_some(),
        Kind::Vault(path) => {
            !path.is_empty() && !path.chars().any(|c| c.is_control() || c.is_whitespace())
        }
    };
    if valid {
        return Ok(());
    }
    Err(Error::invalid(
        "invalid_env_var",
        param,
        format!(
            "{param}: a reference must have the form env.NAME (NAME a variable name) or vault.PATH"
        ),
    ))
}

/// The stored form of a secret of this kind: one object form for every generation's reader.
pub fn stored(kind: Kind) -> EnvVar {
    let (value, env_var, from_env, type_, reference) = match kind {
        Kind::Literal(value) => (value, String::new(), false, SecretType::PlainText, None),
        Kind::Env(name) => {
            let r = format!("{ENV_PREFIX}{name}");
            (String::new(), r.clone(), true, SecretType::Env, Some(r))
        }
        Kind::Vault(path) => (
            String::new(),
            String::new(),
            false,
            SecretType::Vault,
            Some(format!("{VAULT_PREFIX}{path}")),
        ),
    };
    EnvVar {
        value,
        env_var,
        from_env,
        type_: Some(type_),
        ref_: reference,
        ..Default::default()
    }
}

/// A secret object given where a string is kept (a proxy field): the reference, or the value.
pub fn as_string(field: &EnvVar, param: &str) -> Result<String, Error> {
    let kind = kind(field);
    check(&kind, param)?;
    Ok(match kind {
        Kind::Literal(value) => value,
        Kind::Env(name) => format!("{ENV_PREFIX}{name}"),
        Kind::Vault(path) => format!("{VAULT_PREFIX}{path}"),
    })
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

/// The value of a stored field where this server runs: a literal as it is, an environment
/// reference read now (`None` when the variable is unset), a vault reference `None` (this
/// server reads no vault).
pub fn resolve(field: &EnvVar) -> Option<String> {
    match kind(field) {
        Kind::Literal(value) => Some(value),
        Kind::Env(name) => std::env::var(name).ok(),
        Kind::Vault(_) => None,
    }
}

/// Whether a string field (a proxy's) is a reference that does not resolve here.
pub fn unresolved_string(value: &str) -> bool {
    match by_prefix(value) {
        Some(Kind::Env(name)) => std::env::var_os(name).is_none(),
        Some(Kind::Vault(_)) => true,
        _ => false,
    }
}

/// A stored field as a response shows it: secrets redacted (a reference with the redacted value
/// it resolves to here), in the stored object form.
pub fn present(field: &EnvVar, secret: bool) -> EnvVar {
    let value = resolve(field).unwrap_or_default();
    let mut shown = stored(kind(field));
    shown.value = if secret { redact(&value) } else { value };
    shown
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
        at("bedrock_key_config.role_arn", true, &mut bedrock.role_arn);
        at(
            "bedrock_key_config.external_id",
            true,
            &mut bedrock.external_id,
        );
        at(
            "bedrock_key_config.session_name",
            true,
            &mut bedrock.session_name,
        );
    }
    if let Some(vllm) = key.vllm_key_config.as_mut() {
        at("vllm_key_config.url", true, &mut vllm.url);
    }
    if let Some(ollama) = key.ollama_key_config.as_mut() {
        at("ollama_key_config.url", true, &mut ollama.url);
    }
    if let Some(sgl) = key.sgl_key_config.as_mut() {
        at("sgl_key_config.url", true, &mut sgl.url);
    }
    if let Some(databricks) = key.databricks_key_config.as_mut() {
        at(
            "databricks_key_config.client_id",
            false,
            &mut databricks.client_id,
        );
        at(
            "databricks_key_config.client_secret",
            true,
            &mut databricks.client_secret,
        );
    }
    if let Some(copilot) = key.github_copilot_key_config.as_mut() {
        at(
            "github_copilot_key_config.private_key",
            true,
            &mut copilot.private_key,
        );
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
