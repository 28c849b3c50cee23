//! Where providers live, behind one trait so that stores can be swapped by URL.
//!
//! A store applies a [`Mutation`] to one provider atomically: the mutation sees the current
//! state, decides the new one (or refuses, and nothing changes), and the caller hears back only
//! once the change is durable. Writes to one provider are serialised; readers see either the
//! state before a write or the state after it, never a part of it.

mod local;
mod postgres;
mod sealing;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::provider::StoredProvider;

pub use local::LocalStore;
pub use postgres::PostgresStore;
pub use sealing::{Codec, Sealer};

/// What a mutation decides.
pub enum Change {
    /// Store this as the provider's new state.
    Put(Box<StoredProvider>),
    /// Delete the provider.
    Delete,
    /// Leave the provider as it is (no write, no new tag).
    Keep,
}

/// A decision about one provider, made against its current state (`None` when it does not
/// exist). An `Err` leaves the store as it was.
pub type Mutation = Box<dyn FnOnce(Option<&StoredProvider>) -> Result<Change, Error> + Send>;

/// A provider before and after an accepted mutation.
#[derive(Debug)]
pub struct Written {
    pub before: Option<Arc<StoredProvider>>,
    pub after: Option<Arc<StoredProvider>>,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// One provider, by name.
    async fn get(&self, name: &str) -> Result<Option<Arc<StoredProvider>>, Error>;

    /// Every provider, sorted by name.
    async fn list(&self) -> Result<Vec<Arc<StoredProvider>>, Error>;

    /// Applies `mutation` to provider `name`; returns once the result is durable.
    async fn modify(&self, name: &str, mutation: Mutation) -> Result<Written, Error>;

    /// Whether the store answers.
    async fn health(&self) -> Result<(), Error>;
}

/// How long a request waits on the database by default (`--store-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default store: a SQLite file under `./data/`, created on first start.
pub const DEFAULT_URL: &str = "sqlite://./data/bifrost-providers.db";

/// Opens the store a URL names: `sqlite://PATH` (a file, created with its folder when missing),
/// `postgres://…` (a PostgreSQL database, migrated at start) or `memory://` (nothing survives
/// the process). `codec` says whether secrets are sealed at rest; `timeout` bounds every wait
/// on a database server (PostgreSQL).
pub async fn open(url: &str, codec: Codec, timeout: Duration) -> Result<Arc<dyn Store>, String> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(format!("store URL {url:?} names no file"));
        }
        let path = std::path::PathBuf::from(path);
        let store = tokio::task::spawn_blocking(move || LocalStore::open_sqlite(&path, codec))
            .await
            .map_err(|e| format!("cannot open the SQLite store: {e}"))??;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::open(url, codec, timeout).await?));
    }
    if url == "memory://" || url == "memory:" {
        return Ok(Arc::new(LocalStore::memory()));
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
