//! The PostgreSQL store: the shared state of several server replicas.
//!
//! Nothing is cached: every read goes to the database, so a write through one replica is seen by
//! the next read through any other. A write runs in one transaction that first takes a
//! transaction-scoped advisory lock on the provider's name, so writers to one provider queue up
//! across replicas (creation included, which a row lock could not cover), then reads the current
//! row, decides, writes and commits. The writer hears back only after the commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres_rustls::MakeRustlsConnect;

use tokio::sync::watch;

use super::sealing::{Codec, Row};
use super::transfer::{Imported, Mode, PROGRESS_EVERY, Progress, Snapshot};
use super::{Decision, Feed, Mutation, RevisionState, Store, Written, decide};
use crate::domain::error::Error;
use crate::domain::history::{Retention, Revision, Source, WriteMeta};
use crate::domain::provider::StoredProvider;
use crate::types::RevisionAction;

/// Schema migrations, applied in order at start, each once; `bifrost_schema_migrations` records
/// those applied. An advisory lock keeps replicas that start together from racing.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE providers (
        name TEXT PRIMARY KEY,
        config JSONB NOT NULL,
        config_hash TEXT,
        etag TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )",
    "ALTER TABLE providers ADD COLUMN sealed_with TEXT",
    "CREATE TABLE bifrost_health (id INTEGER PRIMARY KEY, at TIMESTAMPTZ NOT NULL)",
    // Revisions: one row each, numbered from `bifrost_revision.head`, whose row lock orders the
    // commits of writers on every replica; `config` is the state left (NULL after a delete or
    // once pruned).
    "CREATE TABLE bifrost_history (
        revision BIGINT PRIMARY KEY, provider TEXT NOT NULL, at TEXT NOT NULL,
        action TEXT NOT NULL, source TEXT NOT NULL, actor TEXT NOT NULL, changed TEXT NOT NULL,
        etag TEXT, config JSONB, config_hash TEXT, sealed_with TEXT);
     CREATE INDEX bifrost_history_provider ON bifrost_history (provider, revision);
     CREATE TABLE bifrost_revision (id INTEGER PRIMARY KEY, head BIGINT NOT NULL, compacted BIGINT NOT NULL);
     INSERT INTO bifrost_revision (id, head, compacted) VALUES (1, 0, 0);",
    // Key `models` move to the v1.5 form that can say "no model": a v1.4 `[]` (every model)
    // becomes `["*"]`.
    r#"UPDATE providers SET config = jsonb_set(config, '{keys}', (
        SELECT jsonb_agg(CASE
            WHEN coalesce(jsonb_array_length(k -> 'models'), 0) = 0
            THEN jsonb_set(k, '{models}', '["*"]'::jsonb)
            ELSE k END ORDER BY i)
        FROM jsonb_array_elements(providers.config -> 'keys') WITH ORDINALITY AS e(k, i)))
     WHERE jsonb_typeof(config -> 'keys') = 'array' AND jsonb_array_length(config -> 'keys') > 0"#,
    // The store's own keys, made once (see `Store::hash_key`).
    "CREATE TABLE bifrost_keys (name TEXT PRIMARY KEY, value BYTEA NOT NULL)",
    // What a write's `X-Bifrost-Actor` claimed, beside the verified actor (a token's name).
    "ALTER TABLE bifrost_history ADD COLUMN unverified_actor TEXT",
];

/// The advisory lock key that serialises migrations (an arbitrary constant: "bifrost").
const MIGRATION_LOCK: i64 = 0x0062_6966_726f_7374;

/// Most connections one replica holds.
const POOL_SIZE: usize = 16;

/// The health probe's one-row table, written only while writes are failing.
const PROBE: &str = "INSERT INTO bifrost_health (id, at) VALUES (1, now())
    ON CONFLICT (id) DO UPDATE SET at = excluded.at";

/// One provider, its configuration left out when its `ETag` is `$2` (the state already decoded).
const SELECT_ONE_UNLESS: &str = "SELECT name, CASE WHEN etag = $2 THEN NULL ELSE config::text END,
    config_hash, etag, sealed_with FROM providers WHERE name = $1";
const SELECT_ONE: &str =
    "SELECT name, config::text, config_hash, etag, sealed_with FROM providers WHERE name = $1";
/// Every provider and the revision they are the state of, in one statement (one snapshot).
const SELECT_ALL: &str =
    "SELECT p.name, p.config::text, p.config_hash, p.etag, p.sealed_with, r.head
    FROM bifrost_revision r LEFT JOIN providers p ON true WHERE r.id = 1
    ORDER BY p.name COLLATE \"C\"";
