//! The SQLite file behind the default store: one row a provider, its configuration as JSON.
//!
//! The file is held in exclusive locking mode, so a second server on the same file refuses to
//! start instead of serving a stale copy. WAL with `synchronous = FULL`: a committed write is on
//! disk before the writer hears back.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::sealing::{Codec, Row};
use super::transfer::{Imported, Mode, PROGRESS_EVERY, Progress, Snapshot};
use crate::domain::history::{Retention, Revision, Source};
use crate::domain::provider::StoredProvider;
use crate::types::RevisionAction;

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE providers (
        name TEXT PRIMARY KEY NOT NULL,
        config TEXT NOT NULL,
        config_hash TEXT,
        etag TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;",
    "ALTER TABLE providers ADD COLUMN sealed_with TEXT;",
    // Key `models` move to the v1.5 form that can say "no model": a v1.4 `[]` (every model)
    // becomes `["*"]`.
    "UPDATE providers SET config = json_set(config, '$.keys', (
        SELECT json_group_array(CASE
            WHEN json_array_length(k.value, '$.models') IS NULL
              OR json_array_length(k.value, '$.models') = 0
            THEN json_set(k.value, '$.models', json('[\"*\"]'))
            ELSE json(k.value) END)
        FROM json_each(providers.config, '$.keys') AS k))
     WHERE json_array_length(config, '$.keys') > 0;",
    "CREATE TABLE health_probe (id INTEGER PRIMARY KEY, at TEXT NOT NULL, pad BLOB) STRICT;",
    // Revisions: one row each; `config` is the state it left (sealed like a provider's), NULL
    // after a delete or once pruned.
    "CREATE TABLE history (
        revision INTEGER PRIMARY KEY, provider TEXT NOT NULL, at TEXT NOT NULL,
        action TEXT NOT NULL, source TEXT NOT NULL, actor TEXT NOT NULL, changed TEXT NOT NULL,
        etag TEXT, config TEXT, config_hash TEXT, sealed_with TEXT) STRICT;
     CREATE INDEX history_provider ON history (provider, revision);
     CREATE TABLE store_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
     INSERT INTO store_meta (name, value) VALUES ('revision', 0), ('compacted', 0);",
    // The store's own keys, made once (see `Store::hash_key`).
    "CREATE TABLE store_keys (name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT;",
    // What a write's `X-Bifrost-Actor` claimed, beside the verified actor (a token's name).
    "ALTER TABLE history ADD COLUMN unverified_actor TEXT;",
];

/// What a store knows of its revisions when it opens.
pub struct Revisions {
    /// The latest revision.
    pub head: i64,
    /// Revisions up to this one are no longer in the change feed.
    pub compacted: i64,
    /// The change feed: the revisions after `compacted`, oldest first.
    pub feed: Vec<Revision>,
}

pub struct Disk {
    conn: Connection,
    codec: Arc<Codec>,
    retention: Retention,
    /// Per provider written since the file was opened, the revisions whose state is kept,
    /// oldest first: pruning a provider's oldest state is then one update by key.
    kept: HashMap<String, VecDeque<i64>>,
    /// The store's key for the `config_hash` responses show.
    pub hash_key: [u8; 32],
}

/// The columns of a revision's summary, in the order [`summary`] reads them.
const SUMMARY: &str =
    "revision, provider, at, action, source, actor, changed, etag, unverified_actor";

fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<Revision> {
    let action: String = r.get(3)?;
    let source: String = r.get(4)?;
    let changed: String = r.get(6)?;
    Ok(Revision {
        revision: r.get(0)?,
        provider: r.get(1)?,
        at: r.get(2)?,
        action: action.parse().unwrap_or(RevisionAction::Update),
        source: Source::parse(&source),
        actor: r.get(5)?,
        changed: serde_json::from_str(&changed).unwrap_or_default(),
        etag: r.get(7)?,
        unverified_actor: r.get(8)?,
    })
}

