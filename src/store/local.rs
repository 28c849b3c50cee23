//! A store held in memory, optionally backed by a SQLite file: reads come from memory, writes go
//! through one writer thread that applies them to the file first.
//!
//! A write made when no other is being committed is committed at once on the request's own thread
//! (it leaves the async runtime's worker for the commit, with `block_in_place`): no hand-off to
//! another thread and back when there is nothing to batch. A write that arrives while a commit
//! runs is queued, and the writer thread (or the next request that finds the writer free) takes
//! whatever writes are queued (up to [`MAX_BATCH`]), decides each against the
//! state left by the ones before it, numbers each accepted write with the next revision, commits
//! them and their revisions in one transaction, and only then publishes the new states and
//! answers the writers. A failed commit publishes nothing and fails every write of the batch:
//! memory and file stay equal, and the revisions it would have used are used by the next batch.
//!
//! The change feed (the recent revisions, summaries only) is kept in memory beside the
//! providers, under the same lock, so a list and its revision are one snapshot. A provider's
//! history and kept states are read from the file (through the writer, which holds it), or, for
//! `memory://`, from memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use tokio::sync::{oneshot, watch};

use super::sealing::{Codec, Row};
use super::sqlite::{Disk, Revisions};
use super::transfer::{Imported, Mode, Progress, Snapshot};
use super::{Decision, Feed, Mutation, RevisionState, Store, Written, decide};
use crate::domain::error::Error;
use crate::domain::history::{Retention, Revision, WriteMeta};
use crate::domain::provider::StoredProvider;
use crate::types::ProviderChange;

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 256;

type Providers = BTreeMap<String, Arc<StoredProvider>>;

/// What readers see: the providers, the latest revision and the change feed, one snapshot.
struct Shared {
    providers: Providers,
    head: i64,
    compacted: i64,
    /// The feed keeps what a watcher is told (not the changed fields), so that its reach costs
    /// little memory.
    feed: VecDeque<ProviderChange>,
    /// See [`Store::hash_key`].
    hash_key: [u8; 32],
}