/// The next revision; its row lock, held until commit, makes commits land in revision order.
const NEXT_REVISION: &str =
    "UPDATE bifrost_revision SET head = head + 1 WHERE id = 1 RETURNING head";
const INSERT_REVISION: &str = "INSERT INTO bifrost_history (revision, provider, at, action, source,
    actor, changed, etag, config, config_hash, sealed_with, unverified_actor)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $11, $12)";
/// A provider's states beyond the retention's count are pruned (their summaries stay).
const PRUNE_STATES: &str = "UPDATE bifrost_history SET config = NULL, sealed_with = NULL
    WHERE provider = $1 AND config IS NOT NULL AND revision <= (
        SELECT revision FROM bifrost_history WHERE provider = $1 AND config IS NOT NULL
        ORDER BY revision DESC LIMIT 1 OFFSET $2)";
const NOTIFY: &str = "SELECT pg_notify('bifrost_changes', $1)";
/// The columns of a revision's summary, in the order [`summary`] reads them.
const SUMMARY: &str =
    "revision, provider, at, action, source, actor, changed, etag, unverified_actor";

const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
const UPSERT: &str = "INSERT INTO providers (name, config, config_hash, etag, sealed_with)
    VALUES ($1, $2::text::jsonb, $3, $4, $5)
    ON CONFLICT (name) DO UPDATE SET config = excluded.config,
        config_hash = excluded.config_hash, etag = excluded.etag,
        sealed_with = excluded.sealed_with, updated_at = now()";
const DELETE: &str = "DELETE FROM providers WHERE name = $1";

pub struct PostgresStore {
    pool: Pool,
    codec: Codec,
    retention: Retention,
    /// The latest revision heard of (from this replica's writes and the database's
    /// notifications of every replica's).
    head: watch::Sender<i64>,
    /// The most any store operation waits, connection checkout included.
    timeout: Duration,
    /// Whether the last write failed in the database; `/health` is 503 until a write succeeds.
    failing: AtomicBool,
    /// The providers last read, decoded: a read whose row still has the same `ETag` takes the
    /// decoded state from here instead of decoding (and opening) the row again.
    decoded: Decoded,
    /// See [`Store::hash_key`] (replaced by an import).
    hash_key: std::sync::Mutex<[u8; 32]>,
}

/// Decoded states by name (only ever the stored state of its `ETag`).
#[derive(Default)]
struct Decoded(std::sync::RwLock<HashMap<String, Arc<StoredProvider>>>);

