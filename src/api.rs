//! The API as a dropshot trait: each endpoint's method, path, operation id and types, apart from
//! any implementation, so the OpenAPI document can be produced without a server.
//!
//! Its operations are those of `openapi.json`; a test keeps the two in step.

use dropshot::{Header, HttpResponseHeaders, HttpResponseOk, Path, RequestContext};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::auth::Authorized;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::precondition::{DeleteConditions, EtagHeader, WriteConditions};
use crate::types::{
    AddProviderRequest, HealthResponse, ListProvidersResponse, ProviderResponse,
    UpdateProviderRequest,
};

/// A provider in a response, with its `ETag` header.
pub type ProviderOk = HttpResponseHeaders<HttpResponseOk<ProviderResponse>, EtagHeader>;

/// The `{provider}` path parameter.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProviderPath {
    /// Provider name: 1 to 64 characters of `A-Z a-z 0-9 . _ -` after percent-decoding.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub provider: String,
}

#[dropshot::api_description]
pub trait ProvidersApi {
    type Context;

    /// List providers
    ///
    /// Returns every stored provider, sorted by name, with secrets redacted.
    #[endpoint { method = GET, path = "/api/providers", operation_id = "listProviders", tags = ["Providers"] }]
    async fn list_providers(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
    ) -> Result<HttpResponseOk<ListProvidersResponse>, ApiError>;

    /// Add a provider
    ///
    /// Creates a provider from the update body plus `provider`, its name. 409 when a provider of
    /// that name exists.
    #[endpoint { method = POST, path = "/api/providers", operation_id = "addProvider", tags = ["Providers"] }]
    async fn add_provider(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        body: JsonBody<AddProviderRequest>,
    ) -> Result<ProviderOk, ApiError>;

    /// Get a provider
    ///
    /// Returns a provider's effective configuration, secrets redacted.
    #[endpoint { method = GET, path = "/api/providers/{provider}", operation_id = "getProvider", tags = ["Providers"] }]
    async fn get_provider(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<ProviderPath>,
    ) -> Result<ProviderOk, ApiError>;

    /// Update a provider
    ///
    /// Updates a provider's configuration. Expects ALL fields to be provided, including both
    /// edited and non-edited fields. Partial updates are not supported.
    ///
    /// An upsert: a provider that does not exist is created. Secrets sent back in their redacted
    /// form keep their stored values.
    ///
    /// Optimistic concurrency: `If-Match` with the `ETag` of a GET makes the write conditional
    /// on nobody having written since (412 otherwise); `If-None-Match: *` creates only.
    #[endpoint { method = PUT, path = "/api/providers/{provider}", operation_id = "updateProvider", tags = ["Providers"] }]
    async fn update_provider(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<ProviderPath>,
        conditions: Header<WriteConditions>,
        body: JsonBody<UpdateProviderRequest>,
    ) -> Result<ProviderOk, ApiError>;

    /// Delete a provider
    ///
    /// Removes a provider and returns what was deleted, secrets redacted. `If-Match` makes the
    /// delete conditional on the `ETag` of a GET (412 otherwise).
    #[endpoint { method = DELETE, path = "/api/providers/{provider}", operation_id = "deleteProvider", tags = ["Providers"] }]
    async fn delete_provider(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<ProviderPath>,
        conditions: Header<DeleteConditions>,
    ) -> Result<ProviderOk, ApiError>;

    /// Health check
    ///
    /// Answers 200 once the store answers, 503 while it does not.
    #[endpoint { method = GET, path = "/health", operation_id = "health", tags = ["Health"] }]
    async fn health(
        rqctx: RequestContext<Self::Context>,
    ) -> Result<HttpResponseOk<HealthResponse>, ApiError>;
}

/// The OpenAPI document of the API as dropshot describes it, with no server running.
pub fn openapi() -> serde_json::Value {
    let api = providers_api_mod::stub_api_description().expect("the API description is valid");
    api.openapi(
        "Bifrost provider-management API",
        semver::Version::new(1, 0, 0),
    )
    .json()
    .expect("the OpenAPI document serializes")
}
