//! Each provider's response body, kept per stored state so that reads copy bytes instead of
//! presenting and serializing the provider again.
//!
//! A body depends only on the stored state (and the process environment, which references are
//! resolved against and which does not change while the server runs), and every write gives a
//! state a new random `ETag`; an entry is therefore keyed by name and used only while its `ETag`
//! is the stored one. The bytes are those dropshot would send for the same
//! [`ProviderResponse`](crate::types::ProviderResponse) (`serde_json::to_vec`), which a test
//! compares byte for byte.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::provider::{self, StoredProvider};

/// Beyond this many entries the cache starts over (names of deleted providers that were read
/// but never listed again would otherwise stay).
const MAX_ENTRIES: usize = 200_000;

/// The cache: provider name → (the state's `ETag`, its response body).
#[derive(Default)]
pub struct Presented {
    entries: RwLock<HashMap<String, (String, Bytes)>>,
}

impl Presented {
    /// The response body of `stored`.
    pub fn body(&self, stored: &StoredProvider) -> Bytes {
        if let Some(bytes) = self.cached(stored) {
            return bytes;
        }
        let bytes = Self::render(stored);
        self.remember(stored, &bytes);
        bytes
    }

    /// The response bodies of `listed`, in order; entries of providers no longer listed are
    /// dropped when they outnumber the listed ones.
    pub fn bodies(&self, listed: &[Arc<StoredProvider>]) -> Vec<Bytes> {
        let mut bodies = Vec::with_capacity(listed.len());
        let mut missing = Vec::new();
        {
            let entries = self.read();
            for (i, stored) in listed.iter().enumerate() {
                match entries.get(&stored.name) {
                    Some((etag, bytes)) if *etag == stored.etag => bodies.push(bytes.clone()),
                    _ => {
                        missing.push(i);
                        bodies.push(Bytes::new());
                    }
                }
            }
        }
        for &i in &missing {
            bodies[i] = Self::render(&listed[i]);
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        for &i in &missing {
            entries.insert(
                listed[i].name.clone(),
                (listed[i].etag.clone(), bodies[i].clone()),
            );
        }
        if entries.len() > listed.len().saturating_mul(2) + 64 {
            let names: std::collections::HashSet<&str> =
                listed.iter().map(|p| p.name.as_str()).collect();
            entries.retain(|name, _| names.contains(name.as_str()));
        }
        bodies
    }

    /// Forgets provider `name` (it was found missing).
    pub fn forget(&self, name: &str) {
        if self.read().contains_key(name) {
            self.entries
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
        }
    }

    fn cached(&self, stored: &StoredProvider) -> Option<Bytes> {
        let entries = self.read();
        let (etag, bytes) = entries.get(&stored.name)?;
        (*etag == stored.etag).then(|| bytes.clone())
    }

    fn remember(&self, stored: &StoredProvider, bytes: &Bytes) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(stored.name.clone(), (stored.etag.clone(), bytes.clone()));
    }

    fn render(stored: &StoredProvider) -> Bytes {
        Bytes::from(
            serde_json::to_vec(&provider::present(stored))
                .expect("a presented provider serializes"),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, (String, Bytes)>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }
}
