//! Secrets at rest: how a provider's configuration is written to a store and read back, with
//! every secret field encrypted when the server has an encryption key.
//!
//! Each non-empty secret (a key's secret fields, the proxy's `password` and `ca_cert_pem`, and
//! the credentials of [`crate::domain::credentials`]: credential headers, URL user-info) is
//! stored as `enc:v1:` + base64url(nonce ‖ ciphertext ‖ tag), sealed with XChaCha20-Poly1305
//! under the operator's 256-bit key. The associated data binds each ciphertext to its provider,
//! key id and field, so a sealed value copied to another place in the store does not open. The
//! nonce is random and 192 bits long: unlike AES-GCM's 96-bit nonce, it has no practical limit
//! on how many values one key may seal. A secret is sealed when it is stored or changes; a write
//! that keeps it keeps its sealed form (see `Resealed`).
//!
//! A row records the id of the key that sealed it (`sealed_with`, a fingerprint of the key,
//! not the key), or nothing when its secrets are in clear. Everything else stays readable JSON,
//! so an operator can still inspect and diff the store.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::domain::credentials;
use crate::domain::provider::StoredProvider;
use crate::domain::secret_places::{self, Mark, Marked};
use crate::types::{EnvVar, UpdateProviderRequest};

/// What the log says when a store's rows were rewritten at start to the current key (or to clear).
pub const REWRITTEN: &str = "rewrote the stored secrets for the current encryption key";

/// What a sealed value starts with.
const PREFIX: &str = "enc:v1:";

/// The nonce length of XChaCha20-Poly1305, in bytes.
const NONCE_LEN: usize = 24;

/// The operator's encryption key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    id: String,
    hash_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({})", self.id)
    }
}

impl Sealer {
    /// A key as an operator gives it: 32 bytes in base64 (`openssl rand -base64 32`). A refusal
    /// never repeats the key.
    pub fn from_base64(text: &str) -> Result<Sealer, String> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| {
                "the encryption key is not base64: give 32 random bytes in base64 \
                 (`openssl rand -base64 32`)"
                    .to_string()
            })?;
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "the encryption key is {} bytes long; it must be 32 (`openssl rand -base64 32`)",
                bytes.len()
            )
        })?;
        let mut fingerprint = Sha256::new();
        fingerprint.update(b"bifrost-providers encryption key id v1\0");
        fingerprint.update(key);
        let id = fingerprint.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut hash_key = Sha256::new();
        hash_key.update(b"bifrost-providers config_hash key v1\0");
        hash_key.update(key);
        Ok(Sealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
            id,
            hash_key: hash_key.finalize().into(),
        })
    }

    /// A key derived from this one for the `config_hash` a response shows
    /// ([`crate::domain::secrets::shown_hash`]): the same on every replica and across restarts.
    pub fn hash_key(&self) -> [u8; 32] {
        self.hash_key
    }

    /// The key's id: a fingerprint that names it in the store and in messages, from which the
    /// key cannot be recovered.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn seal(&self, place: &Place, plain: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = place.associated_data();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any message of this size");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    fn open(&self, place: &Place, sealed: &str) -> Result<String, String> {
        let unreadable = || format!("{place} does not open with encryption key {}", self.id);
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(|| format!("{place} is not a sealed value"))?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &place.associated_data(),
                },
            )
            .map_err(|_| unreadable())?;
        String::from_utf8(plain).map_err(|_| unreadable())
    }
}

/// Where a secret lives: provider, key id (empty for the proxy) and field.
struct Place<'a> {
    provider: &'a str,
    key: &'a str,
    field: &'a str,
}

impl Place<'_> {
    fn associated_data(&self) -> Vec<u8> {
        ["bifrost-providers/v1", self.provider, self.key, self.field]
            .join("\0")
            .into_bytes()
    }
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "provider {:?} field {}", self.provider, self.field)
        } else {
            write!(
                f,
                "provider {:?} key {:?} field {}",
                self.provider, self.key, self.field
            )
        }
    }
}

/// How configurations are written to and read from a store: in clear, or with their secrets
/// sealed.
#[derive(Debug, Default)]
pub struct Codec {
    sealer: Option<Sealer>,
    /// The key the store was sealed with before a rotation: it opens rows, never seals them.
    previous: Option<Sealer>,
    /// Whether rows are taken as they are stored: none is rewritten when the store opens (see
    /// [`Codec::as_stored`]).
    as_stored: bool,
    resealed: Resealed,
}

/// The last value sealed at each secret's place (provider, key, field), so that a write that
/// keeps a secret reuses its sealed form instead of sealing it again (most edits change no
/// secret). What this shows at rest, that a place's secret did not change between two states,
/// the history's `changed` field says anyway.
#[derive(Default)]
struct Resealed(Mutex<HashMap<Vec<u8>, (String, String)>>);

