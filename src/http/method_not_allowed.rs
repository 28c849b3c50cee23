//! Wrong methods on the API's paths: 405 with the contract's error body and the `Allow` header
//! (RFC 9110), from hidden endpoints, since dropshot's router would answer in its own shape.
//!
//! On `/api/*` paths the admin token is checked first, as on the API's own endpoints.

use dropshot::{ApiDescription, ApiEndpoint, ApiEndpointVersions, Body, Path, RequestContext};
use http::Method;

use crate::domain::error::{ApiError, Error};
use crate::http::api::{KeyPath, ProviderPath, RevisionPath};
use crate::http::auth::Authorized;
use crate::http::handlers::Context;

/// Each path of the API and the methods it serves.
const SERVED: &[(&str, &[Method])] = &[
    ("/api/providers", &[Method::GET, Method::POST]),
    (
        "/api/providers/{provider}",
        &[Method::GET, Method::PUT, Method::DELETE],
    ),
    (
        "/api/providers/{provider}/keys",
        &[Method::GET, Method::POST],
    ),
    (
        "/api/providers/{provider}/keys/{key_id}",
        &[Method::GET, Method::PUT, Method::DELETE],
    ),
    ("/api/providers/{provider}/history", &[Method::GET]),
    (
        "/api/providers/{provider}/history/{revision}",
        &[Method::GET],
    ),
    ("/api/providers/{provider}/rollback", &[Method::POST]),
    ("/api/changes", &[Method::GET]),
    ("/health", &[Method::GET]),
];

/// The methods dropshot routes that a client may try.
const ALL: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
];

/// Registers a hidden endpoint for every method each path does not serve.
pub fn register(api: &mut ApiDescription<Context>) {
    for (path, methods) in SERVED {
        for method in ALL.iter().filter(|m| !methods.contains(m)) {
            macro_rules! new {
                ($handler:expr) => {
                    ApiEndpoint::new(
                        "method_not_allowed".to_string(),
                        $handler,
                        method.clone(),
                        "application/json",
                        path,
                        ApiEndpointVersions::All,
                    )
                };
            }
            let endpoint = if path.contains("{key_id}") {
                new!(with_key)
            } else if path.contains("{revision}") {
                new!(with_revision)
            } else if path.contains("{provider}") {
                new!(with_provider)
            } else if path.starts_with("/api/") {
                new!(api_root)
            } else {
                new!(open)
            };
            api.register(endpoint.visible(false))
                .expect("hidden endpoint registers");
        }
    }
}

/// The methods the path of a request serves, as `Allow` lists them.
fn allowed(path: &str) -> String {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let template = match segments.as_slice() {
        ["", "api", "providers"] => "/api/providers",
        ["", "api", "changes"] => "/api/changes",
        ["", "api", "providers", _] => "/api/providers/{provider}",
        ["", "api", "providers", _, "keys"] => "/api/providers/{provider}/keys",
        ["", "api", "providers", _, "keys", _] => "/api/providers/{provider}/keys/{key_id}",
        ["", "api", "providers", _, "history"] => "/api/providers/{provider}/history",
        ["", "api", "providers", _, "history", _] => "/api/providers/{provider}/history/{revision}",
        ["", "api", "providers", _, "rollback"] => "/api/providers/{provider}/rollback",
        _ => "/health",
    };
    SERVED
        .iter()
        .find(|(p, _)| *p == template)
        .map(|(_, methods)| {
            methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

type Answer = Result<http::Response<Body>, ApiError>;

/// A wrong method on `/health`: open, like `/health` itself.
async fn open(rqctx: RequestContext<Context>) -> Answer {
    let error = ApiError::from(Error::MethodNotAllowed(rqctx.request.method().to_string()));
    Ok(error.into_response(&[(http::header::ALLOW, allowed(rqctx.request.uri().path()))]))
}

async fn api_root(rqctx: RequestContext<Context>, _auth: Authorized) -> Answer {
    open(rqctx).await
}

async fn with_provider(
    rqctx: RequestContext<Context>,
    _auth: Authorized,
    _path: Path<ProviderPath>,
) -> Answer {
    open(rqctx).await
}

async fn with_revision(
    rqctx: RequestContext<Context>,
    _auth: Authorized,
    _path: Path<RevisionPath>,
) -> Answer {
    open(rqctx).await
}

async fn with_key(
    rqctx: RequestContext<Context>,
    _auth: Authorized,
    _path: Path<KeyPath>,
) -> Answer {
    open(rqctx).await
}
