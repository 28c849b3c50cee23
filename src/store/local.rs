//! A store held in memory, optionally backed by a SQLite file: reads come from memory, writes go
//! through one writer thread that applies them to the file first.
//!
//! The writer takes whatever writes are queued (up to [`MAX_BATCH`]), decides each against the
//! state left by the ones before it, commits them in one transaction, and only then publishes the
//! new states and answers the writers. A failed commit publishes nothing and fails every write of
//! the batch: memory and file stay equal.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};

use super::sealing::Codec;
use super::sqlite::Disk;
use super::{Change, Mutation, Store, Written};
use crate::error::Error;
use crate::provider::StoredProvider;

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 256;

type Providers = BTreeMap<String, Arc<StoredProvider>>;

enum Job {
    Modify {
        name: String,
        mutation: Mutation,
        reply: oneshot::Sender<Result<Written, Error>>,
    },
    Ping(oneshot::Sender<Result<(), Error>>),
}

pub struct LocalStore {
    providers: Arc<RwLock<Providers>>,
    jobs: mpsc::UnboundedSender<Job>,
}

impl LocalStore {
    /// A store that keeps nothing beyond the process.
    pub fn memory() -> Self {
        Self::start(None, Vec::new())
    }

    /// A store backed by the SQLite file at `path`, created when missing, its secrets written
    /// as `codec` says.
    pub fn open_sqlite(path: &std::path::Path, codec: Codec) -> Result<Self, String> {
        let (disk, providers) = Disk::open(path, codec)?;
        Ok(Self::start(Some(disk), providers))
    }

