//! The PostgreSQL store: the shared state of several server replicas.
//!
//! Nothing is cached: every read goes to the database, so a write through one replica is seen by
//! the next read through any other. A write runs in one transaction that first takes a
//! transaction-scoped advisory lock on the provider's name, so writers to one provider queue up
//! across replicas (creation included, which a row lock could not cover), then reads the current
//! row, decides, writes and commits. The writer hears back only after the commit.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::sealing::{Codec, Row};
use super::{Change, Mutation, Store, Written};
use crate::error::Error;
use crate::provider::StoredProvider;

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
    // Key `models` move to the v1.5 form that can say "no model": a v1.4 `[]` (every model)
    // becomes `["*"]`.
    r#"UPDATE providers SET config = jsonb_set(config, '{keys}', (
        SELECT jsonb_agg(CASE
            WHEN coalesce(jsonb_array_length(k -> 'models'), 0) = 0
            THEN jsonb_set(k, '{models}', '["*"]'::jsonb)
            ELSE k END ORDER BY i)
        FROM jsonb_array_elements(providers.config -> 'keys') WITH ORDINALITY AS e(k, i)))
     WHERE jsonb_typeof(config -> 'keys') = 'array' AND jsonb_array_length(config -> 'keys') > 0"#,
];

/// The advisory lock key that serialises migrations (an arbitrary constant: "bifrost").
const MIGRATION_LOCK: i64 = 0x0062_6966_726f_7374;

/// Most connections one replica holds.
const POOL_SIZE: usize = 16;

/// The health probe's one-row table, written only while writes are failing.
const PROBE: &str = "INSERT INTO bifrost_health (id, at) VALUES (1, now())
    ON CONFLICT (id) DO UPDATE SET at = excluded.at";

const SELECT_ONE: &str =
    "SELECT name, config::text, config_hash, etag, sealed_with FROM providers WHERE name = $1";
const SELECT_ALL: &str = "SELECT name, config::text, config_hash, etag, sealed_with FROM providers
    ORDER BY name COLLATE \"C\"";
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
    /// The most any store operation waits, connection checkout included.
    timeout: Duration,
    /// Whether the last write failed in the database; `/health` is 503 until a write succeeds.
    failing: AtomicBool,
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
    pub async fn open(url: &str, codec: Codec, timeout: Duration) -> Result<Self, String> {
        let shown = super::shown_url(url);
        let mut config: tokio_postgres::Config = url
            .parse()
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
            config,
            NoTls,
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
        let store = PostgresStore {
            pool,
            codec,
            timeout,
            failing: AtomicBool::new(false),
        };
        store
            .migrate()
            .await
            .map_err(|e| format!("cannot set up PostgreSQL store {shown}: {e}"))?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), String> {
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
            self.rewrite_stale(&tx).await
        };
        let rewritten = run.await?;
        tx.commit().await.map_err(text)?;
        if rewritten > 0 {
            tracing::info!(providers = rewritten, "{}", super::sealing::REWRITTEN);
            // Rewrite the table so the old row versions, secrets in clear, are gone from it.
            if let Err(e) = client.batch_execute("VACUUM FULL providers").await {
                tracing::warn!(error = %e, "could not VACUUM FULL the providers table: old row versions with secrets in clear remain until PostgreSQL vacuums it");
            }
        }
        Ok(())
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
        Ok(stale.len() as u64)
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
        self.bounded(async |client| {
            select_one(&*client, name, &self.codec)
                .await
                .map(|p| p.map(Arc::new))
        })
        .await
    }

    async fn list(&self) -> Result<Vec<Arc<StoredProvider>>, Error> {
        self.bounded(async |client| {
            let statement = client.prepare_cached(SELECT_ALL).await.map_err(failed)?;
            let rows = client.query(&statement, &[]).await.map_err(failed)?;
            rows.iter()
                .map(|r| row(r, &self.codec).map(Arc::new))
                .collect()
        })
        .await
    }

    async fn modify(&self, name: &str, mutation: Mutation) -> Result<Written, Error> {
        let result = self
            .bounded(async |client| self.modify_on(client, name, mutation).await)
            .await;
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
    async fn modify_on(
        &self,
        client: &mut deadpool_postgres::Object,
        name: &str,
        mutation: Mutation,
    ) -> Result<Written, Error> {
        let tx = client.transaction().await.map_err(failed)?;
        tx.execute(LOCK, &[&name]).await.map_err(failed)?;
        let before = select_one(&tx, name, &self.codec).await?.map(Arc::new);
        let decided = std::panic::catch_unwind(AssertUnwindSafe(|| mutation(before.as_deref())))
            .unwrap_or_else(|_| Err(Error::Store("a write panicked".into())))?;
        let after = match decided {
            Change::Put(mut p) => {
                p.etag = crate::precondition::new_tag();
                let sealed = self.codec.encode(&p).map_err(Error::Store)?;
                let statement = tx.prepare_cached(UPSERT).await.map_err(failed)?;
                let values: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
                    &name,
                    &sealed.config,
                    &p.config_hash,
                    &p.etag,
                    &sealed.sealed_with,
                ];
                tx.execute(&statement, &values).await.map_err(failed)?;
                Some(Arc::from(p))
            }
            Change::Delete => {
                tx.execute(DELETE, &[&name]).await.map_err(failed)?;
                None
            }
            Change::Keep => before.clone(),
        };
        tx.commit().await.map_err(failed)?;
        Ok(Written { before, after })
    }
}

async fn select_one(
    client: &impl GenericClient,
    name: &str,
    codec: &Codec,
) -> Result<Option<StoredProvider>, Error> {
    let statement = client.prepare_cached(SELECT_ONE).await.map_err(failed)?;
    let found = client
        .query_opt(&statement, &[&name])
        .await
        .map_err(failed)?;
    found.as_ref().map(|r| row(r, codec)).transpose()
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
