//! `GET /metrics`: what the server counts and measures ([`crate::telemetry::metrics`]), in the
//! Prometheus text format.
//!
//! Outside the API (the spec does not list it, the typed client has no call for it), but behind
//! the same tokens: on a server with tokens, a scraper needs one with the `metrics` scope (or
//! `admin`); on a server without, it is as open as the API. Nothing in it names a provider or
//! holds a secret, but request counts by status still tell an outsider how the server is used.

use dropshot::{ApiDescription, ApiEndpoint, ApiEndpointVersions, Body, RequestContext};
use http::{Method, Response, StatusCode, header};

use crate::domain::error::Error;
use crate::domain::tokens::Scope;
use crate::http::auth;
use crate::http::context::Context;
use crate::http::error::ApiError;
use crate::telemetry::metrics;

/// The path scrapers read.
pub const PATH: &str = "/metrics";

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Registers `GET /metrics`, hidden from the API's description.
pub fn register(api: &mut ApiDescription<Context>) {
    let endpoint = ApiEndpoint::new(
        "metrics".to_string(),
        scrape,
        Method::GET,
        "application/json",
        PATH,
        ApiEndpointVersions::All,
    );
    api.register(endpoint.visible(false))
        .expect("the metrics endpoint registers");
}

async fn scrape(rqctx: RequestContext<Context>) -> Result<Response<Body>, ApiError> {
    let caller = auth::caller(&rqctx.context().tokens, rqctx.request.headers())
        .map_err(|_| Error::Unauthorized)?;
    caller.needs(Scope::Metrics)?;
    let text = metrics::render().unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(text))
        .map_err(|e| ApiError::from(Error::Store(e.to_string())))
}