/// Beyond this many places the cache starts over.
const MAX_RESEALED: usize = 100_000;

impl std::fmt::Debug for Resealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resealed(..)")
    }
}

impl Resealed {
    /// `plain` sealed at `place`: as last time when it has not changed.
    fn seal(&self, sealer: &Sealer, place: &Place, plain: &str) -> String {
        let at = place.associated_data();
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((before, sealed)) = last.get(&at)
            && before == plain
        {
            return sealed.clone();
        }
        let sealed = sealer.seal(place, plain);
        if last.len() >= MAX_RESEALED {
            last.clear();
        }
        last.insert(at, (plain.to_string(), sealed.clone()));
        sealed
    }
}

/// A stored row's configuration as the store holds it.
pub struct Row {
    /// The configuration as JSON text.
    pub config: String,
    /// The id of the key that sealed its secrets; `None` when they are in clear.
    pub sealed_with: Option<String>,
}

impl Codec {
    /// Secrets in clear.
    pub fn plain() -> Codec {
        Codec::default()
    }

    /// Secrets sealed with `sealer`.
    pub fn sealing(sealer: Sealer) -> Codec {
        Codec {
            sealer: Some(sealer),
            ..Codec::default()
        }
    }

    /// Also opens rows sealed with `previous`, the key before a rotation, so that they can be
    /// re-sealed with the current key (or, without one, stored in clear again).
    pub fn opening_previous(self, previous: Sealer) -> Codec {
        Codec {
            previous: Some(previous),
            ..self
        }
    }

    /// Takes every row it can open as it is stored: opening a store with it rewrites nothing
    /// (rows in clear stay in clear, rows sealed with a previous key stay so), for a store that
    /// is only read or compared (`migrate`). Rows it writes are still sealed with its key.
    pub fn as_stored(self) -> Codec {
        Codec {
            as_stored: true,
            ..self
        }
    }

    /// Whether a row sealed with `sealed_with` is as this codec would write it now; rows that
    /// are not are rewritten at start.
    pub fn is_current(&self, sealed_with: Option<&str>) -> bool {
        self.as_stored || self.sealer.as_ref().map(Sealer::id) == sealed_with
    }

    /// The row to store for a provider's state.
    pub fn encode(&self, provider: &StoredProvider) -> Result<Row, String> {
        let Some(sealer) = &self.sealer else {
            let config = serde_json::to_string(&provider.config).map_err(|e| e.to_string())?;
            return Ok(Row {
                config,
                sealed_with: None,
            });
        };
        let mut config = provider.config.clone();
        each_secret(&provider.name, &mut config, |place, value| {
            *value = self.resealed.seal(sealer, place, value);
            Ok(())
        })?;
        credentials::for_each(&mut config, |field, credential, value| {
            if credential {
                let place = Place {
                    provider: &provider.name,
                    key: "",
                    field,
                };
                *value = self.resealed.seal(sealer, &place, value);
            }
            Ok(())
        })?;
        Ok(Row {
            config: serde_json::to_string(&config).map_err(|e| e.to_string())?,
            sealed_with: Some(sealer.id.clone()),
        })
    }

    /// The configuration of provider `name` from its stored row. A row sealed with a key other
    /// than this codec's (or any key, when it has none) is refused.
    pub fn decode(&self, name: &str, row: &Row) -> Result<UpdateProviderRequest, String> {
        let mut config: UpdateProviderRequest = serde_json::from_str(&row.config).map_err(|e| {
            format!(
                "provider {name:?} is unreadable: {}",
                crate::decode::json::without_strings(&e.to_string())
            )
        })?;
        let Some(id) = &row.sealed_with else {
            return Ok(config);
        };
        let sealer = self.usable(name, id)?;
        each_secret(name, &mut config, |place, value| {
            *value = sealer.open(place, value)?;
            Ok(())
        })?;
        // Rows sealed before these places were sealed hold them in clear.
        credentials::for_each(&mut config, |field, _, value| {
            if value.starts_with(PREFIX) {
                let place = Place {
                    provider: name,
                    key: "",
                    field,
                };
                *value = sealer.open(&place, value)?;
            }
            Ok(())
        })?;
        Ok(config)
    }

    /// The sealer that opens a row sealed with key `id`.
    fn usable(&self, name: &str, id: &str) -> Result<&Sealer, String> {
        if let Some(sealer) = [&self.sealer, &self.previous]
            .into_iter()
            .flatten()
            .find(|s| s.id == id)
        {
            return Ok(sealer);
        }
        match &self.sealer {
            Some(sealer) => Err(format!(
                "provider {name:?} was encrypted with encryption key {id}, not with the key given \
                 (key {}); start the server with the key the store was encrypted with (to \
                 rotate, give that one as the previous key)",
                sealer.id
            )),
            None => Err(format!(
                "provider {name:?} is encrypted (encryption key {id}) and no encryption key was \
                 given; start the server with BIFROST_ENCRYPTION_KEY set to that key"
            )),
        }
    }
}

