//! How many of something are open per key (streams per account, TLS
//! handshakes per source address), with a cap: taking one past the cap
//! fails, and dropping the guard gives the place back, however it ends.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Open things per key.
#[derive(Clone)]
pub struct OpenCounts<K: Eq + Hash + Clone>(Arc<Mutex<HashMap<K, usize>>>);

impl<K: Eq + Hash + Clone> Default for OpenCounts<K> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<K: Eq + Hash + Clone> OpenCounts<K> {
    /// One more open for `key`, or `None` when it already has `max`.
    pub fn take(&self, key: &K, max: usize) -> Option<OpenSlot<K>> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.clone()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(OpenSlot {
            counts: self.clone(),
            key: key.clone(),
        })
    }
}

/// Held while the thing is open; dropping it frees the place.
pub struct OpenSlot<K: Eq + Hash + Clone> {
    counts: OpenCounts<K>,
    key: K,
}

impl<K: Eq + Hash + Clone> Drop for OpenSlot<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_cap_and_a_place_back_when_one_ends() {
        let counts = OpenCounts::default();
        let held: Vec<_> = (0..3).map(|_| counts.take(&"a", 3).unwrap()).collect();
        assert!(counts.take(&"a", 3).is_none());
        let other = counts.take(&"b", 3).expect("another key is not affected");
        drop(held.into_iter().next());
        assert!(counts.take(&"a", 3).is_some());
        drop(other);
        assert!(counts.take(&"b", 1).is_some(), "its place was given back");
    }
}
