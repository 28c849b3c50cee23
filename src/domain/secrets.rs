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
//!
//! A reference names a variable of this server's environment, so which names it may use is a
//! policy ([`EnvPolicy`]): never the server's own settings (`BIFROST_*`) nor the variables of the
//! system and of the tools it runs with ([`DENIED`]), and, when the operator gives an allow-list,
//! only the names it matches. A reference's value never leaves the server: a response shows the
//! reference and, in `value`, the redacted form of what it resolves to, as Bifrost does.

use std::sync::OnceLock;

use crate::domain::error::Error;
use crate::types::{EnvVar, SecretType};

/// Variables a reference may never name, whatever the allow-list says: the server's own
/// settings, and what the system, a shell, a container runtime or a toolchain puts in a
/// process's environment (paths, users, hosts, credentials of other tools). A pattern ending in
/// `*` matches every name with that prefix.
pub const DENIED: &[&str] = &[
    "BIFROST_*",
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "USERNAME",
    "SHELL",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
    "HOSTNAME",
    "HOST",
    "TERM",
    "TERMINFO",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "TMP",
    "TEMP",
    "MAIL",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "DISPLAY",
    "WAYLAND_*",
    "XDG_*",
    "DBUS_*",
    "LD_*",
    "DYLD_*",
    "SSH_*",
    "GPG_*",
    "GNUPG*",
    "SUDO_*",
    "SYSTEMD_*",
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "NOTIFY_SOCKET",
    "LISTEN_*",
    "CREDENTIALS_DIRECTORY",
    "RUST_*",
    "CARGO*",
    "RUSTUP_*",
    "PG*",
    "DATABASE_URL",
    "MALLOC*",
    "MIMALLOC_*",
    "KUBERNETES_*",
    "container",
    "INIT_*",
    "HISTFILE",
    "PS1",
    "PS2",
    "MOTD_SHOWN",
];

/// Which environment variables a reference may name: never one [`DENIED`] matches, and, with an
/// operator's allow-list, only those it matches.
#[derive(Debug)]
pub struct EnvPolicy {
    denied: globset::GlobSet,
    allowed: Option<globset::GlobSet>,
}

/// The policy this process applies, set once at start ([`set_env_policy`]); the default until
/// then.
static POLICY: OnceLock<EnvPolicy> = OnceLock::new();

impl EnvPolicy {
    /// The policy for an allow-list of glob patterns (`*`, `?`, `[...]`, case-sensitive, as
    /// variable names are); none means every name the deny-list leaves.
    pub fn new(allow: &[String]) -> Result<EnvPolicy, String> {
        let set = |patterns: &mut dyn Iterator<Item = &str>| {
            let mut builder = globset::GlobSetBuilder::new();
            for pattern in patterns {
                let glob = globset::GlobBuilder::new(pattern)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| format!("--env-allow pattern {pattern:?}: {e}"))?;
                builder.add(glob);
            }
            builder.build().map_err(|e| e.to_string())
        };
        let allow: Vec<&str> = allow
            .iter()
            .flat_map(|p| p.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        Ok(EnvPolicy {
            denied: set(&mut DENIED.iter().copied())?,
            allowed: if allow.is_empty() {
                None
            } else {
                Some(set(&mut allow.into_iter())?)
            },
        })
    }

    /// Whether a reference may name this variable.
    pub fn allows(&self, name: &str) -> bool {
        !self.denied.is_match(name) && self.allowed.as_ref().is_none_or(|a| a.is_match(name))
    }
}

/// Sets the policy of this process; the first call wins (the server calls it once, at start).
pub fn set_env_policy(policy: EnvPolicy) {
    let _ = POLICY.set(policy);
}

fn policy() -> &'static EnvPolicy {
    POLICY.get_or_init(|| EnvPolicy::new(&[]).expect("the built-in patterns are valid"))
}

/// 32 random bytes from the operating system.
pub fn random_key() -> [u8; 32] {
    use chacha20poly1305::aead::rand_core::RngCore;
    let mut key = [0; 32];
    chacha20poly1305::aead::OsRng.fill_bytes(&mut key);
    key
}

