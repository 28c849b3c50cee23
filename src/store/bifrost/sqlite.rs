//! Reading a Bifrost SQLite config store (`config.db`), opened read-only: GORM's SQLite dialect
//! stores booleans as integers, times and JSON as text, and nothing here depends on the
//! column order or on columns a release added or dropped.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::{Cell, Row, Table, Tables};

/// Reads the provider and key tables of the SQLite file at `path`, without writing to it.
pub fn read(path: &Path) -> Result<Tables, String> {
    let shown = path.display();
    if !path.is_file() {
        return Err(format!("no Bifrost config store at {shown}"));
    }
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {shown} read-only: {e}"))?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let providers = table(&connection, "config_providers")
        .map_err(|e| format!("cannot read config_providers of {shown}: {e}"))?;
    let keys = table(&connection, "config_keys")
        .map_err(|e| format!("cannot read config_keys of {shown}: {e}"))?;
    Ok(Tables { providers, keys })
}

/// Every row of `name`, oldest first, with the table's column names.
fn table(connection: &Connection, name: &str) -> Result<Table, String> {
    let mut statement = connection
        .prepare(&format!("SELECT * FROM {name} ORDER BY id"))
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(_, Some(m)) if m.contains("no such table") => {
                "no such table: not a Bifrost config store".to_string()
            }
            other => other.to_string(),
        })?;
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(String::from)
        .collect();
    let mut rows = statement.query([]).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let mut cells = Row::new();
        for (i, column) in columns.iter().enumerate() {
            let cell = match row.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(n) => Cell::Int(n),
                ValueRef::Real(x) => Cell::Real(x),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Cell::Text(String::from_utf8_lossy(t).into_owned())
                }
            };
            cells.insert(column.clone(), cell);
        }
        out.push(cells);
    }
    Ok(Table { columns, rows: out })
}
