//! The admin token: when the server has one, every `/api/*` request must carry it as
//! `Authorization: Bearer TOKEN`.
//!
//! The check is an extractor listed first on every API endpoint, so it runs before the path, the
//! headers or the body are looked at: a request without the token hears 401 and nothing else, and
//! its body is never read. The token is kept only as its SHA-256 digest, and a presented token is
//! compared digest to digest in constant time, so neither its bytes nor its length leak through
//! timing.

use dropshot::{
    ApiEndpointBodyContentType, ExtensionMode, ExtractorMetadata, HttpError, RequestContext,
    ServerContext, SharedExtractor,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::error::{ApiError, Error};

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

/// Proof that a request may use the API: the server has no token, or the request carries it.
pub struct Authorized;

#[async_trait::async_trait]
impl SharedExtractor for Authorized {
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, HttpError> {
        // dropshot's extractors are generic over every context; this one serves only contexts
        // that know a token, and refuses (fails closed) anywhere else.
        let context: &dyn std::any::Any = rqctx.context();
        let token = match context.downcast_ref::<crate::http::handlers::Context>() {
            Some(context) => context.admin_token.as_ref(),
            None => return Err(refused()),
        };
        match token {
            Some(token) if !token.admits(rqctx.request.headers()) => Err(refused()),
            _ => Ok(Authorized),
        }
    }

    fn metadata(_body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        ExtractorMetadata {
            extension_mode: ExtensionMode::None,
            parameters: Vec::new(),
        }
    }
}

fn refused() -> HttpError {
    ApiError::from(Error::Unauthorized).into_http_error()
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
