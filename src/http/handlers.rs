//! The handlers: the API trait ([`ProvidersApi`]) implemented on a store, one method per
//! endpoint, each turning a request into domain calls and a store mutation.

use std::sync::Arc;

use dropshot::{Header, HttpResponseHeaders, HttpResponseOk, Path, Query, RequestContext};

use std::time::Duration;

use crate::domain::error::Error;
use crate::domain::history::{Source, WriteMeta};
use crate::domain::key_models::View;
use crate::domain::keys;
use crate::domain::precondition::WriteConditions;
use crate::domain::provider::{self, StoredProvider};
use crate::domain::tokens::{Caller, Scope};
use crate::domain::validate;
use crate::http::api::{
    ChangesQuery, HistoryQuery, KeyOk, KeyPath, ProviderOk, ProviderPath, ProvidersApi,
    RevisionHeader, RevisionPath,
};
use crate::http::auth::Authorized;
use crate::http::conditional_headers::{DeleteConditions, EtagHeader, PutConditions};
use crate::http::context::Context;
use crate::http::error::ApiError;
use crate::http::json_body::JsonBody;
use crate::store::{Change, Feed, Written};
use crate::types::{
    AddProviderRequest, ChangesResponse, HealthResponse, HistoryResponse, Key,
    ListProviderKeysResponse, ListProvidersResponse, ProviderResponse, RollbackRequest, SyncError,
    SyncStatusResponse, SyncTargetStatus, UpdateProviderRequest,
};

/// The implementation of [`ProvidersApi`].
pub enum Server {}

impl ProvidersApi for Server {
    type Context = Context;

    async fn list_providers(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
    ) -> Result<HttpResponseHeaders<HttpResponseOk<ListProvidersResponse>, RevisionHeader>, ApiError>
    {
        let (stored, revision) = rqctx.context().store.list().await?;
        let providers: Vec<ProviderResponse> = stored
            .iter()
            .filter(|p| caller.allows(Scope::Read, &p.name))
            .map(|p| provider::present(p))
            .collect();
        let total = providers.len() as i64;
        Ok(HttpResponseHeaders::new(
            HttpResponseOk(ListProvidersResponse { providers, total }),
            RevisionHeader {
                revision: revision.to_string(),
            },
        ))
    }

    async fn add_provider(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        body: JsonBody<AddProviderRequest>,
    ) -> Result<ProviderOk, ApiError> {
        let (name, request) = crate::convert::split_add(body.into_inner());
        validate::provider_name(&name, "provider")?;
        let written = write(&rqctx, &caller, name, move |name, current| match current {
            Some(_) => Err(Error::Exists(name.to_string())),
            None => put(provider::desired_state(name, request, None)),
        })
        .await?;
        Ok(shown(written.after)?)
    }

    async fn get_provider(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<ProviderPath>,
    ) -> Result<ProviderOk, ApiError> {
        let name = path_name(path)?;
        let stored = visible(&rqctx, &caller, &name).await?;
        Ok(shown(Some(stored.ok_or(Error::NotFound(name))?))?)
    }

    async fn update_provider(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<ProviderPath>,
        conditions: Header<PutConditions>,
        body: JsonBody<UpdateProviderRequest>,
    ) -> Result<ProviderOk, ApiError> {
        let (conditions, request) = (
            WriteConditions::from(conditions.into_inner()),
            body.into_inner(),
        );
        let written = write(&rqctx, &caller, path_name(path)?, move |name, current| {
            conditions.check(current)?;
            put(provider::desired_state(name, request, current))
        })
        .await?;
        Ok(shown(written.after)?)
    }

    async fn delete_provider(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<ProviderPath>,
        conditions: Header<DeleteConditions>,
    ) -> Result<ProviderOk, ApiError> {
        let conditions = WriteConditions::from(conditions.into_inner());
        let written = write(&rqctx, &caller, path_name(path)?, move |name, current| {
            let current = current.ok_or_else(|| Error::NotFound(name.to_string()))?;
            conditions.check(Some(current))?;
            Ok(Change::Delete)
        })
        .await?;
        Ok(shown(written.before)?)
    }

    async fn list_provider_keys(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<ProviderPath>,
    ) -> Result<HttpResponseHeaders<HttpResponseOk<ListProviderKeysResponse>, EtagHeader>, ApiError>
    {
        let name = path_name(path)?;
        let stored = visible(&rqctx, &caller, &name).await?;
        let stored = stored.ok_or(Error::NotFound(name))?;
        let mut usable = true;
        let keys: Vec<Key> = stored
            .keys()
            .iter()
            .map(|k| provider::present_key(k, View::Keys, &mut usable))
            .collect();
        let total = keys.len() as i64;
        Ok(HttpResponseHeaders::new(
            HttpResponseOk(ListProviderKeysResponse { keys, total }),
            EtagHeader::of(&stored),
        ))
    }

