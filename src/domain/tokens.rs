//! Named, scoped API tokens: what the `--tokens FILE` holds and what each token may do.
//!
//! The file holds no token, only each token's SHA-256, so that reading it (a backup, a config
//! repository, a process that may see it) grants nothing. A presented token is hashed and
//! compared with every entry in constant time; what it may do is its scopes (`read`, `write`,
//! `admin`) within its provider patterns, until it expires. This module is pure: reading the file
//! again when it changes, and answering 401 or 403, is the HTTP layer's.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Utc};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Redacted providers, keys, history and the change feed of the providers it matches.
    Read,
    /// Also creates, changes, rolls back and deletes the providers it matches.
    Write,
    /// Everything, including what no provider pattern can express.
    Admin,
    /// Only `/metrics` (a scraper needs nothing else); `admin` holds it too.
    Metrics,
}

impl Scope {
    /// The scope's name, as the file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
            Scope::Metrics => "metrics",
        }
    }

    /// Whether holding `self` grants `wanted`: `admin` grants everything, `write` grants `read`.
    fn grants(self, wanted: Scope) -> bool {
        self == wanted || self == Scope::Admin || (self == Scope::Write && wanted == Scope::Read)
    }
}

/// The shortest token `--admin-token` takes: 16 characters (`openssl rand -hex 32` gives 64).
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// The prefix of every token `token new` makes, so that a leaked one is recognisable (secret
/// scanners, a log reviewer) and a mistyped value is not mistaken for one.
pub const PREFIX: &str = "bfp_";

/// The name `--admin-token` is known by.
pub const ADMIN: &str = "admin";

/// One token: who it is and what it may do.
#[derive(Debug, Clone)]
pub struct Token {
    name: String,
    digest: [u8; 32],
    scopes: BTreeSet<Scope>,
    /// `None`: every provider.
    providers: Option<Patterns>,
    expires: Option<DateTime<Utc>>,
}

/// A token's provider patterns, as written and compiled.
#[derive(Debug, Clone)]
struct Patterns {
    written: Vec<String>,
    set: GlobSet,
}

impl Token {
    /// The token's name: history's actor, the request log's `token`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the token holds `scope` (`admin` holds every scope, `write` holds `read`).
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|held| held.grants(scope))
    }

    /// Whether the token may see (with `read`) or change (with `write`) this provider.
    pub fn matches(&self, provider: &str) -> bool {
        self.has(Scope::Admin)
            || self
                .providers
                .as_ref()
                .is_none_or(|patterns| patterns.set.is_match(provider))
    }

    /// Whether the token reaches every provider, so that store-wide answers (the change feed's
    /// revision numbers, the list's `total`) reveal nothing it may not see.
    pub fn sees_all(&self) -> bool {
        self.has(Scope::Admin) || self.providers.is_none()
    }

    /// Whether `scope` on `provider` is allowed.
    pub fn allows(&self, scope: Scope, provider: &str) -> bool {
        self.has(scope) && self.matches(provider)
    }

    /// The patterns as the file wrote them (`None`: every provider).
    pub fn patterns(&self) -> Option<&[String]> {
        self.providers.as_ref().map(|p| p.written.as_slice())
    }

    /// Whether the token has expired at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// Who a request is, as far as the server can tell, and so what it may do.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The server has no token at all (neither `--tokens` nor `--admin-token`): the API is open.
    Open,
    /// The request carried this token.
    Token(Arc<Token>),
}

impl Caller {
    /// Whether the caller holds `scope` for some provider.
    pub fn has(&self, scope: Scope) -> bool {
        match self {
            Caller::Open => true,
            Caller::Token(token) => token.has(scope),
        }
    }

    /// Whether `scope` on `provider` is allowed.
    pub fn allows(&self, scope: Scope, provider: &str) -> bool {
        match self {
            Caller::Open => true,
            Caller::Token(token) => token.allows(scope, provider),
        }
    }

