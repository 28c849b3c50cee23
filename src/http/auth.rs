//! Who is calling: the token a request carries as `Authorization: Bearer TOKEN`, checked against
//! the tokens in force ([`TokenFile`]).
//!
//! The check is an extractor listed first on every API endpoint, so it runs before the path, the
//! headers or the body are looked at: a request without a valid token hears 401 and nothing
//! else, and its body is never read; a change (POST, PUT, DELETE, PATCH) by a token that may
//! change nothing, or a read by one that may read nothing, hears 403 just as early. What a token may do with one provider is the handler's to
//! ask ([`Caller`]), once it knows the provider. A token is read only from the header (never
//! from a query string) and appears in no log line, not even as its hash; the token's name
//! does, as `token`.

use dropshot::{
    ApiEndpointBodyContentType, ExtensionMode, ExtractorMetadata, HttpError, RequestContext,
    ServerContext, SharedExtractor,
};

use crate::domain::error::Error;
use crate::domain::tokens::{Caller, Refused, Scope};
use crate::http::context;
use crate::http::error::ApiError;
use crate::http::token_file::TokenFile;

/// The caller of a request that may use the API.
pub struct Authorized(pub Caller);

#[async_trait::async_trait]
impl SharedExtractor for Authorized {
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        // dropshot's extractors are generic over every context; this one serves only contexts
        // that know the tokens, and refuses (fails closed) anywhere else.
        let context: &dyn std::any::Any = rqctx.context();
        let Some(context) = context.downcast_ref::<context::Context>() else {
            return Err(refused(Error::Unauthorized));
        };
        let caller = match caller(&context.tokens, rqctx.request.headers()) {
            Ok(caller) => caller,
            Err(why) => {
                slog::debug!(rqctx.log, "token refused"; "why" => why.to_string());
                return Err(refused(Error::Unauthorized));
            }
        };
        if let Some(name) = caller.name() {
            slog::debug!(rqctx.log, "token accepted"; "token" => name);
        }
        let changes = matches!(
            *rqctx.request.method(),
            http::Method::POST | http::Method::PUT | http::Method::DELETE | http::Method::PATCH
        );
        caller
            .needs(if changes { Scope::Write } else { Scope::Read })
            .map_err(refused)?;
        Ok(Authorized(caller))
    }

    fn metadata(_body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        ExtractorMetadata {
            extension_mode: ExtensionMode::None,
            parameters: Vec::new(),
        }
    }
}

fn refused(error: Error) -> HttpError {
    ApiError::from(error).into_http_error()
}

/// Who sends a request with these headers: [`Caller::Open`] on a server without tokens, else the
/// token it carries, if that is in force and unexpired.
pub fn caller(tokens: &TokenFile, headers: &http::HeaderMap) -> Result<Caller, Refused> {
    if !tokens.required() {
        return Ok(Caller::Open);
    }
    let presented = bearer(headers).ok_or(Refused::Missing)?;
    tokens
        .current()
        .authenticate(presented, chrono::Utc::now())
        .map(|token| Caller::Token(token.clone()))
}

/// The token of a request's `Authorization` headers: exactly one header, scheme `Bearer` (any
/// case), one space, then the token.
pub fn bearer(headers: &http::HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let value = value.as_bytes();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, token) = (&value[..space], &value[space + 1..]);
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
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
    fn only_one_bearer_header_carries_a_token() {
        let token: &[u8] = b"0123456789abcdef-token";
        assert_eq!(
            bearer(&headers(&["Bearer 0123456789abcdef-token"])),
            Some(token)
        );
        assert_eq!(
            bearer(&headers(&["bearer 0123456789abcdef-token"])),
            Some(token)
        );
        assert_eq!(
            bearer(&headers(&["Bearer  0123456789abcdef-token"])),
            Some(&b" 0123456789abcdef-token"[..]),
            "a second space is part of the token, which then matches nothing"
        );
        for refused in [
            vec![],
            vec!["Basic 0123456789abcdef-token"],
            vec!["0123456789abcdef-token"],
            vec!["Bearer"],
            vec!["Bearer "],
            vec![
                "Bearer 0123456789abcdef-token",
                "Bearer 0123456789abcdef-token",
            ],
        ] {
            assert_eq!(bearer(&headers(&refused)), None, "{refused:?}");
        }
    }
}
