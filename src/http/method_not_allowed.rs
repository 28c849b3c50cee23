//! Wrong methods on the API's paths: 405 with the contract's error body and the `Allow` header
//! (RFC 9110), from hidden endpoints, since dropshot's router would answer in its own shape. The
//! paths and the methods each serves are read from the API description itself, so a new endpoint
//! needs no edit here.
//!
//! On `/api/*` paths the admin token is checked first, as on the API's own endpoints.

use dropshot::{ApiDescription, ApiEndpoint, ApiEndpointVersions, Body, Path, RequestContext};
use http::Method;

use crate::domain::error::Error;
use crate::http::api::{KeyPath, ProviderPath, RevisionPath};
use crate::http::auth::Authorized;
use crate::http::context::Context;
use crate::http::error::ApiError;

/// The methods dropshot routes that a client may try, in the order `Allow` lists them.
const ALL: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
];

/// Each path of the API and the methods it serves, as the API description documents them.
fn served(api: &ApiDescription<Context>) -> Vec<(String, Vec<Method>)> {
    let document = api
        .openapi("served", semver::Version::new(0, 0, 0))
        .json()
        .expect("the OpenAPI document serializes");
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    paths
        .into_iter()
        .map(|(path, operations)| {
            let methods = ALL
                .iter()
                .filter(|m| operations.get(m.as_str().to_lowercase()).is_some())
                .cloned()
                .collect();
            (path, methods)
        })
        .collect()
}

/// Registers a hidden endpoint for every method each path of `api` does not serve; each answers
/// 405 with the path's `Allow`.
pub fn register(api: &mut ApiDescription<Context>) {
    for (path, methods) in served(api) {
        let allow = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        for method in ALL.iter().filter(|m| !methods.contains(m)) {
            macro_rules! hidden {
                ($($extractor:ty),*) => {{
                    let allow = allow.clone();
                    ApiEndpoint::new(
                        "method_not_allowed".to_string(),
                        move |rqctx: RequestContext<Context>, $(_: $extractor),*| {
                            let answer = refuse(&rqctx, &allow);
                            async move { Ok::<_, ApiError>(answer) }
                        },
                        method.clone(),
                        "application/json",
                        &path,
                        ApiEndpointVersions::All,
                    )
                }};
            }
            // The same extractors as the path's own endpoints: the token is checked first, and
            // the path parameters are those of the path.
            let endpoint = if path.contains("{key_id}") {
                hidden!(Authorized, Path<KeyPath>)
            } else if path.contains("{revision}") {
                hidden!(Authorized, Path<RevisionPath>)
            } else if path.contains("{provider}") {
                hidden!(Authorized, Path<ProviderPath>)
            } else if path.starts_with("/api/") {
                hidden!(Authorized)
            } else {
                hidden!()
            };
            api.register(endpoint.visible(false))
                .expect("hidden endpoint registers");
        }
    }
}

/// The 405 of a wrong method, with the methods its path serves.
fn refuse(rqctx: &RequestContext<Context>, allow: &str) -> http::Response<Body> {
    let error = ApiError::from(Error::MethodNotAllowed(rqctx.request.method().to_string()));
    error.into_response(&[(http::header::ALLOW, allow.to_string())])
}