    /// Whether the caller reaches every provider.
    pub fn sees_all(&self) -> bool {
        match self {
            Caller::Open => true,
            Caller::Token(token) => token.sees_all(),
        }
    }

    /// The token's name (`None` on an open server).
    pub fn name(&self) -> Option<&str> {
        match self {
            Caller::Open => None,
            Caller::Token(token) => Some(token.name()),
        }
    }

    /// Refuses a write of `provider` unless the caller may make it. The refusal reads the same
    /// whether or not the provider exists.
    pub fn may_write(&self, provider: &str) -> Result<(), crate::domain::error::Error> {
        if self.allows(Scope::Write, provider) {
            return Ok(());
        }
        let name = self.name().unwrap_or_default();
        Err(crate::domain::error::Error::Forbidden(
            if self.has(Scope::Write) {
                format!(
                    "Token {name:?} may not change this provider: its name matches none of the token's provider patterns"
                )
            } else {
                format!("Token {name:?} may not change providers: it has no write scope")
            },
        ))
    }

    /// Refuses a request that needs `scope` (on no provider in particular) unless the caller
    /// holds it.
    pub fn needs(&self, scope: Scope) -> Result<(), crate::domain::error::Error> {
        if self.has(scope) {
            return Ok(());
        }
        let name = self.name().unwrap_or_default();
        Err(crate::domain::error::Error::Forbidden(format!(
            "Token {name:?} lacks the {} scope this request needs",
            scope.as_str()
        )))
    }
}

/// Why a presented token opens nothing. The HTTP layer answers each with 401 and the same body,
/// so that a caller cannot tell an unknown token from an expired one; the log may tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no token in the request")]
    Missing,
    #[error("no token matches")]
    Unknown,
    #[error("the token has expired")]
    Expired,
}

/// Why a tokens file cannot be used; the tokens in force stay so.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The text is not TOML of the file's shape. Only the line and the reason are kept: the
    /// parser's own message quotes the line, which may hold a digest.
    #[error("line {line}: {message}")]
    Toml { line: usize, message: String },
    #[error("token {index}: {message}")]
    Entry { index: usize, message: String },
}

/// Every token in force.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<Arc<Token>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha256: String,
    scopes: OneOrMany<Scope>,
    providers: Option<OneOrMany<String>>,
    expires: Option<Instant>,
}

/// A list, or one value written without brackets (`scopes = "read"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(all) => all,
            OneOrMany::One(one) => vec![one],
        }
    }
}

/// An instant as TOML writes it (`expires = 2027-01-31T00:00:00Z`) or as a string of RFC 3339.
#[derive(Deserialize)]
#[serde(untagged)]
enum Instant {
    Native(toml::value::Datetime),
    Text(String),
}

impl Instant {
    fn parse(self) -> Result<DateTime<Utc>, String> {
        let text = match self {
            Instant::Native(at) => at.to_string(),
            Instant::Text(text) => text,
        };
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| {
                format!("expires {text:?}: a date and time with its offset, RFC 3339 (2027-01-31T00:00:00Z)")
            })
    }
}

impl Tokens {
    /// The tokens of a file's text: every entry checked (a name of 1 to 64 visible characters,
    /// unique; a 64-digit hex digest, unique; at least one scope; patterns that compile), or
    /// none taken.
    pub fn parse(text: &str) -> Result<Self, FileError> {
        let file: File = toml::from_str(text).map_err(|e| FileError::Toml {
            line: e
                .span()
                .map_or(0, |span| text[..span.start].matches('\n').count() + 1),
            message: e.message().to_string(),
        })?;
        let mut tokens = Tokens::default();
        for (index, entry) in file.token.into_iter().enumerate() {
            let token = entry
                .into_token()
                .map_err(|message| FileError::Entry { index, message })?;
            tokens
                .push(token)
                .map_err(|message| FileError::Entry { index, message })?;
        }
        Ok(tokens)
    }

