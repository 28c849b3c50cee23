//! The API as a dropshot trait: each endpoint's method, path, operation id and types, apart from
//! any implementation, so the OpenAPI document can be produced without a server.
//!
//! Its operations are those of `openapi.json`; a test keeps the two in step.

use dropshot::{Header, HttpResponseHeaders, HttpResponseOk, Path, Query, RequestContext};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::http::auth::Authorized;
use crate::http::conditional_headers::{DeleteConditions, EtagHeader, PutConditions};
use crate::http::error::ApiError;
use crate::http::json_body::JsonBody;
use crate::types::{
    AddProviderRequest, ChangesResponse, HealthResponse, HistoryResponse, Key,
    ListProviderKeysResponse, ListProvidersResponse, ProviderResponse, RollbackRequest,
    SyncStatusResponse, UpdateProviderRequest,
};

/// A provider in a response, with its `ETag` header.
pub type ProviderOk = HttpResponseHeaders<HttpResponseOk<ProviderResponse>, EtagHeader>;

/// A key in a response, with its provider's `ETag` header.
pub type KeyOk = HttpResponseHeaders<HttpResponseOk<Key>, EtagHeader>;

/// The schema of a `{provider}` path parameter. JSON Schema counts characters, the contract
/// bytes: `maxLength` (64 characters) holds for every accepted name, and the exact bound is the
/// format `bifrost-provider-name` with `x-bifrost-max-bytes` (`.ci/schemathesis_hooks.py` gives
/// schemathesis that format, so it generates only names the server takes).
fn provider_name_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
    let mut schema = schemars::schema::SchemaObject {
        instance_type: Some(schemars::schema::InstanceType::String.into()),
        format: Some("bifrost-provider-name".into()),
        string: Some(Box::new(schemars::schema::StringValidation {
            min_length: Some(1),
            max_length: Some(64),
            pattern: Some(
                r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^/\u0000-\u001f\u007f-\u009f]*$".into(),
            ),
        })),
        ..Default::default()
    };
    schema
        .extensions
        .insert("x-bifrost-max-bytes".into(), serde_json::json!(64));
    schema.into()
}

/// The `{provider}` path parameter.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProviderPath {
    /// Provider name after percent-decoding: 1 to 64 bytes of UTF-8, none of them a control
    /// character (C0, DEL or C1) or `/`, not all whitespace (custom names may hold spaces).
    #[schemars(schema_with = "provider_name_schema")]
    pub provider: String,
}

/// The `{provider}` and `{revision}` path parameters.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct RevisionPath {
    /// Provider name after percent-decoding: 1 to 64 bytes of UTF-8, none of them a control
    /// character (C0, DEL or C1) or `/`, not all whitespace (custom names may hold spaces).
    #[schemars(schema_with = "provider_name_schema")]
    pub provider: String,
    /// The revision number.
    #[schemars(range(min = 1))]
    pub revision: i64,
}

/// The query of a history page.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct HistoryQuery {
    /// At most this many revisions (1 to 1000, default 100).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<i64>,
    /// Only revisions older than this one (to page back).
    #[schemars(range(min = 1))]
    pub before: Option<i64>,
}

/// The query of the change feed.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChangesQuery {
    /// The last revision seen (default 0).
    #[schemars(range(min = 0))]
    pub since: Option<i64>,
    /// Seconds to wait for a change, 0 to 60 (default 30).
    #[schemars(range(min = 0, max = 60))]
    pub timeout: Option<i64>,
}

/// The `X-Bifrost-Revision` header of the provider list.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct RevisionHeader {
    /// The store's latest revision when the list was read: watch `/api/changes?since=` from it.
    #[serde(rename = "X-Bifrost-Revision")]
    pub revision: String,
}