/// Calls `visit` on every non-empty secret of a configuration, with its place.
fn each_secret(
    provider: &str,
    config: &mut UpdateProviderRequest,
    mut visit: impl FnMut(&Place, &mut String) -> Result<(), String>,
) -> Result<(), String> {
    let mut failure = Ok(());
    for key in config.keys.iter_mut().flatten() {
        let id = key.id.clone().unwrap_or_default();
        secret_places::for_each_key_field(key, |field, secret, value: &mut EnvVar| {
            if secret && !value.value.is_empty() && failure.is_ok() {
                let place = Place {
                    provider,
                    key: &id,
                    field,
                };
                failure = visit(&place, &mut value.value);
            }
        });
    }
    let mut visit_block = |field: &'static str, mark: Mark, marked: Marked<'_>| {
        if let (Mark::Value, Marked::Text(value)) = (mark, marked)
            && !value.is_empty()
            && failure.is_ok()
        {
            let place = Place {
                provider,
                key: "",
                field,
            };
            failure = visit(&place, value);
        }
    };
    if let Some(network) = config.network_config.as_mut() {
        secret_places::for_each_network_config_mark(network, &mut visit_block);
    }
    if let Some(proxy) = config.proxy_config.as_mut() {
        secret_places::for_each_proxy_config_mark(proxy, &mut visit_block);
    }
    failure
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Key, ProxyConfig, ProxyType};

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn provider() -> StoredProvider {
        let key = Key {
            id: Some("k1".into()),
            value: Some(EnvVar {
                value: "sk-sealed-0123456789".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let proxy = ProxyConfig {
            type_: ProxyType::Http,
            url: "http://proxy.local:3128".into(),
            username: "user".into(),
            password: "proxy-pass-123".into(),
            ca_cert_pem: Default::default(),
        };
        StoredProvider {
            name: "openai".into(),
            config: UpdateProviderRequest {
                keys: Some(vec![key]),
                proxy_config: Some(proxy),
                ..Default::default()
            },
            config_hash: None,
            etag: String::new(),
        }
    }

    #[test]
    fn sealed_rows_hold_no_secret_and_open_to_the_original() {
        let codec = Codec::sealing(Sealer::from_base64(KEY).unwrap());
        let original = provider();
        let row = codec.encode(&original).unwrap();
        assert!(!row.config.contains("sk-sealed"), "{}", row.config);
        assert!(!row.config.contains("proxy-pass"), "{}", row.config);
        assert_eq!(
            row.sealed_with.as_deref(),
            Some(codec.sealer.as_ref().unwrap().id())
        );
        assert_eq!(codec.decode("openai", &row).unwrap(), original.config);
        // The same secrets again keep their sealed forms: nothing is sealed twice.
        assert_eq!(codec.encode(&original).unwrap().config, row.config);
        // A changed secret is sealed afresh and opens to its new value.
        let mut changed = original.clone();
        changed.config.keys.as_mut().unwrap()[0].value = Some("sk-sealed-changed".into());
        let resealed = codec.encode(&changed).unwrap();
        assert_ne!(resealed.config, row.config);
        assert!(!resealed.config.contains("sk-sealed-changed"));
        assert_eq!(codec.decode("openai", &resealed).unwrap(), changed.config);
        // Another codec with the same key (another process) seals with fresh nonces.
        let other = Codec::sealing(Sealer::from_base64(KEY).unwrap());
        assert_ne!(other.encode(&original).unwrap().config, row.config);
        assert_eq!(other.decode("openai", &row).unwrap(), original.config);
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_place_and_with_its_key() {
        let codec = Codec::sealing(Sealer::from_base64(KEY).unwrap());
        let row = codec.encode(&provider()).unwrap();
        // Moved to another provider: the associated data differs.
        let err = codec.decode("anthropic", &row).unwrap_err();
        assert!(err.contains("does not open"), "{err}");
        // Another key, or none.
        let other = Codec::sealing(Sealer::from_base64(&"A".repeat(43)).unwrap());
        assert!(
            other
                .decode("openai", &row)
                .unwrap_err()
                .contains("not with the key given")
        );
        assert!(
            Codec::plain()
                .decode("openai", &row)
                .unwrap_err()
                .contains("no encryption key")
        );
    }

    #[test]
    fn keys_that_are_not_32_bytes_of_base64_are_refused_unrepeated() {
        for bad in ["not base64 at all!", "AAECAwQFBgcI", &format!("{KEY}AAAA")] {
            let err = Sealer::from_base64(bad).unwrap_err();
            assert!(!err.contains(bad), "{err}");
        }
    }
}