    /// Adds `--admin-token` as the token named `admin` with every scope. Refused if it is
    /// shorter than [`MIN_ADMIN_TOKEN_LEN`] or holds anything but visible ASCII (it could not
    /// travel in an `Authorization` header), if the file names a token `admin` too, or holds the
    /// same token. No message repeats the token.
    pub fn with_admin(mut self, token: &str) -> Result<Self, String> {
        if token.len() < MIN_ADMIN_TOKEN_LEN {
            return Err(format!(
                "the admin token must be at least {MIN_ADMIN_TOKEN_LEN} characters (try `openssl rand -hex 32`)"
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the admin token may hold only visible ASCII characters, without spaces".into(),
            );
        }
        let admin = Token {
            name: ADMIN.to_string(),
            digest: digest(token),
            scopes: [Scope::Read, Scope::Write, Scope::Admin].into(),
            providers: None,
            expires: None,
        };
        self.push(admin)?;
        Ok(self)
    }

    fn push(&mut self, token: Token) -> Result<(), String> {
        if self.tokens.iter().any(|t| t.name == token.name) {
            return Err(format!("the name {:?} is used twice", token.name));
        }
        if self.tokens.iter().any(|t| t.digest == token.digest) {
            return Err(format!(
                "{:?} has the digest of another token: give each its own",
                token.name
            ));
        }
        self.tokens.push(Arc::new(token));
        Ok(())
    }

    /// How many tokens are in force.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is in force (then the API is open, as without `--admin-token`).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token a request presents, at `now`. Every entry is compared, in constant time, so
    /// that neither the answer's timing nor its position in the file tells anything.
    pub fn authenticate(
        &self,
        presented: impl AsRef<[u8]>,
        now: DateTime<Utc>,
    ) -> Result<&Arc<Token>, Refused> {
        let wanted: [u8; 32] = Sha256::digest(presented.as_ref()).into();
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.digest.ct_eq(&wanted)) {
                found = Some(token);
            }
        }
        match found {
            None => Err(Refused::Unknown),
            Some(token) if token.expired(now) => Err(Refused::Expired),
            Some(token) => Ok(token),
        }
    }
}

impl Tokens {
    /// `token` as these tokens hold it now (its scopes and patterns as the file says them now),
    /// or `None` once it is revoked or expired: a request that outlives a reading of the file
    /// (a long poll) asks again.
    pub fn renewed(&self, token: &Token, now: DateTime<Utc>) -> Option<Arc<Token>> {
        self.tokens
            .iter()
            .find(|t| t.digest == token.digest && t.name == token.name)
            .filter(|t| !t.expired(now))
            .cloned()
    }
}

impl Entry {
    fn into_token(self) -> Result<Token, String> {
        let name = self.name;
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "name {name:?}: 1 to 64 visible ASCII characters, no spaces"
            ));
        }
        let digest = decode_hex(&self.sha256).ok_or_else(|| {
            format!("{name}: sha256 must be 64 hex digits (the token's SHA-256, never the token)")
        })?;
        let scopes = self.scopes.into_vec();
        if scopes.is_empty() {
            return Err(format!(
                "{name}: at least one scope (read, write, admin, metrics)"
            ));
        }
        let expires = self
            .expires
            .map(Instant::parse)
            .transpose()
            .map_err(|e| format!("{name}: {e}"))?;
        let providers = match self.providers.map(OneOrMany::into_vec) {
            None => None,
            Some(written) => {
                let mut set = GlobSetBuilder::new();
                for pattern in &written {
                    let glob = Glob::new(pattern)
                        .map_err(|e| format!("{name}: provider pattern {pattern:?}: {e}"))?;
                    set.add(glob);
                }
                let set = set.build().map_err(|e| format!("{name}: {e}"))?;
                Some(Patterns { written, set })
            }
        };
        Ok(Token {
            name,
            digest,
            scopes: scopes.into_iter().collect(),
            providers,
            expires,
        })
    }
}

