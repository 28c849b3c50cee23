//! The SQLite file behind the default store: one row a provider, its configuration as JSON.
//!
//! The file is held in exclusive locking mode, so a second server on the same file refuses to
//! start instead of serving a stale copy. WAL with `synchronous = FULL`: a committed write is on
//! disk before the writer hears back.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::sealing::{Codec, Row};
use crate::provider::StoredProvider;

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
];

pub struct Disk {
    conn: Connection,
    codec: Codec,
}

impl Disk {
    /// Opens (or creates) the file, migrates it, and reads every provider. With a sealing codec,
    /// providers stored with their secrets in clear are sealed first; a provider sealed with
    /// another key (or any, without one) refuses the whole open, and nothing is changed.
    pub fn open(path: &Path, codec: Codec) -> Result<(Disk, Vec<StoredProvider>), String> {
        let shown = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create folder {}: {e}", dir.display()))?;
        }
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open SQLite store {shown}: {e}"))?;
        let setup = || -> rusqlite::Result<()> {
            conn.busy_timeout(std::time::Duration::from_secs(2))?;
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
                conn.execute_batch(sql)?;
                conn.pragma_update(None, "user_version", i + 1)?;
            }
            Ok(())
        };
        setup().map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                format!("SQLite store {shown} is in use by another process")
            }
            _ => format!("cannot set up SQLite store {shown}: {e}"),
        })?;
        let (providers, stale) = Self::load(&conn, &codec)
            .map_err(|e| format!("cannot read SQLite store {shown}: {e}"))?;
        let mut disk = Disk { conn, codec };
        if stale > 0 {
            disk.rewrite_all(&providers)
                .map_err(|e| format!("cannot rewrite the secrets of SQLite store {shown}: {e}"))?;
            tracing::info!(providers = stale, store = %shown, "{}", super::sealing::REWRITTEN);
        }
        Ok((disk, providers))
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
        tx.commit().map_err(|e| e.to_string())?;
        self.conn
            .execute_batch(
                "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(|e| e.to_string())
    }

    /// Writes a batch of changes in one transaction: all of them or none.
    pub fn write(
        &mut self,
        changes: &[(String, Option<Arc<StoredProvider>>)],
    ) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        for (name, state) in changes {
            match state {
                Some(p) => {
                    let row = self.codec.encode(p)?;
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
        tx.commit().map_err(|e| e.to_string())
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