    async fn create_provider_key(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<ProviderPath>,
        body: JsonBody<Key>,
    ) -> Result<KeyOk, ApiError> {
        let key = body.into_inner();
        let id = provider::key_id(key.id.as_deref(), "id")?;
        let wanted = id.clone();
        let written = write(&rqctx, &caller, path_name(path)?, move |name, current| {
            put(keys::create(name, current, id, key))
        })
        .await?;
        Ok(shown_key(written.after, &wanted)?)
    }

    async fn get_provider_key(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<KeyPath>,
    ) -> Result<KeyOk, ApiError> {
        let (name, id) = key_path(path)?;
        let stored = visible(&rqctx, &caller, &name).await?;
        Ok(shown_key(stored, &id)?)
    }

    async fn update_provider_key(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<KeyPath>,
        conditions: Header<DeleteConditions>,
        body: JsonBody<Key>,
    ) -> Result<KeyOk, ApiError> {
        let (name, id) = key_path(path)?;
        let conditions = WriteConditions::from(conditions.into_inner());
        let (key, wanted) = (body.into_inner(), id.clone());
        let written = write(&rqctx, &caller, name, move |name, current| {
            if current.is_some() {
                conditions.check(current)?;
            }
            put(keys::update(name, current, &id, key))
        })
        .await?;
        Ok(shown_key(written.after, &wanted)?)
    }

    async fn delete_provider_key(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<KeyPath>,
        conditions: Header<DeleteConditions>,
    ) -> Result<KeyOk, ApiError> {
        let (name, id) = key_path(path)?;
        let conditions = WriteConditions::from(conditions.into_inner());
        let wanted = id.clone();
        let written = write(&rqctx, &caller, name, move |name, current| {
            if current.is_some() {
                conditions.check(current)?;
            }
            put(keys::delete(name, current, &id))
        })
        .await?;
        let mut deleted = shown_key(written.before, &wanted)?;
        if let Some(after) = &written.after {
            deleted.headers_mut().insert(
                http::header::ETAG,
                http::HeaderValue::from_str(&EtagHeader::of(after).etag)
                    .map_err(|e| Error::Store(e.to_string()))?,
            );
        }
        Ok(deleted)
    }

    async fn get_provider_history(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<ProviderPath>,
        query: Query<HistoryQuery>,
    ) -> Result<HttpResponseOk<HistoryResponse>, ApiError> {
        let name = path_name(path)?;
        if !caller.allows(Scope::Read, &name) {
            return Err(Error::NotFound(name).into());
        }
        let HistoryQuery { limit, before } = query.into_inner();
        if limit.is_some_and(|l| !(1..=1000).contains(&l)) {
            return Err(Error::invalid("invalid_query", "limit", "limit must be 1 to 1000").into());
        }
        if before.is_some_and(|b| b < 1) {
            return Err(
                Error::invalid("invalid_query", "before", "before must be 1 or more").into(),
            );
        }
        let limit = limit.unwrap_or(100).clamp(1, 1000) as usize;
        let (revisions, total) = rqctx
            .context()
            .store
            .history(&name, limit, before)
            .await?
            .ok_or(Error::NotFound(name))?;
        Ok(HttpResponseOk(HistoryResponse {
            revisions: revisions.iter().map(|r| r.body()).collect(),
            total: total as i64,
        }))
    }

    async fn get_provider_revision(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<RevisionPath>,
    ) -> Result<HttpResponseOk<ProviderResponse>, ApiError> {
        let RevisionPath { provider, revision } = path.into_inner();
        validate::provider_name(&provider, "provider")?;
        if !caller.allows(Scope::Read, &provider) {
            return Err(Error::RevisionNotFound(format!("{provider}@{revision}")).into());
        }
        let state = kept_state(&rqctx, &provider, revision).await?;
        Ok(HttpResponseOk(provider::present(&state)))
    }

    async fn rollback_provider(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        path: Path<ProviderPath>,
        conditions: Header<DeleteConditions>,
        body: JsonBody<RollbackRequest>,
    ) -> Result<ProviderOk, ApiError> {
        let name = path_name(path)?;
        caller.may_write(&name)?;
        let conditions = WriteConditions::from(conditions.into_inner());
        let revision = body.into_inner().revision;
        let target = kept_state(&rqctx, &name, revision).await?;
        let written = write_from(
            &rqctx,
            &caller,
            name,
            Source::Rollback,
            move |_, current| {
                conditions.check(current)?;
                Ok(Change::Put(Box::new(target)))
            },
        )
        .await?;
        Ok(shown(written.after)?)
    }