impl Disk {
    /// Opens (or creates) the file, migrates it, and reads every provider. With a sealing codec,
    /// providers stored with their secrets in clear are sealed first; a provider sealed with
    /// another key (or any, without one) refuses the whole open, and nothing is changed.
    pub fn open(
        path: &Path,
        codec: Codec,
        retention: Retention,
    ) -> Result<(Disk, Vec<StoredProvider>, Revisions), String> {
        let shown = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create folder {}: {e}", dir.display()))?;
        }
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open SQLite store {shown}: {e}"))?;
        let setup = || -> rusqlite::Result<Result<[u8; 32], String>> {
            conn.busy_timeout(std::time::Duration::from_secs(2))?;
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            // A checkpoint (WAL pages copied into the file, then its fsync) runs inside the commit
            // that crosses the threshold, and every write waiting behind that commit waits for it
            // too: SQLite's default of 1000 pages made a 5–10 ms stall every ~160 writes, the tail
            // of concurrent writes (p99/p50 at 8 writers 5–6); 250 pages makes each stall short
            // (p99/p50 about 3, same throughput; BENCHMARKS.md).
            conn.pragma_update(None, "wal_autocheckpoint", 250)?;
            // Every migration and the version that counts them commit together, or none does:
            // a crash or a failing statement leaves the file as it was.
            let tx = conn.unchecked_transaction()?;
            let applied: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if applied > MIGRATIONS.len() {
                return Ok(Err(format!(
                    "SQLite store {shown} is at schema version {applied}, newer than this server \
                     knows ({})",
                    MIGRATIONS.len()
                )));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
                tx.execute_batch(sql)?;
                tx.pragma_update(None, "user_version", i + 1)?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO store_keys (name, value) VALUES ('config_hash', ?1)",
                [crate::domain::secrets::random_key().as_slice()],
            )?;
            let key: Vec<u8> = tx.query_row(
                "SELECT value FROM store_keys WHERE name = 'config_hash'",
                [],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(<[u8; 32]>::try_from(key.as_slice())
                .map_err(|_| format!("SQLite store {shown} holds a malformed key")))
        };
        let hash_key = setup().map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                format!("SQLite store {shown} is in use by another process")
            }
            _ => format!("cannot set up SQLite store {shown}: {e}"),
        })??;
        let (providers, stale) = Self::load(&conn, &codec)
            .map_err(|e| format!("cannot read SQLite store {shown}: {e}"))?;
        let mut disk = Disk {
            conn,
            codec: Arc::new(codec),
            retention,
            kept: HashMap::new(),
            hash_key,
        };
        let stale_history = disk
            .stale_history()
            .map_err(|e| format!("cannot read SQLite store {shown}: {e}"))?;
        if stale > 0 || stale_history > 0 {
            disk.rewrite_all(&providers)
                .map_err(|e| format!("cannot rewrite the secrets of SQLite store {shown}: {e}"))?;
            tracing::info!(providers = stale, revisions = stale_history, store = %shown, "{}", super::sealing::REWRITTEN);
        }
        disk.compact()
            .map_err(|e| format!("cannot compact the history of SQLite store {shown}: {e}"))?;
        let revisions = disk
            .revisions()
            .map_err(|e| format!("cannot read the history of SQLite store {shown}: {e}"))?;
        Ok((disk, providers, revisions))
    }

    fn meta(&self, name: &str) -> rusqlite::Result<i64> {
        self.conn.query_row(
            "SELECT value FROM store_meta WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
    }

    /// The head, the compaction mark and the change feed.
    fn revisions(&self) -> Result<Revisions, String> {
        let head = self.meta("revision").map_err(|e| e.to_string())?;
        let compacted = self.meta("compacted").map_err(|e| e.to_string())?;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {SUMMARY} FROM history WHERE revision > ?1 ORDER BY revision"
            ))
            .map_err(|e| e.to_string())?;
        let feed = stmt
            .query_map([compacted], summary)
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(Revisions {
            head,
            compacted,
            feed,
        })
    }

    /// Drops revisions beyond the feed's cap or older than the retention's days, and records
    /// the highest dropped as the compaction mark.
    pub fn compact(&mut self) -> Result<Option<i64>, String> {
        let head = self.meta("revision").map_err(|e| e.to_string())?;
        let cutoff = crate::domain::history::cutoff(self.retention.days);
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let dropped: Option<i64> = tx
            .query_row(
                "SELECT max(revision) FROM history WHERE revision <= ?1 OR at < ?2",
                params![head - self.retention.feed, cutoff],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        let Some(dropped) = dropped else {
            return Ok(None);
        };
        tx.execute("DELETE FROM history WHERE revision <= ?1", [dropped])
            .map_err(|e| e.to_string())?;
        tx.execute(
            "UPDATE store_meta SET value = max(value, ?1) WHERE name = 'compacted'",
            [dropped],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(Some(dropped))
    }

    /// How many kept states are not sealed as the codec would seal them now.
    fn stale_history(&self) -> Result<usize, String> {
        let mut stmt = self
            .conn
            .prepare("SELECT sealed_with FROM history WHERE config IS NOT NULL")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Option<String>>(0))
            .map_err(|e| e.to_string())?;
        let mut stale = 0;
        for sealed_with in rows {
            let sealed_with = sealed_with.map_err(|e| e.to_string())?;
            stale += usize::from(!self.codec.is_current(sealed_with.as_deref()));
        }
        Ok(stale)
    }

    /// A provider's kept revisions, newest first, and how many there are.
    pub fn history(
        &self,
        name: &str,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Option<(Vec<Revision>, usize)>, String> {
        let total: usize = self
            .conn
            .query_row(
                "SELECT count(*) FROM history WHERE provider = ?1",
                [name],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if total == 0 {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY} FROM history WHERE provider = ?1 AND revision < ?2
                 ORDER BY revision DESC LIMIT ?3"
            ))
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(
                params![name, before.unwrap_or(i64::MAX), limit as i64],
                summary,
            )
            .map_err(|e| e.to_string())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(Some((rows, total)))
    }

    /// Revision `revision` of provider `name`, with its state when kept.
    pub fn revision(
        &self,
        name: &str,
        revision: i64,
    ) -> Result<Option<super::RevisionState>, String> {
        let found = self
            .conn
            .query_row(
                &format!(
                    "SELECT {SUMMARY}, config, config_hash, sealed_with FROM history
                     WHERE provider = ?1 AND revision = ?2"
                ),
                params![name, revision],
                |r| {
                    Ok((
                        summary(r)?,
                        r.get::<_, Option<String>>(9)?,
                        r.get::<_, Option<String>>(10)?,
                        r.get::<_, Option<String>>(11)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| e.to_string())?;
        let Some((revision, config, config_hash, sealed_with)) = found else {
            return Ok(None);
        };
        let state = match config {
            Some(config) => Some(StoredProvider {
                config: self.codec.decode(
                    name,
                    &Row {
                        config,
                        sealed_with,
                    },
                )?,
                name: name.to_string(),
                config_hash,
                etag: revision.etag.clone().unwrap_or_default(),
            }),
            None => None,
        };
        Ok(Some(super::RevisionState { revision, state }))
    }

    /// Every provider, and how many of them are not stored as `codec` would store them now (in
    /// clear when there is a key, or sealed with a previous key).
    fn load(conn: &Connection, codec: &Codec) -> Result<(Vec<StoredProvider>, usize), String> {
        let mut stmt = conn
            .prepare(
                "SELECT name, config, config_hash, etag, sealed_with FROM providers ORDER BY name",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Row {
                        config: r.get(1)?,
                        sealed_with: r.get(4)?,
                    },
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut stale = 0;
        let providers = rows
            .map(|row| {
                let (name, row, config_hash, etag) = row.map_err(|e| e.to_string())?;
                stale += usize::from(!codec.is_current(row.sealed_with.as_deref()));
                Ok(StoredProvider {
                    config: codec.decode(&name, &row)?,
                    name,
                    config_hash,
                    etag,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok((providers, stale))
    }

    /// Rewrites every provider as the codec writes it now, in one transaction, then clears the
    /// write-ahead log and rebuilds the file so that no earlier copy of a secret remains.
    fn rewrite_all(&mut self, providers: &[StoredProvider]) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        for p in providers {
            let row = self.codec.encode(p)?;
            tx.execute(
                "UPDATE providers SET config = ?2, sealed_with = ?3 WHERE name = ?1",
                params![p.name, row.config, row.sealed_with],
            )
            .map_err(|e| e.to_string())?;
        }
        let states: Vec<(i64, StoredProvider)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT revision, provider, config, config_hash, etag, sealed_with FROM history
                     WHERE config IS NOT NULL",
                )
                .map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        Row {
                            config: r.get(2)?,
                            sealed_with: r.get(5)?,
                        },
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                })
                .map_err(|e| e.to_string())?;
            rows.map(|row| {
                let (revision, name, row, config_hash, etag) = row.map_err(|e| e.to_string())?;
                Ok((
                    revision,
                    StoredProvider {
                        config: self.codec.decode(&name, &row)?,
                        name,
                        config_hash,
                        etag: etag.unwrap_or_default(),
                    },
                ))
            })
            .collect::<Result<_, String>>()?
        };
        for (revision, state) in &states {
            let row = self.codec.encode(state)?;
            tx.execute(
                "UPDATE history SET config = ?2, sealed_with = ?3 WHERE revision = ?1",
                params![revision, row.config, row.sealed_with],
            )
            .map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())?;
        self.conn
            .execute_batch(
                "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(|e| e.to_string())
    }

    /// How the file's rows are written: a write's state can be encoded before it reaches the
    /// writer (see [`Disk::write`]).
    pub fn codec(&self) -> Arc<Codec> {
        Arc::clone(&self.codec)
    }

    /// Writes a batch of changes and their revisions in one transaction: all of them or none.
    /// Each revision keeps the state it left; a provider's states beyond the retention's count
    /// are pruned (their summaries stay). `encoded` holds the rows of states already encoded
    /// (by their writers, in parallel); others are encoded here.
    pub fn write(
        &mut self,
        changes: &[(String, Option<Arc<StoredProvider>>)],
        revisions: &[(Revision, Option<Arc<StoredProvider>>)],
        mut encoded: HashMap<*const StoredProvider, Row>,
    ) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        // The kept states after this batch, published only once it commits.
        let mut kept: HashMap<String, VecDeque<i64>> = HashMap::new();
        for (revision, state) in revisions {
            let row = match state {
                Some(p) => {
                    let row = match encoded.entry(Arc::as_ptr(p)) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(self.codec.encode(p)?)
                        }
                    };
                    Some(&*row)
                }
                None => None,
            };
            tx.prepare_cached(
                "INSERT INTO history (revision, provider, at, action, source, actor, changed, etag,
                     config, config_hash, sealed_with, unverified_actor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    revision.revision,
                    revision.provider,
                    revision.at,
                    revision.action.to_string(),
                    revision.source.as_str(),
                    revision.actor,
                    serde_json::to_string(&revision.changed).unwrap_or_default(),
                    revision.etag,
                    row.as_ref().map(|r| r.config.as_str()),
                    state.as_ref().and_then(|p| p.config_hash.as_deref()),
                    row.as_ref().and_then(|r| r.sealed_with.as_deref()),
                    revision.unverified_actor,
                ])
            })
            .map_err(|e| e.to_string())?;
            if state.is_none() {
                continue;
            }
            let states = match kept.entry(revision.provider.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let known = match self.kept.get(&revision.provider) {
                        Some(known) => known.clone(),
                        None => tx
                            .prepare_cached(
                                "SELECT revision FROM history WHERE provider = ?1
                                 AND config IS NOT NULL AND revision < ?2 ORDER BY revision",
                            )
                            .and_then(|mut q| {
                                q.query_map(params![revision.provider, revision.revision], |r| {
                                    r.get::<_, i64>(0)
                                })?
                                .collect::<rusqlite::Result<VecDeque<i64>>>()
                            })
                            .map_err(|e| e.to_string())?,
                    };
                    e.insert(known)
                }
            };
            states.push_back(revision.revision);
            while states.len() > self.retention.per_provider {
                let oldest = states.pop_front().expect("a state beyond the count");
                tx.prepare_cached(
                    "UPDATE history SET config = NULL, sealed_with = NULL WHERE revision = ?1",
                )
                .and_then(|mut q| q.execute([oldest]))
                .map_err(|e| e.to_string())?;
            }
        }
        if let Some((last, _)) = revisions.last() {
            tx.prepare_cached("UPDATE store_meta SET value = ?1 WHERE name = 'revision'")
                .and_then(|mut s| s.execute([last.revision]))
                .map_err(|e| e.to_string())?;
        }
        for (name, state) in changes {
            match state {
                Some(p) => {
                    let row = match encoded.remove(&Arc::as_ptr(p)) {
                        Some(row) => row,
                        None => self.codec.encode(p)?,
                    };
                    tx.prepare_cached(
                        "INSERT INTO providers (name, config, config_hash, etag, sealed_with)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (name) DO UPDATE SET config = excluded.config,
                             config_hash = excluded.config_hash, etag = excluded.etag,
                             sealed_with = excluded.sealed_with",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            name,
                            row.config,
                            p.config_hash,
                            p.etag,
                            row.sealed_with
                        ])
                    })
                    .map_err(|e| e.to_string())?;
                }
                None => {
                    tx.prepare_cached("DELETE FROM providers WHERE name = ?1")
                        .and_then(|mut s| s.execute(params![name]))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        self.kept.extend(kept);
        Ok(())
    }

    /// The whole file, read in one transaction (see [`Snapshot`]): every state decoded, so a
    /// row that does not open with the codec's keys fails the export.
    pub fn export(&self) -> Result<Snapshot, String> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| e.to_string())?;
        let (providers, _) = Self::load(&tx, &self.codec)?;
        let mut stmt = tx
            .prepare(&format!(
                "SELECT {SUMMARY}, config, config_hash, sealed_with FROM history ORDER BY revision"
            ))
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    summary(r)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut revisions = Vec::new();
        for row in rows {
            let (revision, config, config_hash, sealed_with) = row.map_err(|e| e.to_string())?;
            let state = match config {
                Some(config) => Some(StoredProvider {
                    config: self.codec.decode(
                        &revision.provider,
                        &Row {
                            config,
                            sealed_with,
                        },
                    )?,
                    name: revision.provider.clone(),
                    config_hash,
                    etag: revision.etag.clone().unwrap_or_default(),
                }),
                None => None,
            };
            revisions.push((revision, state));
        }
        drop(stmt);
        let head = self.meta("revision").map_err(|e| e.to_string())?;
        let compacted = self.meta("compacted").map_err(|e| e.to_string())?;
        let sealed_with = tx
            .prepare(
                "SELECT sealed_with FROM providers
                 UNION SELECT sealed_with FROM history WHERE config IS NOT NULL",
            )
            .and_then(|mut q| {
                q.query_map([], |r| r.get::<_, Option<String>>(0))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(|e| e.to_string())?;
        Ok(Snapshot {
            hash_key: self.hash_key,
            head,
            compacted,
            providers,
            revisions,
            sealed_with,
        })
    }

    /// Writes `snapshot` as the file's whole content, in one transaction: into an empty file,
    /// or (`Mode::Replace`) over whatever it holds, which is then gone from the file too (the
    /// log cleared, the file rebuilt). Every state is sealed as the codec seals.
    pub fn import(
        &mut self,
        snapshot: &Snapshot,
        mode: Mode,
        progress: &Progress,
    ) -> Result<Imported, String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let held: i64 = tx
            .query_row(
                "SELECT (SELECT count(*) FROM providers) + (SELECT count(*) FROM history)
                     + (SELECT value FROM store_meta WHERE name = 'revision')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if held > 0 && mode == Mode::IntoEmpty {
            return Ok(Imported::NotEmpty);
        }
        tx.execute_batch("DELETE FROM providers; DELETE FROM history;")
            .map_err(|e| e.to_string())?;
        let mut written = 0;
        let step = |written: &mut usize| {
            *written += 1;
            if written.is_multiple_of(PROGRESS_EVERY) {
                progress(*written);
            }
        };
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO providers (name, config, config_hash, etag, sealed_with)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| e.to_string())?;
            for p in &snapshot.providers {
                let row = self.codec.encode(p)?;
                insert
                    .execute(params![
                        p.name,
                        row.config,
                        p.config_hash,
                        p.etag,
                        row.sealed_with
                    ])
                    .map_err(|e| e.to_string())?;
                step(&mut written);
            }
            let mut insert = tx
                .prepare(
                    "INSERT INTO history (revision, provider, at, action, source, actor, changed,
                         etag, config, config_hash, sealed_with, unverified_actor)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(|e| e.to_string())?;
            for (revision, state) in &snapshot.revisions {
                let row = state.as_ref().map(|p| self.codec.encode(p)).transpose()?;
                insert
                    .execute(params![
                        revision.revision,
                        revision.provider,
                        revision.at,
                        revision.action.to_string(),
                        revision.source.as_str(),
                        revision.actor,
                        serde_json::to_string(&revision.changed).map_err(|e| e.to_string())?,
                        revision.etag,
                        row.as_ref().map(|r| r.config.as_str()),
                        state.as_ref().and_then(|p| p.config_hash.as_deref()),
                        row.as_ref().and_then(|r| r.sealed_with.as_deref()),
                        revision.unverified_actor,
                    ])
                    .map_err(|e| e.to_string())?;
                step(&mut written);
            }
        }
        tx.execute(
            "UPDATE store_meta SET value = ?1 WHERE name = 'revision'",
            [snapshot.head],
        )
        .map_err(|e| e.to_string())?;
        tx.execute(
            "UPDATE store_meta SET value = ?1 WHERE name = 'compacted'",
            [snapshot.compacted],
        )
        .map_err(|e| e.to_string())?;
        tx.execute(
            "UPDATE store_keys SET value = ?1 WHERE name = 'config_hash'",
            [snapshot.hash_key.as_slice()],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        progress(written);
        self.kept.clear();
        self.hash_key = snapshot.hash_key;
        // What was replaced is gone from the file too (best effort: the import stands).
        if held > 0
            && let Err(e) = self.conn.execute_batch(
                "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )
        {
            tracing::warn!(error = %e, "could not vacuum the SQLite file after replacing it: old rows remain in its free pages until it is vacuumed");
        }
        Ok(Imported::Written)
    }

    /// Caps the file at `pages` pages, so that a test can make the disk "full".
    #[cfg(test)]
    pub fn limit_pages(&self, pages: u32) {
        self.conn
            .pragma_update(None, "max_page_count", pages)
            .expect("set max_page_count");
    }

    /// Whether a write of `bytes` commits: a row that large written in a durable transaction,
    /// then emptied (`/health` runs it after a failed write, with that write's size, until one
    /// succeeds: a full disk stays unhealthy until the write that failed would fit).
    pub fn probe(&mut self, bytes: usize) -> Result<(), String> {
        for size in [bytes, 0] {
            let tx = self.conn.transaction().map_err(|e| e.to_string())?;
            tx.execute(
                "INSERT INTO health_probe (id, at, pad) VALUES (1, datetime('now'), zeroblob(?1))
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad",
                [size as i64],
            )
            .map_err(|e| e.to_string())?;
            tx.commit().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Whether the file still answers.
    pub fn ping(&self) -> Result<(), String> {
        self.conn
            .query_row("SELECT count(*) FROM providers", [], |r| r.get::<_, i64>(0))
            .optional()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