    fn start(disk: Option<Disk>, loaded: Vec<StoredProvider>) -> Self {
        let providers: Providers = loaded
            .into_iter()
            .map(|p| (p.name.clone(), Arc::new(p)))
            .collect();
        let providers = Arc::new(RwLock::new(providers));
        let (jobs, queue) = mpsc::unbounded_channel();
        let shared = Arc::clone(&providers);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                Writer {
                    providers: shared,
                    disk,
                    failing: None,
                }
                .run(queue)
            })
            .expect("spawn the store writer thread");
        LocalStore { providers, jobs }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Providers> {
        self.providers.read().unwrap_or_else(|e| e.into_inner())
    }

    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Job,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(job(reply))
            .map_err(|_| Error::Store("the store writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Store("the store writer dropped a write".into()))?
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    async fn get(&self, name: &str) -> Result<Option<Arc<StoredProvider>>, Error> {
        Ok(self.read().get(name).cloned())
    }

    async fn list(&self) -> Result<Vec<Arc<StoredProvider>>, Error> {
        Ok(self.read().values().cloned().collect())
    }

    async fn modify(&self, name: &str, mutation: Mutation) -> Result<Written, Error> {
        let name = name.to_string();
        self.submit(|reply| Job::Modify {
            name,
            mutation,
            reply,
        })
        .await
    }

    async fn health(&self) -> Result<(), Error> {
        self.submit(Job::Ping).await
    }
}

struct Writer {
    providers: Arc<RwLock<Providers>>,
    disk: Option<Disk>,
    /// After a failed commit, the size of its largest configuration: `/health` is 503 until a
    /// write that large commits again.
    failing: Option<usize>,
}

type Reply = oneshot::Sender<Result<Written, Error>>;

impl Writer {
    fn run(mut self, mut queue: mpsc::UnboundedReceiver<Job>) {
        while let Some(first) = queue.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.apply(batch);
        }
    }

    fn apply(&mut self, batch: Vec<Job>) {
        let mut staged: HashMap<String, Option<Arc<StoredProvider>>> = HashMap::new();
        let mut order = Vec::new();
        let mut answers: Vec<(Reply, Result<Written, Error>)> = Vec::new();
        for job in batch {
            let (name, mutation, reply) = match job {
                Job::Modify {
                    name,
                    mutation,
                    reply,
                } => (name, mutation, reply),
                Job::Ping(reply) => {
                    let _ = reply.send(self.ping());
                    continue;
                }
            };
            let before = match staged.get(&name) {
                Some(state) => state.clone(),
                None => self
                    .providers
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&name)
                    .cloned(),
            };
            let decided =
                std::panic::catch_unwind(AssertUnwindSafe(|| mutation(before.as_deref())))
                    .unwrap_or_else(|_| Err(Error::Store("a write panicked".into())));
            let result = decided.map(|change| {
                let after = match change {
                    Change::Put(mut p) => {
                        p.etag = crate::precondition::new_tag();
                        Some(Arc::from(p))
                    }
                    Change::Delete => None,
                    Change::Keep => {
                        return Written {
                            after: before.clone(),
                            before,
                        };
                    }
                };
                if !staged.contains_key(&name) {
                    order.push(name.clone());
                }
                staged.insert(name, after.clone());
                Written { before, after }
            });
            answers.push((reply, result));
        }
        let changes: Vec<_> = order
            .into_iter()
            .map(|n| {
                let state = staged.remove(&n).flatten();
                (n, state)
            })
            .collect();
        let persisted = self.persist(&changes);
        if !changes.is_empty() {
            self.failing = persisted.as_ref().err().map(|_| {
                changes
                    .iter()
                    .flat_map(|(_, p)| p.as_ref())
                    .map(|p| serde_json::to_vec(&p.config).map_or(0, |v| v.len()))
                    .max()
                    .unwrap_or(0)
            });
        }
        if let Err(e) = persisted {
            tracing::error!(error = %e, writes = changes.len(), "store commit failed; nothing was changed");
            for (reply, result) in answers {
                let _ = reply.send(result.and(Err(Error::Store(e.clone()))));
            }
            return;
        }
        {
            let mut providers = self.providers.write().unwrap_or_else(|e| e.into_inner());
            for (name, state) in changes {
                match state {
                    Some(p) => providers.insert(name, p),
                    None => providers.remove(&name),
                };
            }
        }
        for (reply, result) in answers {
            let _ = reply.send(result);
        }
    }

    fn persist(&mut self, changes: &[(String, Option<Arc<StoredProvider>>)]) -> Result<(), String> {
        match &mut self.disk {
            Some(disk) if !changes.is_empty() => disk.write(changes),
            _ => Ok(()),
        }
    }

    /// Whether the store serves: the file answers a read, and after a failed commit, a probe
    /// write commits.
    fn ping(&mut self) -> Result<(), Error> {
        let failing = self.failing;
        let Some(disk) = &mut self.disk else {
            return Ok(());
        };
        if let Some(bytes) = failing {
            disk.probe(bytes).map_err(Error::Unavailable)?;
            self.failing = None;
        }
        disk.ping().map_err(Error::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Key, UpdateProviderRequest};

    fn provider(name: &str, models: usize) -> StoredProvider {
        let models = (0..models).map(|i| format!("model-{i:06}")).collect();
        let key = Key {
            id: Some("k".into()),
            models,
            ..Default::default()
        };
        StoredProvider {
            name: name.into(),
            config: UpdateProviderRequest {
                keys: Some(vec![key]),
                ..Default::default()
            },
            config_hash: None,
            etag: String::new(),
        }
    }

    /// What a write stores, apart from the tag the store gives it.
    fn content(p: &StoredProvider) -> (&str, &UpdateProviderRequest) {
        (&p.name, &p.config)
    }

    fn put(p: &StoredProvider) -> Mutation {
        let p = p.clone();
        Box::new(move |_| Ok(Change::Put(Box::new(p))))
    }

    #[tokio::test]
    async fn a_failed_commit_changes_nothing_and_the_store_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.db");
        let (disk, loaded) = Disk::open(&path, Codec::plain()).unwrap();
        // A "disk" of 16 pages: small providers fit, a large one does not.
        disk.limit_pages(16);
        let store = LocalStore::start(Some(disk), loaded);
        let small = provider("openai", 1);
        store.modify("openai", put(&small)).await.unwrap();

        let err = store
            .modify("openai", put(&provider("openai", 20_000)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Store(_)), "{err:?}");
        let err = store
            .modify("anthropic", put(&provider("anthropic", 20_000)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Store(_)), "{err:?}");
        let stored = store.get("openai").await.unwrap().unwrap();
        assert_eq!(content(&stored), content(&small));
        assert_eq!(stored.etag.len(), 32, "the store tags every state");
        assert!(store.get("anthropic").await.unwrap().is_none());
        // Health says so until a write that large fits.
        assert!(matches!(store.health().await, Err(Error::Unavailable(_))));

        let other = provider("groq", 2);
        store.modify("groq", put(&other)).await.unwrap();
        store.health().await.unwrap();

        // The file holds exactly what memory holds.
        drop(store);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let on_disk = loop {
            match Disk::open(&path, Codec::plain()) {
                Ok((_, loaded)) => break loaded,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("{e}"),
            }
        };
        let on_disk: Vec<_> = on_disk.into_iter().map(|p| (p.name, p.config)).collect();
        assert_eq!(
            on_disk,
            vec![(other.name, other.config), (small.name, small.config)]
        );
    }

    #[tokio::test]
    async fn a_refused_write_in_a_batch_does_not_fail_the_others() {
        let store = LocalStore::memory();
        let refused: Mutation = Box::new(|_| Err(Error::invalid_request("invalid_body", "no")));
        let (a, b) = tokio::join!(
            store.modify("bad", refused),
            store.modify("good", put(&provider("good", 1)))
        );
        assert!(a.is_err());
        assert!(b.is_ok());
        let names: Vec<_> = store
            .list()
            .await
            .unwrap()
            .iter()
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(names, ["good"]);
    }
}
