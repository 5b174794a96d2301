//! Purpose: a secondary index as a typed handle, so the module that writes an entry and the one that reads it agree
//! on its name, its key and its value through the compiler instead of by convention.
//!
//! Every index is declared once in [`super::indexes`] as an [`Index<K, V>`]; its methods are the only way to write,
//! read, scan or delete its entries. Keys are `/`-separated paths ([`IndexKey`]), so a prefix of a key
//! ([`IndexPrefix`]) reads a range in order.

use super::{Batch, Store, StoreError, encode, keys};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// A key of an index, written as the path its entry is stored under.
pub trait IndexKey {
    /// The key's path inside its index (no leading `/`).
    fn path(&self) -> String;
}

/// A prefix of an index's keys `K`: [`Index::scan`] reads every entry under it, in key order.
pub trait IndexPrefix<K> {
    /// The prefix's path inside its index.
    fn path(&self) -> String;
}

/// A secondary index named `name`, whose entries map a `K` to a `V`.
pub struct Index<K, V> {
    name: &'static str,
    types: PhantomData<fn(&K) -> V>,
}

impl<K: IndexKey, V: Serialize + DeserializeOwned> Index<K, V> {
    /// Declares an index; only [`super::indexes`] does this, once per name.
    pub(super) const fn new(name: &'static str) -> Index<K, V> {
        Index {
            name,
            types: PhantomData,
        }
    }

    /// The index's name in the store (for logs and diagnostics).
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn full(&self, path: &str) -> String {
        keys::index(self.name, path)
    }

    /// Sets `key` → `value` in `batch`.
    pub fn put(&self, batch: &mut Batch, key: &K, value: &V) {
        batch.put_raw(self.full(&key.path()), encode(value));
    }

    /// Sets `key` → `value` in `batch` unless the key exists when the batch commits; the skipped write is reported
    /// under `tag` in the commit's outcome.
    pub fn put_if_absent(&self, batch: &mut Batch, key: &K, value: &V, tag: u32) {
        batch.put_raw_if_absent(self.full(&key.path()), encode(value), tag);
    }

    /// Deletes `key`'s entry in `batch`.
    pub fn delete(&self, batch: &mut Batch, key: &K) {
        batch.delete_raw(self.full(&key.path()));
    }

    /// The value stored under `key`.
    pub fn get(&self, store: &Store, key: &K) -> Result<Option<V>, StoreError> {
        store.get(&self.full(&key.path()))
    }

    /// Every entry under `prefix`, in key order, as (the key's path inside the index, value).
    pub fn scan(
        &self,
        store: &Store,
        prefix: &impl IndexPrefix<K>,
    ) -> Result<Vec<(String, V)>, StoreError> {
        self.scan_first(store, prefix, usize::MAX)
    }

    /// The first `limit` entries under `prefix`, in key order, as (the key's path inside the index, value).
    pub fn scan_first(
        &self,
        store: &Store,
        prefix: &impl IndexPrefix<K>,
        limit: usize,
    ) -> Result<Vec<(String, V)>, StoreError> {
        let strip = self.full("");
        Ok(store
            .scan(&self.full(&prefix.path()), limit)?
            .into_iter()
            .map(|(k, v)| (k.strip_prefix(&strip).unwrap_or(&k).to_string(), v))
            .collect())
    }

    /// Up to `limit` entries under `prefix`, greatest key first, whose path inside the index sorts before `before`
    /// when given (a page's cursor): the newest-first read of an index keyed by time.
    pub fn scan_newest(
        &self,
        store: &Store,
        prefix: &impl IndexPrefix<K>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, V)>, StoreError> {
        let strip = self.full("");
        let before = before.map(|b| self.full(b));
        Ok(store
            .scan_rev(&self.full(&prefix.path()), before.as_deref(), limit)?
            .into_iter()
            .map(|(k, v)| (k.strip_prefix(&strip).unwrap_or(&k).to_string(), v))
            .collect())
    }
}