/// The `{provider}` and `{key_id}` path parameters.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct KeyPath {
    /// Provider name after percent-decoding: 1 to 64 bytes of UTF-8, none of them a control
    /// character (C0, DEL or C1) or `/`, not all whitespace (custom names may hold spaces).
    #[schemars(schema_with = "provider_name_schema")]
    pub provider: String,
    /// The key's id: 1 to 128 characters without control characters (C0, DEL or C1).
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,128}$")
    )]
    pub key_id: String,
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
    ) -> Result<HttpResponseHeaders<HttpResponseOk<ListProvidersResponse>, RevisionHeader>, ApiError>;

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
        conditions: Header<PutConditions>,
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

    /// List a provider's keys
    ///
    /// Returns a provider's keys in creation order, secrets redacted, with `models` as Bifrost
    /// v1.5+ reads it (`["*"]`: all models; empty: none).
    #[endpoint { method = GET, path = "/api/providers/{provider}/keys", operation_id = "listProviderKeys", tags = ["Provider keys"] }]
    async fn list_provider_keys(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<ProviderPath>,
    ) -> Result<HttpResponseHeaders<HttpResponseOk<ListProviderKeysResponse>, EtagHeader>, ApiError>;

    /// Create a key
    ///
    /// Adds a key to a provider (Bifrost v1.5+). A key without `id` gets a new UUIDv4. `models`
    /// reads as v1.5 reads it: `["*"]` all models, empty or left out none. 409 when the provider
    /// has a key with that id or that non-empty name; 400 for a keyless custom provider.
    #[endpoint { method = POST, path = "/api/providers/{provider}/keys", operation_id = "createProviderKey", tags = ["Provider keys"] }]
    async fn create_provider_key(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<ProviderPath>,
        body: JsonBody<Key>,
    ) -> Result<KeyOk, ApiError>;

    /// Get a key
    ///
    /// Returns one key, secrets redacted, `models` as Bifrost v1.5+ reads it.
    #[endpoint { method = GET, path = "/api/providers/{provider}/keys/{key_id}", operation_id = "getProviderKey", tags = ["Provider keys"] }]
    async fn get_provider_key(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<KeyPath>,
    ) -> Result<KeyOk, ApiError>;

    /// Update a key
    ///
    /// Replaces one key as a whole (its `id` is the path's). Secrets sent back in their current
    /// redacted form keep the stored values. `If-Match` with the provider's `ETag` makes the
    /// write conditional (412 otherwise).
    #[endpoint { method = PUT, path = "/api/providers/{provider}/keys/{key_id}", operation_id = "updateProviderKey", tags = ["Provider keys"] }]
    async fn update_provider_key(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<KeyPath>,
        conditions: Header<DeleteConditions>,
        body: JsonBody<Key>,
    ) -> Result<KeyOk, ApiError>;

    /// Delete a key
    ///
    /// Removes one key and returns it, secrets redacted. `If-Match` with the provider's `ETag`
    /// makes the delete conditional (412 otherwise).
    #[endpoint { method = DELETE, path = "/api/providers/{provider}/keys/{key_id}", operation_id = "deleteProviderKey", tags = ["Provider keys"] }]
    async fn delete_provider_key(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<KeyPath>,
        conditions: Header<DeleteConditions>,
    ) -> Result<KeyOk, ApiError>;

    /// A provider's history
    ///
    /// Every kept revision of a provider, newest first: who, when, what action, which fields
    /// changed, from which source. History survives a delete (it is how a deleted provider is
    /// found again). 404 for a name that never had a revision.
    #[endpoint { method = GET, path = "/api/providers/{provider}/history", operation_id = "getProviderHistory", tags = ["Revisions"] }]
    async fn get_provider_history(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<ProviderPath>,
        query: Query<HistoryQuery>,
    ) -> Result<HttpResponseOk<HistoryResponse>, ApiError>;

    /// A provider as it was
    ///
    /// The provider as it was after this revision, redacted as any response. 404 when the
    /// revision is not this provider's, deleted it, or is no longer kept.
    #[endpoint { method = GET, path = "/api/providers/{provider}/history/{revision}", operation_id = "getProviderRevision", tags = ["Revisions"] }]
    async fn get_provider_revision(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<RevisionPath>,
    ) -> Result<HttpResponseOk<ProviderResponse>, ApiError>;

    /// Roll a provider back
    ///
    /// The provider becomes what it was after the given revision, secrets included, as a new
    /// revision with source `rollback`; rolling back to a revision of a deleted provider
    /// restores it. `If-Match` with the current `ETag` makes it conditional (412 otherwise).
    #[endpoint { method = POST, path = "/api/providers/{provider}/rollback", operation_id = "rollbackProvider", tags = ["Revisions"] }]
    async fn rollback_provider(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        path: Path<ProviderPath>,
        conditions: Header<DeleteConditions>,
        body: JsonBody<RollbackRequest>,
    ) -> Result<ProviderOk, ApiError>;

    /// Watch for changes
    ///
    /// Every change after `since`, oldest first. Answers at once when there are changes, else
    /// when one arrives or `timeout` seconds pass (then with an empty list). A write through any
    /// replica sharing the database wakes the watchers of every replica. List the providers
    /// first (`GET /api/providers` carries the store's revision in `X-Bifrost-Revision`), then
    /// watch from that revision: no change is missed. 410 `revision_compacted` when `since` is
    /// older than what is kept: list again, then watch.
    #[endpoint { method = GET, path = "/api/changes", operation_id = "watchChanges", tags = ["Revisions"] }]
    async fn watch_changes(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
        query: Query<ChangesQuery>,
    ) -> Result<HttpResponseOk<ChangesResponse>, ApiError>;

    /// Sync status
    ///
    /// Where each gateway this server keeps in step (`serve --sync-to`, `--sync-targets`) stands:
    /// the last store revision it has every change up to, how far and how long it is behind, the
    /// last error and when it happened, what reconciles corrected. An empty list when the server
    /// keeps none. Needs the `admin` scope, or `read` over every provider.
    #[endpoint { method = GET, path = "/api/sync", operation_id = "getSyncStatus", tags = ["Sync"] }]
    async fn get_sync_status(
        rqctx: RequestContext<Self::Context>,
        auth: Authorized,
    ) -> Result<HttpResponseOk<SyncStatusResponse>, ApiError>;

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
        semver::Version::new(2026120400, 0, 0),
    )
    .json()
    .expect("the OpenAPI document serializes")
}