impl Decoded {
    fn get(&self, name: &str) -> Option<Arc<StoredProvider>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<StoredProvider>>> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) and migrates it. With a sealing codec,
    /// providers stored with their secrets in clear are sealed; a provider sealed with another
    /// key (or any, without one) refuses the open, and nothing is changed.
    ///
    /// Every operation is bounded by `timeout`: checkout, statements and commit together. The
    /// database is told the same bound (`statement_timeout`, `lock_timeout`,
    /// `idle_in_transaction_session_timeout`), so it gives up too and frees what it held; a
    /// connection that did not answer in time is dropped, not reused.
    ///
    /// The URL's `sslmode` and `sslrootcert` (libpq's meaning, `prefer` by default) set the TLS
    /// of every connection, the pool's and the change listener's.
    pub async fn open(
        url: &str,
        codec: Codec,
        timeout: Duration,
        retention: Retention,
    ) -> Result<Self, String> {
        let shown = super::shown_url(url);
        let (mut config, tls) = super::tls::configure(url)
            .map_err(|e| format!("invalid PostgreSQL URL {shown}: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeout);
        }
        let ms = timeout.as_millis();
        let bounds = format!(
            "-c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={}",
            ms * 2
        );
        let options = match config.get_options() {
            Some(given) => format!("{given} {bounds}"),
            None => bounds,
        };
        config.options(&options);
        // A database host that vanishes without closing connections (a network partition, a
        // crashed VM) is noticed within seconds rather than when the kernel gives up.
        config
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(15));
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| format!("cannot set up PostgreSQL store {shown}: {e}"))?;
        let (head, _) = watch::channel(0);
        let mut store = PostgresStore {
            pool,
            codec,
            retention,
            head,
            timeout,
            failing: AtomicBool::new(false),
            decoded: Decoded::default(),
            hash_key: std::sync::Mutex::new([0; 32]),
        };
        let key = store
            .migrate()
            .await
            .map_err(|e| format!("cannot set up PostgreSQL store {shown}: {e}"))?;
        *store.hash_key.get_mut().unwrap_or_else(|e| e.into_inner()) = key;
        let current = store
            .bounded(async |client| {
                let row = client
                    .query_one("SELECT head FROM bifrost_revision WHERE id = 1", &[])
                    .await
                    .map_err(failed)?;
                Ok(row.get::<_, i64>(0))
            })
            .await
            .map_err(|e| format!("cannot read PostgreSQL store {shown}: {e}"))?;
        store.head.send_replace(current);
        tokio::spawn(listen(config, tls, store.head.clone()));
        Ok(store)
    }

    /// Applies the migrations not yet applied and returns the store's key (made by the first
    /// start, in the same transaction).
    async fn migrate(&self) -> Result<[u8; 32], String> {
        let mut client = self.pool.get().await.map_err(text)?;
        let tx = client.transaction().await.map_err(text)?;
        let run = async {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(text)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS bifrost_schema_migrations (
                    version INTEGER PRIMARY KEY,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await
            .map_err(text)?;
            let applied: i32 = tx
                .query_one(
                    "SELECT coalesce(max(version), 0) FROM bifrost_schema_migrations",
                    &[],
                )
                .await
                .map_err(text)?
                .get(0);
            if applied as usize > MIGRATIONS.len() {
                return Err(format!(
                    "the database is at schema version {applied}, newer than this server knows ({})",
                    MIGRATIONS.len()
                ));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
                tx.batch_execute(sql).await.map_err(text)?;
                tx.execute(
                    "INSERT INTO bifrost_schema_migrations (version) VALUES ($1)",
                    &[&(i as i32 + 1)],
                )
                .await
                .map_err(text)?;
            }
            tx.execute(
                "INSERT INTO bifrost_keys (name, value) VALUES ('config_hash', $1)
                 ON CONFLICT (name) DO NOTHING",
                &[&crate::domain::secrets::random_key().as_slice()],
            )
            .await
            .map_err(text)?;
            let key: Vec<u8> = tx
                .query_one(
                    "SELECT value FROM bifrost_keys WHERE name = 'config_hash'",
                    &[],
                )
                .await
                .map_err(text)?
                .get(0);
            let key = <[u8; 32]>::try_from(key.as_slice())
                .map_err(|_| "the database holds a malformed key".to_string())?;
            Ok::<_, String>((self.rewrite_stale(&tx).await?, key))
        };
        let (rewritten, key) = run.await?;
        tx.commit().await.map_err(text)?;
        if rewritten > 0 {
            tracing::info!(providers = rewritten, "{}", super::sealing::REWRITTEN);
            // Rewrite the table so the old row versions, secrets in clear, are gone from it.
            if let Err(e) = client.batch_execute("VACUUM FULL providers").await {
                tracing::warn!(error = %e, "could not VACUUM FULL the providers table: old row versions with secrets in clear remain until PostgreSQL vacuums it");
            }
        }
        Ok(key)
    }

    /// Checks that every stored provider opens with this server's codec, then rewrites those not
    /// stored as the codec writes them now (in clear when there is a key, or sealed with a
    /// previous key); returns how many it rewrote. Runs inside the migration transaction, so
    /// replicas starting together do it once, and a refusal changes nothing.
    async fn rewrite_stale(&self, tx: &deadpool_postgres::Transaction<'_>) -> Result<u64, String> {
        let rows = tx
            .query(
                "SELECT name, config::text, config_hash, etag, sealed_with FROM providers FOR UPDATE",
                &[],
            )
            .await
            .map_err(text)?;
        let mut stale = Vec::new();
        for r in &rows {
            let provider = row(r, &self.codec).map_err(|e| e.to_string())?;
            if !self.codec.is_current(r.get::<_, Option<&str>>(4)) {
                stale.push(provider);
            }
        }
        for provider in &stale {
            let sealed = self.codec.encode(provider)?;
            tx.execute(
                "UPDATE providers SET config = $2::text::jsonb, sealed_with = $3 WHERE name = $1",
                &[&provider.name, &sealed.config, &sealed.sealed_with],
            )
            .await
            .map_err(text)?;
        }
        // The states history keeps are sealed the same way.
        let kept = tx
            .query(
                "SELECT revision, provider, config::text, config_hash, etag, sealed_with
                 FROM bifrost_history WHERE config IS NOT NULL FOR UPDATE",
                &[],
            )
            .await
            .map_err(text)?;
        let mut resealed = 0;
        for r in &kept {
            let sealed_with: Option<&str> = r.get(5);
            let name: String = r.get(1);
            let state = StoredProvider {
                config: self.codec.decode(
                    &name,
                    &Row {
                        config: r.get(2),
                        sealed_with: sealed_with.map(str::to_string),
                    },
                )?,
                name,
                config_hash: r.get(3),
                etag: r.get::<_, Option<String>>(4).unwrap_or_default(),
            };
            if self.codec.is_current(sealed_with) {
                continue;
            }
            let sealed = self.codec.encode(&state)?;
            tx.execute(
                "UPDATE bifrost_history SET config = $2::text::jsonb, sealed_with = $3
                 WHERE revision = $1",
                &[&r.get::<_, i64>(0), &sealed.config, &sealed.sealed_with],
            )
            .await
            .map_err(text)?;
            resealed += 1;
        }
        Ok(stale.len() as u64 + resealed)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, Error> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Timeout(_) => self.timed_out(),
            other => failed(other),
        })
    }

    fn timed_out(&self) -> Error {
        Error::Unavailable(format!(
            "the database did not answer within {} ms",
            self.timeout.as_millis()
        ))
    }

    /// Runs `work` on a pooled connection within the store's timeout. A connection whose work
    /// did not finish in time is taken out of the pool (its state is unknown) and dropped.
    async fn bounded<T>(
        &self,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let started = tokio::time::Instant::now();
        let mut client = tokio::time::timeout(self.timeout, self.client())
            .await
            .map_err(|_| self.timed_out())??;
        let left = self.timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, work(&mut client)).await {
            Ok(result) => result,
            Err(_) => {
                drop(deadpool_postgres::Object::take(client));
                Err(self.timed_out())
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn get(&self, name: &str) -> Result<Option<Arc<StoredProvider>>, Error> {
        let known = self.decoded.get(name);
        let etag = known.as_ref().map_or("", |p| p.etag.as_str());
        let found = self
            .bounded(async |client| {
                let statement = client
                    .prepare_cached(SELECT_ONE_UNLESS)
                    .await
                    .map_err(failed)?;
                client
                    .query_opt(&statement, &[&name, &etag])
                    .await
                    .map_err(failed)
            })
            .await?;
        let Some(found) = found else {
            self.decoded.write().remove(name);
            return Ok(None);
        };
        if let Some(known) = known
            && found
                .try_get::<_, Option<String>>(1)
                .map_err(failed)?
                .is_none()
        {
            return Ok(Some(known));
        }
        let stored = Arc::new(row(&found, &self.codec)?);
        self.decoded
            .write()
            .insert(name.to_string(), Arc::clone(&stored));
        Ok(Some(stored))
    }

    async fn list(&self) -> Result<(Vec<Arc<StoredProvider>>, i64), Error> {
        let rows = self
            .bounded(async |client| {
                let statement = client.prepare_cached(SELECT_ALL).await.map_err(failed)?;
                client.query(&statement, &[]).await.map_err(failed)
            })
            .await?;
        let head = rows.first().map_or(0, |r| r.get::<_, i64>(5));
        let mut decoded = self.decoded.write();
        let mut providers = Vec::with_capacity(rows.len());
        for r in rows
            .iter()
            .filter(|r| r.get::<_, Option<String>>(0).is_some())
        {
            let name: String = r.get(0);
            let etag: String = r.get(3);
            let state = match decoded.get(&name) {
                Some(known) if known.etag == etag => Arc::clone(known),
                _ => Arc::new(row(r, &self.codec)?),
            };
            providers.push(state);
        }
        // What is listed is what is stored: forget every other name.
        decoded.clear();
        decoded.extend(providers.iter().map(|p| (p.name.clone(), Arc::clone(p))));
        Ok((providers, head))
    }

    async fn history(
        &self,
        name: &str,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Option<(Vec<Revision>, usize)>, Error> {
        self.bounded(async |client| {
            let total: i64 = client
                .query_one(
                    "SELECT count(*) FROM bifrost_history WHERE provider = $1",
                    &[&name],
                )
                .await
                .map_err(failed)?
                .get(0);
            if total == 0 {
                return Ok(None);
            }
            let rows = client
                .query(
                    &format!(
                        "SELECT {SUMMARY} FROM bifrost_history WHERE provider = $1 AND revision < $2
                         ORDER BY revision DESC LIMIT $3"
                    ),
                    &[&name, &before.unwrap_or(i64::MAX), &(limit as i64)],
                )
                .await
                .map_err(failed)?;
            Ok(Some((rows.iter().map(summary).collect(), total as usize)))
        })
        .await
    }

    async fn revision(&self, name: &str, revision: i64) -> Result<Option<RevisionState>, Error> {
        self.bounded(async |client| {
            let found = client
                .query_opt(
                    &format!(
                        "SELECT {SUMMARY}, config::text, config_hash, sealed_with FROM bifrost_history
                         WHERE provider = $1 AND revision = $2"
                    ),
                    &[&name, &revision],
                )
                .await
                .map_err(failed)?;
            let Some(r) = found else {
                return Ok(None);
            };
            let revision = summary(&r);
            let state = match r.get::<_, Option<String>>(9) {
                Some(config) => Some(StoredProvider {
                    config: self
                        .codec
                        .decode(
                            name,
                            &Row {
                                config,
                                sealed_with: r.get(11),
                            },
                        )
                        .map_err(Error::Store)?,
                    name: name.to_string(),
                    config_hash: r.get(10),
                    etag: revision.etag.clone().unwrap_or_default(),
                }),
                None => None,
            };
            Ok(Some(RevisionState { revision, state }))
        })
        .await
    }

    async fn changes(&self, since: i64, limit: usize) -> Result<Feed, Error> {
        self.bounded(async |client| {
            // One statement: the head, the compaction mark and the rows, one snapshot.
            let rows = client
                .query(
                    &format!(
                        "SELECT r.head, r.compacted, h.* FROM bifrost_revision r
                         LEFT JOIN LATERAL (SELECT {SUMMARY} FROM bifrost_history
                             WHERE revision > $1 ORDER BY revision LIMIT $2) h ON true
                         WHERE r.id = 1"
                    ),
                    &[&since, &(limit as i64)],
                )
                .await
                .map_err(failed)?;
            let Some(first) = rows.first() else {
                return Ok(Feed::Changes(Vec::new(), 0));
            };
            let (head, compacted): (i64, i64) = (first.get(0), first.get(1));
            if since < compacted {
                return Ok(Feed::Compacted);
            }
            let changes = rows
                .iter()
                .filter(|r| r.get::<_, Option<i64>>(2).is_some())
                .map(|r| summary_at(r, 2).change())
                .collect();
            Ok(Feed::Changes(changes, head))
        })
        .await
    }

    fn watch(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    async fn modify(
        &self,
        name: &str,
        mutation: Mutation,
        meta: WriteMeta,
    ) -> Result<Written, Error> {
        let result = self
            .bounded(async |client| self.modify_on(client, name, mutation, meta).await)
            .await;
        if let Ok(Written {
            revision: Some(revision),
            ..
        }) = &result
        {
            self.head.send_if_modified(|head| {
                let newer = *revision > *head;
                *head = (*head).max(*revision);
                newer
            });
            if revision % self.retention.compact_every() == 0 {
                self.compact().await;
            }
        }
        match &result {
            Ok(_) => self.failing.store(false, Ordering::Relaxed),
            Err(Error::Store(_) | Error::Unavailable(_)) => {
                self.failing.store(true, Ordering::Relaxed)
            }
            Err(_) => {}
        }
        result
    }

    /// Answers while the database serves reads, and, after a failed write, only once a write
    /// (a one-row probe) succeeds again.
    fn hash_key(&self) -> [u8; 32] {
        *self.hash_key.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn export(&self) -> Result<Snapshot, Error> {
        self.bounded(async |client| {
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(failed)?;
            let providers = tx
                .query(
                    "SELECT name, config::text, config_hash, etag, sealed_with FROM providers
                     ORDER BY name COLLATE \"C\"",
                    &[],
                )
                .await
                .map_err(failed)?
                .iter()
                .map(|r| row(r, &self.codec))
                .collect::<Result<Vec<_>, _>>()?;
            let history = tx
                .query(
                    &format!(
                        "SELECT {SUMMARY}, config::text, config_hash, sealed_with
                         FROM bifrost_history ORDER BY revision"
                    ),
                    &[],
                )
                .await
                .map_err(failed)?;
            let mut revisions = Vec::with_capacity(history.len());
            for r in &history {
                let revision = summary(r);
                let state = match r.get::<_, Option<String>>(9) {
                    Some(config) => Some(StoredProvider {
                        config: self
                            .codec
                            .decode(
                                &revision.provider,
                                &Row {
                                    config,
                                    sealed_with: r.get(11),
                                },
                            )
                            .map_err(Error::Store)?,
                        name: revision.provider.clone(),
                        config_hash: r.get(10),
                        etag: revision.etag.clone().unwrap_or_default(),
                    }),
                    None => None,
                };
                revisions.push((revision, state));
            }
            let marks = tx
                .query_one(
                    "SELECT head, compacted, (SELECT value FROM bifrost_keys
                         WHERE name = 'config_hash') FROM bifrost_revision WHERE id = 1",
                    &[],
                )
                .await
                .map_err(failed)?;
            let key: Vec<u8> = marks.get(2);
            let hash_key = <[u8; 32]>::try_from(key.as_slice())
                .map_err(|_| Error::Store("the database holds a malformed key".into()))?;
            let sealed_with = tx
                .query(
                    "SELECT sealed_with FROM providers
                     UNION SELECT sealed_with FROM bifrost_history WHERE config IS NOT NULL",
                    &[],
                )
                .await
                .map_err(failed)?
                .iter()
                .map(|r| r.get::<_, Option<String>>(0))
                .collect();
            tx.commit().await.map_err(failed)?;
            Ok(Snapshot {
                hash_key,
                head: marks.get(0),
                compacted: marks.get(1),
                providers,
                revisions,
                sealed_with,
            })
        })
        .await
    }

    async fn import(
        &self,
        snapshot: Arc<Snapshot>,
        mode: Mode,
        progress: Progress,
    ) -> Result<Imported, Error> {
        let (imported, replaced) = self
            .bounded(async |client| self.import_on(client, &snapshot, mode, &progress).await)
            .await?;
        if imported == Imported::NotEmpty {
            return Ok(imported);
        }
        *self.hash_key.lock().unwrap_or_else(|e| e.into_inner()) = snapshot.hash_key;
        self.decoded.write().clear();
        self.head.send_replace(snapshot.head);
        if replaced {
            // Rewrite the tables so the old row versions, secrets perhaps in clear, are gone
            // (best effort: the import stands).
            let vacuumed = self
                .bounded(async |client| {
                    client
                        .batch_execute("VACUUM FULL providers; VACUUM FULL bifrost_history")
                        .await
                        .map_err(failed)
                })
                .await;
            if let Err(e) = vacuumed {
                tracing::warn!(error = %e, "could not VACUUM FULL the replaced tables: old row versions remain until PostgreSQL vacuums them");
            }
        }
        Ok(Imported::Written)
    }

    async fn health(&self) -> Result<(), Error> {
        let failing = self.failing.load(Ordering::Relaxed);
        let result = self
            .bounded(async |client| {
                if failing {
                    client.execute(PROBE, &[]).await.map(|_| ())
                } else {
                    client.simple_query("SELECT 1").await.map(|_| ())
                }
                .map_err(failed)
            })
            .await;
        match result {
            Ok(()) => {
                self.failing.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(Error::Store(e) | Error::Unavailable(e)) => Err(Error::Unavailable(e)),
            Err(e) => Err(e),
        }
    }
}

impl PostgresStore {
    /// Drops revisions beyond the feed's cap or older than the retention's days, and raises the
    /// compaction mark to the highest dropped (best effort: a failure is logged).
    async fn compact(&self) {
        let cutoff = crate::domain::history::cutoff(self.retention.days);
        let result = self
            .bounded(async |client| {
                client
                    .execute(
                        "WITH gone AS (
                             DELETE FROM bifrost_history
                             WHERE revision <= (SELECT head FROM bifrost_revision WHERE id = 1) - $1
                                OR at < $2
                             RETURNING revision)
                         UPDATE bifrost_revision SET compacted = greatest(compacted,
                             (SELECT coalesce(max(revision), 0) FROM gone)) WHERE id = 1",
                        &[&self.retention.feed, &cutoff],
                    )
                    .await
                    .map_err(failed)
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not compact the history");
        }
    }

    /// [`Store::import`] on one connection, in one transaction that holds the store's tables
    /// against every replica's writes until it commits; also says whether it replaced anything.
    async fn import_on(
        &self,
        client: &mut deadpool_postgres::Object,
        snapshot: &Snapshot,
        mode: Mode,
        progress: &Progress,
    ) -> Result<(Imported, bool), Error> {
        let tx = client.transaction().await.map_err(failed)?;
        tx.batch_execute(
            "LOCK TABLE providers, bifrost_history, bifrost_revision IN EXCLUSIVE MODE",
        )
        .await
        .map_err(failed)?;
        let held: i64 = tx
            .query_one(
                "SELECT (SELECT count(*) FROM providers) + (SELECT count(*) FROM bifrost_history)
                     + (SELECT head FROM bifrost_revision WHERE id = 1)",
                &[],
            )
            .await
            .map_err(failed)?
            .get(0);
        if held > 0 && mode == Mode::IntoEmpty {
            return Ok((Imported::NotEmpty, false));
        }
        tx.batch_execute("DELETE FROM providers; DELETE FROM bifrost_history;")
            .await
            .map_err(failed)?;
        let mut written = 0;
        for chunk in snapshot.providers.chunks(PROGRESS_EVERY) {
            let mut columns: [Vec<Option<String>>; 5] = Default::default();
            for p in chunk {
                let sealed = self.codec.encode(p).map_err(Error::Store)?;
                columns[0].push(Some(p.name.clone()));
                columns[1].push(Some(sealed.config));
                columns[2].push(p.config_hash.clone());
                columns[3].push(Some(p.etag.clone()));
                columns[4].push(sealed.sealed_with);
            }
            tx.execute(
                "INSERT INTO providers (name, config, config_hash, etag, sealed_with)
                 SELECT n, c::jsonb, h, e, s
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                     AS t(n, c, h, e, s)",
                &[
                    &columns[0],
                    &columns[1],
                    &columns[2],
                    &columns[3],
                    &columns[4],
                ],
            )
            .await
            .map_err(failed)?;
            written += chunk.len();
            progress(written);
        }
        for chunk in snapshot.revisions.chunks(PROGRESS_EVERY) {
            let mut numbers = Vec::with_capacity(chunk.len());
            let mut columns: [Vec<Option<String>>; 11] = Default::default();
            for (revision, state) in chunk {
                let sealed = state
                    .as_ref()
                    .map(|p| self.codec.encode(p))
                    .transpose()
                    .map_err(Error::Store)?;
                numbers.push(revision.revision);
                columns[0].push(Some(revision.provider.clone()));
                columns[1].push(Some(revision.at.clone()));
                columns[2].push(Some(revision.action.to_string()));
                columns[3].push(Some(revision.source.as_str().to_string()));
                columns[4].push(Some(revision.actor.clone()));
                columns[5].push(Some(
                    serde_json::to_string(&revision.changed)
                        .map_err(|e| Error::Store(e.to_string()))?,
                ));
                columns[6].push(revision.etag.clone());
                columns[7].push(state.as_ref().and_then(|p| p.config_hash.clone()));
                columns[10].push(revision.unverified_actor.clone());
                let (config, sealed_with) =
                    sealed.map_or((None, None), |r| (Some(r.config), r.sealed_with));
                columns[8].push(config);
                columns[9].push(sealed_with);
            }
            tx.execute(
                "INSERT INTO bifrost_history (revision, provider, at, action, source, actor,
                     changed, etag, config_hash, config, sealed_with, unverified_actor)
                 SELECT r, p, a, ac, s, act, ch, e, h, c::jsonb, sw, u
                 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                     $12::text[]) AS t(r, p, a, ac, s, act, ch, e, h, c, sw, u)",
                &[
                    &numbers,
                    &columns[0],
                    &columns[1],
                    &columns[2],
                    &columns[3],
                    &columns[4],
                    &columns[5],
                    &columns[6],
                    &columns[7],
                    &columns[8],
                    &columns[9],
                    &columns[10],
                ],
            )
            .await
            .map_err(failed)?;
            written += chunk.len();
            progress(written);
        }
        tx.execute(
            "UPDATE bifrost_revision SET head = $1, compacted = $2 WHERE id = 1",
            &[&snapshot.head, &snapshot.compacted],
        )
        .await
        .map_err(failed)?;
        tx.execute(
            "UPDATE bifrost_keys SET value = $1 WHERE name = 'config_hash'",
            &[&snapshot.hash_key.as_slice()],
        )
        .await
        .map_err(failed)?;
        tx.execute(NOTIFY, &[&snapshot.head.to_string()])
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        progress(written);
        Ok((Imported::Written, held > 0))
    }

    async fn modify_on(
        &self,
        client: &mut deadpool_postgres::Object,
        name: &str,
        mutation: Mutation,
        meta: WriteMeta,
    ) -> Result<Written, Error> {
        // Round trips are what a write costs here: statements that do not depend on each
        // other's answers are sent together (tokio-postgres pipelines concurrent queries on one
        // connection), and every statement is prepared once per connection.
        let tx = client.transaction().await.map_err(failed)?;
        let (lock, select) =
            futures_util::try_join!(tx.prepare_cached(LOCK), tx.prepare_cached(SELECT_ONE))
                .map_err(failed)?;
        // The lock is taken before the read, in order: the read sees every earlier write.
        let by_name: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&name];
        let (_, found) =
            futures_util::try_join!(tx.execute(&lock, &by_name), tx.query_opt(&select, &by_name))
                .map_err(failed)?;
        let before = found
            .as_ref()
            .map(|r| row(r, &self.codec))
            .transpose()?
            .map(Arc::new);
        let after = match decide(mutation, before.as_deref())? {
            Decision::Write(after) => after,
            Decision::Keep => {
                tx.commit().await.map_err(failed)?;
                return Ok(Written {
                    after: before.clone(),
                    before,
                    revision: None,
                });
            }
        };
        let sealed = after
            .as_deref()
            .map(|p| self.codec.encode(p))
            .transpose()
            .map_err(Error::Store)?;
        let (write, next, insert, prune, notify) = futures_util::try_join!(
            tx.prepare_cached(if after.is_some() { UPSERT } else { DELETE }),
            tx.prepare_cached(NEXT_REVISION),
            tx.prepare_cached(INSERT_REVISION),
            tx.prepare_cached(PRUNE_STATES),
            tx.prepare_cached(NOTIFY),
        )
        .map_err(failed)?;
        let written = async {
            match (&after, &sealed) {
                (Some(p), Some(sealed)) => {
                    let values: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
                        &name,
                        &sealed.config,
                        &p.config_hash,
                        &p.etag,
                        &sealed.sealed_with,
                    ];
                    tx.execute(&write, &values).await
                }
                _ => tx.execute(&write, &[&name]).await,
            }
        };
        let (_, numbered) =
            futures_util::try_join!(written, tx.query_one(&next, &[])).map_err(failed)?;
        let number: i64 = numbered.get(0);
        let changed = crate::domain::history::changed(before.as_deref(), after.as_deref());
        let revision = Revision::of_write(
            number,
            name,
            before.as_deref(),
            after.as_deref(),
            &meta,
            changed,
        );
        let changed = serde_json::to_string(&revision.changed).unwrap_or_default();
        let action = revision.action.to_string();
        let values: [&(dyn tokio_postgres::types::ToSql + Sync); 12] = [
            &number,
            &name,
            &revision.at,
            &action,
            &revision.source.as_str(),
            &revision.actor,
            &changed,
            &revision.etag,
            &sealed.as_ref().map(|r| r.config.as_str()),
            &after.as_ref().and_then(|p| p.config_hash.as_deref()),
            &sealed.as_ref().and_then(|r| r.sealed_with.as_deref()),
            &revision.unverified_actor,
        ];
        let keep = self.retention.per_provider as i64;
        let heard = number.to_string();
        let pruned: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&name, &keep];
        let told: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&heard];
        futures_util::try_join!(
            tx.execute(&insert, &values),
            tx.execute(&prune, &pruned),
            tx.execute(&notify, &told),
        )
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(Written {
            before,
            after,
            revision: Some(number),
        })
    }
}

