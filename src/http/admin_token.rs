//! The admin token the server expects: kept only as its SHA-256 digest, and a presented token is
//! compared digest to digest in constant time, so neither its bytes nor its length leak through
//! timing. The front and the API's extractor ([`super::auth`]) both check requests with it.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest admin token accepted: 16 characters (`openssl rand -hex 32` gives 64).
pub const MIN_TOKEN_LEN: usize = 16;

/// The token the server expects, as its digest.
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// A token as an operator gives it: at least [`MIN_TOKEN_LEN`] visible ASCII characters, no
    /// spaces (anything else could not travel in an `Authorization` header). The message of a
    /// refusal never repeats the token.
    pub fn new(token: &str) -> Result<Self, String> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the admin token must be at least {MIN_TOKEN_LEN} characters (try `openssl rand -hex 32`)"
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the admin token may hold only visible ASCII characters, without spaces".into(),
            );
        }
        Ok(AdminToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether the `Authorization` headers of a request carry this token: exactly one header,
    /// scheme `Bearer` (any case), then the token.
    pub fn admits(&self, headers: &http::HeaderMap) -> bool {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return false;
        };
        let value = value.as_bytes();
        let Some((scheme, token)) = value
            .iter()
            .position(|&b| b == b' ')
            .map(|i| (&value[..i], &value[i + 1..]))
        else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(token).into();
        scheme.eq_ignore_ascii_case(b"bearer") && bool::from(presented.ct_eq(&self.digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for v in values {
            map.append(http::header::AUTHORIZATION, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_the_exact_bearer_token_is_admitted() {
        let token = AdminToken::new("0123456789abcdef-token").unwrap();
        assert!(token.admits(&headers(&["Bearer 0123456789abcdef-token"])));
        assert!(token.admits(&headers(&["bearer 0123456789abcdef-token"])));
        for refused in [
            vec![],
            vec!["Bearer 0123456789abcdef-toke"],
            vec!["Bearer 0123456789abcdef-token "],
            vec!["Bearer  0123456789abcdef-token"],
            vec!["Basic 0123456789abcdef-token"],
            vec!["0123456789abcdef-token"],
            vec!["Bearer"],
            vec![
                "Bearer 0123456789abcdef-token",
                "Bearer 0123456789abcdef-token",
            ],
        ] {
            assert!(!token.admits(&headers(&refused)), "{refused:?}");
        }
    }

    #[test]
    fn weak_or_unsendable_tokens_are_refused_without_being_repeated() {
        for bad in ["short", "has a space in it 123", "tab\tinside-0123456789"] {
            let message = AdminToken::new(bad).unwrap_err();
            assert!(!message.contains(bad), "{message}");
        }
    }
}
