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

use crate::domain::provider::{self, StoredProvider};

/// Beyond this many entries the cache starts over (names of deleted providers that were read
/// but never listed again would otherwise stay).
const MAX_ENTRIES: usize = 200_000;

/// A provider's response: its body and its `ETag` header, as sent.
#[derive(Clone)]
pub struct Shown {
    pub body: Bytes,
    pub etag: http::HeaderValue,
}

/// The cache: provider name → (the state's `ETag`, its response).
#[derive(Default)]
pub struct Presented {
    entries: RwLock<HashMap<String, (String, Shown)>>,
}

impl Presented {
    /// The response of `stored`.
    pub fn shown(&self, stored: &StoredProvider) -> Shown {
        if let Some(shown) = self.cached(stored) {
            return shown;
        }
        let shown = Self::render(stored);
        self.remember(stored, &shown);
        shown
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
                    Some((etag, shown)) if *etag == stored.etag => bodies.push(shown.body.clone()),
                    _ => {
                        missing.push(i);
                        bodies.push(Bytes::new());
                    }
                }
            }
        }
        let rendered: Vec<Shown> = missing.iter().map(|&i| Self::render(&listed[i])).collect();
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        for (&i, shown) in missing.iter().zip(rendered) {
            bodies[i] = shown.body.clone();
            entries.insert(listed[i].name.clone(), (listed[i].etag.clone(), shown));
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

    fn cached(&self, stored: &StoredProvider) -> Option<Shown> {
        let entries = self.read();
        let (etag, shown) = entries.get(&stored.name)?;
        (*etag == stored.etag).then(|| shown.clone())
    }

    fn remember(&self, stored: &StoredProvider, shown: &Shown) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(stored.name.clone(), (stored.etag.clone(), shown.clone()));
    }

    fn render(stored: &StoredProvider) -> Shown {
        let body = Bytes::from(
            serde_json::to_vec(&provider::present(stored))
                .expect("a presented provider serializes"),
        );
        // Tags are the store's own (hex digits), always a valid header value.
        let etag = http::HeaderValue::from_str(&format!("\"{}\"", stored.etag))
            .unwrap_or_else(|_| http::HeaderValue::from_static("\"\""));
        Shown { body, etag }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, (String, Shown)>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }
}
