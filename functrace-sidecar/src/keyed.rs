//! Values by key, the one used last found without hashing: the request metrics' series by
//! labels, the upstream pool's idle connections by address. A proxy's requests mostly repeat
//! the request before (its route, its upstream), and hashing the key byte by byte on every
//! request cost more than the rest of either's work.

use std::hash::Hash;

use fnv::FnvHashMap;

/// Entries in the order they were first asked for, found by key through a map, the last one
/// found by a comparison.
pub struct Keyed<K, V> {
    /// FNV rather than SipHash: the keys are the sidecar's own (from its config).
    index: FnvHashMap<K, usize>,
    entries: Vec<(K, V)>,
    last: usize,
}

impl<K, V> Default for Keyed<K, V> {
    fn default() -> Self {
        Keyed {
            index: FnvHashMap::default(),
            entries: Vec::new(),
            last: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Default> Keyed<K, V> {
    /// The value of the key that `is` says is the one, made by `key` (and given a default
    /// value) when it has none. `is` is asked of the last entry used only: it compares
    /// without building a key, and the map is looked up only when it says no.
    pub fn of(&mut self, is: impl Fn(&K) -> bool, key: impl FnOnce() -> K) -> &mut V {
        if !self.entries.get(self.last).is_some_and(|(at, _)| is(at)) {
            let entries = &mut self.entries;
            self.last = *self.index.entry(key()).or_insert_with_key(|key| {
                entries.push((key.clone(), V::default()));
                entries.len() - 1
            });
        }
        &mut self.entries[self.last].1
    }

    /// Every entry, in the order of first use.
    pub fn entries(&self) -> &[(K, V)] {
        &self.entries
    }
}