    async fn watch_changes(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
        query: Query<ChangesQuery>,
    ) -> Result<HttpResponseOk<ChangesResponse>, ApiError> {
        let ChangesQuery { since, timeout } = query.into_inner();
        let since = since.unwrap_or(0);
        let timeout = timeout.unwrap_or(30);
        if since < 0 {
            return Err(Error::invalid("invalid_query", "since", "since must be 0 or more").into());
        }
        if !(0..=60).contains(&timeout) {
            return Err(Error::invalid(
                "invalid_query",
                "timeout",
                "timeout must be 0 to 60 seconds",
            )
            .into());
        }
        let wait = Duration::from_secs(timeout as u64);
        Ok(HttpResponseOk(
            changes_after(&rqctx, caller, since, wait).await?,
        ))
    }

    async fn get_sync_status(
        rqctx: RequestContext<Context>,
        Authorized(caller): Authorized,
    ) -> Result<HttpResponseOk<SyncStatusResponse>, ApiError> {
        if !(caller.has(Scope::Admin) || (caller.has(Scope::Read) && caller.sees_all())) {
            return Err(Error::Forbidden(
                "the sync status needs the admin scope, or read over every provider".into(),
            )
            .into());
        }
        let context = rqctx.context();
        let revision = *context.store.watch().borrow();
        let targets = context
            .sync
            .status()
            .into_iter()
            .map(|status| sync_status(status, revision))
            .collect();
        Ok(HttpResponseOk(SyncStatusResponse { revision, targets }))
    }

    async fn health(
        rqctx: RequestContext<Context>,
    ) -> Result<HttpResponseOk<HealthResponse>, ApiError> {
        rqctx.context().store.health().await?;
        Ok(HttpResponseOk(HealthResponse {
            status: "ok".into(),
        }))
    }
}

/// A sync target's status as the API shows it, against the store's latest `revision`.
pub fn sync_status(status: crate::sync::Status, revision: i64) -> SyncTargetStatus {
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    SyncTargetStatus {
        target: status.target,
        generation: status.generation.map(|g| g.as_str().to_string()),
        state: status.state.as_str().to_string(),
        applied_revision: status.applied,
        lag_revisions: (revision - status.applied.unwrap_or(0)).max(0),
        lag_seconds: status
            .behind_since
            .map_or(0.0, |since| since.elapsed().as_secs_f64()),
        last_error: status.last_error.map(|e| SyncError {
            message: e.message,
            provider: e.provider,
            at: at(e.at),
        }),
        last_success_at: status.last_success_at.map(at),
        last_reconcile_at: status.last_reconcile_at.map(at),
        drift_corrected: status.drift_corrected as i64,
        writes: status.writes as i64,
    }
}

