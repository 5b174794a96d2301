//! Purpose: a map that keeps at most a fixed number of entries and drops the oldest first (by when each key was
//! first kept), for the in-memory caches whose size must not follow outside input: the files read from GitHub
//! ([`crate::github`]'s file cache) and the parsed configs ([`crate::spec::parse_remembered`]).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// At most `cap` entries; inserting a new key past that drops the oldest one. Replacing a key's value keeps its
/// place. Not synchronised: each cache holds it behind its own lock.
pub(crate) struct BoundedMap<K, V> {
    cap: usize,
    by_key: HashMap<K, V>,
    /// Keys in the order they were first kept, to drop the oldest.
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// An empty map that keeps at most `cap` entries.
    pub(crate) fn new(cap: usize) -> BoundedMap<K, V> {
        BoundedMap {
            cap,
            by_key: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The value kept at `key`.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.by_key.get(key)
    }

    /// Keeps `value` at `key`, dropping the oldest entries past the cap.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.by_key.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > self.cap {
                if let Some(oldest) = self.order.pop_front() {
                    self.by_key.remove(&oldest);
                }
            }
        }
    }

    /// Forgets `key`.
    pub(crate) fn remove(&mut self, key: &K) {
        if self.by_key.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }

    /// Entries kept (the caches' tests check their bound with it).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oldest key goes first past the cap; a replaced value keeps its key's place; a removed key is gone; the
    /// order never holds a key the map does not.
    #[test]
    fn the_oldest_goes_first() {
        let mut map = BoundedMap::new(2);
        map.insert(1, "a");
        map.insert(2, "b");
        map.insert(1, "a2");
        map.insert(3, "c");
        assert_eq!(map.get(&1), None);
        assert_eq!(map.get(&2), Some(&"b"));
        assert_eq!(map.get(&3), Some(&"c"));
        map.remove(&2);
        assert_eq!(map.get(&2), None);
        map.insert(4, "d");
        assert_eq!(map.get(&3), Some(&"c"));
        assert_eq!(map.get(&4), Some(&"d"));
        assert_eq!(map.len(), 2);
        assert_eq!(map.by_key.len(), map.order.len());
    }
}
