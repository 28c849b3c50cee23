//! Where providers live, behind one trait so that stores can be swapped by URL.
//!
//! A store applies a [`Mutation`] to one provider atomically: the mutation sees the current
//! state, decides the new one (or refuses, and nothing changes), and the caller hears back only
//! once the change is durable. Writes to one provider are serialised; readers see either the
//! state before a write or the state after it, never a part of it.

pub mod bifrost;
mod local;
mod measured;
mod postgres;
mod sealing;
pub mod seed;
mod sqlite;
mod tls;
pub mod transfer;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::error::Error;
use crate::domain::history::{Retention, Revision, WriteMeta};
use crate::domain::provider::StoredProvider;
use crate::types::ProviderChange;

pub use local::LocalStore;
pub use measured::Measured;
pub use postgres::PostgresStore;
pub use sealing::{Codec, Sealer};
use transfer::{Imported, Mode, Progress, Snapshot};

/// What a mutation decides.
pub enum Change {
    /// Store this as the provider's new state.
    Put(Box<StoredProvider>),
    /// Delete the provider.
    Delete,
    /// Leave the provider as it is (no write, no new tag).
    Keep,
}

/// What a store does with a mutation's decision.
pub(crate) enum Decision {
    /// Nothing to write: the provider stays as it is.
    Keep,
    /// The provider's new state (`None`: deleted), with a fresh tag.
    Write(Option<Arc<StoredProvider>>),
}

/// Runs `mutation` against `before`, the provider's current state: a panic is an error, like any
/// refusal, and nothing is changed; a new state gets a new `ETag`.
pub(crate) fn decide(
    mutation: Mutation,
    before: Option<&StoredProvider>,
) -> Result<Decision, Error> {
    let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mutation(before)))
        .unwrap_or_else(|_| Err(Error::Store("a write panicked".into())))?;
    Ok(match decided {
        Change::Put(mut p) => {
            p.etag = crate::domain::precondition::new_tag();
            Decision::Write(Some(Arc::from(p)))
        }
        Change::Delete => Decision::Write(None),
        Change::Keep => Decision::Keep,
    })
}

/// A decision about one provider, made against its current state (`None` when it does not
/// exist). An `Err` leaves the store as it was.
pub type Mutation = Box<dyn FnOnce(Option<&StoredProvider>) -> Result<Change, Error> + Send>;

/// A provider before and after an accepted mutation, and the revision it made (none when the
/// mutation kept the provider as it was).
#[derive(Debug)]
pub struct Written {
    pub before: Option<Arc<StoredProvider>>,
    pub after: Option<Arc<StoredProvider>>,
    pub revision: Option<i64>,
}

/// A provider's state after one of its revisions.
#[derive(Debug, Clone)]
pub struct RevisionState {
    pub revision: Revision,
    /// `None` after a delete, or when the state is no longer kept.
    pub state: Option<StoredProvider>,
}

/// The change feed after a revision.
#[derive(Debug)]
pub enum Feed {
    /// Every change after it, oldest first (at most a page), and the latest revision.
    Changes(Vec<ProviderChange>, i64),
    /// The revision is older than the oldest change kept.
    Compacted,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// One provider, by name.
    async fn get(&self, name: &str) -> Result<Option<Arc<StoredProvider>>, Error>;

    /// Every provider, sorted by name, and the store's revision they are the state of.
    async fn list(&self) -> Result<(Vec<Arc<StoredProvider>>, i64), Error>;

    /// Applies `mutation` to provider `name`; returns once the result, and its revision, are
    /// durable.
    async fn modify(
        &self,
        name: &str,
        mutation: Mutation,
        meta: WriteMeta,
    ) -> Result<Written, Error>;

    /// A provider's kept revisions, newest first (at most `limit`, older than `before`), and
    /// how many are kept; `None` when it has none.
    async fn history(
        &self,
        name: &str,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Option<(Vec<Revision>, usize)>, Error>;

    /// Revision `revision` of provider `name`, with the state it left when that is kept.
    async fn revision(&self, name: &str, revision: i64) -> Result<Option<RevisionState>, Error>;

    /// The changes after revision `since`, oldest first, at most `limit`.
    async fn changes(&self, since: i64, limit: usize) -> Result<Feed, Error>;

    /// The latest revision this store knows of, updated as writes land (through any replica):
    /// the change feed waits on it.
    fn watch(&self) -> tokio::sync::watch::Receiver<i64>;

    /// Whether the store answers.
    async fn health(&self) -> Result<(), Error>;

    /// A random key the store made when it was created and keeps (in clear: it guards the
    /// `config_hash` responses show from offline guessing, not the store), the same for every
    /// replica and after every restart; a new one for each `memory://` store.
    fn hash_key(&self) -> [u8; 32];

    /// The whole store in one snapshot: providers, every revision kept with its state, the
    /// feed's position and the `config_hash` key (see [`transfer`]). A state that does not
    /// open with the store's keys fails it.
    async fn export(&self) -> Result<Snapshot, Error>;

    /// Writes `snapshot` as the store's whole content in one transaction, its states sealed as
    /// the store seals; revision numbers, times, `ETag`s and the `config_hash` key are kept as
    /// they are. With [`Mode::IntoEmpty`], a store that holds anything is left as it is
    /// ([`Imported::NotEmpty`]). Nothing is pruned or compacted here: the retention applies from
    /// the next write on.
    async fn import(
        &self,
        snapshot: Arc<Snapshot>,
        mode: Mode,
        progress: Progress,
    ) -> Result<Imported, Error>;
}

/// How a store is opened.
pub struct Options {
    /// Whether secrets are sealed at rest.
    pub codec: Codec,
    /// The most any wait on a database server (PostgreSQL) lasts.
    pub timeout: Duration,
    /// How long revisions are kept.
    pub retention: Retention,
}

/// How long a request waits on the database by default (`--store-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default store: a SQLite file under `./data/`, created on first start.
pub const DEFAULT_URL: &str = "sqlite://./data/bifrost-providers.db";

/// Opens the store a URL names: `sqlite://PATH` (a file, created with its folder when missing),
/// `postgres://…` (a PostgreSQL database, migrated at start) or `memory://` (nothing survives
/// the process).
pub async fn open(url: &str, options: Options) -> Result<Arc<dyn Store>, String> {
    let Options {
        codec,
        timeout,
        retention,
    } = options;
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(format!("store URL {url:?} names no file"));
        }
        let path = std::path::PathBuf::from(path);
        let store =
            tokio::task::spawn_blocking(move || LocalStore::open_sqlite(&path, codec, retention))
                .await
                .map_err(|e| format!("cannot open the SQLite store: {e}"))??;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(
            PostgresStore::open(url, codec, timeout, retention).await?,
        ));
    }
    if url == "memory://" || url == "memory:" {
        return Ok(Arc::new(LocalStore::memory(retention)));
    }
    Err(format!(
        "unsupported store URL {}: use sqlite://PATH, postgres://USER@HOST/DATABASE or memory://",
        shown_url(url)
    ))
}

/// A store URL as logs and messages may show it: any password replaced by `***`.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) if url.contains('@') => "(a URL that cannot be parsed)".into(),
        Err(_) => url.to_string(),
    }
}
