//! Bifrost's at-rest encryption of config store secrets (`framework/encrypt/encrypt.go`, v1.4.x
//! and v1.5.x): the passphrase (`encryption_key`, `BIFROST_ENCRYPTION_KEY`) is stretched with
//! Argon2id (salt `bifrost-encryption-v1-salt-2024`, time 1, 64 MiB, 4 lanes, 32 bytes) into an
//! AES-256-GCM key; each value is sealed with a random 12-byte nonce and stored as standard
//! base64 of nonce ‖ ciphertext ‖ tag. Only opening is needed here: the import reads.

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// The salt Bifrost derives every key with (fixed: one system-wide key).
const SALT: &[u8] = b"bifrost-encryption-v1-salt-2024";

/// An opened Bifrost encryption key.
pub struct Cipher {
    key: LessSafeKey,
}

/// Why a value could not be opened. Neither variant carries any of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not base64, or shorter than a nonce and a tag: not something Bifrost sealed.
    NotSealed,
    /// The tag does not match: another key sealed it (or it was altered).
    WrongKey,
}

impl Cipher {
    /// The key Bifrost derives from `passphrase` (slow on purpose: 64 MiB of Argon2id).
    pub fn derive(passphrase: &str) -> Result<Cipher, String> {
        let params = argon2::Params::new(64 * 1024, 1, 4, Some(32))
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = [0u8; 32];
        argon
            .hash_password_into(passphrase.as_bytes(), SALT, &mut key)
            .map_err(|e| format!("cannot derive the encryption key: {e}"))?;
        let unbound = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| "AES-256-GCM key")?;
        Ok(Cipher {
            key: LessSafeKey::new(unbound),
        })
    }

    /// The clear text of a value Bifrost sealed.
    pub fn open(&self, sealed: &str) -> Result<String, OpenError> {
        let mut data = base64::engine::general_purpose::STANDARD
            .decode(sealed.trim())
            .map_err(|_| OpenError::NotSealed)?;
        if data.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError::NotSealed);
        }
        let mut ciphertext = data.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&data).map_err(|_| OpenError::NotSealed)?;
        let clear = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut ciphertext)
            .map_err(|_| OpenError::WrongKey)?;
        String::from_utf8(clear.to_vec()).map_err(|_| OpenError::NotSealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seals as Bifrost's `encrypt.Encrypt` does, with a fixed nonce.
    fn seal(passphrase: &str, nonce: [u8; 12], clear: &str) -> String {
        let params = argon2::Params::new(64 * 1024, 1, 4, Some(32)).unwrap();
        let mut key = [0u8; 32];
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), SALT, &mut key)
            .unwrap();
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let mut data = clear.as_bytes().to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .unwrap();
        let mut out = nonce.to_vec();
        out.extend(data);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    #[test]
    fn opens_what_bifrost_sealed_and_tells_a_wrong_key() {
        let sealed = seal("a passphrase of some length", [7; 12], "sk-live-0123456789");
        let right = Cipher::derive("a passphrase of some length").unwrap();
        assert_eq!(right.open(&sealed).unwrap(), "sk-live-0123456789");
        let wrong = Cipher::derive("another passphrase").unwrap();
        assert_eq!(wrong.open(&sealed), Err(OpenError::WrongKey));
        assert_eq!(right.open("sk-plain"), Err(OpenError::NotSealed));
    }
}