/// The SHA-256 of a token, as the file holds it.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The same in lowercase hex.
pub fn digest_hex(token: &str) -> String {
    digest(token).iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A new random token (32 bytes from the operating system, base64url after [`PREFIX`]) and the
/// `[[token]]` entry that grants it, to paste into the tokens file.
pub fn new_token(
    name: &str,
    scopes: &[Scope],
    providers: &[String],
    expires: Option<DateTime<Utc>>,
) -> Result<(String, String), String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the system: {e}"))?;
    let token = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let mut entry = toml::Table::new();
    entry.insert("name".into(), name.into());
    entry.insert("sha256".into(), digest_hex(&token).into());
    let scopes: BTreeSet<Scope> = scopes.iter().copied().collect();
    entry.insert(
        "scopes".into(),
        scopes
            .iter()
            .map(|s| toml::Value::from(s.as_str()))
            .collect::<Vec<_>>()
            .into(),
    );
    if !providers.is_empty() {
        entry.insert("providers".into(), providers.to_vec().into());
    }
    if let Some(at) = expires {
        entry.insert("expires".into(), at.to_rfc3339().into());
    }
    let mut file = toml::Table::new();
    file.insert("token".into(), vec![toml::Value::Table(entry)].into());
    let text = toml::to_string(&file).map_err(|e| e.to_string())?;
    // The entry must read back as the file's kind of entry (a name the file refuses fails here).
    Tokens::parse(&text).map_err(|e| e.to_string())?;
    Ok((token, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[(&str, &str, &str)]) -> String {
        entries
            .iter()
            .map(|(name, token, rest)| {
                format!(
                    "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\n{rest}\n",
                    digest_hex(token)
                )
            })
            .collect()
    }

    #[test]
    fn a_token_opens_only_its_scopes_within_its_patterns() {
        let tokens = Tokens::parse(&file(&[
            (
                "reader",
                "r-token",
                "scopes = [\"read\"]\nproviders = [\"team-a-*\"]",
            ),
            ("writer", "w-token", "scopes = [\"write\"]"),
            (
                "root",
                "a-token",
                "scopes = [\"admin\"]\nproviders = [\"x\"]",
            ),
        ]))
        .unwrap();
        let now = Utc::now();
        let reader = tokens.authenticate("r-token", now).unwrap();
        assert_eq!(reader.name(), "reader");
        assert!(reader.allows(Scope::Read, "team-a-openai"));
        assert!(!reader.allows(Scope::Read, "team-b-openai"));
        assert!(!reader.allows(Scope::Write, "team-a-openai"));
        assert!(!reader.sees_all());
        let writer = tokens.authenticate("w-token", now).unwrap();
        assert!(writer.allows(Scope::Read, "anything") && writer.allows(Scope::Write, "anything"));
        assert!(!writer.has(Scope::Admin));
        let root = tokens.authenticate("a-token", now).unwrap();
        assert!(
            root.allows(Scope::Write, "not-x"),
            "admin is not limited by patterns"
        );
        assert_eq!(
            tokens.authenticate("nope", now).err(),
            Some(Refused::Unknown)
        );
    }

    #[test]
    fn an_expired_token_is_refused_from_its_instant_on() {
        let tokens = Tokens::parse(&file(&[(
            "old",
            "t",
            "scopes = [\"read\"]\nexpires = \"2026-01-01T00:00:00Z\"",
        )]))
        .unwrap();
        let before: DateTime<Utc> = "2025-12-31T23:59:59Z".parse().unwrap();
        let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(tokens.authenticate("t", before).is_ok());
        assert_eq!(tokens.authenticate("t", at).err(), Some(Refused::Expired));
    }

    #[test]
    fn a_file_may_write_one_scope_bare_and_an_instant_as_toml_does() {
        let tokens = Tokens::parse(&file(&[
            (
                "native",
                "t1",
                "scopes = \"read\"\nproviders = \"team-a-*\"\nexpires = 2026-01-01T00:00:00Z",
            ),
            (
                "offset",
                "t2",
                "scopes = [\"write\"]\nexpires = 2026-01-01T02:00:00+02:00",
            ),
        ]))
        .unwrap();
        let before: DateTime<Utc> = "2025-12-31T23:59:59Z".parse().unwrap();
        let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let native = tokens.authenticate("t1", before).unwrap();
        assert!(native.allows(Scope::Read, "team-a-x") && !native.allows(Scope::Read, "b"));
        assert_eq!(tokens.authenticate("t1", at).err(), Some(Refused::Expired));
        assert_eq!(tokens.authenticate("t2", at).err(), Some(Refused::Expired));
        for local in ["expires = 2026-01-01T00:00:00", "expires = 2026-01-01"] {
            let text = file(&[("local", "t3", &format!("scopes = [\"read\"]\n{local}"))]);
            assert!(
                Tokens::parse(&text).is_err(),
                "{local}: no offset, no instant"
            );
        }
    }

    #[test]
    fn a_file_with_one_bad_entry_gives_no_tokens() {
        let good = file(&[("a", "t1", "scopes = [\"read\"]")]);
        for bad in [
            file(&[("b", "t2", "scopes = []")]),
            file(&[("b", "t2", "scopes = [\"owner\"]")]),
            file(&[("b", "t2", "scopes = [\"read\"]\nproviders = [\"[\"]")]),
            file(&[("a", "t2", "scopes = [\"read\"]")]),
            file(&[("b", "t1", "scopes = [\"read\"]")]),
            file(&[("has space", "t2", "scopes = [\"read\"]")]),
            "[[token]]\nname = \"b\"\nsha256 = \"abc\"\nscopes = [\"read\"]\n".to_string(),
            "[[token]]\nname = \"b\"\ntoken = \"plain\"\nscopes = [\"read\"]\n".to_string(),
        ] {
            let text = format!("{good}{bad}");
            assert!(Tokens::parse(&text).is_err(), "{text}");
        }
        assert_eq!(Tokens::parse(&good).unwrap().len(), 1);
        let broken = format!("{good}sha256 = ");
        let why = Tokens::parse(&broken).unwrap_err().to_string();
        assert!(!why.contains(&digest_hex("t1")), "{why}");
        assert!(why.starts_with("line 5:"), "{why}");
    }

    #[test]
    fn the_admin_token_is_the_token_named_admin_with_every_scope() {
        let tokens = Tokens::default()
            .with_admin("the-admin-token-1234")
            .unwrap();
        let admin = tokens
            .authenticate("the-admin-token-1234", Utc::now())
            .unwrap();
        assert_eq!(admin.name(), ADMIN);
        assert!(admin.has(Scope::Admin) && admin.sees_all());
        let named = Tokens::parse(&file(&[("admin", "t", "scopes = [\"read\"]")])).unwrap();
        assert!(named.with_admin("the-admin-token-1234").is_err());
    }

    #[test]
    fn a_new_token_is_granted_by_the_entry_printed_with_it() {
        let (token, entry) = new_token(
            "ci",
            &[Scope::Read, Scope::Read],
            &["team-a-*".to_string()],
            None,
        )
        .unwrap();
        assert!(token.starts_with(PREFIX) && token.len() == PREFIX.len() + 43);
        assert!(!entry.contains(&token), "the entry never holds the token");
        let tokens = Tokens::parse(&entry).unwrap();
        let granted = tokens.authenticate(&token, Utc::now()).unwrap();
        assert_eq!(granted.name(), "ci");
        assert_eq!(granted.patterns(), Some(&["team-a-*".to_string()][..]));
        let (other, _) = new_token("ci", &[Scope::Read], &[], None).unwrap();
        assert_ne!(token, other);
    }
}