impl Shared {
    /// Drops feed entries up to `through`.
    fn compact(&mut self, through: i64) {
        self.compacted = self.compacted.max(through);
        while self.feed.front().is_some_and(|r| r.revision <= through) {
            self.feed.pop_front();
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, Error>>;

enum Job {
    /// A write decided by its request: `before` is the state it was decided against (current:
    /// no other write of the provider runs meanwhile), `after` the new one (`None`: delete),
    /// with the paths it changed and, when the store has a file, the row it will write.
    Write {
        name: String,
        before: Option<Arc<StoredProvider>>,
        after: Option<Arc<StoredProvider>>,
        changed: Vec<String>,
        row: Option<Row>,
        meta: WriteMeta,
        reply: Reply<Written>,
        /// The provider's turn, held until the write is applied or refused, even when the
        /// request that made it has gone (its client disconnected): the next write of the
        /// provider then decides against the state this one left.
        turn: tokio::sync::OwnedMutexGuard<()>,
    },
    Ping(Reply<()>),
    History {
        name: String,
        limit: usize,
        before: Option<i64>,
        reply: Reply<Option<(Vec<Revision>, usize)>>,
    },
    Revision {
        name: String,
        revision: i64,
        reply: Reply<Option<RevisionState>>,
    },
    Export(Reply<Snapshot>),
    Import {
        snapshot: Arc<Snapshot>,
        mode: Mode,
        progress: Progress,
        reply: Reply<Imported>,
    },
}

pub struct LocalStore {
    shared: Arc<RwLock<Shared>>,
    engine: Arc<Engine>,
    head: watch::Receiver<i64>,
    /// How the file's rows are written (`None` for `memory://`).
    codec: Option<Arc<Codec>>,
    /// Writes of one provider take turns: a write holds its provider's turn from its decision to
    /// its commit, so that it decides against the current state. Providers share [`TURNS`]
    /// locks by hash (two may wait on each other; never on a third).
    turns: Vec<Arc<tokio::sync::Mutex<()>>>,
}

/// How many locks the providers' turns are spread over.
const TURNS: usize = 256;

/// The writer, and the writes waiting for it.
struct Engine {
    writer: Mutex<Writer>,
    queue: Mutex<Queue>,
    queued: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

impl Engine {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Up to `most` queued jobs, oldest first.
    fn take(queue: &mut Queue, most: usize) -> Vec<Job> {
        let n = queue.jobs.len().min(most);
        queue.jobs.drain(..n).collect()
    }

    /// The writer thread: commits whatever is queued, batch after batch, until the store is
    /// dropped.
    fn run(&self) {
        loop {
            let batch = {
                let mut queue = self.lock_queue();
                while queue.jobs.is_empty() && !queue.closed {
                    queue = self.queued.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
                if queue.jobs.is_empty() {
                    return;
                }
                Self::take(&mut queue, MAX_BATCH)
            };
            self.writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .apply(batch);
        }
    }

    /// Commits `job` (with anything queued before it) on this thread when the writer is free
    /// and the runtime allows blocking here; otherwise hands the job back, to be queued.
    fn commit_here(&self, job: Job) -> Option<Job> {
        let blocking_allowed = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !blocking_allowed {
            return Some(job);
        }
        let Ok(mut writer) = self.writer.try_lock() else {
            return Some(job);
        };
        let mut batch = Self::take(&mut self.lock_queue(), MAX_BATCH - 1);
        batch.push(job);
        tokio::task::block_in_place(|| writer.apply(batch));
        None
    }

    fn queue(&self, job: Job) -> Result<(), Error> {
        let mut queue = self.lock_queue();
        if queue.closed {
            return Err(Error::Store("the store writer has stopped".into()));
        }
        queue.jobs.push_back(job);
        self.queued.notify_one();
        Ok(())
    }
}

impl Drop for LocalStore {
    fn drop(&mut self) {
        self.engine.lock_queue().closed = true;
        self.engine.queued.notify_all();
    }
}

impl LocalStore {
    /// A store that keeps nothing beyond the process.
    pub fn memory(retention: Retention) -> Self {
        let revisions = Revisions {
            head: 0,
            compacted: 0,
            feed: Vec::new(),
        };
        Self::start(None, Vec::new(), revisions, retention)
    }

    /// A store backed by the SQLite file at `path`, created when missing, its secrets written
    /// as `codec` says.
    pub fn open_sqlite(
        path: &std::path::Path,
        codec: Codec,
        retention: Retention,
    ) -> Result<Self, String> {
        let (disk, providers, revisions) = Disk::open(path, codec, retention)?;
        Ok(Self::start(Some(disk), providers, revisions, retention))
    }

    fn start(
        disk: Option<Disk>,
        loaded: Vec<StoredProvider>,
        revisions: Revisions,
        retention: Retention,
    ) -> Self {
        let providers: Providers = loaded
            .into_iter()
            .map(|p| (p.name.clone(), Arc::new(p)))
            .collect();
        let hash_key = disk
            .as_ref()
            .map_or_else(crate::domain::secrets::random_key, |d| d.hash_key);
        let mut shared = Shared {
            providers,
            head: revisions.head,
            compacted: revisions.compacted,
            feed: revisions.feed.iter().map(Revision::change).collect(),
            hash_key,
        };
        let feed_cap = usize::try_from(retention.feed).unwrap_or(usize::MAX);
        let excess = shared.feed.len().saturating_sub(feed_cap);
        if excess > 0 {
            let through = shared.feed[excess - 1].revision;
            shared.compact(through);
        }
        let (tell, head) = watch::channel(shared.head);
        let shared = Arc::new(RwLock::new(shared));
        let codec = disk.as_ref().map(Disk::codec);
        let engine = Arc::new(Engine {
            writer: Mutex::new(Writer {
                shared: Arc::clone(&shared),
                disk,
                memory: MemoryHistory::default(),
                retention,
                failing: None,
                tell,
            }),
            queue: Mutex::default(),
            queued: Condvar::new(),
        });
        let thread_engine = Arc::clone(&engine);
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || thread_engine.run())
            .expect("spawn the store writer thread");
        LocalStore {
            shared,
            engine,
            head,
            codec,
            turns: (0..TURNS)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Shared> {
        self.shared.read().unwrap_or_else(|e| e.into_inner())
    }

    async fn submit<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        if let Some(job) = self.engine.commit_here(job(reply)) {
            self.engine.queue(job)?;
        }
        answer
            .await
            .map_err(|_| Error::Store("the store writer dropped a write".into()))?
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    async fn get(&self, name: &str) -> Result<Option<Arc<StoredProvider>>, Error> {
        Ok(self.read().providers.get(name).cloned())
    }

    async fn list(&self) -> Result<(Vec<Arc<StoredProvider>>, i64), Error> {
        let shared = self.read();
        Ok((shared.providers.values().cloned().collect(), shared.head))
    }

    async fn modify(
        &self,
        name: &str,
        mutation: Mutation,
        meta: WriteMeta,
    ) -> Result<Written, Error> {
        // The decision, its diff and its encoding (sealing) run here, in the request's task, in
        // parallel with other providers' writes; the writer only numbers, writes and commits.
        let turn = {
            use std::hash::BuildHasher;
            let hash =
                std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default().hash_one(name);
            Arc::clone(&self.turns[(hash % TURNS as u64) as usize])
        };
        let turn = turn.lock_owned().await;
        let before = self.read().providers.get(name).cloned();
        let after = match decide(mutation, before.as_deref())? {
            Decision::Write(after) => after,
            Decision::Keep => {
                return Ok(Written {
                    after: before.clone(),
                    before,
                    revision: None,
                });
            }
        };
        let changed = crate::domain::history::changed(before.as_deref(), after.as_deref());
        let row = match (&self.codec, &after) {
            (Some(codec), Some(p)) => Some(codec.encode(p).map_err(Error::Store)?),
            _ => None,
        };
        let name = name.to_string();
        self.submit(|reply| Job::Write {
            name,
            before,
            after,
            changed,
            row,
            meta,
            reply,
            turn,
        })
        .await
    }

    async fn health(&self) -> Result<(), Error> {
        self.submit(Job::Ping).await
    }

    fn hash_key(&self) -> [u8; 32] {
        self.read().hash_key
    }

    async fn export(&self) -> Result<Snapshot, Error> {
        self.submit(Job::Export).await
    }

    async fn import(
        &self,
        snapshot: Arc<Snapshot>,
        mode: Mode,
        progress: Progress,
    ) -> Result<Imported, Error> {
        self.submit(|reply| Job::Import {
            snapshot,
            mode,
            progress,
            reply,
        })
        .await
    }

    async fn history(
        &self,
        name: &str,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Option<(Vec<Revision>, usize)>, Error> {
        let name = name.to_string();
        self.submit(|reply| Job::History {
            name,
            limit,
            before,
            reply,
        })
        .await
    }

    async fn revision(&self, name: &str, revision: i64) -> Result<Option<RevisionState>, Error> {
        let name = name.to_string();
        self.submit(|reply| Job::Revision {
            name,
            revision,
            reply,
        })
        .await
    }

    async fn changes(&self, since: i64, limit: usize) -> Result<Feed, Error> {
        let shared = self.read();
        if since < shared.compacted {
            return Ok(Feed::Compacted);
        }
        let start = shared.feed.partition_point(|r| r.revision <= since);
        let changes = shared.feed.range(start..).take(limit).cloned().collect();
        Ok(Feed::Changes(changes, shared.head))
    }

    fn watch(&self) -> watch::Receiver<i64> {
        self.head.clone()
    }
}

/// A revision and the state it left, when kept.
type Kept = (Revision, Option<Arc<StoredProvider>>);

/// The history of a `memory://` store: each provider's revisions with the states kept.
#[derive(Default)]
struct MemoryHistory {
    by_provider: HashMap<String, Vec<Kept>>,
}

impl MemoryHistory {
    fn append(&mut self, revisions: &[Kept], retention: Retention) {
        for (revision, state) in revisions {
            let kept = self
                .by_provider
                .entry(revision.provider.clone())
                .or_default();
            kept.push((revision.clone(), state.clone()));
            // States beyond the retention's count are dropped, then summaries beyond ten times it.
            let with_state = kept.iter().filter(|(_, s)| s.is_some()).count();
            let mut excess = with_state.saturating_sub(retention.per_provider);
            for (_, s) in kept.iter_mut() {
                if excess == 0 {
                    break;
                }
                if s.take().is_some() {
                    excess -= 1;
                }
            }
            let cap = retention.per_provider.saturating_mul(10).max(1);
            if kept.len() > cap {
                kept.drain(..kept.len() - cap);
            }
        }
    }

    fn history(
        &self,
        name: &str,
        limit: usize,
        before: Option<i64>,
    ) -> Option<(Vec<Revision>, usize)> {
        let kept = self.by_provider.get(name).filter(|k| !k.is_empty())?;
        let page = kept
            .iter()
            .rev()
            .filter(|(r, _)| before.is_none_or(|b| r.revision < b))
            .take(limit)
            .map(|(r, _)| r.clone())
            .collect();
        Some((page, kept.len()))
    }

    fn revision(&self, name: &str, revision: i64) -> Option<RevisionState> {
        let (r, state) = self
            .by_provider
            .get(name)?
            .iter()
            .find(|(r, _)| r.revision == revision)?;
        Some(RevisionState {
            revision: r.clone(),
            state: state.as_deref().cloned(),
        })
    }
}

struct Writer {
    shared: Arc<RwLock<Shared>>,
    disk: Option<Disk>,
    memory: MemoryHistory,
    retention: Retention,
    /// After a failed commit, the size of its largest configuration: `/health` is 503 until a
    /// write that large commits again.
    failing: Option<usize>,
    tell: watch::Sender<i64>,
}

impl Writer {
    fn head(&self) -> i64 {
        self.shared.read().unwrap_or_else(|e| e.into_inner()).head
    }

    fn apply(&mut self, batch: Vec<Job>) {
        let mut staged: HashMap<String, Option<Arc<StoredProvider>>> = HashMap::new();
        let mut order = Vec::new();
        let mut revisions: Vec<Kept> = Vec::new();
        let mut answers: Vec<(Reply<Written>, Result<Written, Error>)> = Vec::new();
        let mut next = self.head() + 1;
        let mut encoded = HashMap::new();
        // The turns of the batch's writes, given back once the batch is applied (or refused).
        let mut turns = Vec::new();
        for job in batch {
            let (name, before, after, changed, row, meta, reply) = match job {
                Job::Write {
                    name,
                    before,
                    after,
                    changed,
                    row,
                    meta,
                    reply,
                    turn,
                } => {
                    turns.push(turn);
                    (name, before, after, changed, row, meta, reply)
                }
                Job::Ping(reply) => {
                    let _ = reply.send(self.ping());
                    continue;
                }
                Job::History {
                    name,
                    limit,
                    before,
                    reply,
                } => {
                    let found = match &self.disk {
                        Some(disk) => disk.history(&name, limit, before).map_err(Error::Store),
                        None => Ok(self.memory.history(&name, limit, before)),
                    };
                    let _ = reply.send(found);
                    continue;
                }
                Job::Revision {
                    name,
                    revision,
                    reply,
                } => {
                    let found = match &self.disk {
                        Some(disk) => disk.revision(&name, revision).map_err(Error::Store),
                        None => Ok(self.memory.revision(&name, revision)),
                    };
                    let _ = reply.send(found);
                    continue;
                }
                Job::Export(reply) => {
                    let _ = reply.send(self.export());
                    continue;
                }
                Job::Import {
                    snapshot,
                    mode,
                    progress,
                    reply,
                } => {
                    let result = if staged.is_empty() {
                        self.import(&snapshot, mode, &progress)
                    } else {
                        Err(Error::Store(
                            "the store was being written to; nothing was imported".into(),
                        ))
                    };
                    let _ = reply.send(result);
                    continue;
                }
            };
            let current = match staged.get(&name) {
                Some(state) => state.clone(),
                None => self
                    .shared
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .providers
                    .get(&name)
                    .cloned(),
            };
            // Writes of a provider take turns, so this holds; if it ever did not, the write is
            // refused rather than applied over a state it did not see.
            let same = match (&current, &before) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                let _ = reply.send(Err(Error::Store(format!(
                    "a write of {name:?} was decided against a state that is no longer current"
                ))));
                continue;
            }
            let revision = next;
            next += 1;
            if let (Some(row), Some(p)) = (row, &after) {
                encoded.insert(Arc::as_ptr(p), row);
            }
            revisions.push((
                Revision::of_write(
                    revision,
                    &name,
                    before.as_deref(),
                    after.as_deref(),
                    &meta,
                    changed,
                ),
                after.clone(),
            ));
            if !staged.contains_key(&name) {
                order.push(name.clone());
            }
            staged.insert(name, after.clone());
            answers.push((
                reply,
                Ok(Written {
                    before,
                    after,
                    revision: Some(revision),
                }),
            ));
        }
        let changes: Vec<_> = order
            .into_iter()
            .map(|n| {
                let state = staged.remove(&n).flatten();
                (n, state)
            })
            .collect();
        let persisted = self.persist(&changes, &revisions, encoded);
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
        let head = {
            let mut shared = self.shared.write().unwrap_or_else(|e| e.into_inner());
            for (name, state) in changes {
                match state {
                    Some(p) => shared.providers.insert(name, p),
                    None => shared.providers.remove(&name),
                };
            }
            if let Some((last, _)) = revisions.last() {
                shared.head = last.revision;
            }
            shared
                .feed
                .extend(revisions.iter().map(|(r, _)| r.change()));
            let feed_cap = usize::try_from(self.retention.feed).unwrap_or(usize::MAX);
            let excess = shared.feed.len().saturating_sub(feed_cap);
            if excess > 0 {
                let through = shared.feed[excess - 1].revision;
                shared.compact(through);
            }
            shared.head
        };
        for (reply, result) in answers {
            let _ = reply.send(result);
        }
        if !revisions.is_empty() {
            self.tell.send_replace(head);
        }
        let every = self.retention.compact_every();
        let first = revisions.first().map_or(head, |(r, _)| r.revision);
        if first / every != (head + 1) / every {
            self.compact();
        }
    }

    /// Drops what the retention no longer keeps from the file, and from the feed.
    fn compact(&mut self) {
        let Some(disk) = &mut self.disk else {
            return;
        };
        match disk.compact() {
            Ok(Some(through)) => self
                .shared
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .compact(through),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not compact the history"),
        }
    }

    fn persist(
        &mut self,
        changes: &[(String, Option<Arc<StoredProvider>>)],
        revisions: &[Kept],
        encoded: HashMap<*const StoredProvider, Row>,
    ) -> Result<(), String> {
        if changes.is_empty() {
            return Ok(());
        }
        match &mut self.disk {
            Some(disk) => disk.write(changes, revisions, encoded),
            None => {
                self.memory.append(revisions, self.retention);
                Ok(())
            }
        }
    }

    /// The whole store: from the file, or for `memory://` from memory.
    fn export(&self) -> Result<Snapshot, Error> {
        if let Some(disk) = &self.disk {
            return disk.export().map_err(Error::Store);
        }
        let shared = self.shared.read().unwrap_or_else(|e| e.into_inner());
        let mut revisions: Vec<_> = self
            .memory
            .by_provider
            .values()
            .flatten()
            .map(|(r, state)| (r.clone(), state.as_deref().cloned()))
            .collect();
        revisions.sort_by_key(|(r, _)| r.revision);
        Ok(Snapshot {
            hash_key: shared.hash_key,
            head: shared.head,
            compacted: shared.compacted,
            providers: shared.providers.values().map(|p| (**p).clone()).collect(),
            revisions,
            sealed_with: std::collections::BTreeSet::new(),
        })
    }

    /// Writes `snapshot` as the store's whole content (to the file first), then publishes it.
    fn import(
        &mut self,
        snapshot: &Snapshot,
        mode: Mode,
        progress: &Progress,
    ) -> Result<Imported, Error> {
        match &mut self.disk {
            Some(disk) => {
                if disk
                    .import(snapshot, mode, progress)
                    .map_err(Error::Store)?
                    == Imported::NotEmpty
                {
                    return Ok(Imported::NotEmpty);
                }
            }
            None => {
                let shared = self.shared.read().unwrap_or_else(|e| e.into_inner());
                let empty = shared.providers.is_empty()
                    && shared.head == 0
                    && self.memory.by_provider.is_empty();
                drop(shared);
                if !empty && mode == Mode::IntoEmpty {
                    return Ok(Imported::NotEmpty);
                }
                let mut by_provider: HashMap<String, Vec<Kept>> = HashMap::new();
                for (revision, state) in &snapshot.revisions {
                    by_provider
                        .entry(revision.provider.clone())
                        .or_default()
                        .push((revision.clone(), state.clone().map(Arc::new)));
                }
                self.memory.by_provider = by_provider;
                progress(snapshot.records());
            }
        }
        {
            let mut shared = self.shared.write().unwrap_or_else(|e| e.into_inner());
            shared.providers = snapshot
                .providers
                .iter()
                .map(|p| (p.name.clone(), Arc::new(p.clone())))
                .collect();
            shared.head = snapshot.head;
            shared.compacted = snapshot.compacted;
            shared.feed = snapshot
                .revisions
                .iter()
                .filter(|(r, _)| r.revision > snapshot.compacted)
                .map(|(r, _)| r.change())
                .collect();
            shared.hash_key = snapshot.hash_key;
        }
        self.failing = None;
        self.tell.send_replace(snapshot.head);
        Ok(Imported::Written)
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
    use crate::store::Change;
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

    impl LocalStore {
        async fn modify_api(&self, name: &str, mutation: Mutation) -> Result<Written, Error> {
            let meta = WriteMeta {
                source: crate::domain::history::Source::Api,
                actor: "test".into(),
                unverified_actor: None,
            };
            self.modify(name, mutation, meta).await
        }
    }

    fn put(p: &StoredProvider) -> Mutation {
        let p = p.clone();
        Box::new(move |_| Ok(Change::Put(Box::new(p))))
    }

    /// A write whose request is dropped (its client went away) after it reached the writer
    /// still holds its provider's turn until it is applied: the next write decides against the
    /// state it left instead of being refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_whose_caller_left_keeps_its_turn() {
        let store = Arc::new(LocalStore::memory(Retention::default()));
        // The writer is busy (held by another thread) until `release`.
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (held, holding) = std::sync::mpsc::channel();
        let holder = {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let _busy = store.engine.writer.lock().unwrap();
                held.send(()).unwrap();
                let _ = released.recv();
            })
        };
        holding.recv().unwrap();
        let first = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .modify_api("openai", put(&provider("openai", 1)))
                    .await
            })
        };
        // The first write holds its provider's turn (a second reference to the turn's lock):
        // from there to the writer it does not yield, so it is aborted with its job queued.
        while store.turns.iter().all(|t| Arc::strong_count(t) == 1) {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        first.abort();
        let _ = first.await;
        let second = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .modify_api("openai", put(&provider("openai", 2)))
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        holder.join().unwrap();
        let written = second.await.unwrap().expect("the next write is applied");
        assert_eq!(written.revision, Some(2));
        let stored = store.get("openai").await.unwrap().unwrap();
        assert_eq!(content(&stored), content(&provider("openai", 2)));
    }

    #[tokio::test]
    async fn a_failed_commit_changes_nothing_and_the_store_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.db");
        let (disk, loaded, revisions) =
            Disk::open(&path, Codec::plain(), Retention::default()).unwrap();
        // A "disk" of 24 pages: small providers fit, a large one does not.
        disk.limit_pages(24);
        let store = LocalStore::start(Some(disk), loaded, revisions, Retention::default());
        let small = provider("openai", 1);
        store.modify_api("openai", put(&small)).await.unwrap();

        let err = store
            .modify_api("openai", put(&provider("openai", 20_000)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Store(_)), "{err:?}");
        let err = store
            .modify_api("anthropic", put(&provider("anthropic", 20_000)))
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
        store.modify_api("groq", put(&other)).await.unwrap();
        store.health().await.unwrap();

        // The file holds exactly what memory holds.
        drop(store);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let on_disk = loop {
            match Disk::open(&path, Codec::plain(), Retention::default()) {
                Ok((_, loaded, _)) => break loaded,
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
        let store = LocalStore::memory(Retention::default());
        let refused: Mutation = Box::new(|_| Err(Error::invalid_request("invalid_body", "no")));
        let (a, b) = tokio::join!(
            store.modify_api("bad", refused),
            store.modify_api("good", put(&provider("good", 1)))
        );
        assert!(a.is_err());
        assert!(b.is_ok());
        let names: Vec<_> = store
            .list()
            .await
            .unwrap()
            .0
            .iter()
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(names, ["good"]);
    }

    /// A store with a history: two creates, an update, a delete.
    async fn with_history(store: &LocalStore) {
        store
            .modify_api("openai", put(&provider("openai", 1)))
            .await
            .unwrap();
        store
            .modify_api("groq", put(&provider("groq", 1)))
            .await
            .unwrap();
        store
            .modify_api("openai", put(&provider("openai", 3)))
            .await
            .unwrap();
        store
            .modify_api("groq", Box::new(|_| Ok(Change::Delete)))
            .await
            .unwrap();
    }

    fn no_progress() -> Progress {
        Arc::new(|_| {})
    }

    /// Export, then import into an empty store: the same content (tags, revision numbers,
    /// deleted providers' history, the feed, the hash key); into a store that holds anything
    /// else, nothing is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_export_imports_whole_into_an_empty_store_only() {
        let source = LocalStore::memory(Retention::default());
        with_history(&source).await;
        let snapshot = Arc::new(source.export().await.unwrap());
        assert_eq!((snapshot.head, snapshot.revisions.len()), (4, 4));
        assert!(
            snapshot.revisions[3].1.is_none(),
            "the delete left no state"
        );

        let dir = tempfile::tempdir().unwrap();
        let sealer = || {
            crate::store::Sealer::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
                .unwrap()
        };
        let path = dir.path().join("target.db");
        let target =
            LocalStore::open_sqlite(&path, Codec::sealing(sealer()), Retention::default()).unwrap();
        let imported = target
            .import(Arc::clone(&snapshot), Mode::IntoEmpty, no_progress())
            .await
            .unwrap();
        assert_eq!(imported, Imported::Written);
        assert!(target.export().await.unwrap().same_content(&snapshot));
        assert_eq!(target.hash_key(), source.hash_key());
        let Feed::Changes(changes, head) = target.changes(0, 100).await.unwrap() else {
            panic!("compacted");
        };
        let Feed::Changes(expected, _) = source.changes(0, 100).await.unwrap() else {
            panic!("compacted");
        };
        assert_eq!((changes, head), (expected, 4));
        // The next write continues the numbering.
        let written = target
            .modify_api("openai", put(&provider("openai", 5)))
            .await
            .unwrap();
        assert_eq!(written.revision, Some(5));

        // Into a store holding anything: refused, and it stays as it was.
        let before = target.export().await.unwrap();
        let imported = target
            .import(Arc::clone(&snapshot), Mode::IntoEmpty, no_progress())
            .await
            .unwrap();
        assert_eq!(imported, Imported::NotEmpty);
        assert!(target.export().await.unwrap().same_content(&before));
        drop(target);

        // Read back from the file with the key: the same again, every row sealed with it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let reopened = loop {
            match LocalStore::open_sqlite(&path, Codec::sealing(sealer()), Retention::default()) {
                Ok(store) => break store,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("{e}"),
            }
        };
        let read = reopened.export().await.unwrap();
        assert!(read.same_content(&before));
        assert_eq!(
            read.sealed_with.into_iter().collect::<Vec<_>>(),
            [Some(sealer().id().to_string())]
        );
    }

    /// An import that fails midway (the disk fills up) leaves the store as it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_import_leaves_the_store_as_it_was() {
        let source = LocalStore::memory(Retention::default());
        for i in 0..40 {
            source
                .modify_api(&format!("p{i}"), put(&provider(&format!("p{i}"), 400)))
                .await
                .unwrap();
        }
        let snapshot = Arc::new(source.export().await.unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (disk, loaded, revisions) = Disk::open(
            &dir.path().join("full.db"),
            Codec::plain(),
            Retention::default(),
        )
        .unwrap();
        disk.limit_pages(24);
        let target = LocalStore::start(Some(disk), loaded, revisions, Retention::default());
        let before = target.export().await.unwrap();
        assert!(before.is_empty());
        let err = target
            .import(Arc::clone(&snapshot), Mode::Replace, no_progress())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Store(_)), "{err:?}");
        let after = target.export().await.unwrap();
        assert!(after.same_content(&before));
        assert_eq!(target.list().await.unwrap(), (Vec::new(), 0));
    }
}