/// The changes after revision `since` that `caller` may see, waiting up to `wait` for one (the
/// change feed's answer, for the API and the console's live notice).
pub async fn changes_after(
    rqctx: &RequestContext<Context>,
    caller: Caller,
    since: i64,
    wait: Duration,
) -> Result<ChangesResponse, Error> {
    let deadline = tokio::time::Instant::now() + wait;
    let store = &rqctx.context().store;
    let mut heads = store.watch();
    let mut stopping = rqctx.context().stopping.clone();
    let _watching = crate::telemetry::metrics::Watching::new();
    // Where the store is read from: past changes of providers this caller may not see,
    // which are passed over (never shown, and never an early answer).
    let mut cursor = since;
    let mut caller = caller;
    loop {
        // A token revoked, expired or narrowed while it waits counts from then on.
        if let Caller::Token(token) = &caller {
            let now = chrono::Utc::now();
            match rqctx.context().tokens.current().renewed(token, now) {
                Some(token) => caller = Caller::Token(token),
                None => return Err(Error::Unauthorized),
            }
        }
        let (mut changes, revision) = match store.changes(cursor, MAX_CHANGES).await? {
            Feed::Compacted => return Err(Error::Compacted(since)),
            Feed::Changes(changes, revision) => (changes, revision),
        };
        // A revision the store never made: it was replaced or restored; list again.
        if since > revision {
            return Err(Error::UnknownRevision(since));
        }
        let full = changes.len() >= MAX_CHANGES;
        if let Some(last) = changes.last() {
            cursor = last.revision;
        }
        changes.retain(|c| caller.allows(Scope::Read, &c.provider));
        let now = tokio::time::Instant::now();
        if !changes.is_empty() || now >= deadline {
            return Ok(ChangesResponse { changes, revision });
        }
        if full {
            continue;
        }
        // Woken by a write (on any replica, through the store), or at least every second;
        // when the server stops, answered at once (the watcher asks again, elsewhere or
        // after the restart).
        let nap = (deadline - now).min(Duration::from_secs(1));
        tokio::select! {
            _ = heads.changed() => {}
            _ = stopping.wait_for(|stopping| *stopping) => {
                return Ok(ChangesResponse { changes, revision });
            }
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

/// The most changes one answer of the feed carries; a watcher asks again from the last.
const MAX_CHANGES: usize = 1000;

/// Applies a decision about provider `name` in the store, as a revision of the API.
async fn write(
    rqctx: &RequestContext<Context>,
    caller: &Caller,
    name: String,
    decide: impl FnOnce(&str, Option<&StoredProvider>) -> Result<Change, Error> + Send + 'static,
) -> Result<Written, Error> {
    caller.may_write(&name)?;
    write_from(rqctx, caller, name, Source::Api, decide).await
}

/// Applies a decision about provider `name`, recording its source and who made it.
pub async fn write_from(
    rqctx: &RequestContext<Context>,
    caller: &Caller,
    name: String,
    source: Source,
    decide: impl FnOnce(&str, Option<&StoredProvider>) -> Result<Change, Error> + Send + 'static,
) -> Result<Written, Error> {
    let target = name.clone();
    let (actor, unverified_actor) =
        crate::domain::history::attribution(rqctx.request.headers(), caller.name());
    let meta = WriteMeta {
        source,
        actor,
        unverified_actor,
    };
    let mutation = Box::new(move |current: Option<&StoredProvider>| decide(&name, current));
    rqctx.context().store.modify(&target, mutation, meta).await
}

/// Provider `name` as the caller may see it: a provider outside its patterns reads as one that
/// does not exist (and the store is not asked).
pub async fn visible(
    rqctx: &RequestContext<Context>,
    caller: &Caller,
    name: &str,
) -> Result<Option<Arc<StoredProvider>>, Error> {
    if !caller.allows(Scope::Read, name) {
        return Ok(None);
    }
    rqctx.context().store.get(name).await
}

/// The state a kept revision of provider `name` left (404 when it deleted the provider, is
/// another provider's, or is no longer kept).
pub async fn kept_state(
    rqctx: &RequestContext<Context>,
    name: &str,
    revision: i64,
) -> Result<StoredProvider, Error> {
    rqctx
        .context()
        .store
        .revision(name, revision)
        .await?
        .and_then(|r| r.state)
        .ok_or_else(|| Error::RevisionNotFound(format!("{name}@{revision}")))
}

/// A new state to store, if the request produced one.
fn put(state: Result<StoredProvider, Error>) -> Result<Change, Error> {
    state.map(|p| Change::Put(Box::new(p)))
}

fn key_path(path: Path<KeyPath>) -> Result<(String, String), Error> {
    let KeyPath { provider, key_id } = path.into_inner();
    validate::provider_name(&provider, "provider")?;
    validate::key_id(&key_id, "key_id")?;
    Ok((provider, key_id))
}

/// Key `id` of a provider as a response (as `/keys` shows it), with the provider's `ETag`.
fn shown_key(state: Option<Arc<StoredProvider>>, id: &str) -> Result<KeyOk, Error> {
    let not_found = || Error::KeyNotFound(id.to_string());
    let stored = state.ok_or_else(not_found)?;
    let key = stored
        .keys()
        .iter()
        .find(|k| k.id.as_deref() == Some(id))
        .ok_or_else(not_found)?;
    let mut usable = true;
    Ok(HttpResponseHeaders::new(
        HttpResponseOk(provider::present_key(key, View::Keys, &mut usable)),
        EtagHeader::of(&stored),
    ))
}

fn path_name(path: Path<ProviderPath>) -> Result<String, Error> {
    let name = path.into_inner().provider;
    validate::provider_name(&name, "provider")?;
    Ok(name)
}

/// A provider as a response: redacted, with its `ETag`.
fn shown(state: Option<Arc<StoredProvider>>) -> Result<ProviderOk, Error> {
    let stored = state.ok_or_else(|| Error::Store("a write left no provider to show".into()))?;
    Ok(HttpResponseHeaders::new(
        HttpResponseOk(provider::present(&stored)),
        EtagHeader::of(&stored),
    ))
}
