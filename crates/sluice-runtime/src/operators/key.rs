//! [`KeySelector`]: how a keyed operator finds the key of a record.
//!
//! A selector either computes an owned key (`|order| order.customer_id`) or borrows it
//! from the record (`|(word, _)| word`), which avoids copying keys such as strings for
//! every record: the key is cloned only when a new key enters state.

use std::hash::Hash;
use std::sync::Arc;

use sluice_core::stable_hash;

/// A function from a record to its key, owned or borrowed.
pub enum KeySelector<T, K> {
    /// Computes the key.
    Owned(Arc<dyn Fn(&T) -> K + Send + Sync>),
    /// Borrows the key from the record.
    Borrowed(Arc<dyn for<'a> Fn(&'a T) -> &'a K + Send + Sync>),
}

impl<T, K> Clone for KeySelector<T, K> {
    fn clone(&self) -> Self {
        match self {
            KeySelector::Owned(f) => KeySelector::Owned(Arc::clone(f)),
            KeySelector::Borrowed(f) => KeySelector::Borrowed(Arc::clone(f)),
        }
    }
}

impl<T, K: Clone> KeySelector<T, K> {
    /// `value`'s key, owned (copied when the selector borrows it).
    #[inline]
    pub fn owned_key(&self, value: &T) -> K {
        match self {
            KeySelector::Owned(f) => f(value),
            KeySelector::Borrowed(f) => f(value).clone(),
        }
    }
}

impl<T, K: Hash> KeySelector<T, K> {
    /// The stable hash of `value`'s key (what hash partitioning and state use).
    #[inline]
    pub fn hash(&self, value: &T) -> u64 {
        match self {
            KeySelector::Owned(f) => stable_hash(&f(value)),
            KeySelector::Borrowed(f) => stable_hash(f(value)),
        }
    }

    /// Calls `f` with `value`'s key and the key's stable hash.
    #[inline]
    pub fn with_key<R>(&self, value: &T, f: impl FnOnce(&K, u64) -> R) -> R {
        match self {
            KeySelector::Owned(select) => {
                let key = select(value);
                let hash = stable_hash(&key);
                f(&key, hash)
            }
            KeySelector::Borrowed(select) => {
                let key = select(value);
                f(key, stable_hash(key))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_and_borrowed_selectors_agree() {
        let owned: KeySelector<(String, u32), String> =
            KeySelector::Owned(Arc::new(|t: &(String, u32)| t.0.clone()));
        let borrowed: KeySelector<(String, u32), String> =
            KeySelector::Borrowed(Arc::new(|t: &(String, u32)| &t.0));
        let record = ("word".to_string(), 3);
        assert_eq!(owned.hash(&record), borrowed.hash(&record));
        assert_eq!(owned.hash(&record), stable_hash("word"));
        let k = borrowed.with_key(&record, |k, h| (k.clone(), h));
        assert_eq!(k, ("word".to_string(), stable_hash("word")));
    }
}
