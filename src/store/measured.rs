//! A store that counts and times every operation of the store it wraps, by operation and
//! outcome ([`crate::telemetry::metrics::store`]): how the database behaves, seen from here.
//!
//! Outcomes: `ok`; `refused` (the mutation said no: a failed precondition, a bad body; the store
//! answered); `unavailable` (the store did not answer in time, or not at all); `error`.

use std::sync::Arc;

use tokio::time::Instant;

use super::transfer::{Imported, Mode, Progress, Snapshot};
use super::{Feed, Mutation, RevisionState, Store, Written};
use crate::domain::error::Error;
use crate::domain::history::{Revision, WriteMeta};
use crate::domain::provider::StoredProvider;
use crate::telemetry::metrics;

/// [`Store`] with every operation measured.
pub struct Measured(pub Arc<dyn Store>);

/// Records one operation that began at `started`, and passes its result on.
fn measured<T>(
    operation: &'static str,
    started: Instant,
    result: Result<T, Error>,
) -> Result<T, Error> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(Error::Store(_)) => "error",
        Err(Error::Unavailable(_)) => "unavailable",
        Err(_) => "refused",
    };
    metrics::store(operation, outcome, started.elapsed().as_secs_f64());
    result
}

#[async_trait::async_trait]
impl Store for Measured {
    async fn get(&self, name: &str) -> Result<Option<Arc<StoredProvider>>, Error> {
        let started = Instant::now();
        measured("get", started, self.0.get(name).await)
    }

    async fn list(&self) -> Result<(Vec<Arc<StoredProvider>>, i64), Error> {
        let started = Instant::now();
        measured("list", started, self.0.list().await)
    }

    async fn modify(
        &self,
        name: &str,
        mutation: Mutation,
        meta: WriteMeta,
    ) -> Result<Written, Error> {
        let started = Instant::now();
        measured("modify", started, self.0.modify(name, mutation, meta).await)
    }

    async fn history(
        &self,
        name: &str,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Option<(Vec<Revision>, usize)>, Error> {
        let started = Instant::now();
        measured(
            "history",
            started,
            self.0.history(name, limit, before).await,
        )
    }

    async fn revision(&self, name: &str, revision: i64) -> Result<Option<RevisionState>, Error> {
        let started = Instant::now();
        measured("revision", started, self.0.revision(name, revision).await)
    }

    async fn changes(&self, since: i64, limit: usize) -> Result<Feed, Error> {
        let started = Instant::now();
        measured("changes", started, self.0.changes(since, limit).await)
    }

    fn watch(&self) -> tokio::sync::watch::Receiver<i64> {
        self.0.watch()
    }

    async fn health(&self) -> Result<(), Error> {
        let started = Instant::now();
        measured("health", started, self.0.health().await)
    }

    fn hash_key(&self) -> [u8; 32] {
        self.0.hash_key()
    }

    async fn export(&self) -> Result<Snapshot, Error> {
        let started = Instant::now();
        measured("export", started, self.0.export().await)
    }

    async fn import(
        &self,
        snapshot: Arc<Snapshot>,
        mode: Mode,
        progress: Progress,
    ) -> Result<Imported, Error> {
        let started = Instant::now();
        measured(
            "import",
            started,
            self.0.import(snapshot, mode, progress).await,
        )
    }
}
