//! The SQLite file behind the default store: one row a provider, its configuration as JSON.
//!
//! The file is held in exclusive locking mode, so a second server on the same file refuses to
//! start instead of serving a stale copy. WAL with `synchronous = FULL`: a committed write is on
//! disk before the writer hears back.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use crate::provider::StoredProvider;
use crate::types::UpdateProviderRequest;

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &["CREATE TABLE providers (
        name TEXT PRIMARY KEY NOT NULL,
        config TEXT NOT NULL,
        config_hash TEXT,
        etag TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;"];

pub struct Disk {
    conn: Connection,
}

impl Disk {
    /// Opens (or creates) the file, migrates it, and reads every provider.
    pub fn open(path: &Path) -> Result<(Disk, Vec<StoredProvider>), String> {
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
        let providers =
            Self::load(&conn).map_err(|e| format!("cannot read SQLite store {shown}: {e}"))?;
        Ok((Disk { conn }, providers))
    }

    fn load(conn: &Connection) -> Result<Vec<StoredProvider>, String> {
        let mut stmt = conn
            .prepare("SELECT name, config, config_hash, etag FROM providers ORDER BY name")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        rows.map(|row| {
            let (name, config, config_hash, etag) = row.map_err(|e| e.to_string())?;
            let config: UpdateProviderRequest = serde_json::from_str(&config)
                .map_err(|e| format!("provider {name:?} is unreadable: {e}"))?;
            Ok(StoredProvider {
                name,
                config,
                config_hash,
                etag,
            })
        })
        .collect()
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
                    let config = serde_json::to_string(&p.config).map_err(|e| e.to_string())?;
                    tx.prepare_cached(
                        "INSERT INTO providers (name, config, config_hash, etag) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (name) DO UPDATE SET config = excluded.config,
                             config_hash = excluded.config_hash, etag = excluded.etag",
                    )
                    .and_then(|mut s| s.execute(params![name, config, p.config_hash, p.etag]))
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

    /// Whether the file still answers.
    pub fn ping(&self) -> Result<(), String> {
        self.conn
            .query_row("SELECT count(*) FROM providers", [], |r| r.get::<_, i64>(0))
            .optional()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
