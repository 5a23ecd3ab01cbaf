//! Stable key hashing and key groups.
//!
//! Keyed state is partitioned into a fixed number of key groups (the job's *maximum
//! parallelism*). A key's group depends only on the key and the maximum parallelism, never
//! on the current parallelism, the process or the platform; a subtask owns a contiguous
//! [`KeyGroupRange`], so rescaling moves whole groups. The assignment formulas are the ones
//! Apache Flink uses, so the same reasoning about ranges applies.
//!
//! Invariant: `operator_index_for_key_group(g, max, p)` is the subtask whose
//! `KeyGroupRange::for_subtask(max, p, i)` contains `g`.

use std::hash::{Hash, Hasher};

/// Default number of key groups, as in Flink for small jobs.
pub const DEFAULT_MAX_PARALLELISM: u32 = 128;

/// A key group: the unit of keyed state partitioning, `0..max_parallelism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyGroup(pub u32);

/// A contiguous, half-open range `start..end` of key groups owned by one subtask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyGroupRange {
    /// First key group of the range.
    pub start: u32,
    /// One past the last key group of the range.
    pub end: u32,
}

impl KeyGroupRange {
    /// The key groups owned by subtask `index` of `parallelism` when there are
    /// `max_parallelism` groups.
    ///
    /// # Panics
    /// If `parallelism` is zero, exceeds `max_parallelism`, or `index >= parallelism`.
    pub fn for_subtask(max_parallelism: u32, parallelism: u32, index: u32) -> Self {
        assert!(
            parallelism > 0 && parallelism <= max_parallelism && index < parallelism,
            "invalid subtask {index} of {parallelism} with max parallelism {max_parallelism}"
        );
        let (max, p, i) = (
            u64::from(max_parallelism),
            u64::from(parallelism),
            u64::from(index),
        );
        let start = (i * max).div_ceil(p);
        let end = ((i + 1) * max - 1) / p + 1;
        KeyGroupRange {
            start: start as u32,
            end: end as u32,
        }
    }

    /// Number of key groups in the range.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the range holds no key group.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `group` lies in the range.
    pub fn contains(&self, group: KeyGroup) -> bool {
        group.0 >= self.start && group.0 < self.end
    }

    /// Position of `group` inside the range (`group - start`).
    pub fn offset(&self, group: KeyGroup) -> usize {
        (group.0 - self.start) as usize
    }

    /// Iterates over the key groups of the range.
    pub fn iter(&self) -> impl Iterator<Item = KeyGroup> {
        (self.start..self.end).map(KeyGroup)
    }
}

/// A [`Hasher`] whose output is fixed by this crate: the same key hashes to the same value
/// in every process, on every platform and in every version, so key groups stay stable
/// across restarts and machines. Bytes are consumed 8 at a time with a multiply-rotate
/// step; [`Hasher::finish`] applies MurmurHash3's 64-bit finalizer.
#[derive(Debug, Clone, Copy)]
pub struct StableHasher {
    state: u64,
}

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
const MULTIPLIER: u64 = 0x517c_c1b7_2722_0a95;

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher { state: SEED }
    }
}

impl StableHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
    }
}

/// MurmurHash3's 64-bit finalizer: spreads every input bit over the output.
#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

impl Hasher for StableHasher {
    #[inline]
    fn finish(&self) -> u64 {
        fmix64(self.state)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length byte keeps "a\0" and "a" apart.
            self.mix(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.mix(i as u64);
        self.mix((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        // Platform-independent: a usize hashes like the u64 of the same value.
        self.mix(i as u64);
    }
    #[inline]
    fn write_i8(&mut self, i: i8) {
        self.write_u8(i as u8);
    }
    #[inline]
    fn write_i16(&mut self, i: i16) {
        self.write_u16(i as u16);
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.write_u32(i as u32);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_i128(&mut self, i: i128) {
        self.write_u128(i as u128);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.write_usize(i as usize);
    }
}

/// The stable 64-bit hash of a key.
#[inline]
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = StableHasher::default();
    key.hash(&mut hasher);
    hasher.finish()
}

/// The key group of a key hash.
#[inline]
pub fn key_group_for_hash(hash: u64, max_parallelism: u32) -> KeyGroup {
    // The high bits decide the group, the low bits the bucket inside a hash table, so
    // keys of one group still spread over their table.
    KeyGroup((((hash >> 32) * u64::from(max_parallelism)) >> 32) as u32)
}

/// The key group of a key.
#[inline]
pub fn key_group_for<K: Hash + ?Sized>(key: &K, max_parallelism: u32) -> KeyGroup {
    key_group_for_hash(stable_hash(key), max_parallelism)
}

/// The subtask (of `parallelism`) that owns key group `group`.
#[inline]
pub fn operator_index_for_key_group(
    group: KeyGroup,
    max_parallelism: u32,
    parallelism: u32,
) -> u32 {
    ((u64::from(group.0) * u64::from(parallelism)) / u64::from(max_parallelism)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hashes_are_fixed_across_versions() {
        // These values are part of the checkpoint format: changing them breaks restores.
        assert_eq!(stable_hash(&0u64), 0xcee3_80d7_532c_4ee4);
        assert_eq!(stable_hash("word"), stable_hash(&String::from("word")));
        assert_ne!(stable_hash("a"), stable_hash("a\0"));
        assert_eq!(stable_hash(&7usize), stable_hash(&7u64));
    }

    #[test]
    fn ranges_cover_all_groups_once() {
        for p in 1..=10u32 {
            let mut next = 0;
            for i in 0..p {
                let r = KeyGroupRange::for_subtask(128, p, i);
                assert_eq!(r.start, next);
                assert!(!r.is_empty());
                next = r.end;
            }
            assert_eq!(next, 128);
        }
    }

    #[test]
    fn keys_spread_over_groups() {
        let mut counts = [0u32; 128];
        for k in 0..128_000u64 {
            counts[key_group_for(&k, 128).0 as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800 && c < 1200), "{counts:?}");
    }

    proptest! {
        // Failures are reported with their minimal input; no regression files in the tree.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn operator_index_matches_range(max in 1u32..4096, p_seed in 1u32..4096, g_seed in 0u32..u32::MAX) {
            let p = 1 + p_seed % max;
            let g = KeyGroup(g_seed % max);
            let i = operator_index_for_key_group(g, max, p);
            prop_assert!(i < p);
            prop_assert!(KeyGroupRange::for_subtask(max, p, i).contains(g));
        }
    }
}
