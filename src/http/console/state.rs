//! What the console's pages read and write, shared by them: a provider as the API shows it,
//! one loaded for a visit, a form's body read as the API reads one, the state a form was drawn
//! from, and the change a save makes.

use std::sync::Arc;

use dropshot::RequestContext;
use serde_json::Value;

use super::Visit;
use crate::domain::error::Error;
use crate::domain::provider::{self, StoredProvider};
use crate::http::context::Context;
use crate::http::handlers::visible;
use crate::store::Change;

/// The most revisions looked through for the state a form was drawn from.
const PAGE: usize = 1000;

/// A provider as the API shows it, as JSON.
pub fn presented(stored: &StoredProvider) -> Value {
    serde_json::to_value(provider::present(stored)).unwrap_or_default()
}

/// Provider `name`, if this visit may see it; else the page that says it does not exist.
pub async fn load(
    rqctx: &RequestContext<Context>,
    visit: &Visit,
    name: &str,
) -> Result<Arc<StoredProvider>, Box<http::Response<dropshot::Body>>> {
    match visible(rqctx, &visit.caller, name).await {
        Ok(Some(stored)) => Ok(stored),
        Ok(None) => Err(Box::new(visit.error(Error::NotFound(name.to_string())))),
        Err(error) => Err(Box::new(visit.error(error))),
    }
}

/// The change that stores `next`, or none when it is what `current` already holds: a form
/// posted back as drawn makes no revision and keeps the provider's `ETag`.
pub fn unless_same(next: StoredProvider, current: Option<&StoredProvider>) -> Change {
    match current {
        Some(current) if current.config == next.config => Change::Keep,
        _ => Change::Put(Box::new(next)),
    }
}

/// A request body from a form's JSON, read as the API reads one (its rules, its messages).
pub fn decode<T: serde::de::DeserializeOwned + schemars::JsonSchema>(
    body: serde_json::Map<String, Value>,
) -> Result<T, Error> {
    let bytes =
        serde_json::to_vec(&Value::Object(body)).map_err(|e| Error::Store(e.to_string()))?;
    crate::decode::decode(&bytes)
}

/// The state provider `name` had when its tag was `etag`, if that revision is still kept.
pub async fn state_with_etag(
    rqctx: &RequestContext<Context>,
    name: &str,
    etag: &str,
) -> Option<StoredProvider> {
    let store = &rqctx.context().store;
    let (revisions, _) = store.history(name, PAGE, None).await.ok()??;
    let found = revisions.iter().find(|r| r.etag.as_deref() == Some(etag))?;
    store.revision(name, found.revision).await.ok()??.state
}