fn row(row: &tokio_postgres::Row, codec: &Codec) -> Result<StoredProvider, Error> {
    let name: String = row.try_get(0).map_err(failed)?;
    let stored = Row {
        config: row.try_get(1).map_err(failed)?,
        sealed_with: row.try_get(4).map_err(failed)?,
    };
    let config = codec.decode(&name, &stored).map_err(Error::Store)?;
    Ok(StoredProvider {
        name,
        config,
        config_hash: row.try_get(2).map_err(failed)?,
        etag: row.try_get(3).map_err(failed)?,
    })
}

fn summary(r: &tokio_postgres::Row) -> Revision {
    summary_at(r, 0)
}

/// A revision's summary from the columns of [`SUMMARY`], starting at column `at`.
fn summary_at(r: &tokio_postgres::Row, at: usize) -> Revision {
    let action: String = r.get(at + 3);
    let source: String = r.get(at + 4);
    let changed: String = r.get(at + 6);
    Revision {
        revision: r.get(at),
        provider: r.get(at + 1),
        at: r.get(at + 2),
        action: action.parse().unwrap_or(RevisionAction::Update),
        source: Source::parse(&source),
        actor: r.get(at + 5),
        changed: serde_json::from_str(&changed).unwrap_or_default(),
        etag: r.get(at + 7),
        unverified_actor: r.get(at + 8),
    }
}

