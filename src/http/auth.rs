//! The admin-token check on the API: when the server has a token, every `/api/*` request must
//! carry it as `Authorization: Bearer TOKEN`.
//!
//! The check is an extractor listed first on every API endpoint, so it runs before the path, the
//! headers or the body are looked at: a request without the token hears 401 and nothing else, and
//! its body is never read. The token itself is
//! [`AdminToken`](crate::http::admin_token::AdminToken).

use dropshot::{
    ApiEndpointBodyContentType, ExtensionMode, ExtractorMetadata, HttpError, RequestContext,
    ServerContext, SharedExtractor,
};

use crate::domain::error::Error;
use crate::http::context;
use crate::http::error::ApiError;

/// Proof that a request may use the API: the server has no token, or the request carries it.
pub struct Authorized;

#[async_trait::async_trait]
impl SharedExtractor for Authorized {
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        // dropshot's extractors are generic over every context; this one serves only contexts
        // that know a token, and refuses (fails closed) anywhere else.
        let context: &dyn std::any::Any = rqctx.context();
        let token = match context.downcast_ref::<context::Context>() {
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
