//! Seeding the store from a `config.json` at start: one atomic decision per provider
//! (`domain::config_file` says which), so that replicas starting together agree.

use crate::domain::config_file::{self, FileProvider, Outcome};
use crate::domain::error::Error;
use crate::domain::history::WriteMeta;
use crate::store::{Change, Store};

/// Applies the file's providers to the store, one atomic decision per provider, so that
/// replicas starting together agree. Returns each provider's outcome.
pub async fn apply(
    store: &dyn Store,
    providers: Vec<FileProvider>,
) -> Result<Vec<(String, Outcome)>, Error> {
    let mut outcomes = Vec::with_capacity(providers.len());
    for FileProvider { name, state } in providers {
        let written = store
            .modify(
                &name,
                Box::new(move |current| {
                    Ok(match config_file::applied(current, state) {
                        Some(next) => Change::Put(Box::new(next)),
                        None => Change::Keep,
                    })
                }),
                WriteMeta::config_file(),
            )
            .await?;
        let outcome = match (&written.before, &written.after) {
            (None, _) => Outcome::Created,
            (Some(b), Some(a)) if b.etag == a.etag => Outcome::Kept,
            _ => Outcome::Updated,
        };
        outcomes.push((name, outcome));
    }
    Ok(outcomes)
}