/// Hears the database's notifications of new revisions (from every replica) on a connection of
/// its own (with the pool's TLS), and raises `head`; reconnects after a failure. The change feed also re-reads the
/// database every second, so a notification lost in a reconnection delays a watcher, never
/// loses a change.
async fn listen(config: tokio_postgres::Config, tls: MakeRustlsConnect, head: watch::Sender<i64>) {
    use futures_util::StreamExt;
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let listening = async {
                    client.batch_execute("LISTEN bifrost_changes").await?;
                    Ok::<_, tokio_postgres::Error>(())
                };
                // The LISTEN needs the connection driven while it runs.
                let mut listening = std::pin::pin!(listening);
                let ready = loop {
                    tokio::select! {
                        done = &mut listening => break done.is_ok(),
                        message = messages.next() => if message.is_none() { break false },
                    }
                };
                if !ready {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                loop {
                    match messages.next().await {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                            if let Ok(revision) = n.payload().parse::<i64>() {
                                head.send_if_modified(|h| {
                                    let newer = revision > *h;
                                    *h = (*h).max(revision);
                                    newer
                                });
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "change listener cannot connect"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A store error with the causes the driver chains (its own message alone is "db error").
fn failed(e: impl std::error::Error) -> Error {
    Error::Store(text(e))
}

/// An error's message followed by those of its causes.
fn text(e: impl std::error::Error) -> String {
    let mut detail = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !detail.contains(&cause_text) {
            detail.push_str(": ");
            detail.push_str(&cause_text);
        }
        source = cause.source();
    }
    detail
}
