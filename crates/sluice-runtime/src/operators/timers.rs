//! [`TimerQueue`]: the timers of a keyed operator in one time domain.
//!
//! Invariant: a key has at most one timer per timestamp (registering it again does
//! nothing), and timers come out in timestamp order, ties in registration order.

use std::collections::{BTreeMap, VecDeque};

// foldhash (hashbrown's default): timers are checked for duplicates on every record of
// some operators, and SipHash would cost more than the rest of the work.
use hashbrown::HashSet;
use std::hash::Hash;

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimeDomain {
    /// Fires when the watermark reaches the timer's time.
    EventTime,
    /// Fires when the job's clock reaches the timer's time.
    ProcessingTime,
}

/// Pending timers of one time domain, per key.
#[derive(Debug)]
pub(crate) struct TimerQueue<K> {
    by_time: BTreeMap<i64, VecDeque<K>>,
    registered: HashSet<(i64, K)>,
}

impl<K> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            by_time: BTreeMap::new(),
            registered: HashSet::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> TimerQueue<K> {
    /// Adds a timer for `key` at `time`, unless it has one there already.
    pub(crate) fn register(&mut self, time: i64, key: &K) {
        if self.registered.insert((time, key.clone())) {
            self.by_time.entry(time).or_default().push_back(key.clone());
        }
    }

    /// Removes the timer of `key` at `time`, if any.
    pub(crate) fn delete(&mut self, time: i64, key: &K) {
        if self.registered.remove(&(time, key.clone())) {
            if let Some(keys) = self.by_time.get_mut(&time) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.by_time.remove(&time);
                }
            }
        }
    }

    /// Takes the earliest timer at or before `up_to`.
    pub(crate) fn pop_due(&mut self, up_to: i64) -> Option<(i64, K)> {
        let mut entry = self.by_time.first_entry()?;
        let time = *entry.key();
        if time > up_to {
            return None;
        }
        let key = entry.get_mut().pop_front()?;
        if entry.get().is_empty() {
            entry.remove();
        }
        self.registered.remove(&(time, key.clone()));
        Some((time, key))
    }

    /// Every pending timer, in time order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i64, &K)> + '_ {
        self.by_time
            .iter()
            .flat_map(|(time, keys)| keys.iter().map(move |k| (*time, k)))
    }

    /// Number of pending timers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.registered.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_come_out_in_time_order_once_each() {
        let mut q = TimerQueue::default();
        q.register(30, &"a");
        q.register(10, &"b");
        q.register(10, &"a");
        q.register(10, &"b");
        q.register(20, &"c");
        q.delete(20, &"c");
        q.delete(99, &"c");
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop_due(5), None);
        assert_eq!(q.pop_due(10), Some((10, "b")));
        assert_eq!(q.pop_due(10), Some((10, "a")));
        assert_eq!(q.pop_due(25), None);
        assert_eq!(q.pop_due(i64::MAX), Some((30, "a")));
        assert_eq!(q.len(), 0);
    }
}