/// The key of the `config_hash` responses show, set once at start ([`set_hash_key`]): derived
/// from the encryption key, or the store's own ([`crate::store::Store::hash_key`]).
static HASH_KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Sets the key of the `config_hash` responses show, one that replicas and restarts share;
/// the first call wins.
pub fn set_hash_key(key: [u8; 32]) {
    let _ = HASH_KEY.set(key);
}

/// The `config_hash` a response shows for a stored one: HMAC-SHA-256 under the server's key, hex.
/// The stored hash is of a config.json entry, literal secrets included, so shown bare it would
/// let anyone test guesses of a secret offline; keyed, it still changes exactly when the entry
/// does, which is all a client can use it for.
pub fn shown_hash(stored: &str) -> String {
    use hmac::Mac;
    let key = HASH_KEY.get_or_init(random_key);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(stored.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of an environment variable a reference names, if the policy lets it be read.
fn read_env(name: &str) -> Option<String> {
    if policy().allows(name) {
        std::env::var(name).ok()
    } else {
        None
    }
}

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
        // A kind this spec does not list never reaches here from a request (`wire` refuses it).
        Some(SecretType::Other(_)) | None => {}
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

/// Whether a reference is well formed and allowed: an environment variable name
/// (`[A-Za-z_][A-Za-z0-9_]*`) that the policy lets a reference name, or a vault path without
/// control characters or spaces.
pub fn check(kind: &Kind, param: &str) -> Result<(), Error> {
    if let Kind::Env(name) = kind
        && variable_name(&format!("{ENV_PREFIX}{name}")).is_some()
        && !policy().allows(name)
    {
        return Err(Error::invalid(
            "env_var_not_allowed",
            param,
            format!(
                "{param}: env.{name} may not be referenced: this server never reads its own \
                 settings (BIFROST_*) or the system's variables, and reads only what its \
                 --env-allow list names"
            ),
        ));
    }
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
        Kind::Env(name) => read_env(&name),
        Kind::Vault(_) => None,
    }
}

/// A string field (a proxy's, a CA certificate) that holds a reference: the reference checked
/// as [`check`] does.
pub fn check_string(value: &str, param: &str) -> Result<(), Error> {
    by_prefix(value).map_or(Ok(()), |kind| check(&kind, param))
}

/// Whether a string field (a proxy's) is a reference that does not resolve here.
pub fn unresolved_string(value: &str) -> bool {
    match by_prefix(value) {
        Some(Kind::Env(name)) => read_env(&name).is_none(),
        Some(Kind::Vault(_)) => true,
        _ => false,
    }
}

/// A stored field as a response shows it, in the stored object form: a secret literal redacted,
/// any reference (in a secret field or not) as itself with the redacted form of what it resolves
/// to here, so that no caller reads the server's environment.
pub fn present(field: &EnvVar, secret: bool) -> EnvVar {
    let kind = kind(field);
    let value = match &kind {
        Kind::Literal(value) if !secret => value.clone(),
        _ => redact(&resolve(field).unwrap_or_default()),
    };
    let mut shown = stored(kind);
    shown.value = value;
    shown
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
    fn the_policy_refuses_the_servers_settings_and_the_system() {
        let default = EnvPolicy::new(&[]).unwrap();
        for name in ["OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "MY_TOKEN"] {
            assert!(default.allows(name), "{name}");
        }
        for name in [
            "BIFROST_ENCRYPTION_KEY",
            "PATH",
            "HOME",
            "PGPASSWORD",
            "LC_ALL",
            "LD_PRELOAD",
        ] {
            assert!(!default.allows(name), "{name}");
        }
        let listed = EnvPolicy::new(&["OPENAI_*".into(), "BIFROST_*,HOME".into()]).unwrap();
        assert!(listed.allows("OPENAI_API_KEY"));
        assert!(!listed.allows("AWS_SECRET_ACCESS_KEY"));
        assert!(
            !listed.allows("BIFROST_ADMIN_TOKEN"),
            "no list widens the deny-list"
        );
        assert!(!listed.allows("HOME"));
        assert!(EnvPolicy::new(&["[".into()]).is_err());
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
