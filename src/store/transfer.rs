//! A whole store as one value, for moving it to another store (`migrate`): every provider, every
//! revision kept (deleted providers' included) with the state it left, the change feed's head and
//! compaction mark, and the store's `config_hash` key. [`crate::store::Store::export`] reads it
//! in one snapshot; [`crate::store::Store::import`] writes it in one transaction, so a reader
//! sees the store before it or after it, never part of it.
//!
//! States are held decoded (secrets in clear, in memory only): the importing store seals them
//! with its own key. Neither this type nor anything holding it is ever printed (no `Debug`).

use std::collections::BTreeSet;

use crate::domain::history::Revision;
use crate::domain::provider::StoredProvider;

/// Everything a store holds that a migration carries.
#[derive(Clone)]
pub struct Snapshot {
    /// The store's key for the `config_hash` responses show ([`crate::store::Store::hash_key`]).
    pub hash_key: [u8; 32],
    /// The latest revision: the change feed's position, which a watcher's cursor counts from.
    pub head: i64,
    /// Revisions up to this one are no longer in the change feed.
    pub compacted: i64,
    /// Every provider, sorted by name, with its `ETag` and stored `config_hash`.
    pub providers: Vec<StoredProvider>,
    /// Every revision kept, oldest first, with the state it left when that is kept (`None`
    /// after a delete, or once pruned).
    pub revisions: Vec<(Revision, Option<StoredProvider>)>,
    /// How the exported rows were stored: the ids of the keys their secrets were sealed with,
    /// `None` for rows in clear. Read by an export, not written by an import (the importing
    /// store seals as it seals), and not part of [`Snapshot::same_content`].
    pub sealed_with: BTreeSet<Option<String>>,
}

impl Snapshot {
    /// Whether the store holds nothing a migration would overwrite: no provider, no revision,
    /// and a change feed that never moved (its key aside, which every store makes at first open).
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty() && self.revisions.is_empty() && self.head == 0
    }

    /// Whether `other` holds the same providers (`ETag`s and stored `config_hash`es included),
    /// the same revisions with the same states, the same feed position and the same
    /// `config_hash` key: a migration of this onto a store holding `other` would change nothing.
    pub fn same_content(&self, other: &Snapshot) -> bool {
        self.hash_key == other.hash_key
            && self.head == other.head
            && self.compacted == other.compacted
            && self.providers == other.providers
            && self.revisions == other.revisions
    }

    /// How many records an import writes: providers and revisions.
    pub fn records(&self) -> usize {
        self.providers.len() + self.revisions.len()
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// The snapshot was written, and is the store's whole content now.
    Written,
    /// The store was not empty and replacing was not asked for: nothing was written.
    NotEmpty,
}

/// Whether an import may replace what the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only into an empty store ([`Snapshot::is_empty`]); otherwise nothing is written.
    IntoEmpty,
    /// Whatever the store holds is dropped, providers and history, in the same transaction.
    Replace,
}

/// Told how many records of an import are written so far (for a progress bar).
pub type Progress = std::sync::Arc<dyn Fn(usize) + Send + Sync>;

/// How many records an import writes between two calls of its [`Progress`].
pub const PROGRESS_EVERY: usize = 256;
