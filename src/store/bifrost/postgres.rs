//! Reading a Bifrost PostgreSQL config store, in one read-only transaction (a consistent view,
//! and the database refuses any write). Every column is read as its text form (`col::text`):
//! GORM gives a Go `float64` a `numeric` column and booleans their own type, and the mapping
//! reads both from text, as it reads SQLite's integers.

use tokio_postgres::Client;

use super::{Cell, Row, Table, Tables};
use crate::store::shown_url;

/// Reads the provider and key tables of the database at `url`, without writing to it.
pub async fn read(url: &str) -> Result<Tables, String> {
    let shown = shown_url(url);
    let (mut config, tls) = crate::store::tls::configure(url)
        .map_err(|e| format!("invalid PostgreSQL URL {shown}: {e}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let (mut client, connection) = config
        .connect(tls)
        .await
        .map_err(|e| format!("cannot connect to {shown}: {e}"))?;
    let driver = tokio::spawn(connection);
    let result = read_tables(&mut client).await;
    drop(client);
    let _ = driver.await;
    result.map_err(|e| format!("cannot read {shown}: {e}"))
}

async fn read_tables(client: &mut Client) -> Result<Tables, String> {
    let transaction = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let providers = table(&transaction, "config_providers").await?;
    let keys = table(&transaction, "config_keys").await?;
    transaction.rollback().await.map_err(|e| e.to_string())?;
    Ok(Tables { providers, keys })
}

async fn table(client: &tokio_postgres::Transaction<'_>, name: &str) -> Result<Table, String> {
    let columns: Vec<String> = client
        .query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&name],
        )
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if columns.is_empty() {
        return Err(format!(
            "no table {name} in the current schema: not a Bifrost config store"
        ));
    }
    let list = columns
        .iter()
        .map(|c| format!("\"{}\"::text", c.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client
        .query(&format!("SELECT {list} FROM {name} ORDER BY id"), &[])
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let rows = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .enumerate()
                .map(|(i, column)| {
                    let cell = match row.get::<_, Option<String>>(i) {
                        Some(text) => Cell::Text(text),
                        None => Cell::Null,
                    };
                    (column.clone(), cell)
                })
                .collect::<Row>()
        })
        .collect();
    Ok(Table { columns, rows })
}
